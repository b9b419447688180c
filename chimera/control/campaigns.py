"""Campaigns: start one from its file, list them, read their status, and steer them with signals."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

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

from chimera.campaign_file import load_campaign
from chimera.control.connection import (
    SLUG,
    answer,
    completed_result,
    describe,
    list_executions,
    or_none,
    query_timeout,
    status_name,
)
from chimera.control.errors import CampaignExists, NotFound
from chimera.control.signals import Recipient, build_request, default_actor, signal_and_wait
from chimera.durations import format_duration
from chimera.temporal_config import TemporalConfig
from schemas.campaign import CampaignSpec, campaign_workflow_id
from schemas.campaign_run import CampaignInput
from schemas.events import BudgetChange, CampaignState, CampaignStatus, ControlRequest, EmergencyStop, GoalsChange
from schemas.review import Ack
from workflows import search_attributes as sa
from workflows.campaign import CampaignWorkflow

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
) -> CampaignInput:
    """The workflow input for a campaign file: how `chimera campaign start` and the demo read one.

    temporal.yaml (`config`) gives the judge policy and review deadline the file leaves out, and the
    runtime options. `id_suffix` makes the campaign id `<id>-<suffix>` (ids are used once: the demo
    stamps the time); `cycle_interval_seconds` replaces the file's schedule. Raises CampaignFileError.
    """
    spec = load_campaign(path, config)
    update: dict[str, Any] = {}
    if id_suffix:
        update["campaign_id"] = f"{spec.campaign_id}-{id_suffix}"
    if cycle_interval_seconds is not None:
        update["cycle_interval_seconds"] = cycle_interval_seconds
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
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.TENANT_ID, spec.tenant_id),
                    SearchAttributePair(sa.AGENT_ID, spec.agent_id),
                    SearchAttributePair(sa.CAMPAIGN_ID, spec.campaign_id),
                ]
            ),
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


async def list_campaigns(client: Client) -> list[CampaignRow]:
    """Every campaign (latest run of each), with its live state when a worker answers."""
    seen: set[str] = set()
    latest: list[WorkflowExecution] = []
    for execution in await list_executions(client, "WorkflowType = 'CampaignWorkflow'"):
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
    if execution.status == WorkflowExecutionStatus.RUNNING:
        st = await or_none(handle.query(CampaignWorkflow.status, rpc_timeout=query_timeout(5.0)))
    else:
        st = await completed_result(handle, execution)
    if st is None:
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
    **fields: Any,
) -> Ack:
    """Validate a change (`fields` of its request), signal the campaign and wait for its ack."""
    request = campaign_request(signal_name, actor, **fields)  # before any RPC: nothing half-sent
    return await send_campaign_signal(client, ref, signal_name, request, ack_timeout=ack_timeout)


async def send_campaign_signal(
    client: Client, ref: str, signal_name: CampaignSignal, request: ControlRequest, *, ack_timeout: float | None = None
) -> Ack:
    """Signal a campaign and wait for its ack (accepted or refused with the workflow's reason)."""
    handle, desc = await resolve_campaign(client, ref)
    to = Recipient(handle, desc, f"campaign {campaign_name(desc)}", lambda d: _campaign_ended(handle, d))
    return await signal_and_wait(to, signal_name, request, CampaignWorkflow.ack, ack_timeout)
