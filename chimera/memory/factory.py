"""Which memory store a process uses, from its environment.

CHIMERA_MEMORY_BACKEND: `embedded` (LanceDB files, the default) or `weaviate` (weaviate-client v4, a tenant per
Chimera tenant: chimera/memory/weaviate.py). Unset, CHIMERA_WEAVIATE_URL being set picks `weaviate`.
CHIMERA_WEAVIATE_URL (http(s)://HOST:PORT), CHIMERA_WEAVIATE_GRPC_PORT (default 50051), CHIMERA_WEAVIATE_API_KEY
(optional, never logged), CHIMERA_WEAVIATE_COLLECTION (default ChimeraMemory): where Weaviate is.
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
WEAVIATE_URL_ENV = "CHIMERA_WEAVIATE_URL"
BACKENDS = ("embedded", "weaviate")


def memory_dir_from_env(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(MEMORY_DIR_ENV):
        return Path(env[MEMORY_DIR_ENV])
    if env.get("CHIMERA_SANDBOX_DIR"):
        return Path(env["CHIMERA_SANDBOX_DIR"]).parent / "memory"
    return Path(env.get("CHIMERA_STATE_DIR") or ".chimera") / "memory"


def memory_backend(env: Mapping[str, str] | None = None) -> str:
    """`embedded` or `weaviate`: CHIMERA_MEMORY_BACKEND if set, else weaviate when CHIMERA_WEAVIATE_URL is set."""
    env = os.environ if env is None else env
    backend = env.get(MEMORY_BACKEND_ENV) or ("weaviate" if env.get(WEAVIATE_URL_ENV) else "embedded")
    if backend not in BACKENDS:
        raise ValueError(f"{MEMORY_BACKEND_ENV}={backend!r}: known backends are {', '.join(BACKENDS)}")
    return backend


def memory_store_from_env(env: Mapping[str, str] | None = None, embedder: Embedder | None = None) -> MemoryStore:
    """The configured store. A bad configuration (an unknown backend, weaviate without a URL) is a ValueError
    now, at startup; the Weaviate store connects on first use."""
    env = os.environ if env is None else env
    if memory_backend(env) == "weaviate":
        # Each client library is imported only by processes that use it.
        from chimera.memory.weaviate import WeaviateMemoryStore, WeaviateSettings

        return WeaviateMemoryStore(WeaviateSettings.from_env(env), embedder or default_embedder())
    from chimera.memory.lance import LanceMemoryStore

    return LanceMemoryStore(memory_dir_from_env(env), embedder or default_embedder())


def memory_store_from_settings(
    settings: Settings, env: Mapping[str, str] | None = None, embedder: Embedder | None = None
) -> MemoryStore:
    """For workers and the CLI: the configured backend; embedded under settings.state_dir unless
    CHIMERA_MEMORY_DIR says otherwise."""
    env = os.environ if env is None else env
    directory = env.get(MEMORY_DIR_ENV) or str(settings.state_dir / "memory")
    return memory_store_from_env({**env, MEMORY_DIR_ENV: directory}, embedder)
