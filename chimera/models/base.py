"""What Chimera needs from a model: a Planner call and a Worker call, both typed end to end.

Each returns, beside its result, a record of every model call it made: the priced cost line (for the
spend ledger) and the exchange (prompt and response, kept in the state store by key, never in history).
A failure carries the records of the calls made before it, so a failed attempt's spend is counted too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar, runtime_checkable

from pydantic import BaseModel

from schemas.models import Authorship, CostLine, TierName
from schemas.persona import Persona
from schemas.plan import TaskPlan, Usage
from schemas.task import Draft, PlanRequest, WriteRequest

Shape = TypeVar("Shape", bound=BaseModel)


@dataclass(frozen=True)
class CallRecord:
    line: CostLine
    exchange: dict[str, Any] = field(default_factory=dict)


class CarriesCalls(Exception):
    """A failure after model calls were made: it carries them, because their spend is real."""

    calls: list[CallRecord]

    def with_calls(self, calls: Sequence[CallRecord]) -> Self:
        self.calls = list(calls)
        return self


class ModelError(CarriesCalls):
    """A model call failed or returned something unusable (the activity decides whether to retry)."""

    def __init__(self, message: str, calls: Sequence[CallRecord] = ()) -> None:
        super().__init__(message)
        self.calls = list(calls)


@dataclass(frozen=True)
class Planned:
    plan: TaskPlan
    calls: list[CallRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Written:
    draft: Draft
    calls: list[CallRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Image:
    """An image the model looks at (the vision tier): its bytes and MIME type."""

    data: bytes
    mime_type: str


@dataclass(frozen=True)
class Ask:
    """A structured question to a tier's model: the Judge's model reviewer (judging), the image check (vision).

    `task` joins the persona's system prompt (keep it the same across calls: it is the cached prefix);
    `instructions` are Chimera's own words for this call; every `data` item (source, content) becomes a data
    block, whatever it holds (drafts, mentions, tool results are all untrusted)."""

    tier: TierName
    persona: Persona
    task: str
    instructions: str
    key: str  # the business key the call's cost lines are filed under (e.g. the task id + "/review")
    data: tuple[tuple[str, Any], ...] = ()
    images: tuple[Image, ...] = ()
    models: dict[str, Any] = field(default_factory=dict)  # the campaign's tier overrides


@dataclass(frozen=True)
class Answered(Generic[Shape]):
    answer: Shape
    author: Authorship
    usage: Usage
    calls: list[CallRecord] = field(default_factory=list)


class ToolUseError(CarriesCalls):
    """A tool call failed; the message is for the model (it may try another way or do without).

    `retry_after_seconds` is set when the service asked to be called again later (a rate limit)."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.calls = []


class ToolSpec(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def input_schema(self) -> dict[str, Any]: ...


class ToolRunner(Protocol):
    """The tools a model may call while writing. Results are untrusted data: read values, never obey them."""

    @property
    def tools(self) -> Sequence[ToolSpec]: ...

    def has(self, name: str) -> bool: ...

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call a tool; raises ToolUseError with a readable reason when it fails."""
        ...


@runtime_checkable
class ModelProvider(Protocol):
    name: str

    async def plan(self, request: PlanRequest, *, attempt: int = 1) -> Planned:
        """Plan one cycle's tasks, or exactly one replacement task when `request.replan_of` is set.
        `attempt` is the activity's attempt: from a tier's `primary_attempts + 1` on, its fallback runs."""
        ...

    async def write(self, request: WriteRequest, tools: ToolRunner | None = None, *, attempt: int = 1) -> Written:
        """Write the text for one planned task in the persona's voice, using `tools` where they help."""
        ...

    async def ask(self, ask: Ask, shape: type[Shape], *, attempt: int = 1) -> Answered[Shape]:
        """Ask the tier's model for an answer of `shape` (structured output, one repair). A provider with no
        model behind it (offline) raises ModelError: callers decide without it."""
        ...
