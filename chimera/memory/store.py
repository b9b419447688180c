"""The memory adapter's interface: what activities and the memory MCP server program against.

Every call names its tenant and agent, and a backend answers from that agent's memories only. The shape
fits Weaviate v4 multi-tenancy (one Weaviate tenant per Chimera tenant, agent_id a filtered property) as
well as the embedded LanceDB backend (one table per tenant, filtered by tenant_id and agent_id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from chimera.memory.models import Memory, MemoryHit, MetadataValue, StoreResult


class MemoryStore(Protocol):
    def store(
        self,
        tenant_id: str,
        agent_id: str,
        text: str,
        kind: str,
        *,
        idempotency_key: str | None = None,
        metadata: Mapping[str, MetadataValue] | None = None,
    ) -> StoreResult:
        """Remember `text`. Storing the same idempotency key (or, without a key, the same kind and text) for the
        same agent again changes nothing and answers duplicate=True."""
        ...

    def search(
        self,
        tenant_id: str,
        agent_id: str,
        query: str,
        limit: int = 5,
        kinds: Sequence[str] | None = None,
    ) -> list[MemoryHit]:
        """The agent's memories most relevant to `query`, best first (hybrid: meaning and exact words)."""
        ...

    def recent(
        self, tenant_id: str, agent_id: str, limit: int = 10, kinds: Sequence[str] | None = None
    ) -> list[Memory]:
        """The agent's newest memories, newest first."""
        ...
