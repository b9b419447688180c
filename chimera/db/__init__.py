"""The state layer: SQLAlchemy tables and the StateStore API (SQLite by default, PostgreSQL too)."""

from chimera.db.errors import (
    InvalidTimezone,
    OwnershipConflict,
    StateConflict,
    StoreError,
    UnknownAgent,
    UnknownCampaign,
    UnsupportedDatabase,
)
from chimera.db.records import (
    AuditCheck,
    AuditEntry,
    CampaignRecord,
    ReviewEvent,
    SpendSummary,
    StateValue,
    SuccessRate,
    TaskRecord,
)
from chimera.db.store import StateStore

__all__ = [
    "AuditCheck",
    "AuditEntry",
    "CampaignRecord",
    "InvalidTimezone",
    "OwnershipConflict",
    "ReviewEvent",
    "SpendSummary",
    "StateConflict",
    "StateStore",
    "StateValue",
    "StoreError",
    "SuccessRate",
    "TaskRecord",
    "UnknownAgent",
    "UnknownCampaign",
    "UnsupportedDatabase",
]
