"""CampaignWorkflow: one per campaign, alive for weeks through continue-as-new.

Each cycle: observe -> plan a task DAG -> start a ContentTaskWorkflow per ready task -> wait for
task updates, control signals or the next-cycle timer. Rejected and failed tasks are re-planned
with the reason, up to the campaign's limit. Children are abandoned on purpose (they outlive a
run that continues as new) and report back by signal.

All the campaign's state is one `CampaignProgress` (self.campaign), handed whole to the next run.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from schemas.access import Action
    from schemas.activity_table import Activities
    from schemas.campaign_run import CampaignInput, CampaignProgress, ObserveRequest, TaskRecord, task_id_for
    from schemas.events import (
        BudgetChange,
        CampaignState,
        CampaignStatus,
        ControlAudit,
        ControlRequest,
        EmergencyStop,
        GoalsChange,
        MentionDelivery,
        ScopeStop,
        TaskUpdate,
    )
    from schemas.memory import PublishedPost, ReflectRequest
    from schemas.news import MAX_SEEN, BreakingNews, NewsCheck
    from schemas.payment import payment_workflow_id
    from schemas.plan import Observation, PlannedTask, TaskPlan
    from schemas.review import Ack, AckQuery
    from schemas.task import TERMINAL_STATUSES, TaskOutcome

from workflows import campaign_inputs as build
from workflows import campaign_views as views
from workflows.access import SIGNED_REQUESTS, InOrder, authorize_in_order
from workflows.calls import failure_message, run_activity
from workflows.content_task import ContentTaskWorkflow
from workflows.payment import PaymentWorkflow

R = TypeVar("R", bound=ControlRequest)
MAX_CYCLE_ERRORS = 10  # the newest kept in the campaign's state
# Runs from before this patch never upserted CampaignState/CampaignCycle; replaying them must issue no upsert.
STATE_ATTRIBUTES_PATCH = "campaign-state-search-attributes"
# Runs from before this patch neither reflected (engagement, archiving) nor watched the news between cycles.
MEMORY_AND_NEWS_PATCH = "memory-reflect-and-breaking-news"
MAX_TO_MEASURE = 200  # posts whose engagement is owed; the oldest are dropped beyond this
# Taken only by campaigns whose news watch names a premium (x402) service: older histories never reach it.
PREMIUM_NEWS_PATCH = "premium-news-purchase"
PREMIUM_WAIT = timedelta(minutes=2)  # a purchase the CFO Judge escalated is not waited for: the cycle goes on
MAX_PREMIUM_HEADLINES = 10


@workflow.defn
class CampaignWorkflow:
    @workflow.init
    def __init__(self, inp: CampaignInput) -> None:
        # Signals can be handled before run() starts (e.g. a pause sent with the start): the state
        # must be whole from the first instant.
        self.inp = inp
        self.spec = inp.spec
        self.campaign = inp.carried or CampaignProgress(
            goals=list(inp.spec.goals), daily_budget_usd=inp.spec.daily_budget_usd
        )
        self._requests = InOrder()  # requests being authorized, applied in the order they arrived
        self._learns = False  # set in run (a patch): reflect each cycle, watch the news between cycles

    # --- the run -----------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: CampaignInput) -> CampaignStatus:
        self._learns = workflow.patched(MEMORY_AND_NEWS_PATCH)
        if inp.carried is None:
            await run_activity(Activities.register_campaign, self.spec, inp.runtime, "register campaign")
        while not self._stopped():
            # A request being authorized goes first (e.g. a pause sent with the start): nothing starts meanwhile.
            await workflow.wait_condition(lambda: not self._requests.busy)
            if self._stopped():
                break
            self._publish_attributes()
            await self._flush_audit()
            if self.campaign.state == "paused":
                await self._wait_while_paused()
                continue
            if inp.max_cycles is not None and self.campaign.cycle >= inp.max_cycles:
                if await self._drain_for_completion():
                    break
                continue
            if self._cycle_due():
                await self._start_cycle()
            await self._wait_for_events()
            await self._watch_news()
            await self._handle_inbox()
            if workflow.info().is_continue_as_new_suggested() and not self._stopped():
                await self._continue_as_new()
        await self._finish()
        await workflow.wait_condition(workflow.all_handlers_finished)  # a request being authorized is answered
        return self.status()

    async def _start_cycle(self) -> None:
        c, spec = self.campaign, self.spec
        c.cycle += 1
        c.goals_changed = False
        c.next_cycle_at = workflow.now() + timedelta(seconds=spec.cycle_interval_seconds)
        if self._learns:
            await self._reflect()
        self._details(f"cycle {c.cycle}: observing")
        try:
            observation = await run_activity(
                Activities.observe,
                ObserveRequest(
                    tenant_id=spec.tenant_id,
                    campaign_id=spec.campaign_id,
                    platforms=list(spec.platforms),
                    handles=dict(spec.persona.handles),  # each campaign reads its own accounts' mentions
                ),
                self.inp.runtime,
                f"cycle {c.cycle}: read mentions and trends",
            )
            if spec.news.premium_url and workflow.patched(PREMIUM_NEWS_PATCH):
                observation = await self._buy_premium_news(observation)
            self._saw_news(observation)
            self._details(f"cycle {c.cycle}: planning")
            plan = await self._plan(observation, prefix=f"c{c.cycle}-")
        except ActivityError as err:
            # One bad cycle must not end a campaign that runs for weeks: say why, and try at the next one.
            self._cycle_failed(f"cycle {c.cycle}: {failure_message(err)}")
            return
        for task in plan.tasks:
            c.tasks[task.key] = TaskRecord(
                task_id=task_id_for(spec.tenant_id, spec.campaign_id, task.key), task=task, cycle=c.cycle
            )
        await self._start_ready()

    async def _buy_premium_news(self, observation: Observation) -> Observation:
        """Buy this cycle's premium headlines: a PaymentWorkflow child pays the x402 service under the campaign's
        payments policy (the CFO Judge decides). The planner gets what it bought; if the payment waits for a
        finance approver, is refused or fails, the cycle plans without it and says why."""
        c, spec = self.campaign, self.spec
        request = build.premium_news_payment(spec, c.cycle, self.inp.runtime)
        self._details(f"cycle {c.cycle}: buying premium news")
        try:
            handle = await workflow.start_child_workflow(
                PaymentWorkflow.run,
                request,
                id=payment_workflow_id(request.tenant_id, request.payment_id),
                task_queue=self.inp.runtime.task_queues.planner,
                parent_close_policy=ParentClosePolicy.ABANDON,  # a payment outlives the run that asked for it
            )
        except WorkflowAlreadyStartedError:
            return observation  # this cycle's purchase was started by an earlier run: it is not bought twice
        try:
            await workflow.wait_condition(handle.done, timeout=PREMIUM_WAIT, timeout_summary="premium news payment")
        except TimeoutError:
            self._note_premium(f"premium news: payment {request.payment_id} waits for a finance approver")
            return observation
        try:
            outcome = handle.result()
        except ChildWorkflowError as err:
            self._note_premium(f"premium news: payment {request.payment_id} failed: {err}")
            return observation
        if outcome.status != "settled":
            self._note_premium(f"premium news not bought ({outcome.status}): {outcome.reason}")
            return observation
        bought = build.premium_headlines(outcome, MAX_PREMIUM_HEADLINES)
        return observation.model_copy(update={"headlines": [*bought, *observation.headlines]})

    def _note_premium(self, message: str) -> None:
        self._audit("premium_news", "system", {"note": message})
        self._details(message)

    async def _reflect(self) -> None:
        """The Judge looks back: engagement of the posts now due, and conversations to archive. A failed look
        costs nothing: the posts stay due for the next cycle."""
        c, spec = self.campaign, self.spec
        now = workflow.now()
        after = timedelta(seconds=spec.memory.engagement_after_seconds)
        due = [p for p in c.to_measure if datetime.fromisoformat(p.published_at) + after <= now][:100]
        request = ReflectRequest(
            tenant_id=spec.tenant_id,
            campaign_id=spec.campaign_id,
            agent_id=spec.agent_id,
            handles=dict(spec.persona.handles),
            due=due,
            policy=spec.memory,
        )
        self._details(f"cycle {c.cycle}: reflecting")
        try:
            reflection = await run_activity(
                Activities.reflect, request, self.inp.runtime, "reflect: engagement, memory"
            )
        except ActivityError as err:
            workflow.logger.warning("campaign %s: reflect failed: %s", spec.campaign_id, failure_message(err))
            return
        done = set(reflection.measured)
        c.to_measure = [p for p in c.to_measure if p.task_id not in done]
        for error in reflection.errors:
            workflow.logger.warning("campaign %s: reflect: %s", spec.campaign_id, error)

    def _saw_news(self, observation: Observation) -> None:
        """The cycle's headlines are known: only newer ones can be breaking. The watch resumes from now."""
        c, watch = self.campaign, self.spec.news
        if not self._learns:
            return
        seen = set(c.news_seen)
        c.news_seen = [*c.news_seen, *(h.id for h in reversed(observation.headlines) if h.id not in seen)][-MAX_SEEN:]
        c.next_news_check_at = (
            workflow.now() + timedelta(seconds=watch.check_every_seconds) if watch.enabled() else None
        )

    async def _watch_news(self) -> None:
        """Between cycles: a new headline on the campaign's topics or its banned topics re-plans now (seed 1.2)."""
        c, spec = self.campaign, self.spec
        due = c.next_news_check_at is not None and workflow.now() >= c.next_news_check_at
        if not self._learns or not due or c.state != "running" or not spec.news.enabled():
            return
        c.next_news_check_at = workflow.now() + timedelta(seconds=spec.news.check_every_seconds)
        check = NewsCheck(
            tenant_id=spec.tenant_id,
            campaign_id=spec.campaign_id,
            agent_id=spec.agent_id,
            topics=list(spec.news.topics),
            banned_topics=list(spec.persona.banned_topics),
            seen=list(c.news_seen),
        )
        try:
            found = await run_activity(Activities.watch_news, check, self.inp.runtime, "look for breaking news")
        except ActivityError as err:
            workflow.logger.warning("campaign %s: news watch failed: %s", spec.campaign_id, failure_message(err))
            return
        c.news_seen = found.seen
        if found.breaking and c.state == "running":
            await self._react_to_news(found.breaking)

    async def _react_to_news(self, breaking: list[BreakingNews]) -> None:
        """Plan for the news now: the planned posts not yet started give way to what the planner proposes."""
        c, spec = self.campaign, self.spec
        c.news_reactions += 1
        first = breaking[0]
        prefix = f"c{c.cycle}n{c.news_reactions}-"
        request = build.plan_request(spec, c, Observation(), prefix, None, breaking=breaking)
        try:
            plan = await run_activity(Activities.plan, request, self.inp.runtime, f"re-plan for news: {first.matched}")
        except ActivityError as err:
            self._cycle_failed(f"breaking news {first.headline.id}: {failure_message(err)}")
            return
        why = f'breaking news on "{first.matched}": {first.headline.title}'[:200]
        superseded = [r for r in c.tasks.values() if r.status == "planned" and r.task.task_type == "post"]
        for rec in superseded:
            rec.status, rec.reason = "cancelled", f"superseded by {why}"
        for task in plan.tasks:
            c.tasks[task.key] = TaskRecord(
                task_id=task_id_for(spec.tenant_id, spec.campaign_id, task.key), task=task, cycle=c.cycle
            )
        detail: dict[str, str | float | list[str]] = {
            "headline": first.headline.id,
            "title": first.headline.title[:200],
            "matched": first.matched,
            "banned": "yes" if first.banned else "no",
            "superseded": [r.task.key for r in superseded],
            "planned": [t.key for t in plan.tasks],
        }
        self._audit("breaking_news", "system", detail)
        self._details(f"re-planned for {why}")

    async def _plan(self, observation: Observation, *, prefix: str, replan_of: TaskRecord | None = None) -> TaskPlan:
        request = build.plan_request(self.spec, self.campaign, observation, prefix, replan_of)
        what = f"re-plan {replan_of.task.key}" if replan_of else f"cycle {self.campaign.cycle}: plan"
        return await run_activity(Activities.plan, request, self.inp.runtime, what)

    async def _start_ready(self) -> None:
        """Start every planned task whose dependencies are published (a paused campaign starts none)."""
        if self.campaign.state != "running":
            return
        for rec in list(self.campaign.tasks.values()):
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
        spec, runtime = self.spec, self.inp.runtime
        child_input = build.child_input(spec, self.campaign, rec, runtime, workflow.info().workflow_id)
        summary = f"{rec.task.task_type} on {rec.task.platform}: {rec.task.brief}"[:200]
        details = f"Campaign **{spec.name}** · cycle {rec.cycle} · attempt {rec.attempt}"
        try:
            await workflow.start_child_workflow(
                ContentTaskWorkflow.run,
                child_input,
                id=rec.task_id,
                task_queue=runtime.task_queues.planner,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=build.child_search_attributes(spec, rec),
                static_summary=summary if runtime.child_summaries else None,
                static_details=details if runtime.child_summaries else None,
            )
        except WorkflowAlreadyStartedError:
            # Only if a task id was ever reused (campaign ids are single-use): never run it twice.
            rec.status, rec.reason = "failed", f"a workflow with id {rec.task_id} already exists"
            return
        rec.status = "running"

    async def _wait_while_paused(self) -> None:
        self._details()
        await workflow.wait_condition(lambda: self.campaign.state != "paused" or bool(self.campaign.audit_outbox))

    async def _wait_for_events(self) -> None:
        c = self.campaign

        def woken() -> bool:
            if c.inbox or c.audit_outbox or c.deferred_replans:
                return True  # deferred re-plans wake a resumed campaign at once
            if c.mention_inbox and c.state == "running":
                return True  # a pushed mention is answered now, not at the next cycle
            return c.state != "running" or c.goals_changed

        timeout = self._until_next_cycle()
        if timeout is not None and timeout <= timedelta(0):
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(woken, timeout=timeout, timeout_summary="next cycle")

    async def _handle_inbox(self) -> None:
        c = self.campaign
        while c.inbox:
            outcome = c.inbox.pop(0)
            rec = c.tasks.get(outcome.key)
            if rec is None or rec.status in TERMINAL_STATUSES:
                continue  # an update for a task this campaign no longer tracks, or a repeat
            rec.status, rec.reason = outcome.status, outcome.reason
            rec.confidence, rec.post_id = outcome.confidence, outcome.post_id
            self._owe_engagement(rec, outcome)
            if outcome.spent_today_usd is not None and outcome.spend_day >= c.spend_day:
                c.spend_day, c.spent_today_usd = outcome.spend_day, outcome.spent_today_usd
            if outcome.replan:
                c.deferred_replans.append(rec.task.key)
        while c.deferred_replans and c.state == "running":  # a pause or stop mid-way defers the rest
            key = c.deferred_replans.pop(0)
            await self._replan(c.tasks[key])
        await self._plan_mentions()
        await self._start_ready()

    async def _plan_mentions(self) -> None:
        """The fast path: pushed mentions get their reply tasks now (the planner still writes the briefs and
        spots hostile ones). If planning fails, the mentions are still unreplied on the platform, so the next
        cycle's observe picks them up: polling is the fallback."""
        c, spec = self.campaign, self.spec
        while c.mention_inbox and c.state == "running":
            # The batch stays in the inbox while it is planned, so a repeat signal meanwhile is seen as one.
            batch = c.mention_inbox[: spec.max_tasks_per_cycle]
            c.mention_batches += 1
            observation = Observation(mentions=[d.mention for d in batch])
            prefix = f"c{c.cycle}p{c.mention_batches}-"
            request = build.plan_request(spec, c, observation, prefix, None, replies_only=True)
            tasks: list[PlannedTask] = []
            try:
                what = f"reply to {len(batch)} mention(s)"
                tasks = (await run_activity(Activities.plan, request, self.inp.runtime, what)).tasks
            except ActivityError as err:
                self._cycle_failed(f"pushed mentions: {failure_message(err)} (the next cycle's observe retries them)")
            del c.mention_inbox[: len(batch)]
            for task in tasks:
                c.tasks[task.key] = TaskRecord(
                    task_id=task_id_for(spec.tenant_id, spec.campaign_id, task.key), task=task, cycle=c.cycle
                )

    async def _replan(self, rec: TaskRecord) -> None:
        c, spec = self.campaign, self.spec
        if rec.attempt > spec.max_replans:
            rec.reason += f" (gave up after {rec.attempt} attempts)"
            return
        c.replans += 1
        try:
            plan = await self._plan(Observation(), prefix=f"c{c.cycle}r{c.replans}-", replan_of=rec)
        except ActivityError as err:
            rec.reason += f" (re-planning failed: {failure_message(err)})"
            self._cycle_failed(f"re-plan of {rec.task.key}: {failure_message(err)}")
            return
        if not plan.tasks:
            rec.reason += " (the planner proposed no replacement)"
            return
        task = plan.tasks[0].model_copy(update={"depends_on": []})
        rec.replaced_by = task.key
        c.tasks[task.key] = TaskRecord(
            task_id=task_id_for(spec.tenant_id, spec.campaign_id, task.key),
            task=task,
            cycle=c.cycle,
            attempt=rec.attempt + 1,
        )

    async def _drain_for_completion(self) -> bool:
        """After the last cycle, wait for running tasks and owed re-plans (not for human reviews)."""
        c = self.campaign
        if not c.deferred_replans and not c.mention_inbox and not any(r.status == "running" for r in c.tasks.values()):
            return True
        self._details("last cycle done: waiting for running tasks")
        await workflow.wait_condition(
            lambda: bool(c.inbox or c.audit_outbox or c.deferred_replans or c.mention_inbox) or c.state != "running"
        )
        await self._handle_inbox()
        return False

    async def _finish(self) -> None:
        """The campaign ends: stopped by an operator, or done with its last cycle."""
        if self._stopped():
            await self._stop_everything()
        else:
            self.campaign.state = "completed"
            self._cancel_unstartable("the campaign reached its last cycle")
        self._publish_attributes()
        await self._flush_audit()
        self._details()

    async def _stop_everything(self) -> None:
        """Persist the stop first (publishing checks it), then tell every live task."""
        req = self.campaign.stop_request
        assert req is not None
        self._audit("emergency_stop", req.actor, {"reason": req.reason, "request_id": req.request_id}, "stopped")
        await self._flush_audit()
        for rec in self.campaign.tasks.values():
            if rec.status in ("running", "pending_review"):
                handle = workflow.get_external_workflow_handle(rec.task_id)
                with contextlib.suppress(ApplicationError):  # the task may have ended meanwhile
                    await handle.signal("stop", req)
                rec.status, rec.reason = "cancelled", f"emergency stop: {req.reason}"
            elif rec.status == "planned":
                rec.status, rec.reason = "cancelled", f"emergency stop: {req.reason}"
        workflow.logger.warning("campaign %s stopped by %s: %s", self.spec.campaign_id, req.actor, req.reason)

    async def _continue_as_new(self) -> None:
        # Nothing received may be lost: settle every update and audit entry before handing over.
        while self.campaign.inbox or self.campaign.audit_outbox:
            await self._handle_inbox()
            await self._flush_audit()
        await workflow.wait_condition(workflow.all_handlers_finished)
        views.prune_for_handover(self.campaign)
        self.campaign.runs += 1
        self.campaign.published_attributes = None  # the next run states them again
        workflow.continue_as_new(self.inp.model_copy(update={"carried": self.campaign}))

    # --- signals and queries -----------------------------------------------------------

    # Each change a person sends is authorized first (workflows/access.py): the handlers are async for that
    # one activity call, and what they apply carries the verified actor.

    @workflow.signal
    async def pause(self, req: ControlRequest) -> None:
        checked = await self._verified(req, "campaign.pause")
        if checked is None or self._refuse_if_stopped(req.request_id):
            return
        req = checked
        if self.campaign.state == "paused":
            self._ack(req.request_id, False, f"already paused by {self.campaign.paused_by}")
            return
        self.campaign.state, self.campaign.paused_by = "paused", req.actor
        self._audit("pause", req.actor, {"reason": req.reason}, "paused")
        self._ack(req.request_id, True, "campaign paused: no new task starts until resume")

    @workflow.signal
    async def resume(self, req: ControlRequest) -> None:
        checked = await self._verified(req, "campaign.resume")
        if checked is None or self._refuse_if_stopped(req.request_id):
            return
        req = checked
        if self.campaign.state != "paused":
            self._ack(req.request_id, False, "campaign is not paused")
            return
        self.campaign.state, self.campaign.paused_by = "running", None
        self._audit("resume", req.actor, {"reason": req.reason}, "running")
        self._ack(req.request_id, True, "campaign resumed")

    @workflow.signal
    async def set_budget(self, req: BudgetChange) -> None:
        checked = await self._verified(req, "campaign.budget")
        if checked is None or self._refuse_if_stopped(req.request_id):
            return
        req = checked
        old, self.campaign.daily_budget_usd = self.campaign.daily_budget_usd, req.daily_budget_usd
        self._audit("budget", req.actor, {"from_usd": old, "to_usd": req.daily_budget_usd})
        self._ack(req.request_id, True, f"daily budget set to ${req.daily_budget_usd:.2f} (was ${old:.2f})")

    @workflow.signal
    async def set_goals(self, req: GoalsChange) -> None:
        checked = await self._verified(req, "campaign.goals")
        if checked is None or self._refuse_if_stopped(req.request_id):
            return
        req = checked
        goals = [g.strip() for g in req.goals if g.strip()]
        if not goals:
            self._ack(req.request_id, False, "goals must not be blank")
            return
        self.campaign.goals, self.campaign.goals_changed = goals, True
        self._audit("goals", req.actor, {"goals": goals})
        self._ack(req.request_id, True, f"{len(goals)} goal(s) set; re-planning now")

    @workflow.signal
    async def emergency_stop(self, req: EmergencyStop) -> None:
        checked = await self._verified(req, "campaign.stop")
        if checked is None or self._refuse_if_stopped(req.request_id):
            return
        c = self.campaign
        c.state, c.stop_request = "stopped", checked
        self._ack(req.request_id, True, f"emergency stop accepted: {req.reason}")

    @workflow.signal
    async def scope_stop(self, req: ScopeStop) -> None:
        """A stop of this campaign's agent, its tenant or the fleet (sent by ScopeStopWorkflow, signed by a person)."""
        if self._refuse_if_stopped(req.request_id):
            return
        if req.lift or not req.covers(self.spec.tenant_id, self.spec.agent_id):
            self._ack(req.request_id, False, f"{req.target} does not cover this campaign")
            return
        checked = await self._verified(req, req.action, target=req.target, tenant_id=req.tenant_id)
        if checked is None or self._refuse_if_stopped(req.request_id):
            return
        c = self.campaign
        reason = f"{req.target} stopped: {req.reason}"
        c.state = "stopped"
        c.stop_request = EmergencyStop(request_id=req.request_id, actor=checked.actor, reason=reason)
        self._ack(req.request_id, True, f"stop accepted: {reason}")

    @workflow.signal
    def task_update(self, update: TaskUpdate) -> None:
        self.campaign.inbox.append(update.outcome)

    @workflow.signal
    def mention(self, delivery: MentionDelivery) -> None:
        """A mention pushed by the ingress (a platform webhook): planned at once by the run loop."""
        c, m = self.campaign, delivery.mention
        if c.state in ("stopped", "completed"):
            workflow.logger.info("campaign %s is %s: mention %s not answered", self.spec.campaign_id, c.state, m.id)
            return
        if m.platform not in self.spec.platforms:
            workflow.logger.warning(
                "campaign %s does not run on %s: mention %s", self.spec.campaign_id, m.platform, m.id
            )
            return
        in_hand = any(d.mention.id == m.id for d in c.mention_inbox) or any(
            r.task.mention is not None and r.task.mention.id == m.id for r in c.tasks.values()
        )
        if in_hand:
            return  # a repeat, or polling found it first: one reply per mention
        c.mentions_received += 1
        c.mention_inbox.append(delivery)

    @workflow.query
    def status(self) -> CampaignStatus:
        return views.status(self.spec, self.campaign)

    @workflow.query
    def ack(self, query: AckQuery) -> Ack | None:
        return self.campaign.acks.get(query.request_id)

    # --- helpers -------------------------------------------------------------------------

    async def _verified(
        self, req: R, action: Action, *, target: str | None = None, tenant_id: str | None = ""
    ) -> R | None:
        """The request with its verified actor, or None when refused (the ack says why) or already answered.
        `target` defaults to this campaign; `tenant_id` to its tenant (None: the fleet)."""
        if req.request_id in self.campaign.acks:
            return None  # a re-sent signal: the first answer stands
        if not workflow.patched(SIGNED_REQUESTS):
            return req
        spec = self.spec
        auth = await authorize_in_order(  # the caller applies it before it next awaits: the next sees it applied
            self._requests,
            req,
            req.request_id,
            action,
            target=target or workflow.info().workflow_id,
            tenant_id=spec.tenant_id if tenant_id == "" else tenant_id,
            agent_id=spec.agent_id,
            runtime=self.inp.runtime,
        )
        if req.request_id in self.campaign.acks:
            return None  # answered while this one was being checked
        if not auth.allowed:
            self._ack(req.request_id, False, auth.reason)
            return None
        return req.model_copy(update={"actor": auth.actor})

    def _owe_engagement(self, rec: TaskRecord, outcome: TaskOutcome) -> None:
        """A published post's engagement is read later, by the Judge's reflection."""
        if not self._learns or outcome.status != "published" or rec.task.task_type != "post" or not outcome.post_id:
            return
        post = PublishedPost(
            task_id=rec.task_id,
            key=rec.task.key,
            platform=rec.task.platform,
            post_id=outcome.post_id,
            text=outcome.text or "",
            published_at=workflow.now().isoformat(),
            topic=rec.task.topic,
        )
        self.campaign.to_measure = [*self.campaign.to_measure, post][-MAX_TO_MEASURE:]

    def _stopped(self) -> bool:
        # A method, not an inline comparison: signal handlers change the state between awaits.
        return self.campaign.state == "stopped"

    def _cycle_due(self) -> bool:
        c = self.campaign
        return c.next_cycle_at is None or c.goals_changed or workflow.now() >= c.next_cycle_at

    def _until_next_cycle(self) -> timedelta | None:
        """Until the next cycle, or the next look at the news when that comes first."""
        c = self.campaign
        wakes = [c.next_cycle_at]
        if self._learns and c.state == "running" and self.spec.news.enabled():
            wakes.append(c.next_news_check_at)
        due = [w for w in wakes if w is not None]
        return min(due) - workflow.now() if due else None

    def _resolve(self, key: str) -> TaskRecord | None:
        """Follow re-plans: a dependency on a rejected task means its replacement."""
        tasks = self.campaign.tasks
        rec = tasks.get(key)
        seen: set[str] = set()
        while rec is not None and rec.replaced_by and rec.replaced_by not in seen:
            seen.add(rec.replaced_by)
            rec = tasks.get(rec.replaced_by)
        return rec

    def _cancel_unstartable(self, reason: str) -> None:
        for rec in self.campaign.tasks.values():
            if rec.status == "planned":
                rec.status, rec.reason = "cancelled", reason

    async def _flush_audit(self) -> None:
        outbox = self.campaign.audit_outbox
        while outbox:
            entry = outbox.pop(0)
            await run_activity(Activities.record_control, entry, self.inp.runtime, f"audit {entry.action}")

    def _audit(
        self, action: str, actor: str, detail: dict[str, str | float | list[str]], status: CampaignState | None = None
    ) -> None:
        self.campaign.audit_outbox.append(
            ControlAudit(
                tenant_id=self.spec.tenant_id,
                campaign_id=self.spec.campaign_id,
                agent_id=self.spec.agent_id,
                action=action,
                actor=actor,
                detail=detail,
                campaign_status=status,
            )
        )

    def _refuse_if_stopped(self, request_id: str) -> bool:
        c = self.campaign
        if request_id in c.acks:
            return True  # a re-sent signal: the first answer stands
        if c.state in ("stopped", "completed"):
            self._ack(request_id, False, f"campaign is {c.state}" + (f": {c.stop_reason}" if c.stop_reason else ""))
            return True
        return False

    def _ack(self, request_id: str, accepted: bool, message: str) -> None:
        self.campaign.acks[request_id] = Ack(request_id=request_id, accepted=accepted, message=message)

    def _publish_attributes(self) -> None:
        """Upsert CampaignState/CampaignCycle when they changed, so listings read them from visibility."""
        c = self.campaign
        if c.published_attributes == (c.state, c.cycle) or not workflow.patched(STATE_ATTRIBUTES_PATCH):
            return
        workflow.upsert_search_attributes(build.campaign_state_attributes(c))
        c.published_attributes = (c.state, c.cycle)

    def _cycle_failed(self, why: str) -> None:
        """Record and alert (the audit log, the worker log, the UI details); the next cycle tries again."""
        errors = self.campaign.cycle_errors
        errors.append(why)
        del errors[:-MAX_CYCLE_ERRORS]
        self._audit("cycle_failed", "system", {"error": why})
        workflow.logger.error("campaign %s: %s; trying again at the next cycle", self.spec.campaign_id, why)
        self._details(f"failed: {why}")

    def _details(self, headline: str | None = None) -> None:
        workflow.set_current_details(views.details(self.spec, self.campaign, headline))
