"""One content task's contracts, from its input to its outcome."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.memory import MemoryPolicy, RecalledMemory, WritingMemory
from schemas.models import Authorship
from schemas.news import BreakingNews
from schemas.options import RuntimeOptions
from schemas.persona import Persona
from schemas.plan import Mention, Observation, PlannedTask, Trend, Usage
from schemas.policy import ContentPolicy, JudgePolicy, Verdict

TaskStatus = Literal[
    "planned",  # known to the campaign, not started (waiting for dependencies or a slot)
    "running",  # a ContentTaskWorkflow is working on it
    "pending_review",  # escalated, waiting for a human
    "published",  # committed and published
    "rejected",  # by the judge, a reviewer, an expired review or a state conflict
    "failed",  # an activity gave up
    "budget_exhausted",  # no budget left to reserve
    "cancelled",  # a dependency was rejected, or the campaign stopped
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"published", "rejected", "failed", "budget_exhausted", "cancelled"})


class TaskRef(BaseModel):
    """Who a task belongs to; every activity of a task receives it."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    tenant_id: str
    campaign_id: str
    agent_id: str
    campaign_workflow_id: str


class ContentTaskInput(BaseModel):
    ref: TaskRef
    task: PlannedTask
    persona: Persona
    goals: list[str]
    cycle: int
    attempt: int
    judge: JudgePolicy
    review_deadline_seconds: int
    timezone: str
    daily_budget_usd: float
    runtime: RuntimeOptions
    models: dict[str, Any] = Field(default_factory=dict, description="the campaign's model tier overrides")
    content: ContentPolicy = ContentPolicy()
    memory: MemoryPolicy = MemoryPolicy()


class StateRead(BaseModel):
    """A versioned state key the task read, and the version it saw (its read set)."""

    model_config = ConfigDict(frozen=True)

    key: str
    version: int


class ToolCall(BaseModel):
    model_config = ConfigDict(frozen=True)

    server: str
    tool: str
    ok: bool
    summary: str = ""
    args_sha256: str = ""
    # A result larger than the host's inline limit stays out of workflow history: it is kept in the state
    # store under this key (see chimera.mcp.host).
    result_ref: str | None = None
    result_bytes: int = 0


class TaskResult(BaseModel):
    """A worker's draft: nothing is published yet."""

    text: str = Field(min_length=1)
    platform: str
    usage: Usage
    model_probability: float = Field(ge=0, le=1)
    read_set: list[StateRead] = Field(default_factory=list)
    write_keys: list[str] = Field(default_factory=list)
    untrusted_inputs: list[str] = Field(default_factory=list, description="texts the task read from outside")
    recalled_inputs: list[str] = Field(
        default_factory=list,
        description="third-party text the writer was reminded of (conversations, facts): judged by the rules and the "
        "hijack checks like the other inputs, but not by the classifier, which judged it when it first came in",
    )
    tool_calls: list[ToolCall] = Field(default_factory=list)
    media_ids: list[str] = Field(default_factory=list, description="media-store items the post attaches")
    author: Authorship | None = Field(None, description="which model wrote the draft (absent: recorded before)")
    transcript_ref: str | None = Field(None, description="the kept prompts and responses of this draft, by key")
    memories_used: list[RecalledMemory] = Field(
        default_factory=list, description="what the writer was reminded of: conversation, memories, own posts"
    )
    memories_cited: list[str] = Field(default_factory=list, description="ids of the memories the draft drew on")


class PublishResult(BaseModel):
    post_id: str
    url: str
    duplicate: bool = Field(False, description="the platform already had a post for this key")


class TaskOutcome(BaseModel):
    """What a ContentTaskWorkflow ends with; also signalled to its campaign."""

    task_id: str
    key: str
    attempt: int
    status: TaskStatus
    reason: str = ""
    confidence: float | None = None
    decision: str | None = None
    post_id: str | None = None
    url: str | None = Field(None, description="the published post's link (PublishResult.url)")
    text: str | None = None
    cost_usd: float = 0.0
    spend_day: str = ""
    spent_today_usd: float | None = None
    replan: bool = Field(False, description="the campaign should re-plan this task with the reason")


class JudgeInput(BaseModel):
    ref: TaskRef
    task: PlannedTask
    persona: Persona
    result: TaskResult
    # The workflow audits the verdict it applies (record_verdict). A task judged before that change
    # (an input without this field) is still audited by the judge activity, so none goes unaudited.
    verdict_audited_by_workflow: bool = False
    content: ContentPolicy = ContentPolicy()
    # For the model reviewer: the campaign's tier overrides, and the day its spend counts against.
    models: dict[str, Any] = Field(default_factory=dict)
    timezone: str = "UTC"
    memory: MemoryPolicy = MemoryPolicy()


class VerdictRecord(BaseModel):
    """The verdict a task's workflow decided and acts on, for the audit log."""

    ref: TaskRef
    task_type: str
    verdict: Verdict


class CommitInput(BaseModel):
    ref: TaskRef
    task_key: str
    text: str
    read_set: list[StateRead]
    write_keys: list[str]
    verdict: Verdict
    actor: str


class CommitResult(BaseModel):
    versions: list[StateRead]


class PublishInput(BaseModel):
    ref: TaskRef
    platform: str
    text: str
    idempotency_key: str
    reply_to: str | None = None
    media_ids: list[str] = Field(default_factory=list)
    # For memory: the exchange a reply completes, and what a post was about.
    mention: Mention | None = None
    task_key: str = ""
    topic: str | None = None


class BudgetRequest(BaseModel):
    ref: TaskRef
    task_type: str
    daily_budget_usd: float
    timezone: str


class Reservation(BaseModel):
    ok: bool
    amount_usd: float = 0.0
    reason: str = ""
    day: str = Field("", description="the budget day, in the campaign's time zone (YYYY-MM-DD)")
    spent_today_usd: float = Field(0.0, description="spent plus reserved that day, after this reservation")
    level: str = Field("", description="refused: the budget that would be exceeded (campaign, agent, tenant)")


class SettleRequest(BaseModel):
    ref: TaskRef
    actual_usd: float
    timezone: str


class OutcomeRecord(BaseModel):
    ref: TaskRef
    task_type: str
    platform: str
    outcome: TaskOutcome
    human_decided: bool = False


class PlanRequest(BaseModel):
    """Everything the Planner model sees for one cycle, or for re-planning one task."""

    tenant_id: str
    campaign_id: str
    persona: Persona
    goals: list[str]
    platforms: list[str]
    observation: Observation
    cycle: int
    max_tasks: int
    recent: list[TaskOutcome] = Field(default_factory=list, description="latest outcomes, newest last")
    replan_of: PlannedTask | None = None
    replan_reason: str | None = None
    key_prefix: str = Field(description="every new task key starts with it, so keys never collide")
    replies_only: bool = Field(False, description="plan replies to the observed mentions and nothing else")
    models: dict[str, Any] = Field(default_factory=dict, description="the campaign's model tier overrides")
    timezone: str = "UTC"
    daily_budget_usd: float | None = Field(None, description="the campaign's budget, which planning spends too")
    breaking: list[BreakingNews] = Field(default_factory=list, description="news that re-plans mid-cycle")
    # Filled in by the plan activity from memory (never carried in workflow history).
    memories: list[RecalledMemory] = Field(default_factory=list, description="the agent's recent memories")
    learnings: list[RecalledMemory] = Field(default_factory=list, description="the campaign's lessons, newest first")


class WriteRequest(BaseModel):
    """What the Worker model sees for one task."""

    persona: Persona
    task: PlannedTask
    goals: list[str]
    trends: list[Trend] = Field(default_factory=list)
    task_id: str = Field("", description="the business key: tools that create things (images) are keyed by it")
    tenant_id: str = ""
    models: dict[str, Any] = Field(default_factory=dict, description="the campaign's model tier overrides")
    memory: WritingMemory = WritingMemory()


class Draft(BaseModel):
    text: str = Field(min_length=1)
    model_probability: float = Field(ge=0, le=1)
    usage: Usage
    media_ids: list[str] = Field(default_factory=list, description="images the model made for the post")
    author: Authorship | None = None
    memory_ids: list[str] = Field(default_factory=list, description="ids of the memories the draft drew on")
