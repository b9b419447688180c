"""Chimera's long-term memory: what each agent published, heard, learned; searched by meaning and by words.

`MemoryStore` is the interface; `memory_store_from_env` / `memory_store_from_settings` pick the backend
(the embedded LanceDB store today; Weaviate v4 with a tenant per Chimera tenant in production).
"""

from chimera.memory.embedder import E5Embedder, Embedder, default_embedder
from chimera.memory.factory import memory_dir_from_env, memory_store_from_env, memory_store_from_settings
from chimera.memory.models import KINDS, Memory, MemoryHit, MemoryInputError, MemoryKind, StoreResult
from chimera.memory.store import MemoryStore

__all__ = [
    "KINDS",
    "E5Embedder",
    "Embedder",
    "Memory",
    "MemoryHit",
    "MemoryInputError",
    "MemoryKind",
    "MemoryStore",
    "StoreResult",
    "default_embedder",
    "memory_dir_from_env",
    "memory_store_from_env",
    "memory_store_from_settings",
]
