"""Temporal-side options resolved from temporal.yaml at start time and carried in workflow input.

Workflows cannot read files, so whoever starts a campaign resolves these once; they then travel
with the campaign (and through continue-as-new) unchanged.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RetrySpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    initial_interval_seconds: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval_seconds: float = 60.0
    maximum_attempts: int = 5
    # Which failures never retry is not an option: schemas/activity_table.py declares it per activity.
    # (Inputs recorded before that still carry `non_retryable_error_types`; it is ignored.)


class ActivityOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    start_to_close_seconds: float = 60.0
    heartbeat_seconds: float | None = None
    retry: RetrySpec = RetrySpec()


class TaskQueues(BaseModel):
    model_config = ConfigDict(frozen=True)

    planner: str = "chimera-planner"
    worker: str = "chimera-worker"
    judge: str = "chimera-judge"


class RuntimeOptions(BaseModel):
    """Keyed by the names in schemas/activity_table.py (temporal.yaml is checked against it)."""

    model_config = ConfigDict(frozen=True)

    task_queues: TaskQueues = TaskQueues()
    activities: dict[str, ActivityOptions] = Field(default_factory=dict)
    # The Java time-skipping test server stops skipping time once a child workflow carries user
    # metadata (static summary/details); its tests turn them off. Real servers keep them on.
    child_summaries: bool = True

    def activity(self, name: str) -> ActivityOptions:
        return self.activities.get(name, ActivityOptions())
