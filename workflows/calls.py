"""How workflows call activities: through their entry in the activity table, with temporal.yaml's options.

`await run_activity(Activities.plan, request, runtime, "plan")` names the entry, so a reader can jump to
it and mypy checks the argument and the result; the queue comes from the entry's role, the timeouts and
retry counts from temporal.yaml (carried in `runtime`), and the failures that never retry from the entry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityCancellationType, ActivityHandle

with workflow.unsafe.imports_passed_through():
    from schemas.activity_table import ActivityDef
    from schemas.options import RuntimeOptions

In = TypeVar("In")
Out = TypeVar("Out")


def activity_options(runtime: RuntimeOptions, entry: ActivityDef[Any, Any]) -> dict[str, Any]:
    opts = runtime.activity(entry.name)
    retry = opts.retry
    kwargs: dict[str, Any] = {
        "task_queue": getattr(runtime.task_queues, entry.role),
        "start_to_close_timeout": timedelta(seconds=opts.start_to_close_seconds),
        "retry_policy": RetryPolicy(
            initial_interval=timedelta(seconds=retry.initial_interval_seconds),
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval=timedelta(seconds=retry.maximum_interval_seconds),
            maximum_attempts=retry.maximum_attempts,
            non_retryable_error_types=sorted(entry.never_retry),
        ),
    }
    if opts.heartbeat_seconds:
        kwargs["heartbeat_timeout"] = timedelta(seconds=opts.heartbeat_seconds)
    return kwargs


async def run_activity(entry: ActivityDef[In, Out], arg: In, runtime: RuntimeOptions, summary: str) -> Out:
    result: Out = await workflow.execute_activity(
        entry.name, arg, result_type=entry.result, summary=summary[:200], **activity_options(runtime, entry)
    )
    return result


def start_activity(entry: ActivityDef[In, Out], arg: In, runtime: RuntimeOptions, summary: str) -> ActivityHandle[Out]:
    """Start an activity that may be abandoned (emergency stop): TRY_CANCEL does not wait for it."""
    handle: ActivityHandle[Out] = workflow.start_activity(
        entry.name,
        arg,
        result_type=entry.result,
        summary=summary[:200],
        cancellation_type=ActivityCancellationType.TRY_CANCEL,
        **activity_options(runtime, entry),
    )
    return handle


def failure_message(err: ActivityError) -> str:
    """What an activity that gave up said (its ApplicationError's message, else the cause)."""
    cause = err.cause
    return str(cause.message if isinstance(cause, ApplicationError) else cause or err)


def failure_type(err: ActivityError) -> str | None:
    """The activity failure's type (schemas.activity_table.Failure), when it raised one."""
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None
