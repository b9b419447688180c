"""What Chimera needs from a model: a Planner call and a Worker call, both typed end to end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from schemas.plan import TaskPlan
from schemas.task import Draft, PlanRequest, WriteRequest


class ModelError(Exception):
    """A model call failed or returned something unusable (the activity decides whether to retry)."""


class ToolUseError(Exception):
    """A tool call failed; the message is for the model (it may try another way or do without).

    `retry_after_seconds` is set when the service asked to be called again later (a rate limit)."""

    def __init__(self, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


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

    async def plan(self, request: PlanRequest) -> TaskPlan:
        """Plan one cycle's tasks, or exactly one replacement task when `request.replan_of` is set."""
        ...

    async def write(self, request: WriteRequest, tools: ToolRunner | None = None) -> Draft:
        """Write the text for one planned task in the persona's voice, using `tools` where they help."""
        ...
