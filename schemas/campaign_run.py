"""CampaignWorkflow's input and the state it carries through continue-as-new."""

from __future__ import annotations

from pydantic import BaseModel, Field

from schemas.campaign import CampaignSpec
from schemas.events import CampaignState
from schemas.options import RuntimeOptions
from schemas.plan import PlannedTask
from schemas.review import Ack
from schemas.task import TaskStatus


class TaskRecord(BaseModel):
    """The campaign's view of one task."""

    task_id: str
    task: PlannedTask
    cycle: int
    attempt: int = 1
    status: TaskStatus = "planned"
    reason: str = ""
    confidence: float | None = None
    post_id: str | None = None
    replaced_by: str | None = Field(None, description="key of the task re-planned in its place")


class CampaignCarry(BaseModel):
    """Everything a new run needs to continue exactly where the last one stopped."""

    cycle: int
    state: CampaignState
    goals: list[str]
    daily_budget_usd: float
    tasks: list[TaskRecord]
    acks: list[Ack]
    next_cycle_at: str | None = None
    stop_reason: str | None = None
    paused_by: str | None = None
    replans: int = 0
    spend_day: str = ""
    spent_today_usd: float = 0.0
    runs: int = 1
    goals_changed: bool = False
    deferred_replans: list[str] = Field(default_factory=list)


class CampaignInput(BaseModel):
    spec: CampaignSpec
    runtime: RuntimeOptions
    max_cycles: int | None = Field(None, ge=1, description="end after this many cycles (demos, tests)")
    carried: CampaignCarry | None = None


class ObserveRequest(BaseModel):
    tenant_id: str
    campaign_id: str
    platforms: list[str]


def task_id_for(tenant_id: str, campaign_id: str, key: str) -> str:
    """A task's id is also its workflow id and its publishing idempotency key."""
    return f"{tenant_id}.{campaign_id}.{key}"
