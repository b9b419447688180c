"""Campaign-manager operations on Temporal: start, list, status, control signals and human reviews.

Nothing here prints: the CLI (chimera/cli) and the demo call these and present the results.

Signals never fail inside a workflow. Each one records an `Ack` under the sender's request id, so
every change here sends a signal, then polls the workflow's `ack` query until it has answered. A
workflow that has ended cannot take signals at all: that is reported as `Refused`, with how it ended.

Visibility (list queries on search attributes) is eventually consistent: a campaign just started or a
review just escalated may show up a second late, and one just decided may linger as long. The queries
of each workflow are authoritative, so listings re-check every row with them.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from chimera.campaign_file import load_campaign
from chimera.durations import format_duration
from chimera.temporal_config import TemporalConfig, connect
from schemas.campaign import CampaignSpec, campaign_workflow_id
from schemas.campaign_run import CampaignInput
from schemas.events import BudgetChange, CampaignState, CampaignStatus, ControlRequest, EmergencyStop, GoalsChange
from schemas.review import Ack, AckQuery, ReviewAction, ReviewDecision, ReviewView
from schemas.task import TaskOutcome
from workflows import search_attributes as sa
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

ACK_TIMEOUT = 15.0  # seconds to wait for a workflow to acknowledge a signal
ACK_POLL_INTERVAL = 0.2
QUERY_TIMEOUT = 10.0  # a query waits for a worker; without one it would hang until the RPC deadline
WORKER_HINT = "is a worker running? `chimera worker --role all`"

CampaignSignal = Literal["pause", "resume", "set_budget", "set_goals", "emergency_stop"]
_RUNNING = WorkflowExecutionStatus.RUNNING
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # also keeps visibility queries free of quotes
_DECIDED = ("approved", "edited", "rejected")
# A query nobody answers: the dev server reports the client's deadline as CANCELLED, the test server
# as DEADLINE_EXCEEDED.
_NO_ANSWER = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)

# --- errors ------------------------------------------------------------------------------------


class ControlError(Exception):
    """An operation could not be done; the message says why, in words for a campaign manager."""


class NotFound(ControlError):
    """No campaign or task by that reference."""


class Refused(ControlError):
    """The campaign or task has ended and takes no more requests."""


class NotConfirmed(ControlError):
    """Temporal has the request but no worker answered in time (usually: no worker running)."""


class CampaignExists(ControlError):
    """A campaign id is used once: its workflow id already exists, running or closed."""


class InvalidRequest(ControlError, ValueError):
    """The request is malformed (e.g. a rejection without a reason); nothing was sent."""


class Unreachable(ControlError):
    """The Temporal server cannot be reached."""


# --- connecting and small helpers ----------------------------------------------------------------


async def open_client(config: TemporalConfig, *, address: str | None = None) -> Client:
    """connect(), with an unreachable server reported as `Unreachable`."""
    try:
        return await connect(config, address=address)
    except RuntimeError as exc:  # the core bridge reports connection failures as RuntimeError
        target = address or config.connection()[0]
        raise Unreachable(f"cannot reach Temporal at {target}: is `chimera dev` running?") from exc


def default_actor() -> str:
    """Who is asking, for the audit log: $CHIMERA_ACTOR, else the OS user."""
    actor = os.environ.get("CHIMERA_ACTOR", "").strip()
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def new_request_id() -> str:
    return str(uuid.uuid4())


def build_request(model: type[M], **fields: Any) -> M:
    """Validate a signal payload before anything is sent; errors become `InvalidRequest`."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message = str(err["msg"]).removeprefix("Value error, ")
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}: {message}" if where else message)
        raise InvalidRequest("; ".join(problems)) from exc


def status_name(status: WorkflowExecutionStatus | None) -> str:
    return status.name.lower() if status is not None else "unknown"


async def _answer(ask: Callable[[], Awaitable[T]], what: str) -> T:
    """Run a query, turning a missing worker into `NotConfirmed` and a refused query into `ControlError`."""
    try:
        return await ask()
    except RPCError as exc:
        if exc.status in _NO_ANSWER:
            raise NotConfirmed(f"{what} did not answer within {QUERY_TIMEOUT:g}s: {WORKER_HINT}") from exc
        raise
    except WorkflowQueryFailedError as exc:
        raise ControlError(f"{what} could not answer: {exc}") from exc


def _query_timeout(seconds: float | None = None) -> timedelta:
    return timedelta(seconds=QUERY_TIMEOUT if seconds is None else seconds)


async def _describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            return None
        raise


async def _list(client: Client, query: str) -> list[WorkflowExecution]:
    try:
        return [execution async for execution in client.list_workflows(query)]
    except RPCError as exc:
        if exc.status == RPCStatusCode.UNIMPLEMENTED:
            raise ControlError(
                "this Temporal server cannot list workflows (the time-skipping test server has no visibility)"
            ) from exc
        raise


def _slug(value: str, what: str) -> str:
    value = value.strip()
    if not _SLUG.match(value):
        raise InvalidRequest(f"{what} '{value}' is not a valid id: lowercase letters, digits and dashes")
    return value


# --- starting ------------------------------------------------------------------------------------


class FileSets(NamedTuple):
    """Which temporal.yaml defaults a campaign file overrides itself."""

    judge: bool
    deadline: bool


def file_sets(path: Path) -> FileSets:
    """Whether the file writes `judge` and `review.deadline` (the spec cannot tell a default from a choice)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        return FileSets(judge=False, deadline=False)
    review = raw.get("review")
    return FileSets(judge="judge" in raw, deadline=isinstance(review, dict) and "deadline" in review)


def campaign_input(
    spec: CampaignSpec,
    config: TemporalConfig,
    *,
    max_cycles: int | None = None,
    file_sets_judge: bool = False,
    file_sets_deadline: bool = False,
    child_summaries: bool = True,
) -> CampaignInput:
    """The workflow input: temporal.yaml's judge policy and review deadline fill what the file left out."""
    update: dict[str, Any] = {}
    if not file_sets_judge:
        update["judge"] = config.judge
    if not file_sets_deadline:
        update["review_deadline_seconds"] = config.review_deadline_seconds
    runtime = config.runtime_options().model_copy(update={"child_summaries": child_summaries})
    return CampaignInput(spec=spec.model_copy(update=update), runtime=runtime, max_cycles=max_cycles)


def campaign_summary(spec: CampaignSpec) -> str:
    return f"{spec.name} · {spec.persona.name}"[:200]


def campaign_details(spec: CampaignSpec) -> str:
    """Markdown for the Web UI's workflow page."""
    lines = [
        f"### {spec.name}",
        f"**Tenant:** {spec.tenant_id} · **Campaign:** {spec.campaign_id} · "
        f"**Persona:** {spec.persona.name} ({spec.persona.id})",
        "**Goals:**\n" + "\n".join(f"- {goal}" for goal in spec.goals),
        "**Platforms:** " + ", ".join(spec.platforms),
        f"**Budget:** ${spec.daily_budget_usd:.2f} a day ({spec.timezone})",
        f"**Schedule:** a cycle every {format_duration(spec.cycle_interval_seconds)}, "
        f"up to {spec.max_tasks_per_cycle} tasks a cycle, {spec.max_replans} re-plans a task; "
        f"reviews expire after {format_duration(spec.review_deadline_seconds)}",
    ]
    return "\n\n".join(lines)


async def start_campaign(
    client: Client,
    config: TemporalConfig,
    spec: CampaignSpec,
    *,
    max_cycles: int | None = None,
    file_sets_judge: bool = False,
    file_sets_deadline: bool = False,
    child_summaries: bool = True,
) -> WorkflowHandle[CampaignWorkflow, CampaignStatus]:
    """Start the campaign's workflow; `CampaignExists` if its id was ever used (ids are not reused)."""
    inp = campaign_input(
        spec,
        config,
        max_cycles=max_cycles,
        file_sets_judge=file_sets_judge,
        file_sets_deadline=file_sets_deadline,
        child_summaries=child_summaries,
    )
    try:
        return await client.start_workflow(
            CampaignWorkflow.run,
            inp,
            id=spec.workflow_id,
            task_queue=inp.runtime.task_queues.planner,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.TENANT_ID, spec.tenant_id),
                    SearchAttributePair(sa.AGENT_ID, spec.agent_id),
                    SearchAttributePair(sa.CAMPAIGN_ID, spec.campaign_id),
                ]
            ),
            static_summary=campaign_summary(inp.spec),
            static_details=campaign_details(inp.spec),
        )
    except WorkflowAlreadyStartedError as exc:
        desc = await _describe(client, spec.workflow_id)
        state = status_name(desc.status) if desc else "closed"
        since = f" since {desc.start_time:%Y-%m-%d %H:%M} UTC" if desc and desc.start_time else ""
        raise CampaignExists(
            f"campaign {spec.tenant_id}/{spec.campaign_id} already exists ({state}{since}, workflow "
            f"{spec.workflow_id}): a campaign id is used once; give the campaign file a new `id`"
        ) from exc


async def start_campaign_file(
    client: Client, config: TemporalConfig, path: Path, *, max_cycles: int | None = None
) -> WorkflowHandle[CampaignWorkflow, CampaignStatus]:
    """Load a campaign file (raises CampaignFileError listing its problems) and start it."""
    spec = load_campaign(path)
    sets = file_sets(path)
    return await start_campaign(
        client, config, spec, max_cycles=max_cycles, file_sets_judge=sets.judge, file_sets_deadline=sets.deadline
    )


# --- finding and reading campaigns ----------------------------------------------------------------


class CampaignRow(BaseModel):
    """One line of `chimera campaign list`."""

    workflow_id: str
    campaign_id: str
    tenant_id: str
    agent_id: str
    status: str  # the workflow's: running, completed, terminated, failed, ...
    started_at: datetime | None = None
    state: CampaignState | None = None  # the campaign's own, when it could be read
    cycle: int | None = None
    pending_reviews: int | None = None
    stop_reason: str | None = None


CampaignHandle = WorkflowHandle[CampaignWorkflow, CampaignStatus]


async def list_campaigns(client: Client) -> list[CampaignRow]:
    """Every campaign (latest run of each), with its live state when a worker answers."""
    seen: set[str] = set()
    latest: list[WorkflowExecution] = []
    for execution in await _list(client, "WorkflowType = 'CampaignWorkflow'"):
        # Each continue-as-new leaves a closed run behind; the live one is the one that did not.
        if execution.status == WorkflowExecutionStatus.CONTINUED_AS_NEW or execution.id in seen:
            continue
        seen.add(execution.id)
        latest.append(execution)
    rows = await asyncio.gather(*(_campaign_row(client, execution) for execution in latest))
    return sorted(rows, key=lambda r: (r.status != "running", r.tenant_id, r.campaign_id))


async def _campaign_row(client: Client, execution: WorkflowExecution) -> CampaignRow:
    attrs = execution.typed_search_attributes
    row = CampaignRow(
        workflow_id=execution.id,
        campaign_id=attrs.get(sa.CAMPAIGN_ID) or "",
        tenant_id=attrs.get(sa.TENANT_ID) or "",
        agent_id=attrs.get(sa.AGENT_ID) or "",
        status=status_name(execution.status),
        started_at=execution.start_time,
    )
    handle = client.get_workflow_handle_for(CampaignWorkflow.run, execution.id)
    try:
        if execution.status == _RUNNING:
            st = await handle.query(CampaignWorkflow.status, rpc_timeout=_query_timeout(min(5.0, QUERY_TIMEOUT)))
        elif execution.status == WorkflowExecutionStatus.COMPLETED:
            st = await handle.result(rpc_timeout=_query_timeout())
        else:
            return row
    except (RPCError, WorkflowQueryFailedError, WorkflowFailureError):
        return row  # no worker, or a run that ended badly: the workflow status still says something
    return row.model_copy(
        update={
            "state": st.state,
            "cycle": st.cycle,
            "pending_reviews": len(st.pending_reviews),
            "stop_reason": st.stop_reason,
        }
    )


async def resolve_campaign(client: Client, ref: str) -> tuple[CampaignHandle, WorkflowExecutionDescription]:
    """`ref` is a workflow id, `tenant/campaign`, or a campaign id that only one tenant uses."""
    ref = ref.strip()
    if "/" in ref:
        tenant, _, campaign = ref.partition("/")
        workflow_id = campaign_workflow_id(tenant.strip(), campaign.strip())
        desc = await _describe(client, workflow_id)
        if desc is None or desc.workflow_type != "CampaignWorkflow":
            raise NotFound(f"unknown campaign '{ref}' (no workflow {workflow_id}); `chimera campaign list` shows them")
    else:
        desc = await _describe(client, ref) if ref else None
        if desc is None or desc.workflow_type != "CampaignWorkflow":
            desc = await _describe(client, await _find_campaign_id(client, ref))
            if desc is None:
                raise NotFound(f"unknown campaign '{ref}'; `chimera campaign list` shows them")
    return client.get_workflow_handle_for(CampaignWorkflow.run, desc.id), desc


async def _find_campaign_id(client: Client, campaign_id: str) -> str:
    if not _SLUG.match(campaign_id):
        raise NotFound(f"unknown campaign '{campaign_id}'; `chimera campaign list` shows them")
    executions = await _list(client, f"WorkflowType = 'CampaignWorkflow' AND CampaignId = '{campaign_id}'")
    ids = sorted({e.id for e in executions})
    if not ids:
        raise NotFound(f"unknown campaign '{campaign_id}'; `chimera campaign list` shows them")
    if len(ids) > 1:
        tenants = sorted({e.typed_search_attributes.get(sa.TENANT_ID) or "?" for e in executions})
        raise NotFound(
            f"campaign id '{campaign_id}' is used by several tenants ({', '.join(tenants)}): write TENANT/CAMPAIGN"
        )
    return ids[0]


def campaign_name(desc: WorkflowExecutionDescription) -> str:
    attrs = desc.typed_search_attributes
    tenant, campaign = attrs.get(sa.TENANT_ID), attrs.get(sa.CAMPAIGN_ID)
    return f"{tenant}/{campaign}" if tenant and campaign else desc.id


async def campaign_status(client: Client, campaign_ref: str) -> CampaignStatus:
    """The campaign's status query (its final status once completed)."""
    handle, desc = await resolve_campaign(client, campaign_ref)
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result(rpc_timeout=_query_timeout())
    return await _answer(
        lambda: handle.query(CampaignWorkflow.status, rpc_timeout=_query_timeout()), f"campaign {campaign_name(desc)}"
    )


async def _campaign_ended(handle: CampaignHandle, desc: WorkflowExecutionDescription) -> str:
    how = status_name(desc.status)
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        with_result = await _try(handle.result(rpc_timeout=_query_timeout()))
        if with_result is not None:
            how = with_result.state + (f": {with_result.stop_reason}" if with_result.stop_reason else "")
    return f"campaign {campaign_name(desc)} has ended ({how}); it takes no more changes"


async def _try(awaitable: Awaitable[T]) -> T | None:
    """Extra detail for a message: any failure just leaves it out."""
    try:
        return await awaitable
    except (RPCError, WorkflowQueryFailedError, WorkflowFailureError):
        return None


# --- campaign control signals ------------------------------------------------------------------


async def send_campaign_signal(
    client: Client, ref: str, signal_name: CampaignSignal, request: ControlRequest, *, ack_timeout: float | None = None
) -> Ack:
    """Signal a campaign and wait for its ack (accepted or refused with the workflow's reason)."""
    handle, desc = await resolve_campaign(client, ref)
    return await _signal_and_wait(
        handle,
        desc,
        lambda: handle.signal(signal_name, request),
        lambda t: handle.query(CampaignWorkflow.ack, AckQuery(request_id=request.request_id), rpc_timeout=t),
        ack_timeout,
        f"campaign {campaign_name(desc)}",
        lambda d: _campaign_ended(handle, d),
    )


async def pause_campaign(
    client: Client, ref: str, *, reason: str = "", actor: str | None = None, ack_timeout: float | None = None
) -> Ack:
    req = build_request(ControlRequest, request_id=new_request_id(), actor=actor or default_actor(), reason=reason)
    return await send_campaign_signal(client, ref, "pause", req, ack_timeout=ack_timeout)


async def resume_campaign(
    client: Client, ref: str, *, reason: str = "", actor: str | None = None, ack_timeout: float | None = None
) -> Ack:
    req = build_request(ControlRequest, request_id=new_request_id(), actor=actor or default_actor(), reason=reason)
    return await send_campaign_signal(client, ref, "resume", req, ack_timeout=ack_timeout)


async def set_budget(
    client: Client, ref: str, daily_budget_usd: float, *, actor: str | None = None, ack_timeout: float | None = None
) -> Ack:
    req = build_request(
        BudgetChange, request_id=new_request_id(), actor=actor or default_actor(), daily_budget_usd=daily_budget_usd
    )
    return await send_campaign_signal(client, ref, "set_budget", req, ack_timeout=ack_timeout)


async def set_goals(
    client: Client, ref: str, goals: list[str], *, actor: str | None = None, ack_timeout: float | None = None
) -> Ack:
    req = build_request(GoalsChange, request_id=new_request_id(), actor=actor or default_actor(), goals=goals)
    return await send_campaign_signal(client, ref, "set_goals", req, ack_timeout=ack_timeout)


async def emergency_stop(
    client: Client, ref: str, reason: str, *, actor: str | None = None, ack_timeout: float | None = None
) -> Ack:
    """Stop the campaign and every live task at once; nothing more is published."""
    req = build_request(EmergencyStop, request_id=new_request_id(), actor=actor or default_actor(), reason=reason)
    return await send_campaign_signal(client, ref, "emergency_stop", req, ack_timeout=ack_timeout)


async def _signal_and_wait(
    handle: WorkflowHandle[Any, Any],
    desc: WorkflowExecutionDescription,
    send: Callable[[], Awaitable[None]],
    ask: Callable[[timedelta], Awaitable[Ack | None]],
    within: float | None,
    what: str,
    ended: Callable[[WorkflowExecutionDescription], Awaitable[str]],
) -> Ack:
    """Signal a running workflow, then poll its ack query until it has handled the signal.

    An ended workflow (before, during or after the send) is `Refused` with how it ended; no ack in
    time from a running one is `NotConfirmed`.
    """
    if desc.status != _RUNNING:
        raise Refused(await ended(desc))
    try:
        await send()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise Refused(await ended(await handle.describe())) from exc  # it ended just now
    within = ACK_TIMEOUT if within is None else within
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while (remaining := deadline - loop.time()) > 0:
        try:
            ack = await ask(_query_timeout(max(0.1, min(remaining, QUERY_TIMEOUT))))
        except RPCError as exc:
            if exc.status not in _NO_ANSWER:
                raise
            ack = None  # no worker picked the query up yet
        if ack is not None:
            return ack
        await asyncio.sleep(ACK_POLL_INTERVAL)
    final = await handle.describe()
    if final.status != _RUNNING:
        raise Refused(await ended(final))
    raise NotConfirmed(f"{what}: delivered but not confirmed within {within:g}s: {WORKER_HINT}")


# --- reviews -----------------------------------------------------------------------------------

TaskHandle = WorkflowHandle[ContentTaskWorkflow, TaskOutcome]


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
        query += f" AND TenantId = '{_slug(tenant, 'tenant')}'"
    executions = await _list(client, query)
    views = await asyncio.gather(*(_pending_view(client, e.id) for e in executions))
    # The review query is authoritative: drop rows visibility has not caught up on.
    return sorted((v for v in views if v is not None and v.state == "pending"), key=review_order)


async def _pending_view(client: Client, task_id: str) -> ReviewView | None:
    handle = client.get_workflow_handle_for(ContentTaskWorkflow.run, task_id)
    try:
        return await _answer(lambda: handle.query(ContentTaskWorkflow.review, rpc_timeout=_query_timeout()), task_id)
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
    desc = await _describe(client, task_id) if task_id else None
    if desc is None or desc.workflow_type != "ContentTaskWorkflow":
        raise NotFound(f"unknown task '{task_id}'; `chimera review list` shows pending reviews")
    return client.get_workflow_handle_for(ContentTaskWorkflow.run, desc.id), desc


async def show_review(client: Client, task_id: str) -> ReviewView:
    handle, _ = await _task(client, task_id)
    return await _answer(lambda: handle.query(ContentTaskWorkflow.review, rpc_timeout=_query_timeout()), task_id)


def review_decision(
    action: ReviewAction, reviewer: str | None, reason: str | None, text: str | None = None
) -> ReviewDecision:
    """A validated decision; `InvalidRequest` when a rejection has no reason or an edit no text."""
    return build_request(
        ReviewDecision,
        request_id=new_request_id(),
        action=action,
        reviewer=reviewer or default_actor(),
        reason=reason or "",
        text=text,
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
    return await _signal_and_wait(
        handle,
        desc,
        lambda: handle.signal(ContentTaskWorkflow.decide, decision),
        lambda t: handle.query(ContentTaskWorkflow.ack, AckQuery(request_id=decision.request_id), rpc_timeout=t),
        ack_timeout,
        f"task {desc.id}",
        lambda d: _task_ended(handle, d),
    )


async def _task_ended(handle: TaskHandle, desc: WorkflowExecutionDescription) -> str:
    how = status_name(desc.status)
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        outcome = await _try(handle.result(rpc_timeout=_query_timeout()))
        if outcome is not None:
            how = outcome.status + (f": {outcome.reason}" if outcome.reason else "")
            how += f", post {outcome.post_id}" if outcome.post_id else ""
    ended = f"task {desc.id} has ended ({how})"
    # Name the decision when a worker can still replay the task to answer (nice to have, not required).
    view = await _try(handle.query(ContentTaskWorkflow.review, rpc_timeout=_query_timeout(min(3.0, QUERY_TIMEOUT))))
    if view is not None and view.state in _DECIDED:
        return f"already decided: {view.state} by {view.reviewer or 'a reviewer'}; {ended}"
    return ended
