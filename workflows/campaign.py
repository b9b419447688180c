"""CampaignWorkflow: one per campaign, alive for weeks through continue-as-new.

Each cycle: observe -> plan a task DAG -> start a ContentTaskWorkflow per ready task -> wait for
task updates, control signals or the next-cycle timer. Rejected and failed tasks are re-planned
with the reason, up to the campaign's limit. Children are abandoned on purpose (they outlive a
run that continues as new) and report back by signal.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from schemas.campaign import CampaignSpec
    from schemas.campaign_run import CampaignCarry, CampaignInput, ObserveRequest, TaskRecord, task_id_for
    from schemas.events import (
        BudgetChange,
        CampaignState,
        CampaignStatus,
        ControlAudit,
        ControlRequest,
        EmergencyStop,
        GoalsChange,
        TaskUpdate,
        TaskView,
    )
    from schemas.plan import Observation, TaskPlan
    from schemas.review import Ack, AckQuery
    from schemas.task import TERMINAL_STATUSES, ContentTaskInput, PlanRequest, TaskOutcome, TaskRef

import contextlib

from workflows import search_attributes as sa
from workflows.calls import run_activity
from workflows.content_task import ContentTaskWorkflow

MAX_ACKS = 50  # acks kept for the CLI to read back; older ones are dropped at continue-as-new


@workflow.defn
class CampaignWorkflow:
    @workflow.init
    def __init__(self, inp: CampaignInput) -> None:
        # Signals can be handled before run() starts (e.g. a pause sent with the start):
        # the spec must be known from the first instant.
        self._spec: CampaignSpec | None = inp.spec
        self._inp: CampaignInput | None = inp
        self._cycle = 0
        self._state: CampaignState = "running"
        self._goals: list[str] = []
        self._budget = 0.0
        self._tasks: dict[str, TaskRecord] = {}  # by key
        self._acks: dict[str, Ack] = {}
        self._inbox: list[TaskOutcome] = []
        self._audit_outbox: list[ControlAudit] = []
        self._stop_reason: str | None = None
        self._stop_request: EmergencyStop | None = None
        self._paused_by: str | None = None
        self._replans = 0
        self._next_cycle_at: datetime | None = None
        self._goals_changed = False
        self._spend_day = ""
        self._spent_today = 0.0
        self._runs = 1
        self._deferred_replans: list[str] = []  # keys rejected while paused, re-planned on resume
        self._restore(inp)

    # --- signals -----------------------------------------------------------------------

    @workflow.signal
    def pause(self, req: ControlRequest) -> None:
        if self._refuse_if_stopped(req.request_id):
            return
        if self._state == "paused":
            self._ack(req.request_id, False, f"already paused by {self._paused_by}")
            return
        self._state, self._paused_by = "paused", req.actor
        self._audit("pause", req.actor, {"reason": req.reason}, "paused")
        self._ack(req.request_id, True, "campaign paused: no new task starts until resume")

    @workflow.signal
    def resume(self, req: ControlRequest) -> None:
        if self._refuse_if_stopped(req.request_id):
            return
        if self._state != "paused":
            self._ack(req.request_id, False, "campaign is not paused")
            return
        self._state, self._paused_by = "running", None
        self._audit("resume", req.actor, {"reason": req.reason}, "running")
        self._ack(req.request_id, True, "campaign resumed")

    @workflow.signal
    def set_budget(self, req: BudgetChange) -> None:
        if self._refuse_if_stopped(req.request_id):
            return
        old, self._budget = self._budget, req.daily_budget_usd
        self._audit("budget", req.actor, {"from_usd": old, "to_usd": req.daily_budget_usd})
        self._ack(req.request_id, True, f"daily budget set to ${req.daily_budget_usd:.2f} (was ${old:.2f})")

    @workflow.signal
    def set_goals(self, req: GoalsChange) -> None:
        if self._refuse_if_stopped(req.request_id):
            return
        goals = [g.strip() for g in req.goals if g.strip()]
        if not goals:
            self._ack(req.request_id, False, "goals must not be blank")
            return
        self._goals, self._goals_changed = goals, True
        self._audit("goals", req.actor, {"goals": goals})
        self._ack(req.request_id, True, f"{len(goals)} goal(s) set; re-planning now")

    @workflow.signal
    def emergency_stop(self, req: EmergencyStop) -> None:
        if self._refuse_if_stopped(req.request_id):
            return
        self._state, self._stop_reason, self._stop_request = "stopped", req.reason, req
        self._ack(req.request_id, True, f"emergency stop accepted: {req.reason}")

    @workflow.signal
    def task_update(self, update: TaskUpdate) -> None:
        self._inbox.append(update.outcome)

    # --- queries -----------------------------------------------------------------------

    @workflow.query
    def status(self) -> CampaignStatus:
        spec = self._require_spec()
        by_state: dict[str, int] = {}
        for rec in self._tasks.values():
            by_state[rec.status] = by_state.get(rec.status, 0) + 1
        return CampaignStatus(
            campaign_id=spec.campaign_id,
            tenant_id=spec.tenant_id,
            agent_id=spec.agent_id,
            state=self._state,
            cycle=self._cycle,
            goals=self._goals,
            daily_budget_usd=self._budget,
            spend_today_usd=self._spent_today,
            tasks_by_state=by_state,
            pending_reviews=[r.task_id for r in self._tasks.values() if r.status == "pending_review"],
            tasks=[self._view(r) for r in self._tasks.values()],
            stop_reason=self._stop_reason,
            paused_by=self._paused_by,
            replans=self._replans,
        )

    @workflow.query
    def ack(self, query: AckQuery) -> Ack | None:
        return self._acks.get(query.request_id)

    # --- the run -----------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CampaignInput) -> CampaignStatus:
        spec = self._require_spec()
        if inp.carried is None:
            await run_activity(inp.runtime, "register_campaign", "planner", spec, type(None), "register campaign")
        while not self._stopped():
            await self._flush_audit()
            if self._state == "paused":
                self._details()
                await workflow.wait_condition(lambda: self._state != "paused" or bool(self._audit_outbox))
                continue
            if inp.max_cycles is not None and self._cycle >= inp.max_cycles:
                if await self._drain_for_completion():
                    break
                continue
            if self._cycle_due():
                await self._start_cycle()
            await self._wait_for_events()
            await self._handle_inbox()
            if workflow.info().is_continue_as_new_suggested() and self._state != "stopped":
                await self._continue_as_new()
        if self._stopped():
            await self._stop_everything()
        else:
            self._state = "completed"
            self._cancel_unstartable("the campaign reached its last cycle")
        await self._flush_audit()
        self._details()
        return self.status()

    async def _start_cycle(self) -> None:
        inp, spec = self._require_input(), self._require_spec()
        self._cycle += 1
        self._goals_changed = False
        self._next_cycle_at = workflow.now() + timedelta(seconds=spec.cycle_interval_seconds)
        self._details(f"cycle {self._cycle}: observing")
        observation = await run_activity(
            inp.runtime,
            "observe",
            "planner",
            ObserveRequest(tenant_id=spec.tenant_id, campaign_id=spec.campaign_id, platforms=list(spec.platforms)),
            Observation,
            f"cycle {self._cycle}: read mentions and trends",
        )
        self._details(f"cycle {self._cycle}: planning")
        plan = await self._plan(observation, prefix=f"c{self._cycle}-")
        for task in plan.tasks:
            self._tasks[task.key] = TaskRecord(
                task_id=task_id_for(spec.tenant_id, spec.campaign_id, task.key), task=task, cycle=self._cycle
            )
        await self._start_ready()

    async def _plan(self, observation: Observation, *, prefix: str, replan_of: TaskRecord | None = None) -> TaskPlan:
        inp, spec = self._require_input(), self._require_spec()
        # Open tasks too: the planner must not plan a second reply to a mention already in hand.
        open_tasks = [r for r in self._tasks.values() if r.status not in TERMINAL_STATUSES]
        ended = [r for r in self._tasks.values() if r.status in TERMINAL_STATUSES][-20:]
        recent = [self._as_outcome(r) for r in ended + open_tasks]
        request = PlanRequest(
            tenant_id=spec.tenant_id,
            campaign_id=spec.campaign_id,
            persona=spec.persona,
            goals=self._goals,
            platforms=list(spec.platforms),
            observation=observation,
            cycle=self._cycle,
            max_tasks=1 if replan_of else spec.max_tasks_per_cycle,
            recent=recent,
            replan_of=replan_of.task if replan_of else None,
            replan_reason=replan_of.reason if replan_of else None,
            key_prefix=prefix,
        )
        what = f"re-plan {replan_of.task.key}" if replan_of else f"cycle {self._cycle}: plan"
        return await run_activity(inp.runtime, "plan", "planner", request, TaskPlan, what)

    async def _start_ready(self) -> None:
        """Start every planned task whose dependencies are published (a paused campaign starts none)."""
        if self._state != "running":
            return
        for rec in list(self._tasks.values()):
            if rec.status != "planned":
                continue
            deps = [self._resolve(k) for k in rec.task.depends_on]
            failed = [
                k
                for k, d in zip(rec.task.depends_on, deps, strict=True)
                if d is None or d.status in TERMINAL_STATUSES - {"published"}
            ]
            if failed:
                rec.status, rec.reason = "cancelled", f"dependency {failed[0]} was not published"
                continue
            if all(d is not None and d.status == "published" for d in deps):
                await self._start_child(rec)
        self._details()

    async def _start_child(self, rec: TaskRecord) -> None:
        inp, spec = self._require_input(), self._require_spec()
        ref = TaskRef(
            task_id=rec.task_id,
            tenant_id=spec.tenant_id,
            campaign_id=spec.campaign_id,
            agent_id=spec.agent_id,
            campaign_workflow_id=workflow.info().workflow_id,
        )
        child_input = ContentTaskInput(
            ref=ref,
            task=rec.task,
            persona=spec.persona,
            goals=self._goals,
            cycle=rec.cycle,
            attempt=rec.attempt,
            judge=spec.judge,
            review_deadline_seconds=spec.review_deadline_seconds,
            timezone=spec.timezone,
            daily_budget_usd=self._budget,
            runtime=inp.runtime,
        )
        summary = f"{rec.task.task_type} on {rec.task.platform}: {rec.task.brief}"[:200]
        details = f"Campaign **{spec.name}** · cycle {rec.cycle} · attempt {rec.attempt}"
        try:
            await workflow.start_child_workflow(
                ContentTaskWorkflow.run,
                child_input,
                id=rec.task_id,
                task_queue=inp.runtime.task_queues.planner,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(sa.TENANT_ID, spec.tenant_id),
                        SearchAttributePair(sa.AGENT_ID, spec.agent_id),
                        SearchAttributePair(sa.CAMPAIGN_ID, spec.campaign_id),
                        SearchAttributePair(sa.TASK_TYPE, rec.task.task_type),
                        SearchAttributePair(sa.PLATFORM, rec.task.platform),
                        SearchAttributePair(sa.REVIEW_STATE, "none"),
                    ]
                ),
                static_summary=summary if inp.runtime.child_summaries else None,
                static_details=details if inp.runtime.child_summaries else None,
            )
        except WorkflowAlreadyStartedError:
            # Only if a task id was ever reused (campaign ids are single-use): never run it twice.
            rec.status, rec.reason = "failed", f"a workflow with id {rec.task_id} already exists"
            return
        rec.status = "running"

    async def _wait_for_events(self) -> None:
        def woken() -> bool:
            if self._inbox or self._audit_outbox or self._deferred_replans:
                return True  # deferred re-plans wake a resumed campaign at once
            return self._state != "running" or self._goals_changed

        timeout = self._until_next_cycle()
        if timeout is not None and timeout <= timedelta(0):
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(woken, timeout=timeout, timeout_summary="next cycle")

    async def _handle_inbox(self) -> None:
        while self._inbox:
            outcome = self._inbox.pop(0)
            rec = self._tasks.get(outcome.key)
            if rec is None or rec.status in TERMINAL_STATUSES:
                continue  # an update for a task this campaign no longer tracks, or a repeat
            rec.status, rec.reason = outcome.status, outcome.reason
            rec.confidence, rec.post_id = outcome.confidence, outcome.post_id
            if outcome.spent_today_usd is not None and outcome.spend_day >= self._spend_day:
                self._spend_day, self._spent_today = outcome.spend_day, outcome.spent_today_usd
            if outcome.replan:
                self._deferred_replans.append(rec.task.key)
        while self._deferred_replans and self._state == "running":  # a pause or stop mid-way defers the rest
            key = self._deferred_replans.pop(0)
            await self._replan(self._tasks[key])
        await self._start_ready()

    async def _replan(self, rec: TaskRecord) -> None:
        spec = self._require_spec()
        if rec.attempt > spec.max_replans:
            rec.reason += f" (gave up after {rec.attempt} attempts)"
            return
        self._replans += 1
        plan = await self._plan(Observation(), prefix=f"c{self._cycle}r{self._replans}-", replan_of=rec)
        if not plan.tasks:
            rec.reason += " (the planner proposed no replacement)"
            return
        task = plan.tasks[0].model_copy(update={"depends_on": []})
        rec.replaced_by = task.key
        self._tasks[task.key] = TaskRecord(
            task_id=task_id_for(spec.tenant_id, spec.campaign_id, task.key),
            task=task,
            cycle=self._cycle,
            attempt=rec.attempt + 1,
        )

    async def _drain_for_completion(self) -> bool:
        """After the last cycle, wait for running tasks and owed re-plans (not for human reviews)."""
        if not self._deferred_replans and not any(r.status == "running" for r in self._tasks.values()):
            return True
        self._details("last cycle done: waiting for running tasks")
        await workflow.wait_condition(
            lambda: bool(self._inbox or self._audit_outbox or self._deferred_replans) or self._state != "running"
        )
        await self._handle_inbox()
        return False

    async def _stop_everything(self) -> None:
        """Persist the stop first (publishing checks it), then tell every live task."""
        spec, req = self._require_spec(), self._stop_request
        assert req is not None
        self._audit("emergency_stop", req.actor, {"reason": req.reason}, "stopped")
        await self._flush_audit()
        for rec in self._tasks.values():
            if rec.status in ("running", "pending_review"):
                handle = workflow.get_external_workflow_handle(rec.task_id)
                with contextlib.suppress(ApplicationError):  # the task may have ended meanwhile
                    await handle.signal("stop", req)
                rec.status, rec.reason = "cancelled", f"emergency stop: {req.reason}"
            elif rec.status == "planned":
                rec.status, rec.reason = "cancelled", f"emergency stop: {req.reason}"
        workflow.logger.warning("campaign %s stopped by %s: %s", spec.campaign_id, req.actor, req.reason)

    async def _continue_as_new(self) -> None:
        inp = self._require_input()
        # Nothing received may be lost: settle every update and audit entry before handing over.
        while self._inbox or self._audit_outbox:
            await self._handle_inbox()
            await self._flush_audit()
        carried = CampaignCarry(
            cycle=self._cycle,
            state=self._state,
            goals=self._goals,
            daily_budget_usd=self._budget,
            tasks=self._tasks_to_carry(),
            acks=list(self._acks.values())[-MAX_ACKS:],
            next_cycle_at=self._next_cycle_at.isoformat() if self._next_cycle_at else None,
            stop_reason=self._stop_reason,
            paused_by=self._paused_by,
            replans=self._replans,
            spend_day=self._spend_day,
            spent_today_usd=self._spent_today,
            runs=self._runs + 1,
            goals_changed=self._goals_changed,
            deferred_replans=self._deferred_replans,
        )
        workflow.continue_as_new(
            CampaignInput(spec=inp.spec, runtime=inp.runtime, max_cycles=inp.max_cycles, carried=carried)
        )

    # --- helpers -------------------------------------------------------------------------

    def _tasks_to_carry(self) -> list[TaskRecord]:
        """Open tasks and the last two cycles, plus every task they depend on (through re-plans)."""
        keep = {k for k, r in self._tasks.items() if r.status not in TERMINAL_STATUSES or r.cycle >= self._cycle - 1}
        keep.update(self._deferred_replans)
        todo = list(keep)
        while todo:
            rec = self._tasks[todo.pop()]
            linked = [*rec.task.depends_on, *([rec.replaced_by] if rec.replaced_by else [])]
            for key in linked:
                if key in self._tasks and key not in keep:
                    keep.add(key)
                    todo.append(key)
        return [r for k, r in self._tasks.items() if k in keep]

    def _restore(self, inp: CampaignInput) -> None:
        self._inp, self._spec = inp, inp.spec
        c = inp.carried
        if c is None:
            self._goals, self._budget = list(inp.spec.goals), inp.spec.daily_budget_usd
            return
        self._cycle, self._state, self._goals, self._budget = c.cycle, c.state, c.goals, c.daily_budget_usd
        self._tasks = {r.task.key: r for r in c.tasks}
        self._acks = {a.request_id: a for a in c.acks}
        self._next_cycle_at = datetime.fromisoformat(c.next_cycle_at) if c.next_cycle_at else None
        self._stop_reason, self._paused_by, self._replans = c.stop_reason, c.paused_by, c.replans
        self._spend_day, self._spent_today, self._runs = c.spend_day, c.spent_today_usd, c.runs
        self._goals_changed, self._deferred_replans = c.goals_changed, list(c.deferred_replans)

    def _stopped(self) -> bool:
        return self._state == "stopped"

    def _cycle_due(self) -> bool:
        return self._next_cycle_at is None or self._goals_changed or workflow.now() >= self._next_cycle_at

    def _until_next_cycle(self) -> timedelta | None:
        if self._next_cycle_at is None:
            return None
        return self._next_cycle_at - workflow.now()

    def _resolve(self, key: str) -> TaskRecord | None:
        """Follow re-plans: a dependency on a rejected task means its replacement."""
        rec = self._tasks.get(key)
        seen: set[str] = set()
        while rec is not None and rec.replaced_by and rec.replaced_by not in seen:
            seen.add(rec.replaced_by)
            rec = self._tasks.get(rec.replaced_by)
        return rec

    def _cancel_unstartable(self, reason: str) -> None:
        for rec in self._tasks.values():
            if rec.status == "planned":
                rec.status, rec.reason = "cancelled", reason

    async def _flush_audit(self) -> None:
        inp = self._require_input()
        while self._audit_outbox:
            entry = self._audit_outbox.pop(0)
            await run_activity(inp.runtime, "record_control", "planner", entry, type(None), f"audit {entry.action}")

    def _audit(
        self, action: str, actor: str, detail: dict[str, str | float | list[str]], status: CampaignState | None = None
    ) -> None:
        spec = self._require_spec()
        self._audit_outbox.append(
            ControlAudit(
                tenant_id=spec.tenant_id,
                campaign_id=spec.campaign_id,
                agent_id=spec.agent_id,
                action=action,
                actor=actor,
                detail=detail,
                campaign_status=status,
            )
        )

    def _refuse_if_stopped(self, request_id: str) -> bool:
        if request_id in self._acks:
            return True  # a re-sent signal: the first answer stands
        if self._state in ("stopped", "completed"):
            self._ack(
                request_id,
                False,
                f"campaign is {self._state}" + (f": {self._stop_reason}" if self._stop_reason else ""),
            )
            return True
        return False

    def _ack(self, request_id: str, accepted: bool, message: str) -> None:
        self._acks[request_id] = Ack(request_id=request_id, accepted=accepted, message=message)

    def _as_outcome(self, rec: TaskRecord) -> TaskOutcome:
        return TaskOutcome(
            task_id=rec.task_id,
            key=rec.task.key,
            attempt=rec.attempt,
            status=rec.status,
            reason=rec.reason,
            confidence=rec.confidence,
            post_id=rec.post_id,
        )

    def _view(self, rec: TaskRecord) -> TaskView:
        return TaskView(
            task_id=rec.task_id,
            key=rec.task.key,
            task_type=rec.task.task_type,
            platform=rec.task.platform,
            status=rec.status,
            attempt=rec.attempt,
            cycle=rec.cycle,
            confidence=rec.confidence,
            reason=rec.reason,
            post_id=rec.post_id,
        )

    def _details(self, headline: str | None = None) -> None:
        spec = self._spec
        if spec is None:
            return
        counts: dict[str, int] = {}
        for rec in self._tasks.values():
            counts[rec.status] = counts.get(rec.status, 0) + 1
        lines = [
            f"### {spec.name} · {self._state} · cycle {self._cycle}",
            headline or "",
            "**Goals:** " + "; ".join(self._goals),
            f"**Budget:** ${self._spent_today:.4f} of ${self._budget:.2f} today",
            "**Tasks:** " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none yet"),
        ]
        if self._stop_reason:
            lines.append(f"**Stopped:** {self._stop_reason}")
        workflow.set_current_details("\n\n".join(line for line in lines if line))

    def _require_spec(self) -> CampaignSpec:
        if self._spec is None:
            raise ApplicationError("the campaign has not started yet")
        return self._spec

    def _require_input(self) -> CampaignInput:
        if self._inp is None:
            raise ApplicationError("the campaign has not started yet")
        return self._inp
