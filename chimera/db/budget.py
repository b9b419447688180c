"""Daily budgets: reserve before spending, settle with the actual cost, release if unused.

A campaign's day is the calendar day in its IANA time zone. All arithmetic is Decimal, rounded
to the micro-dollar, so ten reservations of $0.01 exactly fill a $0.10 budget.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from chimera.db.engine import advisory_lock
from chimera.db.errors import InvalidTimezone, OwnershipConflict
from chimera.db.models import Spend
from chimera.db.records import SpendSummary
from schemas.task import Reservation, TaskRef

_MICRO = Decimal("0.000001")


def money(value: float | Decimal | int | None) -> Decimal:
    if value is None:
        return Decimal(0)
    # str() of a float is its shortest round-tripping form, so 0.1 becomes exactly 0.1.
    return Decimal(str(value)).quantize(_MICRO, rounding=ROUND_HALF_EVEN)


def local_day(now: datetime, timezone: str) -> date:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTimezone(timezone) from exc
    return now.astimezone(zone).date()


def _lock(session: Session, tenant_id: str, campaign_id: str) -> None:
    advisory_lock(session, [f"budget:{tenant_id}:{campaign_id}"])


def _totals(session: Session, tenant_id: str, campaign_id: str, day: date) -> tuple[Decimal, Decimal]:
    spent, reserved = session.execute(
        select(
            func.coalesce(func.sum(case((Spend.status == "settled", Spend.actual_usd), else_=0)), 0),
            func.coalesce(func.sum(case((Spend.status == "reserved", Spend.reserved_usd), else_=0)), 0),
        ).where(Spend.tenant_id == tenant_id, Spend.campaign_id == campaign_id, Spend.day == day)
    ).one()
    return money(spent), money(reserved)


def _row(session: Session, ref: TaskRef) -> Spend | None:
    row = session.get(Spend, (ref.tenant_id, ref.task_id))
    if row is not None and row.campaign_id != ref.campaign_id:
        raise OwnershipConflict(
            f"task {ref.task_id!r} already has spend recorded for campaign {row.campaign_id!r}, not {ref.campaign_id!r}"
        )
    return row


def reserve(
    session: Session, ref: TaskRef, amount_usd: float, daily_budget_usd: float, timezone: str, now: datetime
) -> Reservation:
    amount = money(amount_usd)
    budget = money(daily_budget_usd)
    if amount < 0:
        raise ValueError(f"cannot reserve a negative amount (${amount})")
    if budget < 0:
        raise ValueError(f"the daily budget cannot be negative (${budget})")
    day = local_day(now, timezone)
    _lock(session, ref.tenant_id, ref.campaign_id)
    row = _row(session, ref)
    # A retried activity finds its own reservation and gets the same answer, without reserving twice.
    if row is not None and row.status in ("reserved", "settled"):
        spent, reserved = _totals(session, ref.tenant_id, ref.campaign_id, row.day)
        return Reservation(
            ok=True,
            amount_usd=float(money(row.reserved_usd)),
            reason=f"already {row.status} for this task",
            day=row.day.isoformat(),
            spent_today_usd=float(spent + reserved),
        )

    spent, reserved = _totals(session, ref.tenant_id, ref.campaign_id, day)
    committed = spent + reserved
    if committed + amount > budget:
        return Reservation(
            ok=False,
            amount_usd=0.0,
            reason=(
                f"daily budget ${budget} for {day} ({timezone}) would be exceeded: "
                f"${committed} already spent or reserved, ${amount} requested"
            ),
            day=day.isoformat(),
            spent_today_usd=float(committed),
        )
    if row is None:
        session.add(
            Spend(
                tenant_id=ref.tenant_id,
                task_id=ref.task_id,
                campaign_id=ref.campaign_id,
                agent_id=ref.agent_id,
                day=day,
                reserved_usd=float(amount),
                actual_usd=None,
                status="reserved",
                created_at=now,
                updated_at=now,
            )
        )
    else:  # released earlier: a new attempt of the same task reserves afresh, on today's budget
        row.day = day
        row.reserved_usd = float(amount)
        row.actual_usd = None
        row.status = "reserved"
        row.updated_at = now
    session.flush()
    return Reservation(
        ok=True,
        amount_usd=float(amount),
        reason="reserved",
        day=day.isoformat(),
        spent_today_usd=float(committed + amount),
    )


def settle(session: Session, ref: TaskRef, actual_usd: float, timezone: str, now: datetime) -> None:
    """Replace the reservation by the actual cost (on the reservation's day); idempotent."""
    actual = money(actual_usd)
    if actual < 0:
        raise ValueError(f"the actual cost cannot be negative (${actual})")
    day = local_day(now, timezone)
    _lock(session, ref.tenant_id, ref.campaign_id)
    row = _row(session, ref)
    if row is None:  # money spent without a reservation is still money spent
        session.add(
            Spend(
                tenant_id=ref.tenant_id,
                task_id=ref.task_id,
                campaign_id=ref.campaign_id,
                agent_id=ref.agent_id,
                day=day,
                reserved_usd=0.0,
                actual_usd=float(actual),
                status="settled",
                created_at=now,
                updated_at=now,
            )
        )
    else:
        row.actual_usd = float(actual)
        row.status = "settled"
        row.updated_at = now
    session.flush()


def release(session: Session, ref: TaskRef, now: datetime) -> None:
    """Give an unused reservation back; settled costs stay spent. Idempotent."""
    _lock(session, ref.tenant_id, ref.campaign_id)
    row = _row(session, ref)
    if row is not None and row.status == "reserved":
        row.status = "released"
        row.updated_at = now
        session.flush()


def spend_on(session: Session, tenant_id: str, campaign_id: str, day: date) -> SpendSummary:
    spent, reserved = _totals(session, tenant_id, campaign_id, day)
    return SpendSummary(day=day, spent_usd=float(spent), reserved_usd=float(reserved))
