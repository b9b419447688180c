"""Which memory store a process uses, from its environment.

CHIMERA_MEMORY_BACKEND: `embedded` (the default and, for now, the only backend: LanceDB files).
CHIMERA_MEMORY_DIR: where the embedded backend keeps its files. Without it: `<state dir>/memory`, where the
state dir is the parent of CHIMERA_SANDBOX_DIR (what McpHost passes every server it starts, as
`<state dir>/sandbox`), else CHIMERA_STATE_DIR, else `.chimera`. So the memory server, the workers and the CLI
all find the same files under Chimera's state dir without extra configuration.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from chimera.memory.embedder import Embedder, default_embedder
from chimera.memory.store import MemoryStore

if TYPE_CHECKING:
    from chimera.settings import Settings

MEMORY_DIR_ENV = "CHIMERA_MEMORY_DIR"
MEMORY_BACKEND_ENV = "CHIMERA_MEMORY_BACKEND"
BACKENDS = ("embedded",)


def memory_dir_from_env(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(MEMORY_DIR_ENV):
        return Path(env[MEMORY_DIR_ENV])
    if env.get("CHIMERA_SANDBOX_DIR"):
        return Path(env["CHIMERA_SANDBOX_DIR"]).parent / "memory"
    return Path(env.get("CHIMERA_STATE_DIR") or ".chimera") / "memory"


def _backend(env: Mapping[str, str]) -> str:
    backend = env.get(MEMORY_BACKEND_ENV) or "embedded"
    if backend not in BACKENDS:
        raise ValueError(f"{MEMORY_BACKEND_ENV}={backend!r}: known backends are {', '.join(BACKENDS)}")
    return backend


def memory_store_from_env(env: Mapping[str, str] | None = None, embedder: Embedder | None = None) -> MemoryStore:
    env = os.environ if env is None else env
    _backend(env)
    from chimera.memory.lance import LanceMemoryStore  # LanceDB is imported only by processes that use it

    return LanceMemoryStore(memory_dir_from_env(env), embedder or default_embedder())


def memory_store_from_settings(
    settings: Settings, env: Mapping[str, str] | None = None, embedder: Embedder | None = None
) -> MemoryStore:
    """For workers and the CLI: the store under settings.state_dir unless CHIMERA_MEMORY_DIR says otherwise."""
    env = os.environ if env is None else env
    directory = env.get(MEMORY_DIR_ENV) or str(settings.state_dir / "memory")
    return memory_store_from_env({**env, MEMORY_DIR_ENV: directory}, embedder)
