"""The memory adapter's interface: what activities and the memory MCP server program against.

Every call names its tenant and agent, and a backend answers from that agent's memories only. The shape
fits Weaviate v4 multi-tenancy (one Weaviate tenant per Chimera tenant, agent_id a filtered property,
chimera/memory/weaviate.py) as well as the embedded LanceDB backend (one table per tenant, filtered by tenant_id
and agent_id, chimera/memory/lance.py). Both run the same contract tests (tests/unit/test_memory_contract.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
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
        subject: str | None = None,
        created_at: datetime | str | None = None,
    ) -> StoreResult:
        """Remember `text`. Storing the same idempotency key (or, without a key, the same kind and text) for the
        same agent again changes nothing and answers duplicate=True. `subject` says who or what it is about
        (not part of the id); `created_at` (timezone-aware) keeps when it happened, default now."""
        ...

    def search(
        self,
        tenant_id: str,
        agent_id: str,
        query: str,
        limit: int = 5,
        kinds: Sequence[str] | None = None,
        *,
        subject: str | None = None,
        since: datetime | str | None = None,
    ) -> list[MemoryHit]:
        """The agent's memories most relevant to `query`, best first (hybrid: meaning and exact words); only
        `subject`'s if given, only those created at or after `since` if given."""
        ...

    def recent(
        self,
        tenant_id: str,
        agent_id: str,
        limit: int = 10,
        kinds: Sequence[str] | None = None,
        *,
        subject: str | None = None,
        since: datetime | str | None = None,
    ) -> list[Memory]:
        """The agent's newest memories (by created_at), newest first; filtered as `search` is."""
        ...

    def tenants(self) -> dict[str, str]:
        """Every tenant that has memories, and where they are: "active", "inactive" or "offloaded" (TENANT_STATUSES)."""
        ...

    def set_tenant_activity(self, tenant_id: str, status: str) -> None:
        """Move a tenant's memories between tiers (active / inactive / offloaded); MemoryInputError
        `not_supported` where the backend keeps every tenant in one place."""
        ...
