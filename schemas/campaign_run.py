"""CampaignWorkflow's input and the state it carries through continue-as-new."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from schemas.campaign import CampaignSpec
from schemas.events import CampaignState, ControlAudit, EmergencyStop, MentionDelivery
from schemas.memory import PublishedPost
from schemas.options import RuntimeOptions
from schemas.plan import PlannedTask
from schemas.review import Ack
from schemas.task import TaskOutcome, TaskStatus


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


class CampaignProgress(BaseModel):
    """Everything a campaign knows and has done: CampaignWorkflow's whole state, in one object.

    Continue-as-new hands this object to the next run whole, so a new field is one edit here.
    """

    cycle: int = 0
    state: CampaignState = "running"
    goals: list[str] = Field(default_factory=list)
    daily_budget_usd: float = 0.0
    tasks: dict[str, TaskRecord] = Field(default_factory=dict, description="by task key, in planning order")
    acks: dict[str, Ack] = Field(default_factory=dict, description="answers to signals, by request id")
    next_cycle_at: datetime | None = None
    stop_request: EmergencyStop | None = None
    paused_by: str | None = None
    replans: int = 0
    spend_day: str = ""
    spent_today_usd: float = 0.0
    runs: int = Field(1, description="how many runs (continue-as-new) the campaign has had")
    goals_changed: bool = False
    deferred_replans: list[str] = Field(default_factory=list, description="keys rejected while paused")
    inbox: list[TaskOutcome] = Field(default_factory=list, description="task updates not yet handled")
    audit_outbox: list[ControlAudit] = Field(default_factory=list, description="changes not yet audited")
    cycle_errors: list[str] = Field(default_factory=list, description="why recent cycles failed, newest last")
    mention_inbox: list[MentionDelivery] = Field(default_factory=list, description="pushed mentions to plan now")
    mentions_received: int = 0
    mention_batches: int = Field(0, description="how many times pushed mentions were planned (for task keys)")
    published_attributes: tuple[str, int] | None = Field(
        None, description="the (state, cycle) last upserted as search attributes"
    )
    to_measure: list[PublishedPost] = Field(default_factory=list, description="posts whose engagement is owed")
    news_seen: list[str] = Field(default_factory=list, description="headline ids seen, newest last")
    next_news_check_at: datetime | None = None
    news_reactions: int = Field(0, description="how many times breaking news re-planned (for task keys)")

    @property
    def stop_reason(self) -> str | None:
        return self.stop_request.reason if self.stop_request else None

    @field_validator("tasks", mode="before")
    @classmethod
    def _tasks_by_key(cls, raw: Any) -> Any:
        # Runs recorded before this model carried tasks as a list (CampaignCarry).
        return {t["task"]["key"]: t for t in raw} if isinstance(raw, list) else raw

    @field_validator("acks", mode="before")
    @classmethod
    def _acks_by_request(cls, raw: Any) -> Any:
        return {a["request_id"]: a for a in raw} if isinstance(raw, list) else raw


class CampaignInput(BaseModel):
    spec: CampaignSpec
    runtime: RuntimeOptions
    max_cycles: int | None = Field(None, ge=1, description="end after this many cycles (demos, tests)")
    carried: CampaignProgress | None = Field(None, description="the state an earlier run handed over")


class ObserveRequest(BaseModel):
    tenant_id: str
    campaign_id: str
    platforms: list[str]
    handles: dict[str, str] = Field(default_factory=dict, description="the persona's handles: platform -> handle")


def task_id_for(tenant_id: str, campaign_id: str, key: str) -> str:
    """A task's id is also its workflow id and its publishing idempotency key."""
    return f"{tenant_id}.{campaign_id}.{key}"
