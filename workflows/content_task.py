"""ContentTaskWorkflow: one task from budget reservation to a published post (or a clear no).

reserve -> execute -> judge -> (human review) -> commit -> publish -> settle. Its search
attributes (ReviewState, Confidence, ...) make the review queue an operator filters in the UI.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.events import EmergencyStop, TaskUpdate
    from schemas.policy import JudgeScores, Verdict, decide
    from schemas.review import Ack, AckQuery, ReviewDecision, ReviewRecord, ReviewState, ReviewView
    from schemas.task import (
        BudgetRequest,
        CommitInput,
        CommitResult,
        ContentTaskInput,
        JudgeInput,
        OutcomeRecord,
        PublishInput,
        PublishResult,
        Reservation,
        SettleRequest,
        TaskOutcome,
        TaskResult,
        TaskStatus,
    )

from workflows import search_attributes as sa
from workflows.calls import run_activity, start_activity

DECIDED: dict[str, ReviewState] = {"approve": "approved", "edit": "edited", "reject": "rejected"}


class _Stopped(Exception):
    """Raised inside the workflow when an emergency stop arrives; never leaves it."""


@workflow.defn
class ContentTaskWorkflow:
    @workflow.init
    def __init__(self, inp: ContentTaskInput) -> None:
        self._inp: ContentTaskInput | None = inp  # known before any signal is handled
        self._stage = "starting"
        self._review_state: ReviewState = "none"
        self._deadline: str | None = None
        self._decision: ReviewDecision | None = None
        self._acks: dict[str, Ack] = {}
        self._stop: EmergencyStop | None = None
        self._result: TaskResult | None = None
        self._verdict: Verdict | None = None

    # --- signals and queries -------------------------------------------------------------

    @workflow.signal
    def decide(self, decision: ReviewDecision) -> None:
        """A reviewer's approve, edit or reject. Refusals are recorded in the ack, not raised."""
        if decision.request_id in self._acks:
            return  # a re-sent signal: the first answer stands
        if self._stop is not None:
            self._ack(decision.request_id, False, f"campaign stopped: {self._stop.reason}")
        elif self._decision is not None:
            first = self._decision
            self._ack(decision.request_id, False, f"already decided: {DECIDED[first.action]} by {first.reviewer}")
        elif self._review_state != "pending":
            self._ack(decision.request_id, False, self._not_pending_message())
        else:
            self._decision = decision
            self._ack(decision.request_id, True, f"{decision.action} by {decision.reviewer} accepted")

    @workflow.signal
    def stop(self, request: EmergencyStop) -> None:
        if self._stop is None:
            self._stop = request

    @workflow.query
    def ack(self, query: AckQuery) -> Ack | None:
        return self._acks.get(query.request_id)

    @workflow.query
    def review(self) -> ReviewView:
        inp = self._require_input()
        return ReviewView(
            task_id=inp.ref.task_id,
            campaign_id=inp.ref.campaign_id,
            platform=inp.task.platform,
            task_type=inp.task.task_type,
            brief=inp.task.brief,
            text=self._result.text if self._result else "",
            state=self._review_state,
            deadline=self._deadline,
            verdict=self._verdict,
            mention=inp.task.mention,
            reviewer=self._decision.reviewer if self._decision else None,
            reason=self._decision.reason if self._decision else None,
            media_ids=self._result.media_ids if self._result else [],
            tools_used=[f"{c.server}.{c.tool}" for c in self._result.tool_calls] if self._result else [],
        )

    # --- the run -----------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: ContentTaskInput) -> TaskOutcome:
        outcome = await self._work(inp)
        if outcome.status != "published" and self._review_state == "pending":
            await self._set_review_state("cancelled")
            await self._record_review("cancelled", reason=outcome.reason)
        await run_activity(
            inp.runtime,
            "record_outcome",
            "judge",
            OutcomeRecord(
                ref=inp.ref,
                task_type=inp.task.task_type,
                platform=inp.task.platform,
                outcome=outcome,
                human_decided=self._decision is not None,
            ),
            type(None),
            f"record outcome: {outcome.status}",
        )
        await self._tell_campaign(outcome)
        self._details(f"**{outcome.status}**" + (f": {outcome.reason}" if outcome.reason else ""))
        return outcome

    async def _work(self, inp: ContentTaskInput) -> TaskOutcome:
        rt = inp.runtime
        self._details("reserving budget")
        reservation = await run_activity(
            rt,
            "reserve_budget",
            "planner",
            BudgetRequest(
                ref=inp.ref,
                task_type=inp.task.task_type,
                daily_budget_usd=inp.daily_budget_usd,
                timezone=inp.timezone,
            ),
            Reservation,
            f"reserve budget for a {inp.task.task_type}",
        )
        if not reservation.ok:
            return self._outcome("budget_exhausted", reservation.reason, reservation=reservation)
        try:
            outcome = await self._execute_to_publish(inp)
        except _Stopped:
            outcome = self._outcome("cancelled", f"emergency stop: {self._stop.reason if self._stop else ''}")
        except ActivityError as err:
            outcome = self._outcome("failed", _cause(err), replan=True)
        actual = self._result.usage.cost_usd if self._result else 0.0
        settled = await run_activity(
            rt,
            "settle_budget",
            "planner",
            SettleRequest(ref=inp.ref, actual_usd=actual, timezone=inp.timezone),
            Reservation,
            f"settle ${actual:.4f}",
        )
        return outcome.model_copy(
            update={"cost_usd": actual, "spend_day": settled.day, "spent_today_usd": settled.spent_today_usd}
        )

    async def _execute_to_publish(self, inp: ContentTaskInput) -> TaskOutcome:
        rt = inp.runtime
        self._details(f"writing: {inp.task.brief}")
        self._result = await self._unless_stopped(
            start_activity(rt, "execute_task", "worker", inp, TaskResult, f"write: {inp.task.brief}")
        )
        self._details("judging the draft")
        scores = await run_activity(
            rt,
            "judge_result",
            "judge",
            JudgeInput(ref=inp.ref, task=inp.task, persona=inp.persona, result=self._result),
            JudgeScores,
            "score confidence and safety",
        )
        verdict = decide(scores, inp.judge)
        self._verdict = verdict
        workflow.upsert_search_attributes([sa.CONFIDENCE.value_set(verdict.confidence)])
        self._details(f"judged **{verdict.decision}** at confidence {verdict.confidence:.2f}")
        text = self._result.text
        if verdict.decision == "reject":
            return self._outcome("rejected", verdict.reasons[-1], replan=True)
        if verdict.decision == "escalate":
            reviewed = await self._await_review(inp, verdict)
            if isinstance(reviewed, TaskOutcome):
                return reviewed
            text = reviewed
        if self._stop is not None:
            raise _Stopped
        actor = self._decision.reviewer if self._decision else "judge"
        try:
            await run_activity(
                rt,
                "commit_result",
                "judge",
                CommitInput(
                    ref=inp.ref,
                    task_key=inp.task.key,
                    text=text,
                    read_set=self._result.read_set,
                    write_keys=self._result.write_keys,
                    verdict=verdict,
                    actor=actor,
                ),
                CommitResult,
                "commit with optimistic concurrency",
            )
        except ActivityError as err:
            if _error_type(err) == "StateConflict":
                return self._outcome("rejected", f"state conflict: {_cause(err)}", replan=True)
            raise
        if self._stop is not None:
            raise _Stopped
        self._details("publishing")
        published = await run_activity(
            rt,
            "publish",
            "worker",
            PublishInput(
                ref=inp.ref,
                platform=inp.task.platform,
                text=text,
                idempotency_key=inp.ref.task_id,
                reply_to=inp.task.mention.id if inp.task.mention else None,
                media_ids=self._result.media_ids,
            ),
            PublishResult,
            f"publish to {inp.task.platform}",
        )
        return self._outcome("published", "", post_id=published.post_id, text=text)

    async def _await_review(self, inp: ContentTaskInput, verdict: Verdict) -> str | TaskOutcome:
        """Wait for a human until the deadline; returns the text to publish or the final outcome."""
        assert self._result is not None
        deadline = workflow.now() + timedelta(seconds=inp.review_deadline_seconds)
        self._deadline = deadline.isoformat()
        await self._record_review("pending")
        await self._set_review_state("pending")
        await self._tell_campaign(self._outcome("pending_review", verdict.reasons[-1]))
        self._details(f"waiting for a reviewer until {self._deadline}")
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None or self._stop is not None,
                timeout=timedelta(seconds=inp.review_deadline_seconds),
                timeout_summary="review deadline",
            )
        except TimeoutError:
            await self._set_review_state("expired")
            await self._record_review("expired", reason="review expired")
            return self._outcome("rejected", "review expired")
        if self._stop is not None:
            raise _Stopped
        decision = self._decision
        assert decision is not None
        state = DECIDED[decision.action]
        await self._set_review_state(state)
        await self._record_review(state, reason=decision.reason, reviewer=decision.reviewer, edited=decision.text)
        if decision.action == "reject":
            return self._outcome("rejected", f"rejected by {decision.reviewer}: {decision.reason}", replan=True)
        if decision.action == "edit" and decision.text:
            return decision.text
        return self._result.text

    # --- helpers -------------------------------------------------------------------------

    async def _unless_stopped(self, handle: workflow.ActivityHandle[TaskResult]) -> TaskResult:
        """Await an activity, abandoning it the moment an emergency stop arrives."""
        await workflow.wait_condition(lambda: handle.done() or self._stop is not None)
        if not handle.done():
            handle.cancel()
            raise _Stopped
        return handle.result()

    async def _record_review(
        self, state: ReviewState, *, reason: str | None = None, reviewer: str | None = None, edited: str | None = None
    ) -> None:
        inp = self._require_input()
        assert self._result is not None and self._verdict is not None
        record = ReviewRecord(
            task_id=inp.ref.task_id,
            tenant_id=inp.ref.tenant_id,
            campaign_id=inp.ref.campaign_id,
            agent_id=inp.ref.agent_id,
            platform=inp.task.platform,
            task_type=inp.task.task_type,
            text=self._result.text,
            verdict=self._verdict,
            state=state,
            deadline=self._deadline or "",
            reviewer=reviewer,
            reason=reason,
            edited_text=edited,
        )
        await run_activity(inp.runtime, "record_review", "judge", record, type(None), f"review {state}")

    async def _set_review_state(self, state: ReviewState) -> None:
        self._review_state = state
        workflow.upsert_search_attributes([sa.REVIEW_STATE.value_set(state)])

    async def _tell_campaign(self, outcome: TaskOutcome) -> None:
        inp = self._require_input()
        parent = workflow.get_external_workflow_handle(inp.ref.campaign_workflow_id)
        try:
            await parent.signal("task_update", TaskUpdate(outcome=outcome))
        except ApplicationError:
            # The campaign has ended (bounded demo run, or stopped): nobody is waiting.
            workflow.logger.info("campaign %s no longer running", inp.ref.campaign_workflow_id)

    def _outcome(
        self,
        status: TaskStatus,
        reason: str,
        *,
        post_id: str | None = None,
        text: str | None = None,
        reservation: Reservation | None = None,
        replan: bool = False,
    ) -> TaskOutcome:
        inp = self._require_input()
        return TaskOutcome(
            task_id=inp.ref.task_id,
            key=inp.task.key,
            attempt=inp.attempt,
            status=status,
            reason=reason,
            confidence=self._verdict.confidence if self._verdict else None,
            decision=self._verdict.decision if self._verdict else None,
            post_id=post_id,
            text=text,
            spend_day=reservation.day if reservation else "",
            spent_today_usd=reservation.spent_today_usd if reservation else None,
            replan=replan,
        )

    def _ack(self, request_id: str, accepted: bool, message: str) -> None:
        self._acks[request_id] = Ack(request_id=request_id, accepted=accepted, message=message)

    def _not_pending_message(self) -> str:
        if self._review_state in ("approved", "edited", "rejected"):
            who = self._decision.reviewer if self._decision else "a reviewer"
            return f"already decided: {self._review_state} by {who}"
        if self._review_state == "expired":
            return "the review expired and the task was rejected"
        return f"not waiting for review (stage: {self._stage})"

    def _details(self, stage: str) -> None:
        self._stage = stage
        inp = self._inp
        if inp is None:
            return
        lines = [
            f"### {inp.task.task_type} on {inp.task.platform} · {inp.ref.task_id}",
            f"**Brief:** {inp.task.brief}",
            f"**Stage:** {stage}",
        ]
        if self._verdict:
            c = self._verdict.components
            lines.append(
                f"**Confidence:** {self._verdict.confidence:.2f} (model {c.model_probability:.2f}, "
                f"persona {c.persona_similarity:.2f}, safety {c.safety:.2f}, history {c.historical_success:.2f})"
            )
            lines.extend(f"- {r}" for r in self._verdict.reasons)
        if self._result:
            lines.append(f"**Draft:** {self._result.text}")
        workflow.set_current_details("\n\n".join(lines))

    def _require_input(self) -> ContentTaskInput:
        if self._inp is None:
            raise ApplicationError("the task has not started yet")
        return self._inp


def _cause(err: ActivityError) -> str:
    cause = err.cause
    return str(cause.message if isinstance(cause, ApplicationError) else cause or err)


def _error_type(err: ActivityError) -> str | None:
    cause = err.cause
    return cause.type if isinstance(cause, ApplicationError) else None
