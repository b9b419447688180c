"""PaymentWorkflow: one payment, from request to a settled ledger entry (or a clear no). specs/payments.md.

prepare (who, how much) -> reserve against the daily caps -> the CFO Judge (approve | escalate to a finance
approver, with a deadline | reject) -> sign and send (idempotency key = the payment id) -> confirmations ->
settle (ledger + audit). Anything that ends it before the send releases the reservation (its ledger status
no longer counts against a cap). The workflow id is the payment id, so one request is one workflow.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.activity_table import Activities, Failure
    from schemas.events import EmergencyStop
    from schemas.payment import (
        AssessRequest,
        CfoVerdict,
        PaymentConfirmation,
        PaymentDecision,
        PaymentEvent,
        PaymentInput,
        PaymentOutcome,
        PaymentSettle,
        PaymentStatus,
        PaymentView,
        Prepared,
        ReserveRequest,
        SendRequest,
        WalletSent,
        cfo_decide,
        display_usdc,
    )
    from schemas.review import Ack, AckQuery

from workflows import search_attributes as sa
from workflows.access import InOrder, authorize_in_order
from workflows.calls import failure_message, failure_type, run_activity

STATUS_POLL_LIMIT = 300  # looks at a sent payment before it is reported failed (about 4.5 hours)
QUICK_LOOKS = 30  # the first looks come every poll_seconds, later ones every minute (a short history)


class _Ended(Exception):
    def __init__(self, status: PaymentStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@workflow.defn
class PaymentWorkflow:
    @workflow.init
    def __init__(self, inp: PaymentInput) -> None:
        self._inp = inp
        self._status: PaymentStatus = "requested"
        self._reason = ""
        self._prepared: Prepared | None = None
        self._verdict: CfoVerdict | None = None
        self._deadline: str | None = None
        self._decision: PaymentDecision | None = None
        self._approver: str | None = None
        self._sent: WalletSent | None = None
        self._stop: EmergencyStop | None = None
        self._acks: dict[str, Ack] = {}
        self._requests = InOrder()

    @workflow.run
    async def run(self, inp: PaymentInput) -> PaymentOutcome:
        workflow.upsert_search_attributes(
            [
                sa.TENANT_ID.value_set(inp.tenant_id),
                sa.CAMPAIGN_ID.value_set(inp.campaign_id),
                sa.AGENT_ID.value_set(inp.agent_id),
            ]
        )
        body = None
        try:
            prepared = await self._prepare()
            await self._reserve(prepared)
            approver = await self._judge(prepared)
            sent = await self._send(prepared)
            body = sent.body
            confirmed = await self._confirm(prepared, sent)
            await run_activity(
                Activities.settle_payment,
                PaymentSettle(
                    inp=inp,
                    prepared=prepared,
                    tx_hash=confirmed.tx_hash,
                    block_number=confirmed.block_number,
                    confirmations=confirmed.confirmations,
                    approved_by=approver,
                ),
                inp.runtime,
                f"settle {display_usdc(prepared.amount_units)}",
            )
            self._set("settled", f"settled in block {confirmed.block_number}")
        except _Ended as ended:
            self._set(ended.status, ended.reason)
        await workflow.wait_condition(workflow.all_handlers_finished)
        p = self._prepared
        return PaymentOutcome(
            payment_id=inp.payment_id,
            status=self._status,
            reason=self._reason,
            amount_units=p.amount_units if p else None,
            to_address=p.to_address if p else None,
            tx_hash=self._sent.tx_hash if self._sent else None,
            approved_by=self._approver,
            body=body,
        )

    # --- the steps, in order -------------------------------------------------------------------------

    async def _prepare(self) -> Prepared:
        self._details("resolving the payee")
        try:
            prepared = await run_activity(Activities.prepare_payment, self._inp, self._inp.runtime, "resolve payee")
        except ActivityError as err:
            raise _Ended("rejected", f"cannot be paid: {failure_message(err)}") from err
        self._prepared = prepared
        return prepared

    async def _reserve(self, prepared: Prepared) -> None:
        self._details(f"reserving {display_usdc(prepared.amount_units)} against the daily caps")
        reservation = await run_activity(
            Activities.reserve_payment,
            ReserveRequest(inp=self._inp, prepared=prepared),
            self._inp.runtime,
            f"reserve {display_usdc(prepared.amount_units)}",
        )
        if not reservation.ok:
            raise _Ended("refused", reservation.reason)
        self._status = "reserved"

    async def _judge(self, prepared: Prepared) -> str:
        """The CFO Judge's decision; an escalation waits for a finance approver. Returns who approved."""
        self._details("the CFO Judge is assessing the payment")
        assessment = await run_activity(
            Activities.assess_payment,
            AssessRequest(inp=self._inp, prepared=prepared),
            self._inp.runtime,
            "CFO: caps, allowlist, history, purpose",
        )
        verdict = self._verdict = cfo_decide(assessment)
        reasons = "; ".join(verdict.reasons)
        if verdict.decision == "reject":
            await self._record("rejected", "cfo", reasons)
            raise _Ended("rejected", reasons)
        if verdict.decision == "approve":
            await self._end_if_stopped()
            await self._record("approved", "cfo", reasons)
            self._approver = "cfo"
            return "cfo"
        return await self._await_approver(prepared, reasons)

    async def _await_approver(self, prepared: Prepared, reasons: str) -> str:
        seconds = prepared.policy.approval_deadline_seconds
        self._deadline = (workflow.now() + timedelta(seconds=seconds)).isoformat()
        await self._record("pending_approval", "cfo", reasons)
        self._details(f"waiting for a finance approver until {self._deadline}: {reasons}")
        try:
            await workflow.wait_condition(
                lambda: self._decision is not None or self._stop is not None,
                timeout=timedelta(seconds=seconds),
                timeout_summary="finance approval deadline",
            )
        except TimeoutError:
            await self._record("expired", "cfo", "no finance approver decided before the deadline")
            raise _Ended("expired", "no finance approver decided before the deadline") from None
        await self._end_if_stopped()
        decision = self._decision
        assert decision is not None
        who = decision.approver
        if decision.action == "reject":
            await self._record("rejected", who, f"rejected by {who}: {decision.reason}")
            raise _Ended("rejected", f"rejected by {who}: {decision.reason}")
        await self._record("approved", who, f"approved by {who}: {decision.reason}")
        self._approver = who
        return who

    async def _send(self, prepared: Prepared) -> WalletSent:
        await self._end_if_stopped()
        self._details(f"signing and sending {display_usdc(prepared.amount_units)} to {prepared.counterparty}")
        try:
            sent = await run_activity(
                Activities.send_payment,
                SendRequest(inp=self._inp, prepared=prepared),
                self._inp.runtime,
                f"send {display_usdc(prepared.amount_units)} to {prepared.counterparty}",
            )
        except ActivityError as err:
            status: PaymentStatus = "cancelled" if failure_type(err) == Failure.CAMPAIGN_STOPPED else "failed"
            await self._record(status, "cfo", failure_message(err))
            raise _Ended(status, failure_message(err)) from err
        self._sent = sent
        await self._record("sent", "cfo", f"broadcast {sent.tx_hash}", tx_hash=sent.tx_hash)
        return sent

    async def _confirm(self, prepared: Prepared, sent: WalletSent) -> PaymentConfirmation:
        """Wait until the chain has confirmed the payment `confirmations` times (a revert fails it)."""
        want = prepared.policy.confirmations
        request = SendRequest(inp=self._inp, prepared=prepared)
        for look in range(STATUS_POLL_LIMIT):
            self._details(f"waiting for {want} confirmation(s) of {sent.tx_hash}")
            seen = await run_activity(Activities.payment_status, request, self._inp.runtime, "confirmations")
            if seen.status == "failed":
                await self._record("failed", "cfo", f"reverted on chain ({seen.tx_hash})", tx_hash=seen.tx_hash)
                raise _Ended("failed", f"reverted on chain ({seen.tx_hash})")
            if seen.status == "confirmed" and seen.confirmations >= want:
                return seen
            await workflow.sleep(timedelta(seconds=self._inp.poll_seconds if look < QUICK_LOOKS else 60))
        await self._record("failed", "cfo", f"not confirmed after {STATUS_POLL_LIMIT} looks", tx_hash=sent.tx_hash)
        raise _Ended("failed", f"not confirmed after {STATUS_POLL_LIMIT} looks")

    # --- signals and queries ------------------------------------------------------------------------------

    @workflow.signal
    async def decide(self, decision: PaymentDecision) -> None:
        """A finance approver's approve or reject, once the signature and the role are checked."""
        if decision.request_id in self._acks:
            return
        auth = await authorize_in_order(
            self._requests,
            decision,
            decision.request_id,
            decision.access_action,
            target=workflow.info().workflow_id,
            tenant_id=self._inp.tenant_id,
            agent_id=self._inp.agent_id,
            runtime=self._inp.runtime,
        )
        if decision.request_id in self._acks:
            return
        if not auth.allowed:
            self._ack(decision.request_id, False, auth.reason)
        elif self._decision is not None:
            first = self._decision
            self._ack(decision.request_id, False, f"already decided: {first.action} by {first.approver}")
        elif self._status != "pending_approval":
            self._ack(decision.request_id, False, f"not waiting for approval (status: {self._status})")
        elif auth.actor == self._inp.requested_by:
            self._ack(decision.request_id, False, f"{auth.actor} requested this payment and cannot also approve it")
        else:
            self._decision = decision.model_copy(update={"approver": auth.actor})
            self._ack(decision.request_id, True, f"{decision.action} by {auth.actor} accepted")

    @workflow.signal
    def stop(self, request: EmergencyStop) -> None:
        if self._stop is None:
            self._stop = request

    @workflow.query
    def ack(self, query: AckQuery) -> Ack | None:
        return self._acks.get(query.request_id)

    @workflow.query
    def payment(self) -> PaymentView:
        inp, p = self._inp, self._prepared
        return PaymentView(
            payment_id=inp.payment_id,
            campaign_id=inp.campaign_id,
            agent_id=inp.agent_id,
            kind=inp.kind,
            to=inp.to,
            purpose=inp.purpose,
            status=self._status,
            amount_units=p.amount_units if p else inp.amount_units,
            to_address=p.to_address if p else None,
            verdict=self._verdict,
            deadline=self._deadline,
            approver=self._approver,
            tx_hash=self._sent.tx_hash if self._sent else None,
            reason=self._reason,
        )

    # --- helpers ------------------------------------------------------------------------------------------

    async def _end_if_stopped(self) -> None:
        """An emergency stop signalled before signing ends the payment here (the send's stop gate is the
        guarantee; this saves the wait). Its reservation is released."""
        if self._stop is not None:
            reason = f"emergency stop: {self._stop.reason}"
            await self._record("cancelled", "cfo", reason)
            raise _Ended("cancelled", reason)

    async def _record(self, status: PaymentStatus, actor: str, reason: str, *, tx_hash: str | None = None) -> None:
        await run_activity(
            Activities.record_payment,
            PaymentEvent(
                inp=self._inp, status=status, actor=actor, reason=reason, verdict=self._verdict, tx_hash=tx_hash
            ),
            self._inp.runtime,
            f"ledger: {status}",
        )
        self._set(status, reason)

    def _set(self, status: PaymentStatus, reason: str) -> None:
        self._status, self._reason = status, reason
        self._details(f"**{status}**: {reason}")

    def _ack(self, request_id: str, accepted: bool, message: str) -> None:
        self._acks[request_id] = Ack(request_id=request_id, accepted=accepted, message=message)

    def _details(self, stage: str) -> None:
        inp = self._inp
        lines = [
            f"### payment {inp.payment_id} · {inp.kind} to {inp.to}",
            f"**Purpose:** {inp.purpose}",
            f"**Stage:** {stage}",
        ]
        if self._verdict:
            lines.append(f"**CFO:** {self._verdict.decision}")
            lines.extend(f"- {r}" for r in self._verdict.reasons)
        workflow.set_current_details("\n\n".join(lines))
