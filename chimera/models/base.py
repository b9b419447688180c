"""What Chimera needs from a model: a Planner call and a Worker call, both typed end to end."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from schemas.plan import TaskPlan
from schemas.task import Draft, PlanRequest, WriteRequest


class ModelError(Exception):
    """A model call failed or returned something unusable (the activity decides whether to retry)."""


@runtime_checkable
class ModelProvider(Protocol):
    name: str

    async def plan(self, request: PlanRequest) -> TaskPlan:
        """Plan one cycle's tasks, or exactly one replacement task when `request.replan_of` is set."""
        ...

    async def write(self, request: WriteRequest) -> Draft:
        """Write the text for one planned task in the persona's voice."""
        ...
