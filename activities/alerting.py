"""Raising alerts from activities: stops, exhausted budgets, expired reviews, anomalies (specs/alerts.md).

Best effort, and once per alert: the dispatcher records each delivery by alert id, so a retried activity sends
nothing twice; a notifier that fails is logged as an error and never fails the step that raised the alert
(the stop, the review, the outcome are recorded whatever the notifiers do).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime

from chimera.alerts.anomaly import AnomalyThresholds, anomaly_alert, detect
from chimera.alerts.dispatch import AlertDispatcher
from chimera.alerts.errors import NotifierError
from chimera.db import StateStore
from chimera.db.alerts import agent_rates
from schemas.alerts import Alert

logger = logging.getLogger("chimera.alerts")
ANOMALY_CHECK_SECONDS = 60.0  # an agent's rates are read at most this often per process


class AlertSender:
    def __init__(
        self, dispatcher: AlertDispatcher | None, store: StateStore, thresholds: AnomalyThresholds | None = None
    ) -> None:
        self._dispatcher = dispatcher
        self._store = store
        self._thresholds = thresholds or AnomalyThresholds()
        self._checked: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._dispatcher is not None and bool(self._dispatcher.notifiers)

    def send(self, alert: Alert) -> None:
        """From a synchronous activity: a worker thread with no event loop (else a thread of its own)."""
        if not self.enabled:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self.send_async(alert))
            return
        sender = threading.Thread(target=asyncio.run, args=(self.send_async(alert),), name="chimera-alert")
        sender.start()
        sender.join()

    async def send_async(self, alert: Alert) -> None:
        if self._dispatcher is None or not self._dispatcher.notifiers:
            return
        try:
            report = await self._dispatcher.dispatch(alert)
        except NotifierError as exc:
            logger.error("alert %s not delivered: %s", alert.alert_id, exc)
            return
        if report.failed:
            logger.error("%s", report.summary())

    def check_agent(self, tenant_id: str, agent_id: str, campaign_id: str | None = None) -> None:
        """Alert if the agent's spend or rejection rate is far above its normal (at most once a minute)."""
        if not self.enabled:
            return
        key, now = (tenant_id, agent_id), time.monotonic()
        with self._lock:
            if now - self._checked.get(key, -ANOMALY_CHECK_SECONDS) < ANOMALY_CHECK_SECONDS:
                return
            self._checked[key] = now
        moment = datetime.now(UTC)
        history = agent_rates(
            self._store.database, tenant_id, agent_id, moment, history_days=self._thresholds.history_days
        )
        for anomaly in detect(history, self._thresholds):
            self.send(anomaly_alert(anomaly, moment.isoformat(), campaign_id=campaign_id))
