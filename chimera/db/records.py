"""What the state store returns: plain, frozen pydantic models (no ORM object ever leaves it)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from schemas.campaign import CampaignSpec
from schemas.events import CampaignState


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class CampaignRecord(_Frozen):
    """A campaign as stored: its spec, plus the live values control signals change."""

    tenant_id: str
    campaign_id: str
    agent_id: str
    name: str
    status: CampaignState
    status_reason: str
    daily_budget_usd: float
    timezone: str
    goals: list[str]
    spec: CampaignSpec
    updated_at: datetime


class StateValue(_Frozen):
    key: str
    version: int
    value: dict[str, Any]
    updated_at: datetime
    updated_by: str


class TaskRecord(_Frozen):
    tenant_id: str
    task_id: str
    campaign_id: str
    agent_id: str
    key: str
    task_type: str
    platform: str
    status: str
    attempt: int
    confidence: float | None
    updated_at: datetime


class SpendSummary(_Frozen):
    """One campaign's money for one day of its time zone."""

    day: date
    spent_usd: float  # settled actual costs
    reserved_usd: float  # outstanding reservations

    @property
    def committed_usd(self) -> float:
        return round(self.spent_usd + self.reserved_usd, 6)


class BudgetLine(_Frozen):
    """One budget level as a campaign's reservations see it today (the campaign's day and time zone)."""

    tenant_id: str
    campaign_id: str
    level: str  # campaign | agent | tenant
    scope_id: str
    day: date
    timezone: str
    limit_usd: float | None  # None: no limit set at this level
    spent_usd: float
    reserved_usd: float
    left_usd: float | None


class ReviewEvent(_Frozen):
    task_id: str
    seq: int
    at: datetime
    actor: str
    action: str  # escalate | approve | edit | reject | expire | cancel
    state: str
    reason: str | None
    old_text: str | None
    new_text: str | None


class AuditEntry(_Frozen):
    tenant_id: str
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditCheck(_Frozen):
    ok: bool
    first_bad_seq: int | None = None
    problem: str | None = None
    entries: int = 0


class SuccessRate(_Frozen):
    rate: float
    samples: int  # real observations (published + rejected), without the prior
    successes: int
    failures: int


class MentionRoute(_Frozen):
    """A campaign whose persona has `handle` on `platform` (what the ingress routes by)."""

    platform: str
    handle: str
    tenant_id: str
    campaign_id: str
    created_at: datetime


class UsageRow(_Frozen):
    """The calls of one (tier, provider, model) in a usage summary: a model tier, or a paid tool (server.tool)."""

    tier: str
    provider: str
    model: str
    kind: str  # model | tool
    calls: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    cost_usd: float
    estimated_usd: float  # the part of cost_usd from estimated lines (list prices no live service billed)
    estimated_calls: int  # how many of the calls were estimated

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cached_input_tokens + self.cache_write_tokens


class UsageSummary(_Frozen):
    """What the call ledger (model_calls) holds for a tenant, or one campaign, over days of the campaigns' time zones.

    published_posts counts the tasks whose row (tasks) is `published` and was last updated (when it was recorded
    published: a terminal status) on a day of the range, in its campaign's time zone."""

    tenant_id: str
    campaign_id: str | None  # None: every campaign of the tenant
    day_from: date
    day_to: date
    rows: list[UsageRow]  # by tier, provider, model
    spent_usd: float  # sum of the lines' cost
    estimated_usd: float  # the part of spent_usd from estimated lines
    calls: int
    published_posts: int
    cost_per_published_usd: float | None  # None when nothing was published
    tokens_per_task: dict[str, float]  # tier -> total tokens (all four counts) / distinct owner ids of that tier
