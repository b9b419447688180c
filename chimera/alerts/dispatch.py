"""Send an alert to every notifier that accepts it, at most once per (alert_id, notifier).

Called from an activity. A retried activity skips every notifier already recorded as having the alert
(DeliveryStore); a receiver sees an alert twice only if recording its delivery failed after the send, which is
why deliveries carry the alert id (X-Chimera-Alert-Id, the email's Message-ID) for receivers to de-duplicate.
One notifier's failure never stops the others: it is reported. When every accepting notifier failed,
AlertNotDelivered (a NotifierError) is raised so the activity is retried; `strict=True` raises when any failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from chimera.alerts.config import NotifierConfig, SmtpNotifierConfig, WebhookNotifierConfig, parse_notifiers
from chimera.alerts.errors import NotifierConfigError, NotifierError
from chimera.alerts.smtp import SmtpNotifier
from chimera.alerts.webhook import WebhookNotifier
from chimera.secrets.base import SecretsError, SecretSource
from schemas.alerts import Alert


class Notifier(Protocol):
    @property
    def name(self) -> str: ...

    def accepts(self, alert: Alert) -> bool: ...

    async def send(self, alert: Alert) -> None: ...


class DeliveryStore(Protocol):
    """Which (alert, notifier) deliveries happened. Synchronous (a database): the dispatcher calls it in a thread."""

    def was_sent(self, alert_id: str, notifier: str) -> bool: ...

    def mark_sent(self, alert: Alert, notifier: str) -> None: ...


class MemoryDeliveryStore:
    """A DeliveryStore in memory: for tests and one-off tools (chimera.db.alerts.SqlDeliveryStore is the real one)."""

    def __init__(self) -> None:
        self.sent: set[tuple[str, str]] = set()

    def was_sent(self, alert_id: str, notifier: str) -> bool:
        return (alert_id, notifier) in self.sent

    def mark_sent(self, alert: Alert, notifier: str) -> None:
        self.sent.add((alert.alert_id, notifier))


DeliveryStatus = Literal["sent", "already_sent", "failed"]


class Delivery(BaseModel):
    model_config = ConfigDict(frozen=True)

    notifier: str
    status: DeliveryStatus
    error: str | None = None  # failed: why; sent: set when the delivery could not be recorded
    http_status: int | None = None


class DispatchReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_id: str
    deliveries: list[Delivery]  # one per accepting notifier, in the notifiers' order

    def with_status(self, status: DeliveryStatus) -> list[str]:
        return [d.notifier for d in self.deliveries if d.status == status]

    @property
    def sent(self) -> list[str]:
        return self.with_status("sent")

    @property
    def already_sent(self) -> list[str]:
        return self.with_status("already_sent")

    @property
    def failed(self) -> list[str]:
        return self.with_status("failed")

    def summary(self) -> str:
        if not self.deliveries:
            return f"alert {self.alert_id}: no notifier accepts it"
        parts = [
            d.notifier + (f" failed ({d.error})" if d.status == "failed" else f" {d.status}") for d in self.deliveries
        ]
        return f"alert {self.alert_id}: " + "; ".join(parts)


class AlertNotDelivered(NotifierError):
    """Raised by dispatch when no accepting notifier has the alert (or, strict, when any failed); `report` says
    which notifiers failed and why. A retry skips the notifiers that delivered."""

    def __init__(self, report: DispatchReport) -> None:
        failed = [d for d in report.deliveries if d.status == "failed"]
        names = ", ".join(d.notifier for d in failed)
        super().__init__(names, report.summary(), status=failed[0].http_status if failed else None)
        self.args = (f"not delivered: {report.summary()}",)
        self.report = report

    def __str__(self) -> str:
        return str(self.args[0])


class AlertDispatcher:
    def __init__(self, notifiers: Sequence[Notifier], store: DeliveryStore) -> None:
        names = [n.name for n in notifiers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise NotifierConfigError(f"notifier names must be unique (deliveries are recorded by name): {duplicates}")
        self.notifiers = list(notifiers)
        self._store = store

    async def dispatch(self, alert: Alert, *, strict: bool = False) -> DispatchReport:
        """Send `alert` to every accepting notifier not yet recorded as having it, concurrently.

        Raises AlertNotDelivered (a NotifierError) when notifiers accept the alert and every one of them failed
        (with `strict`: when any failed). A store that cannot be read raises before anything is sent."""
        accepting = [n for n in self.notifiers if n.accepts(alert)]
        done = await asyncio.to_thread(
            lambda: {n.name for n in accepting if self._store.was_sent(alert.alert_id, n.name)}
        )
        results = await asyncio.gather(
            *(self._deliver(alert, n) for n in accepting if n.name not in done),
        )
        by_name = {d.notifier: d for d in results}
        deliveries = [by_name.get(n.name) or Delivery(notifier=n.name, status="already_sent") for n in accepting]
        report = DispatchReport(alert_id=alert.alert_id, deliveries=deliveries)
        failed = report.failed
        if failed and (strict or len(failed) == len(deliveries)):
            raise AlertNotDelivered(report)
        return report

    async def _deliver(self, alert: Alert, notifier: Notifier) -> Delivery:
        try:
            await notifier.send(alert)
        except NotifierError as exc:
            return Delivery(notifier=notifier.name, status="failed", error=exc.reason, http_status=exc.status)
        except Exception as exc:  # a broken notifier must not stop the others; its message may not be safe to show
            return Delivery(notifier=notifier.name, status="failed", error=f"unexpected {type(exc).__name__}")
        try:
            await asyncio.to_thread(self._store.mark_sent, alert, notifier.name)
        except Exception as exc:  # it was sent: a retry may send it again (receivers dedupe on the alert id)
            return Delivery(notifier=notifier.name, status="sent", error=f"not recorded: {type(exc).__name__}")
        return Delivery(notifier=notifier.name, status="sent")


def notifiers_from(configs: Sequence[NotifierConfig | Mapping[str, Any]], secrets: SecretSource) -> list[Notifier]:
    """Build the configured notifiers (Settings.notifiers: configs or their JSON objects), reading their secrets now.

    NotifierConfigError for an invalid configuration, or a secret missing (naming the notifier and the secret)."""
    built: list[Notifier] = []
    for config in parse_notifiers(configs):
        if isinstance(config, WebhookNotifierConfig):
            built.append(WebhookNotifier(config, _secret(secrets, config.name, config.secret_name)))
        elif isinstance(config, SmtpNotifierConfig):
            password = None if config.password_secret is None else _secret(secrets, config.name, config.password_secret)
            built.append(SmtpNotifier(config, password))
        else:  # pragma: no cover - the union is closed; a new kind must be added here
            raise NotifierConfigError(f"notifier {config.name!r}: unknown kind {config.kind!r}")
    return built


def _secret(secrets: SecretSource, notifier: str, name: str) -> str:
    try:
        value = secrets.get(name)
    except SecretsError as exc:  # the source could not be read (its message names the secret, never a value)
        raise NotifierConfigError(f"notifier {notifier!r}: {exc}") from exc
    if not value:
        raise NotifierConfigError(
            f"notifier {notifier!r}: secret {name!r} is not set (or empty) in any configured secrets source"
        )
    return value
