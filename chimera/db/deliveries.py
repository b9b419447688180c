"""Webhook deliveries seen once: the ingress's durable de-duplication by (platform, event id).

Platform scope (specs/ingress.md): the rows name no tenant and hold only ids and times, never a body.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chimera.db.models import WebhookDelivery


def claim(session: Session, platform: str, event_id: str, account_id: str, now: datetime) -> bool:
    """Record the event; False if it was recorded before (a replay). Atomic: of two racing claims one wins."""
    values = {"platform": platform, "event_id": event_id, "account_id": account_id, "received_at": now}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(WebhookDelivery)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["platform", "event_id"])
        .returning(WebhookDelivery.event_id)  # a row back only when this insert took it (rowcount is unreliable)
    )
    return session.execute(stmt).first() is not None


def release(session: Session, platform: str, event_id: str) -> None:
    """Forget a claim whose signal could not be sent, so the platform's retry is handled, not refused."""
    session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.platform == platform, WebhookDelivery.event_id == event_id)
    )


def forget_before(session: Session, before: datetime) -> int:
    """Drop claims older than `before` (platforms stop retrying after a day or two)."""
    result = session.execute(delete(WebhookDelivery).where(WebhookDelivery.received_at < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
