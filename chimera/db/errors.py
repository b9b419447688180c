"""Errors raised by the state layer; each says what went wrong and with which ids."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every state-layer error."""


class StateConflict(StoreError):
    """A key of the read set changed since the task read it: nothing was written."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        # args are the constructor's arguments, so the error pickles and crosses process boundaries.
        super().__init__(key, expected, actual)
        self.key = key
        self.expected = expected
        self.actual = actual

    def __str__(self) -> str:
        return (
            f"state conflict on key {self.key!r}: the task read version {self.expected}, "
            f"but the current version is {self.actual}"
        )


class UnknownCampaign(StoreError, LookupError):
    def __init__(self, tenant_id: str, campaign_id: str) -> None:
        super().__init__(tenant_id, campaign_id)
        self.tenant_id = tenant_id
        self.campaign_id = campaign_id

    def __str__(self) -> str:
        return (
            f"campaign {self.campaign_id!r} of tenant {self.tenant_id!r} is not in the state store "
            "(call StateStore.ensure_campaign first)"
        )


class UnknownAgent(StoreError, LookupError):
    def __init__(self, tenant_id: str, agent_id: str) -> None:
        super().__init__(tenant_id, agent_id)
        self.tenant_id = tenant_id
        self.agent_id = agent_id

    def __str__(self) -> str:
        return (
            f"agent {self.agent_id!r} of tenant {self.tenant_id!r} is not in the state store "
            "(agents are created by StateStore.ensure_campaign)"
        )


class InvalidTimezone(StoreError, ValueError):
    def __init__(self, timezone: str) -> None:
        super().__init__(timezone)
        self.timezone = timezone

    def __str__(self) -> str:
        return f"unknown IANA time zone {self.timezone!r} (expected a name such as 'Europe/Paris' or 'UTC')"


class OwnershipConflict(StoreError):
    """A task id is already recorded under another tenant or campaign."""


class UnsupportedDatabase(StoreError, ValueError):
    """The database URL names a backend or form the store cannot use safely."""


class SchemaNotReady(StoreError):
    """The database is not at the schema revision this code needs (PostgreSQL is never migrated implicitly)."""

    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(current, head)
        self.current = current
        self.head = head

    def __str__(self) -> str:
        where = "has no Chimera schema" if self.current is None else f"is at schema revision {self.current}"
        return (
            f"the database {where}, but this version of Chimera needs revision {self.head}: "
            "run `chimera db upgrade` (as the migration role, CHIMERA_MIGRATION_DATABASE_URL)"
        )


class TenantRequired(StoreError, ValueError):
    """A tenant-scoped operation was called without a tenant id."""


class CampaignHalted(StoreError):
    """A stop of the campaign's agent, tenant or the fleet is in force: nothing is sent."""
