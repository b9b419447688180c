"""Campaigns: start one from its file, list them, read their status, and steer them with signals."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast, get_args

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from chimera.access.credentials import UserCredentials
from chimera.control import listing
from chimera.control.connection import (
    SLUG,
    answer,
    completed_result,
    describe,
    list_executions,
    query_timeout,
    slug,
    status_name,
)
from chimera.control.errors import CampaignExists, InvalidRequest, NotFound
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
    list_page,
    no_worker_message,
)
from chimera.control.signals import Recipient, build_request, default_actor, signal_and_wait, signed_in
from chimera.durations import format_duration
from chimera.temporal_config import TemporalConfig
from schemas.access import Action
from schemas.campaign import CampaignSpec, campaign_workflow_id
from schemas.campaign_run import CampaignInput
from schemas.events import BudgetChange, CampaignState, CampaignStatus, ControlRequest, EmergencyStop, GoalsChange
from schemas.review import Ack
from workflows import search_attributes as sa
from workflows.campaign import STATE_ATTRIBUTES_PATCH, CampaignWorkflow

CampaignSignal = Literal["pause", "resume", "set_budget", "set_goals", "emergency_stop"]
CampaignHandle = WorkflowHandle[CampaignWorkflow, CampaignStatus]

# --- starting ------------------------------------------------------------------------------------


def load_campaign_input(
    path: Path,
    config: TemporalConfig,
    *,
    max_cycles: int | None = None,
    id_suffix: str = "",
    cycle_interval_seconds: int | None = None,
    news_check_seconds: int | None = None,
) -> CampaignInput:
    """The workflow input for a campaign file: how `chimera campaign start` and the demo read one.

    temporal.yaml (`config`) gives the judge policy and review deadline the file leaves out, and the
    runtime options. `id_suffix` makes the campaign id `<id>-<suffix>` (ids are used once: the demo
    stamps the time); `cycle_interval_seconds` replaces the file's schedule and `news_check_seconds` its news
    watch's interval. Raises CampaignFileError.
    """
    from chimera.campaign_file import load_campaign  # read commands never need the file loaders

    spec = load_campaign(path, config)
    update: dict[str, Any] = {}
    if id_suffix:
        update["campaign_id"] = f"{spec.campaign_id}-{id_suffix}"
    if cycle_interval_seconds is not None:
        update["cycle_interval_seconds"] = cycle_interval_seconds
    if news_check_seconds is not None:
        update["news"] = spec.news.model_copy(update={"check_every_seconds": news_check_seconds})
    return campaign_input(spec.model_copy(update=update), config, max_cycles=max_cycles)


def campaign_input(
    spec: CampaignSpec, config: TemporalConfig, *, max_cycles: int | None = None, child_summaries: bool = True
) -> CampaignInput:
    """The workflow input for a spec as it stands, with temporal.yaml's runtime options."""
    runtime = config.runtime_options().model_copy(update={"child_summaries": child_summaries})
    return CampaignInput(spec=spec, runtime=runtime, max_cycles=max_cycles)


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


def campaign_search_attributes(spec: CampaignSpec) -> TypedSearchAttributes:
    """What a campaign's workflow is started with (the run upserts its state and cycle itself)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.TENANT_ID, spec.tenant_id),
            SearchAttributePair(sa.AGENT_ID, spec.agent_id),
            SearchAttributePair(sa.CAMPAIGN_ID, spec.campaign_id),
        ]
    )


async def start_campaign(client: Client, inp: CampaignInput) -> CampaignHandle:
    """Start the campaign's workflow; `CampaignExists` if its id was ever used (ids are not reused)."""
    spec = inp.spec
    try:
        return await client.start_workflow(
            CampaignWorkflow.run,
            inp,
            id=spec.workflow_id,
            task_queue=inp.runtime.task_queues.planner,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=campaign_search_attributes(spec),
            static_summary=campaign_summary(spec),
            static_details=campaign_details(spec),
        )
    except WorkflowAlreadyStartedError as exc:
        desc = await describe(client, spec.workflow_id)
        state = status_name(desc.status) if desc else "closed"
        since = f" since {desc.start_time:%Y-%m-%d %H:%M} UTC" if desc and desc.start_time else ""
        raise CampaignExists(
            f"campaign {spec.tenant_id}/{spec.campaign_id} already exists ({state}{since}, workflow "
            f"{spec.workflow_id}): a campaign id is used once; give the campaign file a new `id`"
        ) from exc


# --- finding and reading campaigns ----------------------------------------------------------------


CAMPAIGN_TOKEN = "c"
CAMPAIGN_ORDER = (
    "running campaigns first, then by the start of their current run, newest first (Temporal's own order: "
    "its SQL visibility has no ORDER BY; a campaign that continues as new while you page moves to the front)"
)
ENDED_BADLY = ("failed", "terminated", "timed_out", "canceled")
NOT_RECORDED = (
    f"state not recorded: this run has not published CampaignState (it started before the "
    f"'{STATE_ATTRIBUTES_PATCH}' change, or no worker has run it yet); `--check` asks the workflow"
)


class CampaignRow(BaseModel):
    """One line of `chimera campaign list`: search attributes only, unless `checked`."""

    workflow_id: str
    campaign_id: str
    tenant_id: str
    agent_id: str
    status: str  # the workflow's: running, completed, terminated, failed, ...
    task_queue: str = ""
    started_at: datetime | None = None  # this run's start: continue-as-new starts a new run
    closed_at: datetime | None = None
    state: CampaignState | None = None  # the campaign's own, as it last recorded it (or as --check read it)
    cycle: int | None = None
    note: str | None = None  # why the state is missing or stale, or what --check corrected
    checked: bool = False  # --check read the workflow's status query (or its final result)
    check_error: str | None = None  # why --check could not
    pending_reviews: int | None = None  # --check only
    stop_reason: str | None = None  # --check only


def campaign_query(tenant: str | None = None, state: str | None = None) -> str:
    """The visibility query of `campaign list`: the latest run of each campaign, filtered."""
    query = "WorkflowType = 'CampaignWorkflow' AND ExecutionStatus != 'ContinuedAsNew'"
    if tenant:
        query += f" AND TenantId = '{slug(tenant, 'tenant')}'"
    if state:
        if state not in get_args(CampaignState):
            raise InvalidRequest(f"unknown state '{state}': one of {', '.join(get_args(CampaignState))}")
        query += f" AND CampaignState = '{state}'"
    return query


async def list_campaigns(
    client: Client,
    *,
    tenant: str | None = None,
    state: str | None = None,
    limit: int | None = PAGE_SIZE,
    page: str | None = None,
    check: bool = False,
) -> Page[CampaignRow]:
    """One page of campaigns (every campaign when `limit` is None) from their search attributes.

    No worker is needed and nothing is queried, unless `check`: then each running campaign's `status`
    query (and each completed one's result) adds pending reviews and the stop reason, and corrects
    what visibility has not caught up on; a row whose workflow cannot answer says why.
    """
    query = campaign_query(tenant, state)
    token = decode_token(CAMPAIGN_TOKEN, page, "campaign list", _PageToken.parse) if page else _PageToken()
    if limit is None:
        executions, total = await asyncio.gather(list_executions(client, query), count(client, query))
        after = None
    else:
        listed = list_page(client, query, limit, token.server or None)
        (executions, after), total = await asyncio.gather(listed, count(client, query))
    rows = [_campaign_row(e) for e in executions]
    if check:
        rows = await _check_campaigns(client, rows)
    offset = token.offset
    next_page = None
    if after:
        next_page = encode_token(CAMPAIGN_TOKEN, _PageToken(offset + len(rows), after).encode())
    return Page[CampaignRow](rows=rows, offset=offset, next_page=next_page, total=total, order=CAMPAIGN_ORDER)


@dataclass(frozen=True)
class _PageToken:
    """Rows shown before, and the server's own token (a keyset: close time, start time, run id)."""

    offset: int = 0
    server: bytes = b""

    def encode(self) -> bytes:
        return b"%d:%s" % (self.offset, self.server)

    @classmethod
    def parse(cls, raw: bytes) -> _PageToken:
        offset, colon, server = raw.partition(b":")
        if not colon or not server or int(offset) < 0:  # int() raises ValueError on anything but digits
            raise ValueError("malformed page token")
        return cls(int(offset), server)


def _campaign_row(execution: WorkflowExecution) -> CampaignRow:
    attrs = execution.typed_search_attributes
    status = status_name(execution.status)
    recorded = attrs.get(sa.CAMPAIGN_STATE)
    state = recorded if recorded in get_args(CampaignState) else None
    cycle = attrs.get(sa.CAMPAIGN_CYCLE)
    if status in ENDED_BADLY:
        last = f"its last recorded state was {state}, cycle {cycle}" if state else "it recorded no state"
        note: str | None = f"the workflow {status.replace('_', ' ')}: the campaign did not record how it ended; {last}"
    elif recorded is None:
        note = NOT_RECORDED
    elif state is None:
        note = f"unknown recorded state '{recorded}'; `--check` asks the workflow"
    else:
        note = None
    return CampaignRow(
        workflow_id=execution.id,
        campaign_id=attrs.get(sa.CAMPAIGN_ID) or "",
        tenant_id=attrs.get(sa.TENANT_ID) or "",
        agent_id=attrs.get(sa.AGENT_ID) or "",
        status=status,
        task_queue=execution.task_queue,
        started_at=execution.start_time,
        closed_at=execution.close_time,
        state=cast(CampaignState | None, state),
        cycle=cycle,
        note=note,
    )


async def _check_campaigns(client: Client, rows: list[CampaignRow]) -> list[CampaignRow]:
    idle = await idle_task_queues(client, {r.task_queue for r in rows if r.status == "running"})

    async def check(row: CampaignRow) -> CampaignRow:
        if row.status == "running" and row.task_queue in idle:
            return row.model_copy(update={"check_error": no_worker_message(row.task_queue, "planner")})
        handle = client.get_workflow_handle_for(CampaignWorkflow.run, row.workflow_id)
        timeout = listing.CHECK_TIMEOUT
        try:
            if row.status == "running":
                st = await handle.query(CampaignWorkflow.status, rpc_timeout=timedelta(seconds=timeout))
            elif row.status == "completed":
                st = await handle.result(rpc_timeout=timedelta(seconds=timeout))
            else:
                return row  # failed, terminated...: there is nothing to ask; the note says what is known
        except CHECK_ERRORS as exc:
            return row.model_copy(update={"check_error": check_failure(exc, timeout)})
        return _checked(row, st)

    return await bounded(rows, check)


def _checked(row: CampaignRow, st: CampaignStatus) -> CampaignRow:
    if row.state is None:
        note: str | None = "state read from the workflow: this run has not published CampaignState"
    elif (row.state, row.cycle) != (st.state, st.cycle):
        note = (
            f"visibility showed {row.state}, cycle {row.cycle}; the workflow says {st.state}, cycle {st.cycle} "
            "(visibility lags a moment behind)"
        )
    else:
        note = None
    update = {
        "state": st.state,
        "cycle": st.cycle,
        "pending_reviews": len(st.pending_reviews),
        "stop_reason": st.stop_reason,
        "checked": True,
        "note": note,
    }
    return row.model_copy(update=update)


async def resolve_campaign(client: Client, ref: str) -> tuple[CampaignHandle, WorkflowExecutionDescription]:
    """`ref` is a workflow id, `tenant/campaign`, or a campaign id that only one tenant uses."""
    ref = ref.strip()
    if "/" in ref:
        tenant, _, campaign = ref.partition("/")
        workflow_id = campaign_workflow_id(tenant.strip(), campaign.strip())
        desc = await describe(client, workflow_id)
        if desc is None or desc.workflow_type != "CampaignWorkflow":
            raise NotFound(f"unknown campaign '{ref}' (no workflow {workflow_id}); `chimera campaign list` shows them")
    else:
        desc = await describe(client, ref) if ref else None
        if desc is None or desc.workflow_type != "CampaignWorkflow":
            desc = await describe(client, await _find_campaign_id(client, ref))
            if desc is None:
                raise NotFound(f"unknown campaign '{ref}'; `chimera campaign list` shows them")
    return client.get_workflow_handle_for(CampaignWorkflow.run, desc.id), desc


async def _find_campaign_id(client: Client, campaign_id: str) -> str:
    if not SLUG.match(campaign_id):
        raise NotFound(f"unknown campaign '{campaign_id}'; `chimera campaign list` shows them")
    executions = await list_executions(client, f"WorkflowType = 'CampaignWorkflow' AND CampaignId = '{campaign_id}'")
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
        return await handle.result(rpc_timeout=query_timeout())
    return await answer(
        lambda timeout: handle.query(CampaignWorkflow.status, rpc_timeout=timeout), f"campaign {campaign_name(desc)}"
    )


async def _campaign_ended(handle: CampaignHandle, desc: WorkflowExecutionDescription) -> str:
    how = status_name(desc.status)
    final = await completed_result(handle, desc)
    if final is not None:
        how = final.state + (f": {final.stop_reason}" if final.stop_reason else "")
    return f"campaign {campaign_name(desc)} has ended ({how}); it takes no more changes"


# --- campaign control signals ------------------------------------------------------------------

# What each signal carries (CampaignWorkflow's signal handlers of the same names).
SIGNAL_REQUESTS: dict[CampaignSignal, type[ControlRequest]] = {
    "pause": ControlRequest,  # no new task starts until resume; running tasks finish
    "resume": ControlRequest,
    "set_budget": BudgetChange,  # applies to tasks not yet started
    "set_goals": GoalsChange,  # re-plans at once
    "emergency_stop": EmergencyStop,  # stops the campaign and every live task; nothing more is published
}


def campaign_request(signal_name: CampaignSignal, actor: str | None = None, **fields: Any) -> ControlRequest:
    """The validated request for a signal, from `actor` (default: default_actor()); `InvalidRequest` if malformed."""
    return build_request(SIGNAL_REQUESTS[signal_name], actor=actor or default_actor(), **fields)


async def change_campaign(
    client: Client,
    ref: str,
    signal_name: CampaignSignal,
    *,
    actor: str | None = None,
    ack_timeout: float | None = None,
    credentials: UserCredentials | None = None,
    **fields: Any,
) -> Ack:
    """Validate a change (`fields` of its request), sign it, signal the campaign and wait for its ack."""
    request = campaign_request(signal_name, actor, **fields)  # before any RPC: nothing half-sent
    return await send_campaign_signal(
        client, ref, signal_name, request, ack_timeout=ack_timeout, credentials=credentials
    )


# The authority each signal needs (schemas/access.py ROLE_ACTIONS).
SIGNAL_ACTIONS: dict[CampaignSignal, Action] = {
    "pause": "campaign.pause",
    "resume": "campaign.resume",
    "set_budget": "campaign.budget",
    "set_goals": "campaign.goals",
    "emergency_stop": "campaign.stop",
}


async def send_campaign_signal(
    client: Client,
    ref: str,
    signal_name: CampaignSignal,
    request: ControlRequest,
    *,
    ack_timeout: float | None = None,
    credentials: UserCredentials | None = None,
) -> Ack:
    """Sign the request as the user (`credentials`, default: the CLI's, chimera/access/credentials.py), signal
    the campaign and wait for its ack (accepted, or refused with the workflow's reason)."""
    creds = credentials or signed_in()
    handle, desc = await resolve_campaign(client, ref)
    request = creds.sign(request, SIGNAL_ACTIONS[signal_name], desc.id)
    to = Recipient(handle, desc, f"campaign {campaign_name(desc)}", lambda d: _campaign_ended(handle, d))
    return await signal_and_wait(to, signal_name, request, CampaignWorkflow.ack, ack_timeout)
