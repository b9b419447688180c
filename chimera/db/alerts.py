"""Alerts in the state database: which deliveries happened (alert_deliveries), and an agent's recent rates.

- SqlDeliveryStore is the AlertDispatcher's DeliveryStore. Its rows are platform scope (no tenant owns a fleet
  stop), so every transaction runs as the reserved PLATFORM_TENANT, as the ingress's delivery claims do.
- agent_rates reads an agent's spend (the call ledger, model_calls: every priced call with its time) and judged
  outcomes (outcomes: published counts as accepted, rejected as rejected, as for success_rate) into the hour
  slots of chimera.alerts.anomaly, inside a transaction of the agent's tenant (row-level security applies).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chimera.alerts.anomaly import AgentHistory, build_history
from chimera.db.engine import Database
from chimera.db.mcp import PLATFORM_TENANT
from chimera.db.models import AlertDelivery, ModelCall, Outcome
from chimera.db.outcomes import FAILURE_STATUSES, SUCCESS_STATUSES
from schemas.alerts import Alert

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SqlDeliveryStore:
    """Delivery records in the state database (SQLite or PostgreSQL). Each call is its own transaction."""

    def __init__(self, database: Database, *, clock: Clock | None = None) -> None:
        self._db = database
        self._clock = clock or _utcnow
        self._owned = False

    @classmethod
    def from_url(cls, url: str, *, clock: Clock | None = None) -> SqlDeliveryStore:
        """A store with its own engine (closed by close()); on PostgreSQL, the application role's URL."""
        store = cls(Database(url), clock=clock)
        store._owned = True
        return store

    def close(self) -> None:
        if self._owned:
            self._db.dispose()

    def was_sent(self, alert_id: str, notifier: str) -> bool:
        with self._db.transaction(PLATFORM_TENANT, write=False) as s:
            return s.get(AlertDelivery, (alert_id, notifier)) is not None

    def mark_sent(self, alert: Alert, notifier: str) -> None:
        """Record the delivery; recording it again (a race, a retry) keeps the first record."""
        values = {
            "alert_id": alert.alert_id,
            "notifier": notifier,
            "kind": alert.kind,
            "severity": alert.severity,
            "alert_tenant_id": alert.tenant_id,
            "sent_at": self._clock(),
        }
        with self._db.transaction(PLATFORM_TENANT, write=True) as s:
            insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
            s.execute(
                insert(AlertDelivery).values(**values).on_conflict_do_nothing(index_elements=["alert_id", "notifier"])
            )

    def sent_to(self, alert_id: str) -> list[str]:
        """The notifiers that delivered the alert, by name."""
        with self._db.transaction(PLATFORM_TENANT, write=False) as s:
            stmt = (
                select(AlertDelivery.notifier)
                .where(AlertDelivery.alert_id == alert_id)
                .order_by(AlertDelivery.notifier)
            )
            return list(s.execute(stmt).scalars())

    def forget_before(self, before: datetime) -> int:
        """Drop records of deliveries sent before `before` (once no retry can come); returns how many."""
        with self._db.transaction(PLATFORM_TENANT, write=True) as s:
            result = s.execute(delete(AlertDelivery).where(AlertDelivery.sent_at < before))
            return int(result.rowcount)  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"SqlDeliveryStore(dialect={self._db.dialect!r})"


def agent_rates(
    source: Database | Session, tenant_id: str, agent_id: str, now: datetime, *, history_days: int = 7
) -> AgentHistory:
    """The agent's last hour before `now` and the `history_days` before it, as chimera.alerts.anomaly reads them.

    `source`: a Database (a read transaction of the tenant is opened here) or a Session already in one."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if isinstance(source, Database):
        with source.transaction(tenant_id, write=False, snapshot=True) as s:
            return _rates(s, tenant_id, agent_id, now, history_days)
    return _rates(source, tenant_id, agent_id, now, history_days)


def _rates(session: Session, tenant_id: str, agent_id: str, now: datetime, history_days: int) -> AgentHistory:
    since = now - timedelta(days=history_days, hours=1)
    spend = session.execute(
        select(ModelCall.created_at, ModelCall.cost_usd).where(
            ModelCall.tenant_id == tenant_id,
            ModelCall.agent_id == agent_id,
            ModelCall.created_at >= since,
            ModelCall.created_at <= now,
        )
    ).all()
    verdicts = session.execute(
        select(Outcome.at, Outcome.status).where(
            Outcome.tenant_id == tenant_id,
            Outcome.agent_id == agent_id,
            Outcome.status.in_(SUCCESS_STATUSES + FAILURE_STATUSES),
            Outcome.at >= since,
            Outcome.at <= now,
        )
    ).all()
    return build_history(
        tenant_id,
        agent_id,
        now,
        spend=[(at, float(usd)) for at, usd in spend],
        verdicts=[(at, status in FAILURE_STATUSES) for at, status in verdicts],
        history_days=history_days,
    )
