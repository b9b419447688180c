"""Stopping (and allowing again) a whole agent, tenant or the fleet: one signed request, one workflow.

The request is signed for the scope ("agent:acme/mira", "tenant:acme", "fleet"), not for one campaign:
ScopeStopWorkflow authorizes it, records the stop, and forwards the same request to every running campaign
of the scope, each of which checks it again before it stops.
"""

from __future__ import annotations

import asyncio

from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from chimera.access.credentials import UserCredentials
from chimera.control.errors import ControlError, NotConfirmed
from chimera.control.signals import build_request, signed_in
from chimera.temporal_config import TemporalConfig
from schemas.events import ScopeStop, ScopeStopInput, ScopeStopResult, StopScope
from workflows.scope_stop import ScopeStopWorkflow, scope_stop_workflow_id

RESULT_TIMEOUT = 120.0  # a stop waits up to 30 s for sends in flight, then signals every campaign


def scope_request(
    scope: StopScope, tenant_id: str | None, agent_id: str | None, reason: str, *, lift: bool
) -> ScopeStop:
    """The validated request (InvalidRequest names what is wrong), before anything is sent."""
    return build_request(
        ScopeStop, actor="-", scope=scope, tenant_id=tenant_id, agent_id=agent_id, reason=reason, lift=lift
    )


async def stop_scope(
    client: Client,
    config: TemporalConfig,
    request: ScopeStop,
    *,
    credentials: UserCredentials | None = None,
    within: float = RESULT_TIMEOUT,
) -> ScopeStopResult:
    """Sign the request, run its ScopeStopWorkflow and return what it did (or why it was refused)."""
    creds = credentials or signed_in()
    signed = creds.sign(request, request.action, request.target)
    runtime = config.runtime_options()
    workflow_id = scope_stop_workflow_id(signed)
    try:
        handle = await client.start_workflow(
            ScopeStopWorkflow.run,
            ScopeStopInput(stop=signed, runtime=runtime),
            id=workflow_id,
            task_queue=runtime.task_queues.planner,
            static_summary=f"{'lift' if request.lift else 'stop'} {request.target}: {request.reason}"[:200],
        )
    except WorkflowAlreadyStartedError as exc:
        raise ControlError(f"request {request.request_id} was sent already (workflow {workflow_id})") from exc
    try:
        return await asyncio.wait_for(handle.result(), timeout=within)
    except TimeoutError as exc:
        raise NotConfirmed(
            f"{request.target}: no answer within {within:g}s (workflow {workflow_id}): is a worker running?"
        ) from exc
    except WorkflowFailureError as exc:
        raise ControlError(f"{request.target}: the stop failed: {exc.cause or exc}") from exc
