"""Signals a campaign accepts and the status it answers with."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from schemas.access import Action, Signed
from schemas.campaign import SLUG
from schemas.options import RuntimeOptions
from schemas.plan import Mention
from schemas.task import TaskOutcome

CampaignState = Literal["running", "paused", "stopped", "completed"]


class ControlRequest(Signed):
    """pause, resume: who asked and why. `actor` is who the sender says they are; the workflow records the
    identity the signature proves instead."""

    request_id: str = Field(min_length=1)
    actor: str = Field(min_length=1)
    reason: str = ""


class EmergencyStop(ControlRequest):
    reason: str = Field(min_length=1)


StopScope = Literal["agent", "tenant", "fleet"]


class ScopeStop(EmergencyStop):
    """Stop every campaign and task of an agent, a tenant or the whole fleet (or, with `lift`, allow them
    again). Signed once; the same signed request reaches every campaign in the scope, and each checks it."""

    scope: StopScope
    tenant_id: str | None = Field(None, pattern=SLUG)
    agent_id: str | None = Field(None, pattern=SLUG)
    lift: bool = False

    @model_validator(mode="after")
    def _scope_names(self) -> ScopeStop:
        if self.scope == "fleet" and (self.tenant_id or self.agent_id):
            raise ValueError("a fleet stop names no tenant or agent")
        if self.scope == "tenant" and (not self.tenant_id or self.agent_id):
            raise ValueError("a tenant stop names the tenant (and no agent)")
        if self.scope == "agent" and not (self.tenant_id and self.agent_id):
            raise ValueError("an agent stop names the tenant and the agent")
        return self

    @property
    def action(self) -> Action:
        return "stop.lift" if self.lift else STOP_ACTIONS[self.scope]

    @property
    def target(self) -> str:
        return scope_target(self.scope, self.tenant_id, self.agent_id)

    def covers(self, tenant_id: str, agent_id: str) -> bool:
        if self.scope == "fleet":
            return True
        if self.scope == "tenant":
            return self.tenant_id == tenant_id
        return (self.tenant_id, self.agent_id) == (tenant_id, agent_id)


STOP_ACTIONS: dict[StopScope, Action] = {"agent": "agent.stop", "tenant": "tenant.stop", "fleet": "fleet.stop"}


def scope_target(scope: StopScope, tenant_id: str | None, agent_id: str | None) -> str:
    """How a scope is named in signatures, audit subjects and workflow ids: fleet, tenant:acme, agent:acme/mira."""
    return {"fleet": "fleet", "tenant": f"tenant:{tenant_id}"}.get(scope, f"agent:{tenant_id}/{agent_id}")


class ScopeStopResult(BaseModel):
    """What a scope stop (or lift) did: refused with the reason, or how many campaigns and tasks it reached."""

    accepted: bool
    message: str
    actor: str
    campaigns: list[str] = Field(default_factory=list, description="workflow ids of the campaigns signalled")
    tasks: list[str] = Field(default_factory=list, description="workflow ids of the running tasks signalled")
    in_flight_finished: bool = Field(True, description="sends under way when the stop was recorded had finished")


class ScopeStopInput(BaseModel):
    """ScopeStopWorkflow's input: the signed request, and temporal.yaml's runtime options."""

    stop: ScopeStop
    runtime: RuntimeOptions


class ScopeMembers(BaseModel):
    """The running workflows a scope stop reaches."""

    campaigns: list[str] = Field(default_factory=list)
    tasks: list[str] = Field(default_factory=list)


class StopRecord(BaseModel):
    """The `record_scope_stop` activity's input: the verified stop (or lift) and who it is from."""

    stop: ScopeStop
    actor: str


class StopRecorded(BaseModel):
    in_flight_finished: bool = True
    lifted: int = 0


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
