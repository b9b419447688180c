"""How a reviewed task ended, for `review show` of a finished task.

A finished task's `review` query still answers while a worker can replay it, and then carries the outcome the
workflow recorded (the post, or why not). Without a worker, the view is put together from what Temporal keeps
itself: the workflow's result (TaskOutcome), its search attributes and its input; the draft and the verdict
need the query, and the view says so.
"""

from __future__ import annotations

from typing import Any, get_args

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.exceptions import TemporalError

from chimera.control.connection import WORKER_HINT, completed_result
from schemas.review import OutcomeStatus, ReviewState, ReviewView
from schemas.task import ContentTaskInput, TaskOutcome
from workflows import search_attributes as sa

NO_WORKER_NOTE = (
    "no worker answered: how it ended is from the task's result and search attributes; the draft, deadline and "
    f"verdict need the task's query ({WORKER_HINT})"
)
# A task that did not complete by itself was ended from outside Temporal's way; named as TaskStatus where one fits.
CLOSED_AS: dict[WorkflowExecutionStatus, OutcomeStatus] = {
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.TIMED_OUT: "timed_out",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.FAILED: "failed",
}


def outcome_fields(outcome: TaskOutcome) -> dict[str, Any]:
    """The ReviewView fields a TaskOutcome fills."""
    return {
        "outcome_status": outcome.status,
        "outcome_reason": outcome.reason or None,
        "post_id": outcome.post_id,
        "post_url": outcome.url,
    }


async def with_outcome(
    view: ReviewView, handle: WorkflowHandle[Any, TaskOutcome], desc: WorkflowExecutionDescription
) -> ReviewView:
    """`view` of an ended task, with how it ended when the query did not say (a worker of an older build, or a
    task ended from outside: terminated, timed out)."""
    if view.outcome_status is not None:
        return view
    outcome = await completed_result(handle, desc)
    if outcome is not None:
        return view.model_copy(update=outcome_fields(outcome))
    status = CLOSED_AS.get(desc.status) if desc.status is not None else None
    if status is None:
        return view
    why = f"the task was {status.replace('_', ' ')} in Temporal before it finished"
    return view.model_copy(update={"outcome_status": status, "outcome_reason": why})


async def ended_view(
    client: Client, handle: WorkflowHandle[Any, TaskOutcome], desc: WorkflowExecutionDescription
) -> ReviewView:
    """An ended task's review without a worker: its input, search attributes and result."""
    attrs = desc.typed_search_attributes
    inp = await _task_input(client, handle)
    state = attrs.get(sa.REVIEW_STATE) or "none"
    outcome = await completed_result(handle, desc)
    view = ReviewView(
        task_id=desc.id,
        campaign_id=inp.ref.campaign_id if inp else attrs.get(sa.CAMPAIGN_ID) or "",
        platform=inp.task.platform if inp else attrs.get(sa.PLATFORM) or "",
        task_type=inp.task.task_type if inp else attrs.get(sa.TASK_TYPE) or "",
        brief=inp.task.brief if inp else "",
        text=(outcome.text or "") if outcome else "",
        state=state if state in get_args(ReviewState) else "none",
        deadline=None,
        verdict=None,
        mention=inp.task.mention if inp else None,
        note=NO_WORKER_NOTE,
    )
    return await with_outcome(view, handle, desc)


async def _task_input(client: Client, handle: WorkflowHandle[Any, TaskOutcome]) -> ContentTaskInput | None:
    """The input the task started with (its first history event); None when it cannot be read."""
    try:
        async for event in handle.fetch_history_events(page_size=1):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            [inp] = await client.data_converter.decode(list(payloads), [ContentTaskInput])
            return inp if isinstance(inp, ContentTaskInput) else None
    except (TemporalError, ValueError):  # gone past retention, or a payload this build cannot read
        return None
    return None
