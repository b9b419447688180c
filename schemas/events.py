"""Signals a campaign accepts and the status it answers with."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from schemas.plan import Mention
from schemas.task import TaskOutcome

CampaignState = Literal["running", "paused", "stopped", "completed"]


class ControlRequest(BaseModel):
    """pause, resume: who asked and why."""

    request_id: str = Field(min_length=1)
    actor: str = Field(min_length=1)
    reason: str = ""


class EmergencyStop(ControlRequest):
    reason: str = Field(min_length=1)


class BudgetChange(ControlRequest):
    daily_budget_usd: float = Field(gt=0)


class GoalsChange(ControlRequest):
    goals: list[str] = Field(min_length=1)


class TaskUpdate(BaseModel):
    """A child task tells its campaign it escalated or ended (children outlive campaign runs)."""

    outcome: TaskOutcome


class MentionDelivery(BaseModel):
    """A mention a platform pushed (webhook) or a user rehearsed: reply now, not at the next cycle."""

    event_id: str = Field(min_length=1, description="the platform's delivery id; the ingress refuses repeats")
    mention: Mention
    received_at: str = Field("", description="when the ingress received it (ISO 8601), for latency figures")


class TaskView(BaseModel):
    task_id: str
    key: str
    task_type: str
    platform: str
    status: str
    attempt: int
    cycle: int
    confidence: float | None = None
    reason: str = ""
    post_id: str | None = None


class CampaignStatus(BaseModel):
    campaign_id: str
    tenant_id: str
    agent_id: str
    state: CampaignState
    cycle: int
    goals: list[str]
    daily_budget_usd: float
    spend_today_usd: float
    tasks_by_state: dict[str, int]
    pending_reviews: list[str]
    tasks: list[TaskView]
    stop_reason: str | None = None
    paused_by: str | None = None
    replans: int = 0
    cycle_errors: list[str] = Field(default_factory=list, description="why recent cycles could not plan, newest last")
    mentions_received: int = Field(0, description="mentions pushed to the campaign (webhooks), handled at once")


class ControlAudit(BaseModel):
    """A campaign-level change to be written to the audit log."""

    tenant_id: str
    campaign_id: str
    agent_id: str
    action: str
    actor: str
    detail: dict[str, str | float | list[str]] = Field(default_factory=dict)
    campaign_status: CampaignState | None = None
