"""Payments: a campaign's spending policy, one payment's path through PaymentWorkflow, and the CFO Judge.

Amounts are integer base units of USDC (6 decimals: 1_000_000 is 1 USDC), as on chain; policy figures in a
campaign file are decimal USDC and become base units here. The CFO Judge (`cfo_decide`) is pure policy: the
activities gather the facts (caps, history, allowlist, the model's reading of the purpose) and the workflow
decides with this function, so a replay decides the same way.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.access import Signed
from schemas.options import RuntimeOptions

ASSET: Final = "USDC"
DECIMALS = 6
UNIT = 10**DECIMALS
PAYMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,95}$"  # also the wallet's idempotency key (<= 128 chars with prefix)
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"

PaymentKind = Literal["address", "agent", "x402"]
PaymentStatus = Literal[
    "requested",  # arrived, nothing reserved yet
    "reserved",  # counted against the daily caps
    "pending_approval",  # escalated: waiting for a finance approver
    "approved",  # the CFO Judge or a finance approver said yes: may be signed
    "sent",  # signed and broadcast: the chain decides now
    "settled",  # confirmed on chain, in the ledger and the audit chain
    "refused",  # a cap would be exceeded: nothing was reserved
    "rejected",  # the CFO Judge or a finance approver said no
    "expired",  # nobody decided before the deadline
    "cancelled",  # an emergency stop before signing
    "failed",  # the chain refused it (reverted, dropped, insufficient funds)
]
OPEN_STATUSES: tuple[PaymentStatus, ...] = ("reserved", "pending_approval", "approved", "sent")
SPENT_STATUSES: tuple[PaymentStatus, ...] = (*OPEN_STATUSES, "settled")  # what counts against a cap
CfoDecision = Literal["approve", "escalate", "reject"]


def usdc_units(value: float | str | Decimal) -> int:
    """Decimal USDC (as a campaign file or the CLI writes it) to base units; ValueError below one unit's precision."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount of USDC") from None
    units = amount * UNIT
    if units != units.to_integral_value(rounding=ROUND_HALF_EVEN):
        raise ValueError(f"{value} USDC has more than {DECIMALS} decimals")
    return int(units)


def display_usdc(units: int) -> str:
    """Base units as decimal USDC, e.g. 1500000 -> "1.50 USDC" (at least two decimals, no trailing zeros beyond)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNIT)
    digits = f"{frac:0{DECIMALS}d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole}.{digits} {ASSET}"


_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)
# Words too common in purposes to show that one serves a goal.
_COMMON = frozenset(
    [
        "about",
        "after",
        "also",
        "campaign",
        "content",
        "every",
        "from",
        "have",
        "into",
        "more",
        "most",
        "other",
        "over",
        "payment",
        "post",
        "posts",
        "some",
        "that",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "very",
        "what",
        "when",
        "which",
        "with",
        "would",
        "your",
    ]
)
STEM = 5  # words compare by their first five letters: "sustainable" and "sustainability" are one


def _stems(text: str) -> set[str]:
    return {w[:STEM] for w in (m.lower() for m in _WORD.findall(text)) if w not in _COMMON}


def goal_served(purpose: str, goals: list[str]) -> str:
    """The first goal the purpose shares a content word with ('' if none): the offline reading of "the purpose
    must match a campaign goal". Crude on purpose: it only asks that a payment say which goal it is for, in the
    goal's words; the judging model, when configured, reads the meaning."""
    words = _stems(purpose)
    return next((goal for goal in goals if words & _stems(goal)), "")


class Counterparty(BaseModel):
    """One allowlisted payee: an address (pinned), or a paid service by its URL prefix (its address is whatever
    the service quotes: a first payment to an address never paid before escalates)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    address: str | None = Field(None, pattern=ADDRESS)
    url_prefix: str | None = Field(None, pattern=r"^https?://", max_length=500)

    @field_validator("url_prefix")
    @classmethod
    def _ends_with_slash_or_path(cls, value: str | None) -> str | None:
        # "http://news.example" would also admit "http://news.example.attacker.com": require the host to end.
        if value is not None and value.count("/") < 3:
            raise ValueError(f"url_prefix {value!r} must include the path after the host (e.g. {value}/)")
        return value


class PaymentPolicy(BaseModel):
    """A campaign's spending policy (campaign file `payments:`, specs/payments.md). The daily caps of the agent
    and the tenant are the finance team's, set with `chimera payment limit` (they bind every campaign)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    per_payment_usdc: Decimal = Field(Decimal(5), ge=0, description="no single payment above this")
    review_above_usdc: Decimal = Field(Decimal(1), ge=0, description="a payment above this waits for a human")
    counterparties: list[Counterparty] = Field(default_factory=list, description="who may be paid")
    agents: list[str] = Field(default_factory=list, description="the tenant's agents this campaign may pay")
    anomaly_factor: Decimal = Field(Decimal(5), gt=1, description="escalate above this many times the median")
    anomaly_history: int = Field(3, ge=1, description="settled payments needed before the median counts")
    approval_deadline_seconds: int = Field(24 * 3600, ge=60)
    confirmations: int = Field(1, ge=1, le=64, description="blocks that must confirm a payment before it settles")

    @field_validator("agents")
    @classmethod
    def _agent_ids(cls, agents: list[str]) -> list[str]:
        for agent in agents:
            if not re.match(ID, agent):
                raise ValueError(f"agent id {agent!r} is not an agent id")
        return agents

    def per_payment_units(self) -> int:
        return usdc_units(self.per_payment_usdc)

    def review_above_units(self) -> int:
        return usdc_units(self.review_above_usdc)


class PaymentInput(BaseModel):
    """PaymentWorkflow's input: one payment request. `payment_id` is the business key: the workflow id and the
    wallet's idempotency key, so one id is at most one transfer however often it is retried or re-sent."""

    model_config = ConfigDict(frozen=True)

    payment_id: str = Field(pattern=PAYMENT_ID)
    tenant_id: str = Field(pattern=ID)
    campaign_id: str = Field(pattern=ID)
    agent_id: str = Field(pattern=ID, description="the paying agent")
    kind: PaymentKind
    to: str = Field(min_length=1, max_length=500, description="an address, an agent id, or an x402 resource URL")
    amount_units: int | None = Field(None, gt=0, description="x402: the most to pay (None: the quoted price)")
    asset: Literal["USDC"] = ASSET
    purpose: str = Field(min_length=3, max_length=500, description="why: must serve a campaign goal")
    requested_by: str = Field(min_length=1, max_length=128)
    payee_campaign_id: str | None = Field(None, pattern=ID, description="agent: the campaign the revenue goes to")
    poll_seconds: int = Field(2, ge=1, le=600, description="between looks at a sent payment's confirmations")
    runtime: RuntimeOptions = RuntimeOptions()


def payment_workflow_id(tenant_id: str, payment_id: str) -> str:
    return f"payment-{tenant_id}-{payment_id}"


class Prepared(BaseModel):
    """What a request resolves to before anything is reserved: who exactly is paid, how much, under which policy."""

    model_config = ConfigDict(frozen=True)

    amount_units: int = Field(gt=0)
    to_address: str = Field(pattern=ADDRESS)
    counterparty: str = Field(
        description="how the ledger names the payee: an allowlist name, agent:<id>, or the address"
    )
    pinned: bool = Field(description="the address itself is allowlisted (an agent's, or a counterparty's pinned one)")
    allowlisted: bool
    policy: PaymentPolicy
    goals: list[str]
    timezone: str
    payee_agent_id: str | None = None
    payee_campaign_id: str | None = None
    problem: str = Field("", description="why the request cannot be paid at all (then the workflow rejects it)")


class ReserveRequest(BaseModel):
    inp: PaymentInput
    prepared: Prepared


class PaymentReservation(BaseModel):
    ok: bool
    day: str
    reason: str = ""
    level: Literal["agent", "tenant", ""] = ""
    agent_spent_units: int = 0
    agent_cap_units: int = 0
    tenant_spent_units: int = 0
    tenant_cap_units: int = 0


class AssessRequest(BaseModel):
    inp: PaymentInput
    prepared: Prepared


class PurposeReview(BaseModel):
    """The judging model's reading of the stated purpose: does it serve a goal, and is anything off."""

    model_config = ConfigDict(frozen=True)

    serves_goal: bool
    concern: Literal["none", "low", "high"] = "none"
    reason: str = Field("", max_length=500)


class PaymentAssessment(BaseModel):
    """The facts the CFO Judge decides on (gathered by the assess_payment activity)."""

    model_config = ConfigDict(frozen=True)

    amount_units: int
    per_payment_units: int
    review_above_units: int
    allowlisted: bool
    pinned: bool
    paid_before: bool = Field(description="this agent has a settled payment to this address")
    history_count: int = Field(description="the agent's settled payments")
    median_units: int = Field(description="their median amount (0 with no history)")
    anomaly_factor: Decimal
    anomaly_history: int
    goal_match: str = Field("", description="the goal the purpose shares words with ('' if none)")
    purpose_flags: list[str] = Field(default_factory=list, description="safety rules that match the purpose")
    purpose_concerns: list[str] = Field(default_factory=list, description="what the harm classifier flags in it")
    model_review: PurposeReview | None = None
    model_note: str = ""
    problem: str = ""


class CfoVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: CfoDecision
    reasons: list[str]


def cfo_decide(a: PaymentAssessment) -> CfoVerdict:
    """The CFO Judge: hard limits reject, anomalies and large amounts escalate, the rest is approved.

    Every rule that applies is named, so a finance approver sees all of them, not the first."""
    rejects: list[str] = []
    escalations: list[str] = []
    if a.problem:
        rejects.append(a.problem)
    if a.amount_units > a.per_payment_units:
        rejects.append(
            f"{display_usdc(a.amount_units)} is over the per-payment cap of {display_usdc(a.per_payment_units)}"
        )
    if not a.allowlisted:
        rejects.append("the payee is not on the campaign's allowlist")
    rejects.extend(f"the purpose reads as {flag}" for flag in a.purpose_flags)
    review = a.model_review
    if review is not None and (not review.serves_goal or review.concern == "high"):
        rejects.append(f"the judging model: {review.reason or 'the purpose serves no campaign goal'}")
    elif not a.goal_match and review is None:
        rejects.append("the purpose names no campaign goal")
    elif not a.goal_match:
        # The model said yes but the purpose shares no word with any goal: a person looks (defense in depth
        # against a purpose written to talk the model round).
        escalations.append("the purpose shares no words with any campaign goal")
    if rejects:
        return CfoVerdict(decision="reject", reasons=rejects)
    if a.amount_units > a.review_above_units:
        escalations.append(
            f"{display_usdc(a.amount_units)} is over the review threshold of {display_usdc(a.review_above_units)}"
        )
    if not a.pinned and not a.paid_before:
        escalations.append("a first payment to an address never paid before")
    if a.history_count >= a.anomaly_history and a.median_units > 0:
        ceiling = Decimal(a.median_units) * a.anomaly_factor
        if a.amount_units > ceiling:
            escalations.append(
                f"{display_usdc(a.amount_units)} is over {a.anomaly_factor}x the agent's median payment "
                f"({display_usdc(a.median_units)})"
            )
    escalations.extend(f"the purpose reads as {concern}" for concern in a.purpose_concerns)
    if review is not None and review.concern == "low":
        escalations.append(f"the judging model: {review.reason or 'a concern about the purpose'}")
    if escalations:
        return CfoVerdict(decision="escalate", reasons=escalations)
    why = f"within policy; serves the goal: {a.goal_match}" if a.goal_match else "within policy"
    if review is not None:
        why += f" (judging model: {review.reason or 'serves a goal'})"
    return CfoVerdict(decision="approve", reasons=[why])


class PaymentEvent(BaseModel):
    """A change of a payment's status, recorded in the ledger and the audit chain at once."""

    inp: PaymentInput
    status: PaymentStatus
    actor: str
    reason: str = ""
    verdict: CfoVerdict | None = None
    tx_hash: str | None = None


class SendRequest(BaseModel):
    inp: PaymentInput
    prepared: Prepared


class WalletSent(BaseModel):
    """What the wallet answered: the transaction, and for x402 the resource bought."""

    tx_hash: str
    status: Literal["pending", "confirmed", "failed"]
    duplicate: bool
    body: dict[str, object] | None = None


class PaymentConfirmation(BaseModel):
    tx_hash: str
    status: Literal["pending", "confirmed", "failed", "dropped"]
    confirmations: int
    block_number: int | None = None


class PaymentSettle(BaseModel):
    inp: PaymentInput
    prepared: Prepared
    tx_hash: str
    block_number: int | None
    confirmations: int
    approved_by: str


class PaymentDecision(Signed):
    """A finance approver's answer to an escalated payment (a signed request, like a content review)."""

    request_id: str = Field(min_length=1, max_length=128)
    action: Literal["approve", "reject"]
    approver: str = Field(min_length=1, max_length=128, description="as sent; the workflow records the verified one")
    reason: str = Field("", max_length=500)

    @property
    def access_action(self) -> Literal["payment.approve", "payment.reject"]:
        return "payment.approve" if self.action == "approve" else "payment.reject"


class PaymentOutcome(BaseModel):
    payment_id: str
    status: PaymentStatus
    reason: str = ""
    amount_units: int | None = None
    to_address: str | None = None
    tx_hash: str | None = None
    approved_by: str | None = None
    body: dict[str, object] | None = Field(None, description="x402: the resource the payment bought")


class PaymentView(BaseModel):
    """What `chimera payment show` and the Web UI see of a running payment."""

    payment_id: str
    campaign_id: str
    agent_id: str
    kind: PaymentKind
    to: str
    purpose: str
    status: PaymentStatus
    amount_units: int | None
    to_address: str | None
    verdict: CfoVerdict | None
    deadline: str | None
    approver: str | None
    tx_hash: str | None
    reason: str
