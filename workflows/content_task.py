"""ContentTaskWorkflow: one task from budget reservation to a published post (or a clear no).

reserve -> execute -> judge -> (human review) -> commit -> publish -> settle -> record the outcome.
Its search attributes (ReviewState, Confidence, ...) make the review queue an operator filters in
the UI.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.activity_table import Activities, Failure
    from schemas.events import EmergencyStop, TaskUpdate
    from schemas.policy import Verdict, decide
    from schemas.review import Ack, AckQuery, ReviewDecision, ReviewState, ReviewView
    from schemas.task import ContentTaskInput, Reservation, TaskOutcome, TaskResult, TaskStatus

from workflows import search_attributes as sa
from workflows import task_inputs as build
from workflows.access import SIGNED_REQUESTS, InOrder, authorize_in_order
from workflows.calls import failure_message, failure_type, run_activity, start_activity

DECIDED: dict[str, ReviewState] = {"approve": "approved", "edit": "edited", "reject": "rejected"}
# workflow.patched() ids. Tasks judged before the id existed keep their recorded path on replay.
AUDIT_VERDICT_AS_DECIDED = "audit-verdict-as-decided"
JUDGE_HUMAN_EDITS = "judge-human-edits"


class _Ended(Exception):
    """A step ended the task early (rejected, expired, stopped, no budget); carries the outcome."""

    def __init__(self, outcome: TaskOutcome) -> None:
        super().__init__(outcome.status)
        self.outcome = outcome


@workflow.defn
class ContentTaskWorkflow:
    @workflow.init
    def __init__(self, inp: ContentTaskInput) -> None:
        self._inp = inp  # known before any signal is handled
        self._stage = "starting"
        self._reservation: Reservation | None = None
        self._result: TaskResult | None = None
        self._verdict: Verdict | None = None
        self._review_state: ReviewState = "none"
        self._deadline: str | None = None
        self._decision: ReviewDecision | None = None
        self._acks: dict[str, Ack] = {}
        self._stop: EmergencyStop | None = None
        self._judges_edits = False  # set in run (a patch): an edit is judged before it is accepted
        self._requests = InOrder()  # decisions being authorized, applied in the order they arrived
        self._final: TaskOutcome | None = None  # how the task ended, for the review query

    @workflow.run
    async def run(self, inp: ContentTaskInput) -> TaskOutcome:
        self._judges_edits = workflow.patched(JUDGE_HUMAN_EDITS)
        try:
            await self._reserve_budget()
            draft = await self._execute()
            verdict = await self._judge(draft)
            text = await self._review(draft, verdict)
            await self._commit(draft, verdict, text)
            outcome = await self._publish(draft, text)
        except _Ended as ended:
            outcome = ended.outcome
        except ActivityError as err:
            outcome = self._failed(err)
        self._final = outcome  # the review query shows it from now on (no command: replay-safe)
        outcome = await self._settle(outcome)
        await self._record_outcome(outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)  # a decision being authorized is answered
        return outcome

    # --- the steps, in order -------------------------------------------------------------

    async def _reserve_budget(self) -> None:
        self._details("reserving budget")
        reservation = await run_activity(
            Activities.reserve_budget,
            build.budget_request(self._inp),
            self._inp.runtime,
            f"reserve budget for a {self._inp.task.task_type}",
        )
        if not reservation.ok:
            raise _Ended(self._outcome("budget_exhausted", reservation.reason, reservation=reservation))
        self._reservation = reservation

    async def _execute(self) -> TaskResult:
        """Write the draft (model + tools); an emergency stop abandons the activity at once."""
        self._details(f"writing: {self._inp.task.brief}")
        handle = start_activity(Activities.execute_task, self._inp, self._inp.runtime, f"write: {self._inp.task.brief}")
        await workflow.wait_condition(lambda: handle.done() or self._stop is not None)
        if not handle.done():
            handle.cancel()
            self._raise_if_stopped()
        self._result = handle.result()
        return self._result

    async def _judge(self, draft: TaskResult) -> Verdict:
        """Score the draft, decide by the campaign's bands, and audit exactly that decision."""
        self._details("judging the draft")
        audited_here = workflow.patched(AUDIT_VERDICT_AS_DECIDED)
        scores = await run_activity(
            Activities.judge_result,
            build.judge_input(self._inp, draft, audited_by_workflow=audited_here),
            self._inp.runtime,
            "score confidence and safety",
        )
        verdict = self._verdict = decide(scores, self._inp.judge)
        if audited_here:
            await run_activity(
                Activities.record_verdict,
                build.verdict_record(self._inp, verdict),
                self._inp.runtime,
                f"audit verdict: {verdict.decision}",
            )
        workflow.upsert_search_attributes([sa.CONFIDENCE.value_set(verdict.confidence)])
        self._details(f"judged **{verdict.decision}** at confidence {verdict.confidence:.2f}")
        return verdict

    async def _review(self, draft: TaskResult, verdict: Verdict) -> str:
        """The text to publish: the draft when approved, a human's decision when escalated."""
        if verdict.decision == "reject":
            raise _Ended(self._outcome("rejected", verdict.reasons[-1], replan=True))
        if verdict.decision == "approve":
            return draft.text
        return await self._await_human(draft, verdict)

    async def _commit(self, draft: TaskResult, verdict: Verdict, text: str) -> None:
        """Optimistic concurrency on what the draft read; a conflict re-plans instead of retrying."""
        self._raise_if_stopped()
        actor = self._decision.reviewer if self._decision else "judge"
        try:
            await run_activity(
                Activities.commit_result,
                build.commit_input(self._inp, draft, verdict, text, actor),
                self._inp.runtime,
                "commit with optimistic concurrency",
            )
        except ActivityError as err:
            if failure_type(err) == Failure.STATE_CONFLICT:
                raise _Ended(self._outcome("rejected", f"state conflict: {failure_message(err)}", replan=True)) from err
            raise

    async def _publish(self, draft: TaskResult, text: str) -> TaskOutcome:
        self._raise_if_stopped()
        self._details("publishing")
        published = await run_activity(
            Activities.publish,
            build.publish_input(self._inp, draft, text),
            self._inp.runtime,
            f"publish to {self._inp.task.platform}",
        )
        return self._outcome("published", "", post_id=published.post_id, url=published.url, text=text)

    async def _settle(self, outcome: TaskOutcome) -> TaskOutcome:
        """Replace the reservation by the actual cost (nothing to settle when none was made)."""
        if self._reservation is None:
            return outcome
        actual = self._result.usage.cost_usd if self._result else 0.0
        settled = await run_activity(
            Activities.settle_budget,
            build.settle_request(self._inp, actual),
            self._inp.runtime,
            f"settle ${actual:.4f}",
        )
        return outcome.model_copy(
            update={"cost_usd": actual, "spend_day": settled.day, "spent_today_usd": settled.spent_today_usd}
        )

    async def _record_outcome(self, outcome: TaskOutcome) -> None:
        """Close a review the task no longer waits for, learn from the outcome, tell the campaign."""
        if outcome.status != "published" and self._review_state == "pending":
            await self._set_review_state("cancelled")
            await self._record_review("cancelled", reason=outcome.reason)
        await run_activity(
            Activities.record_outcome,
            build.outcome_record(self._inp, outcome, human_decided=self._decision is not None),
            self._inp.runtime,
            f"record outcome: {outcome.status}",
        )
        await self._tell_campaign(outcome)
        self._details(f"**{outcome.status}**" + (f": {outcome.reason}" if outcome.reason else ""))

    # --- human review --------------------------------------------------------------------

    async def _await_human(self, draft: TaskResult, verdict: Verdict) -> str:
        """Wait for a reviewer until the deadline; an expiry or a rejection ends the task."""
        deadline = workflow.now() + timedelta(seconds=self._inp.review_deadline_seconds)
        self._deadline = deadline.isoformat()
        await self._record_review("pending")
        await self._set_review_state("pending")
        await self._tell_campaign(self._outcome("pending_review", verdict.reasons[-1]))
        self._details(f"waiting for a reviewer until {self._deadline}")
        wait = timedelta(seconds=self._inp.review_deadline_seconds)
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self._decision is not None or self._stop is not None,
                    timeout=wait,
                    timeout_summary="review deadline",
                )
            except TimeoutError:
                await self._set_review_state("expired")
                await self._record_review("expired", reason="review expired")
                raise _Ended(self._outcome("rejected", "review expired")) from None
            self._raise_if_stopped()
            decision = self._decision
            assert decision is not None
            if not (self._judges_edits and decision.action == "edit") or await self._edit_passes(draft, decision):
                break
            self._decision = None  # blocked: the review stays open until the same deadline
            wait = max(deadline - workflow.now(), timedelta(seconds=1))
        state = DECIDED[decision.action]
        await self._set_review_state(state)
        await self._record_review(
            state, reason=decision.reason, reviewer=decision.reviewer, edited=decision.text, override=decision.override
        )
        if decision.action == "reject":
            raise _Ended(self._outcome("rejected", f"rejected by {decision.reviewer}: {decision.reason}", replan=True))
        if decision.action == "edit" and decision.text:
            return decision.text
        return draft.text

    async def _edit_passes(self, draft: TaskResult, decision: ReviewDecision) -> bool:
        """A reviewer's edit passes every check before it is accepted. A high-risk flag blocks it, and the ack
        says why, unless the reviewer overrides it (an explicit flag and a reason, audited with the review)."""
        assert decision.text is not None
        edited = draft.model_copy(update={"text": decision.text})
        scores = await run_activity(
            Activities.judge_result,
            build.judge_input(self._inp, edited, audited_by_workflow=True),
            self._inp.runtime,
            f"judge the edit by {decision.reviewer}",
        )
        verdict = decide(scores, self._inp.judge)
        await run_activity(
            Activities.record_verdict,
            build.verdict_record(self._inp, verdict),
            self._inp.runtime,
            f"audit the edit's verdict: {verdict.decision}",
        )
        high = [f for f in verdict.flags if f.severity == "high"]
        why = "; ".join(f"{f.rule} ({f.detail})" for f in high)
        if high and not decision.override:
            message = f"edit blocked: high-risk flag {why}; change the text, or pass --override with a reason"
            self._ack(decision.request_id, False, message)
            self._details(f"an edit by {decision.reviewer} was blocked: {why}")
            return False
        note = f" (override of {why})" if high else ""
        self._ack(decision.request_id, True, f"edit by {decision.reviewer} accepted{note}")
        return True

    @workflow.signal
    async def decide(self, decision: ReviewDecision) -> None:
        """A reviewer's approve, edit or reject, once the sender's signature and role are checked (the reviewer
        recorded is the verified one). Refusals are recorded in the ack, not raised."""
        if decision.request_id in self._acks:
            return  # a re-sent signal: the first answer stands
        if workflow.patched(SIGNED_REQUESTS):
            ref = self._inp.ref
            auth = await authorize_in_order(  # the first decision received is the one that counts
                self._requests,
                decision,
                decision.request_id,
                decision.access_action,
                target=workflow.info().workflow_id,
                tenant_id=ref.tenant_id,
                agent_id=ref.agent_id,
                runtime=self._inp.runtime,
            )
            if decision.request_id in self._acks:
                return  # answered while this one was being checked
            if not auth.allowed:
                self._ack(decision.request_id, False, auth.reason)
                return
            decision = decision.model_copy(update={"reviewer": auth.actor})
        if self._stop is not None:
            self._ack(decision.request_id, False, f"campaign stopped: {self._stop.reason}")
        elif self._decision is not None:
            first = self._decision
            self._ack(decision.request_id, False, f"already decided: {DECIDED[first.action]} by {first.reviewer}")
        elif self._review_state != "pending":
            self._ack(decision.request_id, False, self._not_pending_message())
        else:
            self._decision = decision
            if not (self._judges_edits and decision.action == "edit"):  # an edit is acked once it is judged
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
        inp, result, decision, final = self._inp, self._result, self._decision, self._final
        return ReviewView(
            task_id=inp.ref.task_id,
            campaign_id=inp.ref.campaign_id,
            platform=inp.task.platform,
            task_type=inp.task.task_type,
            brief=inp.task.brief,
            text=result.text if result else "",
            state=self._review_state,
            deadline=self._deadline,
            verdict=self._verdict,
            mention=inp.task.mention,
            reviewer=decision.reviewer if decision else None,
            reason=decision.reason if decision else None,
            media_ids=result.media_ids if result else [],
            tools_used=[f"{c.server}.{c.tool}" for c in result.tool_calls] if result else [],
            memories_used=result.memories_used if result else [],
            memories_cited=result.memories_cited if result else [],
            outcome_status=final.status if final else None,
            outcome_reason=final.reason if final else None,
            post_id=final.post_id if final else None,
            post_url=final.url if final else None,
        )

    # --- helpers -------------------------------------------------------------------------

    def _failed(self, err: ActivityError) -> TaskOutcome:
        """A step gave up. Re-planned, unless the goal is met already (the mention has a reply)."""
        if failure_type(err) == Failure.ALREADY_DONE:
            return self._outcome("cancelled", f"nothing left to do: {failure_message(err)}")
        return self._outcome("failed", failure_message(err), replan=True)

    def _raise_if_stopped(self) -> None:
        """The one check for an emergency stop: the task ends cancelled, nothing more is done."""
        if self._stop is not None:
            raise _Ended(self._outcome("cancelled", f"emergency stop: {self._stop.reason}"))

    async def _record_review(
        self,
        state: ReviewState,
        *,
        reason: str | None = None,
        reviewer: str | None = None,
        edited: str | None = None,
        override: bool = False,
    ) -> None:
        assert self._result is not None and self._verdict is not None
        record = build.review_record(
            self._inp, self._result, self._verdict, state, self._deadline, reason, reviewer, edited, override
        )
        await run_activity(Activities.record_review, record, self._inp.runtime, f"review {state}")

    async def _set_review_state(self, state: ReviewState) -> None:
        self._review_state = state
        workflow.upsert_search_attributes([sa.REVIEW_STATE.value_set(state)])

    async def _tell_campaign(self, outcome: TaskOutcome) -> None:
        parent = workflow.get_external_workflow_handle(self._inp.ref.campaign_workflow_id)
        try:
            await parent.signal("task_update", TaskUpdate(outcome=outcome))
        except ApplicationError:
            # The campaign has ended (bounded demo run, or stopped): nobody is waiting.
            workflow.logger.info("campaign %s no longer running", self._inp.ref.campaign_workflow_id)

    def _outcome(
        self,
        status: TaskStatus,
        reason: str,
        *,
        post_id: str | None = None,
        url: str | None = None,
        text: str | None = None,
        reservation: Reservation | None = None,
        replan: bool = False,
    ) -> TaskOutcome:
        return TaskOutcome(
            task_id=self._inp.ref.task_id,
            key=self._inp.task.key,
            attempt=self._inp.attempt,
            status=status,
            reason=reason,
            confidence=self._verdict.confidence if self._verdict else None,
            decision=self._verdict.decision if self._verdict else None,
            post_id=post_id,
            url=url,
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
