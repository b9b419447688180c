"""Access activities: authorize a person's request, record a stop of a whole scope, find what it reaches."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus

from activities.alerting import AlertSender
from activities.registry import implements
from chimera.access.authorize import authorize
from chimera.db import StateStore
from chimera.db.mcp import PLATFORM_TENANT
from chimera.db.users import ScopeStop as StopRow
from schemas.access import Authorization, AuthorizeRequest
from schemas.activity_table import Activities
from schemas.alerts import stop_alert
from schemas.events import ScopeMembers, ScopeStop, StopRecord, StopRecorded

RUNNING = "ExecutionStatus = 'Running'"


class AccessActivities:
    def __init__(self, store: StateStore, alerts: AlertSender | None = None) -> None:
        self._store = store
        self._alerts = alerts or AlertSender(None, store)

    @implements(Activities.authorize)
    def authorize(self, req: AuthorizeRequest) -> Authorization:
        """Check the request against the user directory; audit a refusal in the target's tenant (or the
        platform's, for the fleet), so every refused attempt is on a chain."""
        info = activity.info()
        # A retry of this very activity is the same attempt, not a replay of the request.
        attempt = f"{info.workflow_run_id}:{info.activity_id}"
        decision = authorize(req, self._store, self._store, attempt_key=attempt, now=datetime.now(UTC))
        if not decision.allowed:
            detail = {
                "action": req.action,
                "target": req.target,
                "request_id": req.request_id,
                "reason": decision.reason,
            }
            claimed = req.body.get("actor") or req.body.get("reviewer")
            if claimed:
                detail["claimed_actor"] = str(claimed)
            self._store.append_audit(
                req.tenant_id or PLATFORM_TENANT, decision.actor, "request_refused", req.recipient, detail
            )
            activity.logger.warning("refused %s on %s: %s", req.action, req.target, decision.reason)
        return decision

    @implements(Activities.record_scope_stop)
    def record_scope_stop(self, rec: StopRecord) -> StopRecorded:
        stop = rec.stop
        if stop.lift:
            lifted = self._store.lift_scope_stop(stop.scope, stop.tenant_id, stop.agent_id, rec.actor, stop.reason)
            self._alert(rec)
            return StopRecorded(lifted=lifted)
        row = StopRow(
            request_id=stop.request_id,
            scope=stop.scope,
            tenant_id=stop.tenant_id,
            agent_id=stop.agent_id,
            reason=stop.reason,
            stopped_by=rec.actor,
            stopped_at=datetime.now(UTC),
        )
        _, quiet = self._store.record_scope_stop(row)
        self._alert(rec)
        return StopRecorded(in_flight_finished=quiet)

    def _alert(self, rec: StopRecord) -> None:
        stop = rec.stop
        alert = stop_alert(
            scope=stop.scope,
            request_id=stop.request_id,
            actor=rec.actor,
            reason=stop.reason,
            raised_at=datetime.now(UTC).isoformat(),
            tenant_id=stop.tenant_id,
            agent_id=stop.agent_id,
            lifted=stop.lift,
        )
        self._alerts.send(alert)

    @implements(Activities.find_in_scope)
    async def find_in_scope(self, stop: ScopeStop) -> ScopeMembers:
        """The running campaigns, tasks and payments of the scope, from Temporal's visibility (the worker's own
        client)."""
        client = activity.client()
        where = [RUNNING]
        if stop.tenant_id:
            where.append(f"TenantId = '{stop.tenant_id}'")
        if stop.agent_id:
            where.append(f"AgentId = '{stop.agent_id}'")
        members = ScopeMembers()
        query = " AND ".join(where)
        async for execution in client.list_workflows(f"WorkflowType = 'CampaignWorkflow' AND {query}"):
            if execution.status == WorkflowExecutionStatus.RUNNING:
                members.campaigns.append(execution.id)
        # Payments take the same `stop` signal as tasks: one waiting for a finance approver ends at once (the
        # stop gate already refuses to sign any of them).
        for kind in ("ContentTaskWorkflow", "PaymentWorkflow"):
            async for execution in client.list_workflows(f"WorkflowType = '{kind}' AND {query}"):
                if execution.status == WorkflowExecutionStatus.RUNNING:
                    members.tasks.append(execution.id)
        return members
