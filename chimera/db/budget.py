"""Daily budgets: reserve before spending, settle with the actual cost, release if unused.

Three levels: the campaign (its daily_budget_usd, passed by the workflow), its agent and its
tenant (rows of `budgets`, set with `chimera budget set`). A reservation is refused when ANY level
would exceed its limit that day; every level is counted on the reserving campaign's day (the
calendar day in its IANA time zone). Reservations of a tenant are serialized (advisory locks on
the level keys, taken in one sorted order on PostgreSQL; SQLite's write lock), so concurrent tasks
never push spend past a limit. All arithmetic is Decimal, rounded to the micro-dollar, so ten
reservations of $0.01 exactly fill a $0.10 budget.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from chimera.db.engine import advisory_lock
from chimera.db.errors import InvalidTimezone, OwnershipConflict
from chimera.db.models import Budget, Spend
from chimera.db.records import BudgetLine, SpendSummary
from schemas.task import Reservation, TaskRef

_MICRO = Decimal("0.000001")
_ZERO = Decimal(0)


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


LEVELS = ("campaign", "agent", "tenant")  # checked in this order; the first to refuse is named


def _lock(session: Session, tenant_id: str, campaign_id: str, agent_id: str | None = None) -> None:
    # The tenant key serializes every reservation of the tenant: its total spans all campaigns.
    names = [f"budget:{tenant_id}", f"budget:{tenant_id}:campaign:{campaign_id}"]
    if agent_id is not None:
        names.append(f"budget:{tenant_id}:agent:{agent_id}")
    advisory_lock(session, names)


def lock_task(session: Session, ref: TaskRef) -> None:
    """The locks a reservation or settlement of `ref` takes (for other modules that settle, e.g. costs.charge)."""
    _lock(session, ref.tenant_id, ref.campaign_id, ref.agent_id)


def _totals(
    session: Session, tenant_id: str, campaign_id: str | None, day: date, agent_id: str | None = None
) -> tuple[Decimal, Decimal]:
    """(spent, reserved) on `day` for the tenant, narrowed to a campaign and/or an agent."""
    stmt = select(
        func.coalesce(func.sum(case((Spend.status == "settled", Spend.actual_usd), else_=0)), 0),
        func.coalesce(func.sum(case((Spend.status == "reserved", Spend.reserved_usd), else_=0)), 0),
    ).where(Spend.tenant_id == tenant_id, Spend.day == day)
    if campaign_id is not None:
        stmt = stmt.where(Spend.campaign_id == campaign_id)
    if agent_id is not None:
        stmt = stmt.where(Spend.agent_id == agent_id)
    spent, reserved = session.execute(stmt).one()
    return money(spent), money(reserved)


def limit_of(session: Session, tenant_id: str, scope: str, scope_id: str) -> Decimal | None:
    value = session.execute(
        select(Budget.daily_usd).where(
            Budget.tenant_id == tenant_id, Budget.scope == scope, Budget.scope_id == scope_id
        )
    ).scalar_one_or_none()
    return None if value is None else money(value)


def set_limit(
    session: Session, tenant_id: str, scope: str, scope_id: str, daily_usd: float | None, actor: str, now: datetime
) -> tuple[float | None, float | None]:
    """Set (or, with None, remove) a tenant or agent daily limit; returns (before, after)."""
    if scope not in ("tenant", "agent"):
        raise ValueError(f"budget scope must be 'tenant' or 'agent', not {scope!r} (a campaign's is its daily budget)")
    _lock(session, tenant_id, "-", scope_id if scope == "agent" else None)
    row = session.get(Budget, (tenant_id, scope, scope_id))
    before = None if row is None else float(money(row.daily_usd))
    if daily_usd is None:
        if row is not None:
            session.delete(row)
        session.flush()
        return before, None
    amount = money(daily_usd)
    if amount < 0:
        raise ValueError(f"a daily budget cannot be negative (${amount})")
    if row is None:
        session.add(
            Budget(
                tenant_id=tenant_id,
                scope=scope,
                scope_id=scope_id,
                daily_usd=float(amount),
                updated_at=now,
                updated_by=actor,
            )
        )
    else:
        row.daily_usd = float(amount)
        row.updated_at = now
        row.updated_by = actor
    session.flush()
    return before, float(amount)


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
    _lock(session, ref.tenant_id, ref.campaign_id, ref.agent_id)
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

    levels: list[tuple[str, Decimal, Decimal]] = []  # (level, limit, committed that day)
    for level in LEVELS:
        if level == "campaign":
            limit: Decimal | None = budget
            spent, reserved = _totals(session, ref.tenant_id, ref.campaign_id, day)
        elif level == "agent":
            limit = limit_of(session, ref.tenant_id, "agent", ref.agent_id)
            spent, reserved = (
                _totals(session, ref.tenant_id, None, day, ref.agent_id) if limit is not None else (_ZERO, _ZERO)
            )
        else:
            limit = limit_of(session, ref.tenant_id, "tenant", ref.tenant_id)
            spent, reserved = _totals(session, ref.tenant_id, None, day) if limit is not None else (_ZERO, _ZERO)
        if limit is not None:
            levels.append((level, limit, money(spent) + money(reserved)))
    campaign_committed = levels[0][2]
    for level, limit, committed in levels:
        if committed + amount > limit:
            who = {"campaign": ref.campaign_id, "agent": ref.agent_id, "tenant": ref.tenant_id}[level]
            return Reservation(
                ok=False,
                amount_usd=0.0,
                reason=(
                    f"{level} {who!r} daily budget ${limit} for {day} ({timezone}) would be exceeded: "
                    f"${committed} already spent or reserved, ${amount} requested"
                ),
                day=day.isoformat(),
                spent_today_usd=float(campaign_committed),
                level=level,
            )
    committed = campaign_committed
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
    _lock(session, ref.tenant_id, ref.campaign_id, ref.agent_id)
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
    _lock(session, ref.tenant_id, ref.campaign_id, ref.agent_id)
    row = _row(session, ref)
    if row is not None and row.status == "reserved":
        row.status = "released"
        row.updated_at = now
        session.flush()


def spend_on(session: Session, tenant_id: str, campaign_id: str, day: date) -> SpendSummary:
    spent, reserved = _totals(session, tenant_id, campaign_id, day)
    return SpendSummary(day=day, spent_usd=float(spent), reserved_usd=float(reserved))


def report(
    session: Session, tenant_id: str, campaign_id: str, agent_id: str, timezone: str, limit: float, now: datetime
) -> list[BudgetLine]:
    """What a reservation of this campaign would be checked against today: one line per level with a limit."""
    day = local_day(now, timezone)
    lines: list[BudgetLine] = []
    for level in LEVELS:
        if level == "campaign":
            cap: Decimal | None = money(limit)
            spent, reserved = _totals(session, tenant_id, campaign_id, day)
            scope_id = campaign_id
        elif level == "agent":
            cap = limit_of(session, tenant_id, "agent", agent_id)
            spent, reserved = _totals(session, tenant_id, None, day, agent_id)
            scope_id = agent_id
        else:
            cap = limit_of(session, tenant_id, "tenant", tenant_id)
            spent, reserved = _totals(session, tenant_id, None, day)
            scope_id = tenant_id
        lines.append(
            BudgetLine(
                tenant_id=tenant_id,
                campaign_id=campaign_id,
                level=level,
                scope_id=scope_id,
                day=day,
                timezone=timezone,
                limit_usd=None if cap is None else float(cap),
                spent_usd=float(spent),
                reserved_usd=float(reserved),
                left_usd=None if cap is None else float(max(cap - spent - reserved, Decimal(0))),
            )
        )
    return lines


def limits(session: Session, tenant_id: str) -> list[tuple[str, str, float]]:
    rows = session.execute(
        select(Budget.scope, Budget.scope_id, Budget.daily_usd)
        .where(Budget.tenant_id == tenant_id)
        .order_by(Budget.scope, Budget.scope_id)
    ).all()
    return [(scope, scope_id, float(money(daily))) for scope, scope_id, daily in rows]
