"""Budget activities: reserve an estimate before a task runs, settle the actual cost after."""

from __future__ import annotations

from activities.registry import implements
from chimera.db import StateStore
from schemas.activity_table import Activities
from schemas.task import BudgetRequest, Reservation, SettleRequest


class BudgetActivities:
    def __init__(self, store: StateStore, estimates_usd: dict[str, float], default_estimate_usd: float) -> None:
        self._store = store
        self._estimates = dict(estimates_usd)
        self._default = default_estimate_usd

    def estimate(self, task_type: str) -> float:
        return self._estimates.get(task_type, self._default)

    @implements(Activities.reserve_budget)
    def reserve_budget(self, req: BudgetRequest) -> Reservation:
        return self._store.reserve(req.ref, self.estimate(req.task_type), req.daily_budget_usd, req.timezone)

    @implements(Activities.settle_budget)
    def settle_budget(self, req: SettleRequest) -> Reservation:
        """Replace the reservation by what the task really cost (zero if it never ran a model)."""
        self._store.settle(req.ref, req.actual_usd, req.timezone)
        spend = self._store.spend_today(req.ref.tenant_id, req.ref.campaign_id, req.timezone)
        return Reservation(
            ok=True,
            amount_usd=req.actual_usd,
            day=spend.day.isoformat(),
            spent_today_usd=round(spend.spent_usd + spend.reserved_usd, 6),
        )
