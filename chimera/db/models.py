"""Chimera's tables (SQLAlchemy 2.x typed ORM).

Every tenant-owned table carries `tenant_id NOT NULL` and references its parents through
composite foreign keys that include tenant_id, so row-level security can later be added per
table without reshaping anything.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

GENESIS_HASH = "0" * 64  # prev_hash of a tenant's first audit entry

ID = String(64)  # tenant, agent and campaign ids are slugs of at most 63 characters
LONG_ID = String(255)  # task ids and state keys are built from several slugs
MONEY = Numeric(14, 6, asdecimal=False)  # micro-dollar precision; arithmetic is done in Decimal


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on PostgreSQL (timestamptz) and SQLite (naive text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        # SQLite has no zone; storing naive UTC keeps the text sortable and exact.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


CAMPAIGN_STATES = ("running", "paused", "stopped", "completed")
SPEND_STATES = ("reserved", "settled", "released")
BUDGET_SCOPES = ("tenant", "agent", "campaign")
REVIEW_STATES = ("none", "pending", "approved", "edited", "rejected", "expired", "cancelled")


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Head of the audit chain: lets verify_audit notice entries deleted from the end, and
    # updating it row-locks the tenant, which serializes appends on PostgreSQL.
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    persona: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        CheckConstraint(_one_of("status", CAMPAIGN_STATES), name="ck_campaigns_status"),
        CheckConstraint("daily_budget_usd > 0", name="ck_campaigns_budget"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    agent_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str] = mapped_column(String(255))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    status_actor: Mapped[str | None] = mapped_column(String(255))
    daily_budget_usd: Mapped[float] = mapped_column(MONEY)
    timezone: Mapped[str] = mapped_column(String(64))
    goals: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "campaign_id"], ["campaigns.tenant_id", "campaigns.id"]),
        Index("ix_tasks_campaign_status", "tenant_id", "campaign_id", "status"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID)
    agent_id: Mapped[str] = mapped_column(ID)
    key: Mapped[str] = mapped_column(LONG_ID)
    task_type: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Float)
    attempt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StateVersion(Base):
    __tablename__ = "state_versions"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        CheckConstraint("version >= 1", name="ck_state_versions_version"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(LONG_ID, doc="task_id of the last committer")


class Spend(Base):
    """One row per task: its reservation, then its actual cost."""

    __tablename__ = "spend"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "campaign_id"], ["campaigns.tenant_id", "campaigns.id"]),
        ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        CheckConstraint(_one_of("status", SPEND_STATES), name="ck_spend_status"),
        CheckConstraint("reserved_usd >= 0 AND (actual_usd IS NULL OR actual_usd >= 0)", name="ck_spend_amounts"),
        Index("ix_spend_campaign_day", "tenant_id", "campaign_id", "day", "status"),
        Index("ix_spend_tenant_day", "tenant_id", "day", "status"),
        Index("ix_spend_agent_day", "tenant_id", "agent_id", "day", "status"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID)
    agent_id: Mapped[str] = mapped_column(ID)
    day: Mapped[date] = mapped_column(Date, doc="the day in the campaign's time zone")
    reserved_usd: Mapped[float] = mapped_column(MONEY)
    actual_usd: Mapped[float | None] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


CALL_KINDS = ("model", "tool")
CALL_KEY = String(400)  # a cost line's key: its task or plan id (LONG_ID), then attempt and call number


class ModelCall(Base):
    """The call ledger: one row per priced model or paid tool call, kept once by its key (chimera/db/costs.py)."""

    __tablename__ = "model_calls"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "campaign_id"], ["campaigns.tenant_id", "campaigns.id"]),
        ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        CheckConstraint(_one_of("kind", CALL_KINDS), name="ck_model_calls_kind"),
        CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND cached_input_tokens >= 0 AND cache_write_tokens >= 0"
            " AND cost_usd >= 0",
            name="ck_model_calls_amounts",
        ),
        Index("ix_model_calls_owner", "tenant_id", "owner_id"),
        Index("ix_model_calls_campaign_day", "tenant_id", "campaign_id", "day"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(CALL_KEY, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID)
    agent_id: Mapped[str] = mapped_column(ID)
    owner_id: Mapped[str] = mapped_column(LONG_ID, doc="the task id or plan id the call was made for")
    day: Mapped[date] = mapped_column(Date, doc="the day in the campaign's time zone when it was recorded")
    kind: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(200), doc="the model tier, or server.tool for a paid tool")
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cached_input_tokens: Mapped[int] = mapped_column(Integer)
    cache_write_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float] = mapped_column(MONEY)
    estimated: Mapped[bool] = mapped_column(Boolean, doc="a list price for a call no live service billed")
    basis: Mapped[str] = mapped_column(String(32))
    price_date: Mapped[date | None] = mapped_column(Date)
    transcript_ref: Mapped[str | None] = mapped_column(CALL_KEY)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Budget(Base):
    """A daily limit of a tenant, or of one of its agents (a campaign's own limit is its daily_budget_usd)."""

    __tablename__ = "budgets"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        CheckConstraint(_one_of("scope", BUDGET_SCOPES), name="ck_budgets_scope"),
        CheckConstraint("daily_usd >= 0", name="ck_budgets_daily"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(ID, primary_key=True, doc="the agent id; the tenant id for scope tenant")
    daily_usd: Mapped[float] = mapped_column(MONEY)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(255))


PAYMENT_STATES = (
    "requested",
    "reserved",
    "pending_approval",
    "approved",
    "sent",
    "settled",
    "refused",
    "rejected",
    "expired",
    "cancelled",
    "failed",
)  # schemas.payment.PaymentStatus
PAYMENT_LIMIT_SCOPES = ("tenant", "agent")


class PaymentRow(Base):
    """One payment in one direction (chimera/db/payments.py; revision 0013). An outgoing row is written when the
    payment is reserved, before anything is signed; an incoming row when another agent's payment settles."""

    __tablename__ = "payments"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        CheckConstraint(_one_of("status", PAYMENT_STATES), name="ck_payments_status"),
        CheckConstraint("direction IN ('out', 'in')", name="ck_payments_direction"),
        CheckConstraint("amount_units > 0", name="ck_payments_amount"),
        Index("ix_payments_day", "tenant_id", "day", "agent_id"),
        Index("ix_payments_campaign", "tenant_id", "campaign_id"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    payment_id: Mapped[str] = mapped_column(String(96), primary_key=True)
    direction: Mapped[str] = mapped_column(String(3), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID, doc="the campaign it is charged to, or credited to (in)")
    agent_id: Mapped[str] = mapped_column(ID, doc="the paying agent (out), the paid one (in)")
    kind: Mapped[str] = mapped_column(String(16))
    counterparty: Mapped[str] = mapped_column(String(255))
    to_address: Mapped[str] = mapped_column(String(42))
    amount_units: Mapped[int] = mapped_column(BigInteger)
    asset: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(Text)
    day: Mapped[date] = mapped_column(Date, doc="the campaign's local day the caps count it on")
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    requested_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PaymentLimit(Base):
    """A daily payment cap of a tenant or one of its agents, in USDC base units (`chimera payment limit`)."""

    __tablename__ = "payment_limits"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        CheckConstraint(_one_of("scope", PAYMENT_LIMIT_SCOPES), name="ck_payment_limits_scope"),
        CheckConstraint("daily_units >= 0", name="ck_payment_limits_daily"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(ID, primary_key=True)
    daily_units: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(255))


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "campaign_id"], ["campaigns.tenant_id", "campaigns.id"]),
        ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        CheckConstraint(_one_of("state", REVIEW_STATES), name="ck_reviews_state"),
        # Task ids are global (the CLI looks a review up by task id alone).
        UniqueConstraint("task_id", name="uq_reviews_task_id"),
        Index("ix_reviews_state", "state", "tenant_id"),
        Index("ix_reviews_feedback", "tenant_id", "agent_id", "task_type", "decided_at"),  # chimera/db/calibration.py
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID)
    agent_id: Mapped[str] = mapped_column(ID)
    platform: Mapped[str] = mapped_column(String(64))
    task_type: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    verdict: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    deadline: Mapped[str] = mapped_column(String(64), doc="as given, so it round-trips exactly")
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), doc="deadline parsed, for ordering")
    reviewer: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    edited_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ReviewEventRow(Base):
    """Every change of a review's decision, kept forever."""

    __tablename__ = "review_events"
    __table_args__ = (ForeignKeyConstraint(["tenant_id", "task_id"], ["reviews.tenant_id", "reviews.task_id"]),)

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    old_text: Mapped[str | None] = mapped_column(Text)
    new_text: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """Per-tenant hash chain: hash = sha256(prev_hash + canonical JSON of the entry)."""

    __tablename__ = "audit_log"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Outcome(Base):
    __tablename__ = "outcomes"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "campaign_id"], ["campaigns.tenant_id", "campaigns.id"]),
        ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        Index("ix_outcomes_agent_type", "tenant_id", "agent_id", "task_type", "status"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID)
    agent_id: Mapped[str] = mapped_column(ID)
    task_type: Mapped[str] = mapped_column(String(64))
    human_decided: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class BandCalibrationRow(Base):
    """Learning feedback: the band shifts reviewers' recent decisions call for, per agent and task type
    (schemas.policy.calibrate; recomputed with every human decision, each change audited as judge.calibration)."""

    __tablename__ = "band_calibrations"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        # The bound of schemas.policy.FEEDBACK_MAX_SHIFT, held by the database too.
        CheckConstraint(
            "approve_shift >= -0.05 AND approve_shift <= 0.05 AND escalate_shift >= 0 AND escalate_shift <= 0.05",
            name="ck_band_calibrations_bounds",
        ),
        CheckConstraint(
            "approved >= 0 AND edited >= 0 AND rejected >= 0 AND reviews = approved + edited + rejected",
            name="ck_band_calibrations_counts",
        ),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    agent_id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    approve_shift: Mapped[float] = mapped_column(Float)
    escalate_shift: Mapped[float] = mapped_column(Float)
    reviews: Mapped[int] = mapped_column(Integer)
    approved: Mapped[int] = mapped_column(Integer)
    edited: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(LONG_ID, doc="the task whose review last recomputed it")


PIN_STATES = ("approved", "quarantined")


class McpPin(Base):
    """An MCP server's approved tool definitions, pinned by hash (deployment-wide, not a tenant's)."""

    __tablename__ = "mcp_pins"
    __table_args__ = (CheckConstraint(_one_of("state", PIN_STATES), name="ck_mcp_pins_state"),)

    server: Mapped[str] = mapped_column(ID, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    pinned_hash: Mapped[str] = mapped_column(String(64))
    pinned_tools: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    approved_by: Mapped[str] = mapped_column(String(255))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What the server offered when it was quarantined: the operator reviews this before approving again.
    observed_hash: Mapped[str | None] = mapped_column(String(64))
    observed_tools: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    quarantined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class KeptResult(Base):
    """A tool result too large for workflow history, kept here and referenced by its key."""

    __tablename__ = "tool_results"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    server: Mapped[str] = mapped_column(ID)
    tool: Mapped[str] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """A platform event the ingress accepted once (platform + the platform's event id): a replay is refused.

    Received before any tenant is known, so it belongs to the platform scope (chimera/db/roles.py), not a tenant.
    Only ids are kept: never the body."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_received", "received_at"),)

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(LONG_ID, doc="the receiving account, as the platform named it")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MentionRoute(Base):
    """Which campaign answers mentions of a handle on a platform: one row per campaign platform with a handle.

    Written from each campaign's spec whenever the campaign is registered; read by the ingress, which knows
    only the receiving account. Platform scope, like webhook_deliveries: no tenant reads or writes it."""

    __tablename__ = "mention_routes"
    __table_args__ = (Index("ix_mention_routes_campaign", "campaign_tenant_id", "campaign_id"),)

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    handle: Mapped[str] = mapped_column(String(255), primary_key=True, doc="lowercase, without a leading @")
    campaign_tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ID, primary_key=True)
    campaign_created_at: Mapped[datetime] = mapped_column(UTCDateTime(), doc="routing prefers the oldest")


class AlertDelivery(Base):
    """An alert one notifier delivered (chimera/db/alerts.py): a retried dispatch does not send it again.

    Deployment-wide (a fleet stop has no tenant), so platform scope like webhook_deliveries (revision 0009)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_sent", "sent_at"),)

    alert_id: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    notifier: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    alert_tenant_id: Mapped[str | None] = mapped_column(ID, doc="the alert's tenant, if any (not a row owner)")
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


# An agent's recent spend, read by the anomaly check (chimera/db/alerts.py agent_rates; revision 0009).
Index("ix_model_calls_agent_time", ModelCall.tenant_id, ModelCall.agent_id, ModelCall.created_at)


class PlatformAccountClaim(Base):
    """A platform account (a persona's handle) held by one agent of one tenant (chimera/accounts; revision 0011).

    The primary key is the account itself, so across all tenants a handle has one holder (row security hides
    other tenants' claims, never the key's uniqueness); an agent holds one account per platform."""

    __tablename__ = "platform_accounts"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        UniqueConstraint("tenant_id", "agent_id", "platform", name="uq_platform_accounts_agent"),
    )

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), primary_key=True, doc="lowercase, without a leading @")
    tenant_id: Mapped[str] = mapped_column(ID)
    agent_id: Mapped[str] = mapped_column(ID)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())


CONVERSATION_TEXT_MAX = 10_000  # characters of `said` or `replied`: above what any platform lets one post hold


class ConversationTurnRow(Base):
    """One exchange of an agent with an author (short-term memory, chimera/db/conversations.py; revision 0012).

    Keyed by the mention the author wrote, so a retried activity records it once; `author_key` is the handle as
    handles compare (lower-case, no @). Turns older than the campaign's window move to semantic memory."""

    __tablename__ = "conversation_turns"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        CheckConstraint(
            f"length(said) <= {CONVERSATION_TEXT_MAX} AND length(replied) <= {CONVERSATION_TEXT_MAX}",
            name="ck_conversation_turns_text",
        ),
        Index("ix_conversation_turns_author", "tenant_id", "agent_id", "platform", "author_key", "at"),
        Index("ix_conversation_turns_at", "tenant_id", "agent_id", "at"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    agent_id: Mapped[str] = mapped_column(ID, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    mention_id: Mapped[str] = mapped_column(LONG_ID, primary_key=True)
    author: Mapped[str] = mapped_column(String(255), doc="the handle as the platform gave it, without '@'")
    author_key: Mapped[str] = mapped_column(String(255), doc="lower-case, without '@': how handles compare")
    said: Mapped[str] = mapped_column(Text, doc="what the author wrote: untrusted text")
    replied: Mapped[str] = mapped_column(Text, doc="what the agent answered; '' until it has")
    reply_post_id: Mapped[str | None] = mapped_column(LONG_ID)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), doc="when the author wrote")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
