"""The Planner's output: a DAG of content tasks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TaskType = Literal["post", "reply"]


class Usage(BaseModel):
    """What a step's model calls (and paid tools) used and cost, summed; the spend ledger has each call."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="the model that produced the result")
    provider: str = "offline"
    tier: str = ""
    calls: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = Field(False, description="list prices of calls no live service billed (offline, sandbox)")


class Mention(BaseModel):
    """A mention or comment as read from a platform: untrusted text."""

    model_config = ConfigDict(frozen=True)

    id: str
    platform: str
    author: str
    text: str
    created_at: str


class Trend(BaseModel):
    model_config = ConfigDict(frozen=True)

    platform: str
    topic: str
    volume: int = 0


class Headline(BaseModel):
    """A news article as the news server gives it: untrusted third-party text."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    summary: str = ""
    topic: str | None = None
    source: str = ""
    url: str = ""
    published_at: str = ""


class Observation(BaseModel):
    """What a campaign saw at the start of a cycle."""

    mentions: list[Mention] = Field(default_factory=list)
    trends: list[Trend] = Field(default_factory=list)
    headlines: list[Headline] = Field(default_factory=list, description="the newest news, newest first")
    errors: list[str] = Field(default_factory=list, description="sources that could not be read")


class PlannedTask(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$", description="unique within the campaign")
    task_type: TaskType
    platform: str
    brief: str = Field(min_length=1)
    goal: str | None = None
    topic: str | None = None
    mention: Mention | None = None
    depends_on: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reply_needs_mention(self) -> PlannedTask:
        if self.task_type == "reply" and self.mention is None:
            raise ValueError(f"task {self.key}: a reply needs the mention it answers")
        return self


class TaskPlan(BaseModel):
    tasks: list[PlannedTask]
    rationale: str = ""
    usage: Usage

    @model_validator(mode="after")
    def _is_a_dag(self) -> TaskPlan:
        keys = [t.key for t in self.tasks]
        if len(keys) != len(set(keys)):
            raise ValueError("task keys must be unique within a plan")
        known = set(keys)
        deps = {t.key: set(t.depends_on) for t in self.tasks}
        for key, needs in deps.items():
            if needs - known:
                raise ValueError(f"task {key} depends on unknown tasks {sorted(needs - known)}")
        # Kahn's algorithm: anything left over sits on a cycle.
        remaining = dict(deps)
        while remaining:
            free = [k for k, needs in remaining.items() if not needs & remaining.keys()]
            if not free:
                raise ValueError(f"task plan has a dependency cycle among {sorted(remaining)}")
            for k in free:
                del remaining[k]
        return self
