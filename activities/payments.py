"""Payment activities (PaymentWorkflow, specs/payments.md): resolve a request, reserve it against the daily caps,
gather what the CFO Judge decides on, sign and send it through the wallet server, watch it confirm, settle it.

The wallet server holds the keys; these activities only ever hand it an amount, a payee and the payment id as
the idempotency key, so a retried send is answered with the first transaction instead of a second one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from web3 import Web3

from activities.errors import failure, retry_after
from activities.registry import implements
from activities.spend import CallLedger
from chimera.db import StateStore
from chimera.db.errors import CampaignHalted
from chimera.db.payments import Caps, PaymentStateError
from chimera.finance.purpose_check import purpose_concerns, purpose_flags
from chimera.finance.purpose_review import PurposeReviewer
from chimera.mcp.errors import McpError, McpToolError
from chimera.mcp.host import CallContext, McpHost
from chimera.safety.classifier import HarmClassifier
from chimera.safety.rules import SafetyRules
from chimera.settings import PaymentSettings
from schemas.activity_table import Activities, Failure
from schemas.payment import (
    AssessRequest,
    PaymentAssessment,
    PaymentConfirmation,
    PaymentEvent,
    PaymentInput,
    PaymentReservation,
    PaymentSettle,
    Prepared,
    ReserveRequest,
    SendRequest,
    WalletSent,
    goal_served,
    usdc_units,
)
from schemas.task import TaskRef

WALLET = "wallet"
# Wallet refusals that sending again cannot fix; anything else retryable (chain_unavailable) is retried.
REFUSED = frozenset(
    {
        "insufficient_funds",
        "idempotency_conflict",
        "invalid_address",
        "invalid_amount",
        "over_limit",
        "payee_mismatch",
        "unsupported_asset",
        "unsupported_backend",
        "not_payable",
        "wallet_unavailable",
    }
)


def wallet_key(inp: PaymentInput) -> str:
    """The wallet's idempotency key of a payment: one payment id is one transfer, however often it is sent."""
    return f"payment:{inp.payment_id}"


def payment_ref(inp: PaymentInput) -> TaskRef:
    """A payment as the stop gate and the cost ledger see it: a task of its campaign, keyed by the payment id."""
    return TaskRef(
        task_id=f"payment-{inp.payment_id}",
        tenant_id=inp.tenant_id,
        campaign_id=inp.campaign_id,
        agent_id=inp.agent_id,
        campaign_workflow_id=f"campaign-{inp.tenant_id}-{inp.campaign_id}",
    )


class PaymentActivities:
    def __init__(
        self,
        store: StateStore,
        mcp: McpHost,
        settings: PaymentSettings,
        *,
        reviewer: PurposeReviewer | None = None,
        classifier: HarmClassifier | None = None,
        rules: SafetyRules | None = None,
    ) -> None:
        self._store = store
        self._mcp = mcp
        self._settings = settings
        self._reviewer = reviewer
        self._classifier = classifier  # the Judge's detectors read the purpose as untrusted text
        self._rules = rules

    def _context(self, inp: PaymentInput, agent_id: str | None = None) -> CallContext:
        return CallContext(
            tenant_id=inp.tenant_id, actor="cfo", agent_id=agent_id or inp.agent_id, task_id=payment_ref(inp).task_id
        )

    async def _wallet(self, inp: PaymentInput, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call a wallet tool for the paying agent; refusals fail for good, a busy chain is retried."""
        args = {"tenant_id": inp.tenant_id, "agent_id": inp.agent_id, **arguments}
        try:
            result = await self._mcp.call_tool(WALLET, tool, args, self._context(inp))
        except McpToolError as exc:
            if exc.code in REFUSED or exc.code.startswith("invalid_"):
                raise failure(Failure.PAYMENT_FAILED, f"wallet refused {tool}: {exc}") from exc
            if exc.retry_after_seconds is not None:
                raise retry_after(Failure.RETRY_LATER, f"wallet: {exc}", exc.retry_after_seconds) from exc
            raise
        return result.data

    # --- 1. resolve the request --------------------------------------------------------------------

    @implements(Activities.prepare_payment)
    async def prepare_payment(self, inp: PaymentInput) -> Prepared:
        """Who exactly is paid and how much: an address as given, an agent's wallet address, or an x402 quote."""
        record = await asyncio.to_thread(self._store.get_campaign, inp.tenant_id, inp.campaign_id)
        if record is None:
            raise failure(Failure.INVALID_PAYMENT, f"unknown campaign {inp.tenant_id}/{inp.campaign_id}")
        if record.agent_id != inp.agent_id:
            raise failure(
                Failure.INVALID_PAYMENT,
                f"agent {inp.agent_id} does not run campaign {inp.campaign_id} ({record.agent_id})",
            )
        policy = record.spec.payments
        common: dict[str, Any] = {"policy": policy, "goals": record.goals, "timezone": record.timezone}
        if inp.kind == "address":
            if not Web3.is_address(inp.to):
                raise failure(Failure.INVALID_PAYMENT, f"{inp.to!r} is not an EVM address")
            address = Web3.to_checksum_address(inp.to)
            amount = self._amount(inp)
            entry = next((c for c in policy.counterparties if c.address and c.address.lower() == address.lower()), None)
            return Prepared(
                amount_units=amount,
                to_address=address,
                counterparty=entry.name if entry else address,
                pinned=entry is not None,
                allowlisted=entry is not None,
                **common,
            )
        if inp.kind == "agent":
            return await self._agent_payee(inp, policy.agents, common)
        return await self._x402_payee(inp, common)

    @staticmethod
    def _amount(inp: PaymentInput) -> int:
        if inp.amount_units is None:
            raise failure(Failure.INVALID_PAYMENT, f"a {inp.kind} payment needs an amount")
        return inp.amount_units

    async def _agent_payee(self, inp: PaymentInput, allowed: list[str], common: dict[str, Any]) -> Prepared:
        payee = inp.to
        if payee == inp.agent_id:
            raise failure(Failure.INVALID_PAYMENT, "an agent cannot pay itself")
        campaigns = await asyncio.to_thread(self._store.campaigns_of_agent, inp.tenant_id, payee)
        if not campaigns:
            raise failure(Failure.INVALID_PAYMENT, f"tenant {inp.tenant_id} has no agent {payee!r} with a campaign")
        credited = inp.payee_campaign_id or campaigns[0]
        if credited not in campaigns:
            raise failure(Failure.INVALID_PAYMENT, f"campaign {credited!r} is not agent {payee}'s ({campaigns})")
        try:
            found = await self._mcp.read_resource(
                WALLET, f"wallet://{inp.tenant_id}/{payee}/address", self._context(inp, payee)
            )
        except McpError as exc:
            raise failure(Failure.RETRY_LATER, f"the wallet could not give agent {payee}'s address: {exc}") from exc
        return Prepared(
            amount_units=self._amount(inp),
            to_address=Web3.to_checksum_address(str(found["address"])),
            counterparty=f"agent:{payee}",
            pinned=payee in allowed,
            allowlisted=payee in allowed,
            payee_agent_id=payee,
            payee_campaign_id=credited,
            **common,
        )

    async def _x402_payee(self, inp: PaymentInput, common: dict[str, Any]) -> Prepared:
        """Quote the resource (its 402 answer says the price and the payee); the allowlist names the service."""
        quote = await self._wallet(inp, "x402_quote", {"url": inp.to})
        amount, pay_to = int(quote["amount"]), Web3.to_checksum_address(str(quote["pay_to"]))
        if inp.amount_units is not None and amount > inp.amount_units:
            raise failure(
                Failure.INVALID_PAYMENT,
                f"{inp.to} asks {amount} base units, more than the {inp.amount_units} the request allows",
            )
        policy = common["policy"]
        entry = next((c for c in policy.counterparties if c.url_prefix and inp.to.startswith(c.url_prefix)), None)
        problem = ""
        if entry is not None and entry.address and entry.address.lower() != pay_to.lower():
            problem = f"{entry.name} asks to be paid at {pay_to}, but the allowlist pins {entry.address}"
        return Prepared(
            amount_units=amount,
            to_address=pay_to,
            counterparty=entry.name if entry else inp.to,
            pinned=entry is not None and entry.address is not None and not problem,
            allowlisted=entry is not None,
            problem=problem,
            **common,
        )

    # --- 2. reserve ---------------------------------------------------------------------------------

    @implements(Activities.reserve_payment)
    def reserve_payment(self, req: ReserveRequest) -> PaymentReservation:
        """Count the payment against the caps; a stop covering it refuses it before anything is counted."""
        inp = req.inp
        halted = self._store.halted(payment_ref(inp))
        if halted:
            reason = f"{halted}: nothing more is paid"
            detail = {"campaign_id": inp.campaign_id, "agent_id": inp.agent_id, "kind": inp.kind, "reason": reason}
            self._store.append_audit(inp.tenant_id, "cfo", "payment_refused", inp.payment_id, detail)
            return PaymentReservation(ok=False, day="", reason=reason)
        defaults = Caps(
            agent_units=usdc_units(self._settings.agent_daily_usdc),
            tenant_units=usdc_units(self._settings.tenant_daily_usdc),
        )
        return self._store.reserve_payment(req.inp, req.prepared, defaults)

    # --- 3. what the CFO Judge decides on -------------------------------------------------------------

    @implements(Activities.assess_payment)
    async def assess_payment(self, req: AssessRequest) -> PaymentAssessment:
        inp, prepared = req.inp, req.prepared
        policy = prepared.policy
        past = await asyncio.to_thread(self._store.payment_history, inp.tenant_id, inp.agent_id, prepared.to_address)
        flags = purpose_flags(inp.purpose, self._rules)
        concerns = await asyncio.to_thread(purpose_concerns, inp.purpose, self._classifier)
        review, note = None, "no judging model: the policy decided alone"
        if self._reviewer is not None:
            record = await asyncio.to_thread(self._store.get_campaign, inp.tenant_id, inp.campaign_id)
            assert record is not None  # prepare_payment found it
            outcome = await self._reviewer.review(inp, prepared, record.spec.persona, activity.info().attempt)
            review, note = outcome.review, outcome.note
            await CallLedger(self._store).keep(payment_ref(inp), outcome.calls, prepared.timezone, settle=True)
        return PaymentAssessment(
            amount_units=prepared.amount_units,
            per_payment_units=policy.per_payment_units(),
            review_above_units=policy.review_above_units(),
            allowlisted=prepared.allowlisted,
            pinned=prepared.pinned,
            paid_before=past.paid_before,
            history_count=past.count,
            median_units=past.median_units,
            anomaly_factor=policy.anomaly_factor,
            anomaly_history=policy.anomaly_history,
            goal_match=goal_served(inp.purpose, prepared.goals),
            purpose_flags=flags,
            purpose_concerns=concerns,
            model_review=review,
            model_note=note,
            problem=prepared.problem,
        )

    @implements(Activities.record_payment)
    def record_payment(self, event: PaymentEvent) -> None:
        """A status change in the ledger and the audit chain, in one transaction (a retry repeats nothing)."""
        detail: dict[str, object] = {}
        if event.verdict is not None:
            detail = {"decision": event.verdict.decision, "reasons": event.verdict.reasons}
        try:
            self._store.move_payment(
                event.inp,
                event.status,
                event.actor,
                event.reason,
                tx_hash=event.tx_hash,
                decided_by=event.actor if event.status in ("approved", "rejected") else None,
                detail=detail,
            )
        except PaymentStateError as exc:
            raise failure(Failure.INVALID_PAYMENT, str(exc)) from exc

    # --- 4. sign and send ------------------------------------------------------------------------------

    @implements(Activities.send_payment)
    async def send_payment(self, req: SendRequest) -> WalletSent:
        """Sign and send under the stop gate: no payment is signed once a stop covering it is recorded.

        A retry after an unknown outcome (a timeout, a killed worker) looks the payment up by its key first; the
        wallet itself rebroadcasts the same signed bytes (same nonce) if the chain never saw them."""
        inp, prepared = req.inp, req.prepared
        try:
            async with self._store.sending(payment_ref(inp)):
                if activity.info().attempt > 1 and inp.kind != "x402":
                    earlier = await self._earlier(inp)
                    if earlier is not None:
                        return earlier
                if inp.kind == "x402":
                    data = await self._wallet(
                        inp,
                        "pay_x402",
                        {
                            "url": inp.to,
                            "max_amount": prepared.amount_units,
                            "pay_to": prepared.to_address,
                            "idempotency_key": wallet_key(inp),
                        },
                    )
                else:
                    data = await self._wallet(
                        inp,
                        "transfer",
                        {
                            "to": prepared.to_address,
                            "amount": prepared.amount_units,
                            "idempotency_key": wallet_key(inp),
                            "memo": inp.purpose[:256],
                        },
                    )
        except CampaignHalted as exc:
            raise failure(Failure.CAMPAIGN_STOPPED, f"{exc}: the payment was not signed") from exc
        body = data.get("body")
        return WalletSent(
            tx_hash=str(data["tx_hash"]),
            status=data["status"],
            duplicate=bool(data.get("duplicate")),
            body=body if isinstance(body, dict) else None,
        )

    async def _earlier(self, inp: PaymentInput) -> WalletSent | None:
        try:
            found = await self._wallet(inp, "transaction_status", {"idempotency_key": wallet_key(inp)})
        except McpToolError as exc:
            if exc.code == "not_found":
                return None
            raise
        return WalletSent(tx_hash=str(found["tx_hash"]), status=found["status"], duplicate=True)

    # --- 5. confirmations --------------------------------------------------------------------------------

    @implements(Activities.payment_status)
    async def payment_status(self, req: SendRequest) -> PaymentConfirmation:
        """The payment's transaction as the chain sees it now (a pending one the node dropped is resent)."""
        try:
            found = await self._wallet(req.inp, "transaction_status", {"idempotency_key": wallet_key(req.inp)})
        except McpToolError as exc:
            if exc.code == "not_found":
                return PaymentConfirmation(tx_hash="", status="dropped", confirmations=0)
            raise
        return PaymentConfirmation(
            tx_hash=str(found["tx_hash"]),
            status=found["status"],
            confirmations=int(found.get("confirmations") or 0),
            block_number=found.get("block_number"),
        )

    # --- 6. settle -----------------------------------------------------------------------------------------

    @implements(Activities.settle_payment)
    def settle_payment(self, req: PaymentSettle) -> None:
        """The ledger entry and the audit entry; a payment to another agent is credited to its campaign."""
        prepared = req.prepared
        try:
            self._store.move_payment(
                req.inp,
                "settled",
                "cfo",
                f"confirmed by {req.confirmations} block(s); approved by {req.approved_by}",
                tx_hash=req.tx_hash,
                block_number=req.block_number,
                detail={"amount_units": prepared.amount_units, "to_address": prepared.to_address},
                credit=prepared if prepared.payee_agent_id else None,
            )
        except PaymentStateError as exc:
            raise failure(Failure.INVALID_PAYMENT, str(exc)) from exc
