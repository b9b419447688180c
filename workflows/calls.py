"""How workflows start activities: by name, with the options temporal.yaml gave for that name."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType, ActivityHandle

with workflow.unsafe.imports_passed_through():
    from schemas.options import RuntimeOptions

T = TypeVar("T")
Role = Literal["planner", "worker", "judge"]


def activity_kwargs(runtime: RuntimeOptions, name: str, role: Role) -> dict[str, Any]:
    opts = runtime.activity(name)
    retry = opts.retry
    kwargs: dict[str, Any] = {
        "task_queue": getattr(runtime.task_queues, role),
        "start_to_close_timeout": timedelta(seconds=opts.start_to_close_seconds),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=retry.initial_interval_seconds),
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval=timedelta(seconds=retry.maximum_interval_seconds),
            maximum_attempts=retry.maximum_attempts,
            non_retryable_error_types=list(retry.non_retryable_error_types),
        ),
    }
    if opts.heartbeat_seconds:
        kwargs["heartbeat_timeout"] = timedelta(seconds=opts.heartbeat_seconds)
    return kwargs


async def run_activity(
    runtime: RuntimeOptions, name: str, role: Role, arg: Any, result_type: type[T], summary: str
) -> T:
    result: T = await workflow.execute_activity(
        name, arg, result_type=result_type, summary=summary[:200], **activity_kwargs(runtime, name, role)
    )
    return result


def start_activity(
    runtime: RuntimeOptions, name: str, role: Role, arg: Any, result_type: type[T], summary: str
) -> ActivityHandle[T]:
    """Start an activity that may be abandoned (emergency stop): TRY_CANCEL does not wait for it."""
    handle: ActivityHandle[T] = workflow.start_activity(
        name,
        arg,
        result_type=result_type,
        summary=summary[:200],
        cancellation_type=ActivityCancellationType.TRY_CANCEL,
        **activity_kwargs(runtime, name, role),
    )
    return handle
