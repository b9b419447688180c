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
