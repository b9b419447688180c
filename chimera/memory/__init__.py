"""Chimera's long-term memory: what each agent published, heard, learned; searched by meaning and by words.

`MemoryStore` is the interface; `memory_store_from_env` / `memory_store_from_settings` pick the backend: the
embedded LanceDB store (the default, chimera/memory/lance.py) or Weaviate v4 with a tenant per Chimera tenant
(chimera/memory/weaviate.py). Neither client library is imported until a store of its kind is made.
"""

from chimera.memory.embedder import E5Embedder, Embedder, default_embedder
from chimera.memory.factory import (
    memory_backend,
    memory_dir_from_env,
    memory_store_from_env,
    memory_store_from_settings,
)
from chimera.memory.models import (
    KINDS,
    TENANT_STATUSES,
    EmbeddingModelMismatch,
    Memory,
    MemoryHit,
    MemoryInputError,
    MemoryKind,
    MemoryUnavailable,
    StoreResult,
    TenantStatus,
)
from chimera.memory.store import MemoryStore

__all__ = [
    "KINDS",
    "TENANT_STATUSES",
    "E5Embedder",
    "Embedder",
    "EmbeddingModelMismatch",
    "Memory",
    "MemoryHit",
    "MemoryInputError",
    "MemoryKind",
    "MemoryStore",
    "MemoryUnavailable",
    "StoreResult",
    "TenantStatus",
    "default_embedder",
    "memory_backend",
    "memory_dir_from_env",
    "memory_store_from_env",
    "memory_store_from_settings",
]
