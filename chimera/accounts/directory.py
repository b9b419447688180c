"""The claims behind a state store: claim a persona's accounts at registration, find a call's account.

It shares the StateStore's engine (one connection pool per process) and runs each operation in a transaction
of the tenant, so on PostgreSQL row security shows it that tenant's claims only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from chimera.accounts.claims import PlatformAccount, choose
from chimera.db import StateStore, campaigns
from chimera.db.engine import Database


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AccountDirectory:
    """chimera.accounts.AccountLookup over the database, plus the claims a campaign's registration makes."""

    def __init__(self, database: Database, clock: Callable[[], datetime] = _utcnow) -> None:
        self._db = database
        self._clock = clock

    @classmethod
    def of(cls, store: StateStore) -> AccountDirectory:
        # StateStore has no public transaction API; sharing its Database keeps one pool (see the report on
        # StateStore.claim_accounts / platform_accounts, which would make this a plain delegation).
        return cls(store._db, store._now)

    def claim(self, tenant_id: str, agent_id: str, handles: Mapping[str, str]) -> list[PlatformAccount]:
        """Claim every handle (platform -> handle) for the agent, or none (AccountTaken)."""
        with self._db.transaction(tenant_id, write=True) as s:
            return campaigns.claim_accounts(s, tenant_id, agent_id, handles, self._clock())

    def accounts(self, tenant_id: str, agent_id: str | None = None) -> list[PlatformAccount]:
        with self._db.transaction(tenant_id, write=False) as s:
            return campaigns.accounts_of(s, tenant_id, agent_id)

    def account_for(self, tenant_id: str, agent_id: str | None, platform: str, handle: str | None) -> str:
        """The account (tenant, agent) calls `platform` from; AccountRefused when it holds none that fits."""
        return choose(
            self.accounts(tenant_id, agent_id), tenant_id=tenant_id, agent_id=agent_id, platform=platform, handle=handle
        )
