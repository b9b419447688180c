"""ScopeStopWorkflow: stop (or allow again) every campaign and task of an agent, a tenant or the fleet.

authorize the signed request -> record the stop (the stop gate: nothing is sent after it) -> find the running
campaigns and tasks of the scope -> forward the same signed request to each campaign (each checks it again)
and tell each task to stop. A lift only records that the scope may run again; it needs an administrator.
"""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.activity_table import Activities
    from schemas.events import EmergencyStop, ScopeMembers, ScopeStop, ScopeStopInput, ScopeStopResult, StopRecord

from workflows.access import authorize
from workflows.calls import run_activity


def scope_stop_workflow_id(stop: ScopeStop) -> str:
    """One workflow per signed request: sending the same request twice starts nothing new."""
    return f"scope-{'lift' if stop.lift else 'stop'}-{stop.request_id}"


@workflow.defn
class ScopeStopWorkflow:
    @workflow.run
    async def run(self, inp: ScopeStopInput) -> ScopeStopResult:
        stop, runtime = inp.stop, inp.runtime
        auth = await authorize(
            stop,
            stop.request_id,
            stop.action,
            target=stop.target,
            tenant_id=stop.tenant_id,
            agent_id=stop.agent_id,
            runtime=runtime,
        )
        if not auth.allowed:
            return ScopeStopResult(accepted=False, message=auth.reason, actor=auth.actor)
        recorded = await run_activity(
            Activities.record_scope_stop, StopRecord(stop=stop, actor=auth.actor), runtime, f"record {stop.target}"
        )
        if stop.lift:
            message = f"{stop.target} may run again ({recorded.lifted} stop(s) lifted); stopped campaigns stay ended"
            return ScopeStopResult(accepted=True, message=message, actor=auth.actor)
        members = await run_activity(Activities.find_in_scope, stop, runtime, f"find what {stop.target} reaches")
        await self._tell(members, stop, auth.actor)
        note = "" if recorded.in_flight_finished else "; a send under way did not finish within the wait"
        message = f"{stop.target} stopped: {len(members.campaigns)} campaign(s), {len(members.tasks)} task(s){note}"
        return ScopeStopResult(
            accepted=True,
            message=message,
            actor=auth.actor,
            campaigns=members.campaigns,
            tasks=members.tasks,
            in_flight_finished=recorded.in_flight_finished,
        )

    async def _tell(self, members: ScopeMembers, stop: ScopeStop, actor: str) -> None:
        # The stop is already recorded, so nothing is published whatever a signal finds; the signals end the
        # work now instead of at its next send. All go out at once; a workflow that ended meanwhile is skipped.
        task_stop = EmergencyStop(
            request_id=stop.request_id, actor=actor, reason=f"{stop.target} stopped: {stop.reason}"
        )
        sends = [_signal(campaign, "scope_stop", stop) for campaign in members.campaigns]
        sends += [_signal(task, "stop", task_stop) for task in members.tasks]
        await asyncio.gather(*sends)


async def _signal(workflow_id: str, name: str, arg: ScopeStop | EmergencyStop) -> None:
    with contextlib.suppress(ApplicationError):
        await workflow.get_external_workflow_handle(workflow_id).signal(name, arg)
