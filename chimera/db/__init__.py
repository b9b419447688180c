"""The state layer: SQLAlchemy tables and the StateStore API (SQLite by default, PostgreSQL too)."""

from chimera.db.errors import (
    InvalidTimezone,
    OwnershipConflict,
    SchemaNotReady,
    StateConflict,
    StoreError,
    TenantRequired,
    UnknownAgent,
    UnknownCampaign,
    UnsupportedDatabase,
)
from chimera.db.records import (
    AuditCheck,
    AuditEntry,
    BudgetLine,
    CampaignRecord,
    MentionRoute,
    ReviewEvent,
    SpendSummary,
    StateValue,
    SuccessRate,
    TaskRecord,
    UsageRow,
    UsageSummary,
)
from chimera.db.store import StateStore

__all__ = [
    "AuditCheck",
    "AuditEntry",
    "BudgetLine",
    "CampaignRecord",
    "InvalidTimezone",
    "MentionRoute",
    "OwnershipConflict",
    "ReviewEvent",
    "SchemaNotReady",
    "SpendSummary",
    "StateConflict",
    "StateStore",
    "StateValue",
    "StoreError",
    "SuccessRate",
    "TaskRecord",
    "TenantRequired",
    "UnknownAgent",
    "UnknownCampaign",
    "UnsupportedDatabase",
    "UsageRow",
    "UsageSummary",
]
