"""The payment ledger (`payments`) and the finance team's daily caps (`payment_limits`); specs/payments.md.

A payment is reserved before the CFO Judge sees it: the reservation counts its amount against the agent's and
the tenant's caps for the campaign's local day, serialized per tenant (an advisory lock on PostgreSQL, SQLite's
write lock), so 50 payments racing for a cap that admits 10 reserve exactly 10. The row then moves through its
statuses; every move is audited in the same transaction. Everything is keyed by the payment id, so a retried
activity finds its row and gets the same answer.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chimera.db import audit
from chimera.db.engine import advisory_lock
from chimera.db.models import PaymentLimit, PaymentRow
from schemas.payment import (
    OPEN_STATUSES,
    SPENT_STATUSES,
    PaymentInput,
    PaymentReservation,
    PaymentStatus,
    Prepared,
    display_usdc,
)

TERMINAL: frozenset[str] = frozenset({"settled", "refused", "rejected", "expired", "cancelled", "failed"})
# Which status may follow which: anything else is a bug or a replayed message, refused loudly.
NEXT: dict[str, frozenset[str]] = {
    "reserved": frozenset({"pending_approval", "approved", "rejected", "cancelled", "failed"}),
    "pending_approval": frozenset({"approved", "rejected", "expired", "cancelled"}),
    "approved": frozenset({"sent", "cancelled", "failed"}),
    "sent": frozenset({"settled", "failed"}),
}


class PaymentStateError(Exception):
    """A status change the ledger refuses (unknown payment, or a move its status does not allow)."""


@dataclass(frozen=True)
class Caps:
    agent_units: int
    tenant_units: int


@dataclass(frozen=True)
class History:
    count: int
    median_units: int
    paid_before: bool


@dataclass(frozen=True)
class PaymentLine:
    payment_id: str
    direction: str
    campaign_id: str
    agent_id: str
    kind: str
    counterparty: str
    to_address: str
    amount_units: int
    purpose: str
    day: date
    status: str
    reason: str
    decided_by: str | None
    tx_hash: str | None
    updated_at: datetime


@dataclass(frozen=True)
class CampaignMoney:
    spent_units: int
    received_units: int
    open_units: int


def _lock(session: Session, tenant_id: str) -> None:
    # One key per tenant: the tenant cap spans every agent, so every reservation of the tenant is serialized.
    advisory_lock(session, [f"payments:{tenant_id}"])


def caps(session: Session, tenant_id: str, agent_id: str, defaults: Caps) -> Caps:
    rows = dict(
        session.execute(
            select(PaymentLimit.scope, PaymentLimit.daily_units).where(
                PaymentLimit.tenant_id == tenant_id,
                ((PaymentLimit.scope == "tenant") & (PaymentLimit.scope_id == tenant_id))
                | ((PaymentLimit.scope == "agent") & (PaymentLimit.scope_id == agent_id)),
            )
        ).all()
    )
    return Caps(
        agent_units=int(rows.get("agent", defaults.agent_units)),
        tenant_units=int(rows.get("tenant", defaults.tenant_units)),
    )


def _spent(session: Session, tenant_id: str, day: date, agent_id: str | None = None) -> int:
    stmt = select(func.coalesce(func.sum(PaymentRow.amount_units), 0)).where(
        PaymentRow.tenant_id == tenant_id,
        PaymentRow.day == day,
        PaymentRow.direction == "out",
        PaymentRow.status.in_(SPENT_STATUSES),
    )
    if agent_id is not None:
        stmt = stmt.where(PaymentRow.agent_id == agent_id)
    return int(session.execute(stmt).scalar_one())


def reserve(
    session: Session, inp: PaymentInput, prepared: Prepared, day: date, defaults: Caps, now: datetime
) -> PaymentReservation:
    """Count the payment against the agent's and the tenant's caps for `day`, or refuse it (and record that)."""
    _lock(session, inp.tenant_id)
    limits = caps(session, inp.tenant_id, inp.agent_id, defaults)
    row = session.get(PaymentRow, (inp.tenant_id, inp.payment_id, "out"))
    agent_spent = _spent(session, inp.tenant_id, day, inp.agent_id)
    tenant_spent = _spent(session, inp.tenant_id, day)
    figures = {
        "agent_spent_units": agent_spent,
        "agent_cap_units": limits.agent_units,
        "tenant_spent_units": tenant_spent,
        "tenant_cap_units": limits.tenant_units,
    }
    if row is not None:  # a retry: the first answer stands
        if row.status == "refused":
            return PaymentReservation(ok=False, day=row.day.isoformat(), reason=row.reason, **figures)
        return PaymentReservation(ok=True, day=row.day.isoformat(), reason=f"already {row.status}", **figures)
    amount = prepared.amount_units
    refusal, level = "", ""
    if agent_spent + amount > limits.agent_units:
        refusal, level = _over("agent", inp.agent_id, agent_spent, amount, limits.agent_units), "agent"
    elif tenant_spent + amount > limits.tenant_units:
        refusal, level = _over("tenant", inp.tenant_id, tenant_spent, amount, limits.tenant_units), "tenant"
    status: PaymentStatus = "refused" if refusal else "reserved"
    session.add(_row(inp, prepared, day, status, refusal, now))
    session.flush()
    _audit(session, inp, status, "cfo", refusal or f"reserved {display_usdc(amount)}", now)
    if refusal:
        return PaymentReservation(ok=False, day=day.isoformat(), reason=refusal, level=level, **figures)
    return PaymentReservation(ok=True, day=day.isoformat(), **figures)


def _over(level: str, name: str, spent: int, amount: int, cap: int) -> str:
    return (
        f"the {level} {name}'s daily payment cap of {display_usdc(cap)} would be exceeded "
        f"({display_usdc(spent)} already committed today, this payment {display_usdc(amount)})"
    )


def _row(inp: PaymentInput, prepared: Prepared, day: date, status: str, reason: str, now: datetime) -> PaymentRow:
    return PaymentRow(
        tenant_id=inp.tenant_id,
        payment_id=inp.payment_id,
        direction="out",
        campaign_id=inp.campaign_id,
        agent_id=inp.agent_id,
        kind=inp.kind,
        counterparty=prepared.counterparty,
        to_address=prepared.to_address,
        amount_units=prepared.amount_units,
        asset=inp.asset,
        purpose=inp.purpose,
        day=day,
        status=status,
        reason=reason,
        decided_by=None,
        tx_hash=None,
        block_number=None,
        requested_by=inp.requested_by,
        created_at=now,
        updated_at=now,
    )


def move(
    session: Session,
    inp: PaymentInput,
    status: PaymentStatus,
    actor: str,
    reason: str,
    now: datetime,
    *,
    tx_hash: str | None = None,
    block_number: int | None = None,
    decided_by: str | None = None,
    detail: dict[str, object] | None = None,
) -> PaymentLine:
    """Move an outgoing payment to `status` (audited). Repeating the move it already made is a no-op."""
    _lock(session, inp.tenant_id)
    row = session.get(PaymentRow, (inp.tenant_id, inp.payment_id, "out"))
    if row is None:
        raise PaymentStateError(f"payment {inp.payment_id} of tenant {inp.tenant_id} is not in the ledger")
    if row.status == status:
        return _line(row)
    if status not in NEXT.get(row.status, frozenset()):
        raise PaymentStateError(f"payment {inp.payment_id} is {row.status}: it cannot become {status}")
    row.status = status
    row.reason = reason
    row.updated_at = now
    if tx_hash is not None:
        row.tx_hash = tx_hash
    if block_number is not None:
        row.block_number = block_number
    if decided_by is not None:
        row.decided_by = decided_by
    session.flush()
    _audit(session, inp, status, actor, reason, now, tx_hash=row.tx_hash, **(detail or {}))
    return _line(row)


def credit(
    session: Session, inp: PaymentInput, prepared: Prepared, tx_hash: str, block_number: int | None, now: datetime
) -> None:
    """The incoming side of a settled payment to another agent of the tenant, credited to the payee's campaign."""
    if prepared.payee_agent_id is None or prepared.payee_campaign_id is None:
        return
    if session.get(PaymentRow, (inp.tenant_id, inp.payment_id, "in")) is not None:
        return
    row = _row(inp, prepared, now.date(), "settled", f"from agent {inp.agent_id} ({inp.campaign_id})", now)
    row.direction = "in"
    row.campaign_id = prepared.payee_campaign_id
    row.agent_id = prepared.payee_agent_id
    row.counterparty = f"agent:{inp.agent_id}"
    row.tx_hash = tx_hash
    row.block_number = block_number
    session.add(row)
    session.flush()
    audit.append(
        session,
        tenant_id=inp.tenant_id,
        actor="cfo",
        action="payment_received",
        subject=inp.payment_id,
        detail={
            "campaign_id": prepared.payee_campaign_id,
            "agent_id": prepared.payee_agent_id,
            "from_agent": inp.agent_id,
            "amount_units": prepared.amount_units,
            "tx_hash": tx_hash,
        },
        now=now,
    )


def history(session: Session, tenant_id: str, agent_id: str, to_address: str) -> History:
    """The agent's settled payments: how many, their median, and whether `to_address` was paid before."""
    rows = session.execute(
        select(PaymentRow.amount_units, PaymentRow.to_address).where(
            PaymentRow.tenant_id == tenant_id,
            PaymentRow.agent_id == agent_id,
            PaymentRow.direction == "out",
            PaymentRow.status == "settled",
        )
    ).all()
    amounts = [int(a) for a, _ in rows]
    return History(
        count=len(amounts),
        median_units=int(statistics.median(amounts)) if amounts else 0,
        paid_before=any(addr.lower() == to_address.lower() for _, addr in rows),
    )


def set_limit(
    session: Session, tenant_id: str, scope: str, scope_id: str, daily_units: int | None, actor: str, now: datetime
) -> tuple[int | None, int | None]:
    """Set (None: remove) a tenant's or an agent's daily payment cap; returns (before, after). Audited."""
    if scope not in ("tenant", "agent"):
        raise ValueError(f"a payment cap's scope is 'tenant' or 'agent', not {scope!r}")
    if daily_units is not None and daily_units < 0:
        raise ValueError("a daily payment cap cannot be negative")
    _lock(session, tenant_id)
    audit.ensure_tenant(session, tenant_id, now)
    row = session.get(PaymentLimit, (tenant_id, scope, scope_id))
    before = None if row is None else int(row.daily_units)
    if daily_units is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(
            PaymentLimit(
                tenant_id=tenant_id,
                scope=scope,
                scope_id=scope_id,
                daily_units=daily_units,
                updated_at=now,
                updated_by=actor,
            )
        )
    else:
        row.daily_units = daily_units
        row.updated_at = now
        row.updated_by = actor
    session.flush()
    audit.append(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="payment_limit",
        subject=f"{scope}:{scope_id}",
        detail={"before_units": before, "after_units": daily_units},
        now=now,
    )
    return before, daily_units


def lines(session: Session, tenant_id: str, campaign_id: str | None = None, limit: int = 100) -> list[PaymentLine]:
    stmt = select(PaymentRow).where(PaymentRow.tenant_id == tenant_id)
    if campaign_id is not None:
        stmt = stmt.where(PaymentRow.campaign_id == campaign_id)
    rows = session.execute(stmt.order_by(PaymentRow.updated_at.desc()).limit(limit)).scalars()
    return [_line(r) for r in rows]


def get(session: Session, tenant_id: str, payment_id: str, direction: str = "out") -> PaymentLine | None:
    row = session.get(PaymentRow, (tenant_id, payment_id, direction))
    return None if row is None else _line(row)


def campaign_money(session: Session, tenant_id: str, campaign_id: str) -> CampaignMoney:
    """What a campaign paid (settled), received from other agents (settled), and has under way."""
    rows = session.execute(
        select(PaymentRow.direction, PaymentRow.status, func.sum(PaymentRow.amount_units))
        .where(PaymentRow.tenant_id == tenant_id, PaymentRow.campaign_id == campaign_id)
        .group_by(PaymentRow.direction, PaymentRow.status)
    ).all()
    spent = sum(int(n) for d, s, n in rows if d == "out" and s == "settled")
    received = sum(int(n) for d, s, n in rows if d == "in" and s == "settled")
    open_units = sum(int(n) for d, s, n in rows if d == "out" and s in OPEN_STATUSES)
    return CampaignMoney(spent_units=spent, received_units=received, open_units=open_units)


def _line(row: PaymentRow) -> PaymentLine:
    return PaymentLine(
        payment_id=row.payment_id,
        direction=row.direction,
        campaign_id=row.campaign_id,
        agent_id=row.agent_id,
        kind=row.kind,
        counterparty=row.counterparty,
        to_address=row.to_address,
        amount_units=int(row.amount_units),
        purpose=row.purpose,
        day=row.day,
        status=row.status,
        reason=row.reason,
        decided_by=row.decided_by,
        tx_hash=row.tx_hash,
        updated_at=row.updated_at,
    )


def _audit(
    session: Session,
    inp: PaymentInput,
    status: str,
    actor: str,
    reason: str,
    now: datetime,
    **extra: object,
) -> None:
    detail: dict[str, object] = {
        "campaign_id": inp.campaign_id,
        "agent_id": inp.agent_id,
        "kind": inp.kind,
        "to": inp.to,
        "status": status,
        "reason": reason,
    }
    detail.update({k: v for k, v in extra.items() if v is not None})
    audit.append(
        session,
        tenant_id=inp.tenant_id,
        actor=actor,
        action=f"payment_{status}",
        subject=inp.payment_id,
        detail=detail,
        now=now,
    )
