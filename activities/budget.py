"""Budget activities: reserve an estimate before a task runs, settle the actual cost after."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.alerting import AlertSender
from activities.registry import implements
from chimera.db import StateStore
from chimera.db.budget import money
from schemas.activity_table import Activities
from schemas.alerts import budget_exhausted_alert
from schemas.task import BudgetRequest, Reservation, SettleRequest


class BudgetActivities:
    def __init__(
        self,
        store: StateStore,
        estimates_usd: dict[str, float],
        default_estimate_usd: float,
        review_estimate_usd: float = 0.0,
        *,
        alerts: AlertSender | None = None,
    ) -> None:
        self._store = store
        self._alerts = alerts or AlertSender(None, store)
        self._estimates = dict(estimates_usd)
        self._default = default_estimate_usd
        self._review = review_estimate_usd  # the Judge's model review, when one is configured

    def estimate(self, task_type: str) -> float:
        return self._estimates.get(task_type, self._default) + self._review

    @implements(Activities.reserve_budget)
    def reserve_budget(self, req: BudgetRequest) -> Reservation:
        """Reserve the estimate, unless a stop covers the task (nothing more is spent) or a budget is used up
        (alerted once per campaign, level and day)."""
        halted = self._store.halted(req.ref)
        if halted:
            return Reservation(ok=False, reason=f"{halted}: nothing more is spent")
        reservation = self._store.reserve(req.ref, self.estimate(req.task_type), req.daily_budget_usd, req.timezone)
        if not reservation.ok and reservation.level:
            alert = budget_exhausted_alert(
                tenant_id=req.ref.tenant_id,
                campaign_id=req.ref.campaign_id,
                agent_id=req.ref.agent_id,
                level=reservation.level,
                day=reservation.day,
                reason=reservation.reason,
                raised_at=datetime.now(UTC).isoformat(),
            )
            self._alerts.send(alert)
        return reservation

    @implements(Activities.settle_budget)
    def settle_budget(self, req: SettleRequest) -> Reservation:
        """Replace the reservation by what the task really cost: no less than what its calls' ledger lines
        (model_calls, every attempt's) cost, so recorded spend always binds the budget; zero if it ran none.
        Idempotent: a retry settles the same amount again (unless more lines were recorded meanwhile)."""
        ledgered = self._store.owner_cost(req.ref.tenant_id, req.ref.task_id)
        amount = float(max(money(req.actual_usd), money(ledgered)))
        self._store.settle(req.ref, amount, req.timezone)
        spend = self._store.spend_today(req.ref.tenant_id, req.ref.campaign_id, req.timezone)
        return Reservation(
            ok=True,
            amount_usd=amount,
            day=spend.day.isoformat(),
            spent_today_usd=round(spend.spent_usd + spend.reserved_usd, 6),
        )
