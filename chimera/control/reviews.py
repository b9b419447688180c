"""The human review queue: the drafts the judge escalated, and the decisions on them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import get_args

from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)

from chimera.access.credentials import UserCredentials
from chimera.control import listing
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
from chimera.control.errors import InvalidRequest, NotFound
from chimera.control.listing import (
    CHECK_ERRORS,
    PAGE_SIZE,
    Page,
    bounded,
    check_failure,
    count,
    decode_token,
    encode_token,
    idle_task_queues,
    no_worker_message,
)
from chimera.control.review_outcome import ended_view, with_outcome
from chimera.control.signals import Recipient, build_request, default_actor, signal_and_wait, signed_in
from schemas.campaign import Platform
from schemas.plan import TaskType
from schemas.review import Ack, ReviewAction, ReviewDecision, ReviewView
from schemas.task import TaskOutcome
from workflows import search_attributes as sa
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


REVIEW_TOKEN = "r"
REVIEW_ORDER = (
    "lowest confidence first, across pages (visibility holds no safety flags, so confidence is the one risk "
    "signal it can order by; a draft with no recorded confidence comes first); with --check each page is "
    "re-sorted by the judge's full risk (safety flags first), then the earliest deadline"
)
WINDOW = 4  # a page reads about this many times its rows from visibility (more only for equal confidences)
MAX_BISECT = 14  # counts spent narrowing that window: confidence to within 2^-14


class ReviewRow(BaseModel):
    """One line of `chimera review list`: search attributes only, unless `checked`."""

    task_id: str
    tenant_id: str
    campaign_id: str
    agent_id: str
    platform: str
    task_type: str
    confidence: float | None = None
    started_at: datetime | None = None  # the task's start; it waits from its judging on, moments later
    task_queue: str = ""
    note: str | None = None  # what the row could not establish, or what --check found
    checked: bool = False  # --check read the task's `review` query
    check_error: str | None = None  # why --check could not
    review: ReviewView | None = None  # --check: brief, draft, deadline, verdict (flags, risk)


class _Cursor(BaseModel):
    """Where a page ended, in the listing's order: (confidence, task id) of its last row."""

    offset: int = Field(0, ge=0)
    confidence: float | None  # None: still among the drafts without a recorded confidence
    task_id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,250}$")  # it goes into a query: no quotes


def pending_query(
    tenant: str | None = None,
    campaign: str | None = None,
    *,
    platform: str | None = None,
    task_type: str | None = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
) -> str:
    """The visibility query of the pending reviews; `campaign` is a campaign id or TENANT/CAMPAIGN, the
    confidence range is inclusive. Every value is checked before it goes into the query (`InvalidRequest`)."""
    query = "WorkflowType = 'ContentTaskWorkflow' AND ReviewState = 'pending' AND ExecutionStatus = 'Running'"
    if campaign and "/" in campaign:
        campaign_tenant, _, campaign = campaign.partition("/")
        query += f" AND TenantId = '{slug(campaign_tenant, 'tenant')}'"
    if tenant:
        query += f" AND TenantId = '{slug(tenant, 'tenant')}'"
    if campaign:
        query += f" AND CampaignId = '{slug(campaign, 'campaign')}'"
    if platform:
        query += f" AND Platform = '{_one_of(platform, get_args(Platform), 'platform')}'"
    if task_type:
        query += f" AND TaskType = '{_one_of(task_type, get_args(TaskType), 'task type')}'"
    for bound, op, name in ((min_confidence, ">=", "minimum"), (max_confidence, "<=", "maximum")):
        if bound is not None:
            if not 0.0 <= bound <= 1.0:
                raise InvalidRequest(f"the {name} confidence {bound:g} is not within 0-1")
            query += f" AND Confidence {op} {float(bound)!r}"
    if min_confidence is not None and max_confidence is not None and min_confidence > max_confidence:
        raise InvalidRequest(f"the confidence range {min_confidence:g}-{max_confidence:g} is empty (min > max)")
    return query


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    value = value.strip()
    if value not in allowed:
        raise InvalidRequest(f"unknown {what} '{value}'; one of: {', '.join(allowed)}")
    return value


async def list_reviews(
    client: Client,
    tenant: str | None = None,
    campaign: str | None = None,
    *,
    limit: int | None = PAGE_SIZE,
    page: str | None = None,
    check: bool = False,
) -> Page[ReviewRow]:
    """One page of pending reviews (all of them when `limit` is None), lowest confidence first.

    From search attributes only: no worker needed. Visibility cannot sort, so a page is found by
    counting: the rows after the cursor whose confidence is at most x, with x narrowed until about
    WINDOW pages' worth remain; those are read and sorted. With `check`, each row's `review` query
    adds the draft, deadline and verdict (bounded concurrency, short timeouts).
    """
    if limit is not None and limit < 1:
        raise InvalidRequest("a page holds at least 1 row")
    base = pending_query(tenant, campaign)
    cursor = decode_token(REVIEW_TOKEN, page, "review list", _Cursor.model_validate_json) if page else None
    if limit is None:
        rows = sorted((review_row(e) for e in await list_executions(client, base)), key=queue_order)
        total, more = len(rows), False
    else:
        (rows, more), total = await asyncio.gather(_lowest(client, base, cursor, limit), count(client, base))
    offset = cursor.offset if cursor else 0
    next_page = None
    if more and rows:  # the cursor is the last row in visibility order, before --check re-sorts the page
        last = rows[-1]
        after = _Cursor(offset=offset + len(rows), confidence=last.confidence, task_id=last.task_id)
        next_page = encode_token(REVIEW_TOKEN, after.model_dump_json().encode())
    if check:
        rows = sorted(await _check_reviews(client, rows), key=_risk_order)
    return Page[ReviewRow](rows=rows, offset=offset, next_page=next_page, total=total, order=REVIEW_ORDER)


def review_row(execution: WorkflowExecution) -> ReviewRow:
    """A row from the search attributes of a task's visibility row or description."""
    attrs = execution.typed_search_attributes
    confidence = attrs.get(sa.CONFIDENCE)
    return ReviewRow(
        task_id=execution.id,
        tenant_id=attrs.get(sa.TENANT_ID) or "",
        campaign_id=attrs.get(sa.CAMPAIGN_ID) or "",
        agent_id=attrs.get(sa.AGENT_ID) or "",
        platform=attrs.get(sa.PLATFORM) or "",
        task_type=attrs.get(sa.TASK_TYPE) or "",
        confidence=confidence,
        started_at=execution.start_time,
        task_queue=execution.task_queue,
        note=None if confidence is not None else "confidence not recorded; `--check` reads the verdict",
    )


def queue_order(row: ReviewRow) -> tuple[bool, float, str]:
    """The queue's order: drafts without a recorded confidence first, then lowest confidence, then task id."""
    return (row.confidence is not None, row.confidence or 0.0, row.task_id)


async def _lowest(client: Client, base: str, cursor: _Cursor | None, need: int) -> tuple[list[ReviewRow], bool]:
    """The `need` rows after `cursor` in (confidence, task id) order, and whether more follow."""
    rows: list[ReviewRow] = []
    if cursor is None or cursor.confidence is None:  # drafts without a confidence first (none, normally)
        after = f" AND WorkflowId > '{cursor.task_id}'" if cursor else ""
        unscored = await list_executions(client, f"{base} AND Confidence IS NULL{after}")
        rows = sorted((review_row(e) for e in unscored), key=queue_order)
        if len(rows) > need:
            return rows[:need], True
        scored, lo = f"{base} AND Confidence IS NOT NULL", 0.0
    else:
        c, w = repr(cursor.confidence), cursor.task_id
        scored, lo = f"{base} AND (Confidence > {c} OR (Confidence = {c} AND WorkflowId > '{w}'))", cursor.confidence
    remaining = await count(client, scored)
    want = need - len(rows)
    if want == 0 or remaining == 0:
        return rows, remaining > 0
    window = await _window(client, scored, remaining, want, lo)
    found = sorted((review_row(e) for e in await list_executions(client, window)), key=queue_order)[:want]
    return rows + found, remaining > len(found)


async def _window(client: Client, scored: str, remaining: int, want: int, lo: float) -> str:
    """`scored` narrowed to its lowest confidences: at least `want` rows, and about WINDOW * want."""
    if remaining <= WINDOW * want:
        return scored
    hi, bound = 1.0, None  # confidence is within [0, 1]
    for _ in range(MAX_BISECT):
        mid = (lo + hi) / 2
        n = await count(client, f"{scored} AND Confidence <= {mid!r}")
        if n < want:
            lo = mid
            continue
        hi = bound = mid
        if n <= WINDOW * want:
            break
    return scored if bound is None else f"{scored} AND Confidence <= {bound!r}"


async def _check_reviews(client: Client, rows: list[ReviewRow]) -> list[ReviewRow]:
    idle = await idle_task_queues(client, {r.task_queue for r in rows})

    async def check(row: ReviewRow) -> ReviewRow:
        if row.task_queue in idle:
            return row.model_copy(update={"check_error": no_worker_message(row.task_queue, "planner")})
        handle = client.get_workflow_handle_for(ContentTaskWorkflow.run, row.task_id)
        timeout = listing.CHECK_TIMEOUT
        try:
            view = await handle.query(ContentTaskWorkflow.review, rpc_timeout=timedelta(seconds=timeout))
        except CHECK_ERRORS as exc:
            return row.model_copy(update={"check_error": check_failure(exc, timeout)})
        update: dict[str, object] = {"review": view, "checked": True, "note": None}
        if view.state != "pending":
            update["note"] = f"no longer pending: {view.state} (visibility had not caught up yet)"
        if row.confidence is None and view.verdict is not None:
            update["confidence"] = view.verdict.confidence
        return row.model_copy(update=update)

    return await bounded(rows, check)


def _risk_order(row: ReviewRow) -> tuple[float, float]:
    """review_order for a checked row; a row --check could not read counts by its confidence alone."""
    if row.review is not None:
        return review_order(row.review)
    return (-(1.0 - row.confidence) if row.confidence is not None else -1.0, float("inf"))


async def _task(client: Client, task_id: str) -> tuple[TaskHandle, WorkflowExecutionDescription]:
    task_id = task_id.strip()
    desc = await describe(client, task_id) if task_id else None
    if desc is None or desc.workflow_type != "ContentTaskWorkflow":
        raise NotFound(f"unknown task '{task_id}'; `chimera review list` shows pending reviews")
    return client.get_workflow_handle_for(ContentTaskWorkflow.run, desc.id), desc


async def show_review(client: Client, task_id: str) -> ReviewView:
    """The task's `review` query; for an ended task also how it ended (the post, or why not), from its result
    when no worker can replay it to answer."""
    handle, desc = await _task(client, task_id)
    if desc.status == WorkflowExecutionStatus.RUNNING:
        return await answer(lambda timeout: handle.query(ContentTaskWorkflow.review, rpc_timeout=timeout), task_id)
    view = None
    if desc.task_queue not in await idle_task_queues(client, {desc.task_queue}):  # else the query only times out
        view = await or_none(handle.query(ContentTaskWorkflow.review, rpc_timeout=query_timeout()))
    if view is None:
        return await ended_view(client, handle, desc)
    return await with_outcome(view, handle, desc)


def review_decision(
    action: ReviewAction, reviewer: str | None, reason: str | None, text: str | None = None, override: bool = False
) -> ReviewDecision:
    """A validated decision; `InvalidRequest` when a rejection has no reason, an edit no text, or an override
    no reason."""
    return build_request(
        ReviewDecision,
        action=action,
        reviewer=reviewer or default_actor(),
        reason=reason or "",
        text=text,
        override=override,
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
    credentials: UserCredentials | None = None,
) -> Ack:
    """Approve, edit or reject a pending review; a refusal (already decided, campaign stopped, not allowed) is
    a refused Ack."""
    decision = review_decision(action, reviewer, reason, text)  # before any RPC: nothing half-sent
    return await send_review_decision(client, task_id, decision, ack_timeout=ack_timeout, credentials=credentials)


async def send_review_decision(
    client: Client,
    task_id: str,
    decision: ReviewDecision,
    *,
    ack_timeout: float | None = None,
    credentials: UserCredentials | None = None,
) -> Ack:
    """Sign the decision as the user (default: the CLI's credentials), send it and wait for the task's ack."""
    creds = credentials or signed_in()
    handle, desc = await _task(client, task_id)
    decision = creds.sign(decision, decision.access_action, desc.id)
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
