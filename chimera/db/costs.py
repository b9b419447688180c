"""The call ledger (model_calls): every priced model call and paid tool call, kept once by its key.

An activity records the cost lines of the calls it made (`record`), under the task or plan id they were made for
(the owner). A retried activity records the same keys again and adds nothing, so an owner's cost is what all its
attempts' calls cost, each once. Budgets bind on it: `settle_budget` settles a task at no less than its owner
cost, and `charge` books spend that has no reservation of its own (planning calls) straight into `spend`.
Amounts are Decimal, rounded to the micro-dollar (budget.money).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from chimera.db import budget
from chimera.db.budget import local_day, money
from chimera.db.engine import upsert
from chimera.db.models import CALL_KEY, LONG_ID, Campaign, ModelCall, Task
from chimera.db.records import UsageRow, UsageSummary
from schemas.models import CostLine
from schemas.task import TaskRef

KEY_LENGTH = CALL_KEY.length or 400
OWNER_LENGTH = LONG_ID.length or 255


def _check(owner_id: str, lines: Sequence[CostLine]) -> None:
    if not owner_id or len(owner_id) > OWNER_LENGTH:
        raise ValueError(f"an owner id must have 1 to {OWNER_LENGTH} characters, not {len(owner_id)}")
    for line in lines:
        if len(line.key) > KEY_LENGTH:
            raise ValueError(f"cost line key {line.key[:60]!r}... is longer than {KEY_LENGTH} characters")
        if line.transcript_ref is not None and len(line.transcript_ref) > KEY_LENGTH:
            raise ValueError(f"transcript_ref of cost line {line.key!r} is longer than {KEY_LENGTH} characters")


def record(
    session: Session, ref: TaskRef, owner_id: str, lines: Sequence[CostLine], timezone: str, now: datetime
) -> None:
    """Insert each line once by (tenant_id, key): a key recorded before is left as it is (idempotent)."""
    _check(owner_id, lines)
    day = local_day(now, timezone)
    for line in lines:
        values: dict[str, Any] = {
            "tenant_id": ref.tenant_id,
            "key": line.key,
            "campaign_id": ref.campaign_id,
            "agent_id": ref.agent_id,
            "owner_id": owner_id,
            "day": day,
            "kind": line.kind,
            "tier": line.tier,
            "provider": line.provider,
            "model": line.model,
            "input_tokens": line.tokens.input_tokens,
            "output_tokens": line.tokens.output_tokens,
            "cached_input_tokens": line.tokens.cached_input_tokens,
            "cache_write_tokens": line.tokens.cache_write_tokens,
            "cost_usd": float(money(line.cost_usd)),
            "estimated": line.estimated,
            "basis": line.basis,
            "price_date": line.price_date,
            "transcript_ref": line.transcript_ref,
            "created_at": now,
        }
        upsert(session, ModelCall, values, ["tenant_id", "key"])


def owner_cost(session: Session, tenant_id: str, owner_id: str) -> Decimal:
    """What the owner's recorded lines cost, summed in Decimal."""
    values = session.execute(
        select(ModelCall.cost_usd).where(ModelCall.tenant_id == tenant_id, ModelCall.owner_id == owner_id)
    ).scalars()
    return money(sum((money(v) for v in values), Decimal(0)))


def charge(session: Session, ref: TaskRef, lines: Sequence[CostLine], timezone: str, now: datetime) -> Decimal:
    """Record the lines under ref.task_id and settle its spend row at the owner's whole cost; returns that cost.

    For spend with no reservation of its own (planning calls): the row is inserted settled, or, if one exists
    (reserved, settled or released), settled at the new total. Takes the budget locks first, so the total read
    and the settlement are one step against concurrent reservations and charges.
    """
    budget.lock_task(session, ref)
    record(session, ref, ref.task_id, lines, timezone, now)
    total = owner_cost(session, ref.tenant_id, ref.task_id)
    budget.settle(session, ref, float(total), timezone, now)
    return total


def _tokens() -> Any:
    return (
        ModelCall.input_tokens + ModelCall.output_tokens + ModelCall.cached_input_tokens + ModelCall.cache_write_tokens
    )


def _published(session: Session, tenant_id: str, campaign_id: str | None, day_from: date, day_to: date) -> int:
    """Tasks recorded `published` (their row's updated_at: published is terminal) on a day of the range, each
    day in its campaign's time zone."""
    # Local days lie within a day of UTC's either way (UTC-12 to UTC+14): narrow in SQL, decide per zone below.
    start = datetime.combine(day_from - timedelta(days=1), time(), UTC)
    end = datetime.combine(day_to + timedelta(days=2), time(), UTC)
    stmt = (
        select(Task.updated_at, Campaign.timezone)
        .join(Campaign, (Campaign.tenant_id == Task.tenant_id) & (Campaign.id == Task.campaign_id))
        .where(
            Task.tenant_id == tenant_id,
            Task.status == "published",
            Task.updated_at >= start,
            Task.updated_at < end,
        )
    )
    if campaign_id is not None:
        stmt = stmt.where(Task.campaign_id == campaign_id)
    return sum(1 for updated_at, zone in session.execute(stmt) if day_from <= local_day(updated_at, zone) <= day_to)


def usage_summary(
    session: Session, tenant_id: str, campaign_id: str | None, day_from: date, day_to: date
) -> UsageSummary:
    """The ledger's lines of the tenant (or one campaign) recorded from day_from to day_to (inclusive)."""
    if day_from > day_to:
        raise ValueError(f"day_from {day_from} is after day_to {day_to}")
    where = [ModelCall.tenant_id == tenant_id, ModelCall.day >= day_from, ModelCall.day <= day_to]
    if campaign_id is not None:
        where.append(ModelCall.campaign_id == campaign_id)
    estimated_cost = func.sum(case((ModelCall.estimated.is_(True), ModelCall.cost_usd), else_=0))
    estimated_calls = func.sum(case((ModelCall.estimated.is_(True), 1), else_=0))
    grouped = session.execute(
        select(
            ModelCall.tier,
            ModelCall.provider,
            ModelCall.model,
            ModelCall.kind,
            func.count(),
            func.sum(ModelCall.input_tokens),
            func.sum(ModelCall.output_tokens),
            func.sum(ModelCall.cached_input_tokens),
            func.sum(ModelCall.cache_write_tokens),
            func.sum(ModelCall.cost_usd),
            estimated_cost,
            estimated_calls,
        )
        .where(*where)
        .group_by(ModelCall.tier, ModelCall.provider, ModelCall.model, ModelCall.kind)
        .order_by(ModelCall.tier, ModelCall.provider, ModelCall.model, ModelCall.kind)
    ).all()
    rows = [
        UsageRow(
            tier=tier,
            provider=provider,
            model=model,
            kind=kind,
            calls=int(calls),
            input_tokens=int(inp or 0),
            output_tokens=int(out or 0),
            cached_input_tokens=int(cached or 0),
            cache_write_tokens=int(written or 0),
            cost_usd=float(money(cost)),
            estimated_usd=float(money(est_cost)),
            estimated_calls=int(est_calls or 0),
        )
        for tier, provider, model, kind, calls, inp, out, cached, written, cost, est_cost, est_calls in grouped
    ]
    per_tier = session.execute(
        select(ModelCall.tier, func.sum(_tokens()), func.count(func.distinct(ModelCall.owner_id)))
        .where(*where)
        .group_by(ModelCall.tier)
        .order_by(ModelCall.tier)
    ).all()
    spent = money(sum((money(r.cost_usd) for r in rows), Decimal(0)))
    published = _published(session, tenant_id, campaign_id, day_from, day_to)
    return UsageSummary(
        tenant_id=tenant_id,
        campaign_id=campaign_id,
        day_from=day_from,
        day_to=day_to,
        rows=rows,
        spent_usd=float(spent),
        estimated_usd=float(money(sum((money(r.estimated_usd) for r in rows), Decimal(0)))),
        calls=sum(r.calls for r in rows),
        published_posts=published,
        cost_per_published_usd=float(money(spent / published)) if published else None,
        tokens_per_task={tier: round(int(tokens or 0) / owners, 1) for tier, tokens, owners in per_tier if owners},
    )
