"""The human review queue: the drafts the judge escalated, and the decisions on them."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from chimera.control.connection import (
    answer,
    completed_result,
    describe,
    list_executions,
    or_none,
    query_timeout,
    slug,
    status_name,
)
from chimera.control.errors import ControlError, NotConfirmed, NotFound
from chimera.control.signals import Recipient, build_request, default_actor, signal_and_wait
from schemas.review import Ack, ReviewAction, ReviewDecision, ReviewView
from schemas.task import TaskOutcome
from workflows.content_task import ContentTaskWorkflow

TaskHandle = WorkflowHandle[ContentTaskWorkflow, TaskOutcome]
_DECIDED = ("approved", "edited", "rejected")


def review_order(view: ReviewView) -> tuple[float, float]:
    """Riskiest first, then the earliest deadline."""
    risk = view.verdict.risk if view.verdict else 0.0
    try:
        due = datetime.fromisoformat(view.deadline).timestamp() if view.deadline else float("inf")
    except ValueError:
        due = float("inf")
    return (-risk, due)


async def list_reviews(client: Client, tenant: str | None = None) -> list[ReviewView]:
    """Pending reviews, riskiest first. Visibility may lag about a second behind a decision or escalation."""
    query = "WorkflowType = 'ContentTaskWorkflow' AND ReviewState = 'pending' AND ExecutionStatus = 'Running'"
    if tenant:
        query += f" AND TenantId = '{slug(tenant, 'tenant')}'"
    executions = await list_executions(client, query)
    views = await asyncio.gather(*(_pending_view(client, e.id) for e in executions))
    # The review query is authoritative: drop rows visibility has not caught up on.
    return sorted((v for v in views if v is not None and v.state == "pending"), key=review_order)


async def _pending_view(client: Client, task_id: str) -> ReviewView | None:
    handle = client.get_workflow_handle_for(ContentTaskWorkflow.run, task_id)
    try:
        return await answer(lambda timeout: handle.query(ContentTaskWorkflow.review, rpc_timeout=timeout), task_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    except NotConfirmed:
        raise
    except ControlError:
        return None  # ended or replaced between the listing and the query


async def _task(client: Client, task_id: str) -> tuple[TaskHandle, WorkflowExecutionDescription]:
    task_id = task_id.strip()
    desc = await describe(client, task_id) if task_id else None
    if desc is None or desc.workflow_type != "ContentTaskWorkflow":
        raise NotFound(f"unknown task '{task_id}'; `chimera review list` shows pending reviews")
    return client.get_workflow_handle_for(ContentTaskWorkflow.run, desc.id), desc


async def show_review(client: Client, task_id: str) -> ReviewView:
    handle, _ = await _task(client, task_id)
    return await answer(lambda timeout: handle.query(ContentTaskWorkflow.review, rpc_timeout=timeout), task_id)


def review_decision(
    action: ReviewAction, reviewer: str | None, reason: str | None, text: str | None = None
) -> ReviewDecision:
    """A validated decision; `InvalidRequest` when a rejection has no reason or an edit no text."""
    return build_request(
        ReviewDecision, action=action, reviewer=reviewer or default_actor(), reason=reason or "", text=text
    )


async def decide_review(
    client: Client,
    task_id: str,
    action: ReviewAction,
    reviewer: str | None,
    reason: str | None,
    text: str | None = None,
    *,
    ack_timeout: float | None = None,
) -> Ack:
    """Approve, edit or reject a pending review; a refusal (already decided, campaign stopped) is a refused Ack."""
    decision = review_decision(action, reviewer, reason, text)  # before any RPC: nothing half-sent
    return await send_review_decision(client, task_id, decision, ack_timeout=ack_timeout)


async def send_review_decision(
    client: Client, task_id: str, decision: ReviewDecision, *, ack_timeout: float | None = None
) -> Ack:
    handle, desc = await _task(client, task_id)
    to = Recipient(handle, desc, f"task {desc.id}", lambda d: _task_ended(handle, d))
    return await signal_and_wait(to, ContentTaskWorkflow.decide, decision, ContentTaskWorkflow.ack, ack_timeout)


async def _task_ended(handle: TaskHandle, desc: WorkflowExecutionDescription) -> str:
    how = status_name(desc.status)
    outcome = await completed_result(handle, desc)
    if outcome is not None:
        how = outcome.status + (f": {outcome.reason}" if outcome.reason else "")
        how += f", post {outcome.post_id}" if outcome.post_id else ""
    ended = f"task {desc.id} has ended ({how})"
    # Name the decision when a worker can still replay the task to answer (nice to have, not required).
    view = await or_none(handle.query(ContentTaskWorkflow.review, rpc_timeout=query_timeout(3.0)))
    if view is not None and view.state in _DECIDED:
        return f"already decided: {view.state} by {view.reviewer or 'a reviewer'}; {ended}"
    return ended
