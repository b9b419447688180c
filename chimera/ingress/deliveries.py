"""De-duplication of platform events, durable in the state store (table webhook_deliveries).

Platforms deliver at least once and retry what they think failed, so the same tweet or comment can arrive
several times, even at once. An event is claimed (platform + its id) before anything is signalled: of two racing
copies one wins, the other is answered as a repeat. A claim whose handling then fails (Temporal or the database
down) is released, so the platform's retry is handled instead of refused.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from chimera.db import StateStore
from chimera.ingress.payloads import PushedMention

# Platforms retry for a day or two (Meta up to 36 hours); claims are kept well beyond that, then dropped.
KEEP_CLAIMS = timedelta(days=7)
logger = logging.getLogger("chimera.ingress")


class Deliveries:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def claim(self, event: PushedMention) -> bool:
        """True the first time this event is seen; False for a replay."""
        return await asyncio.to_thread(self._store.claim_delivery, event.platform, event.event_id, event.account_id)

    async def release(self, event: PushedMention) -> None:
        try:
            await asyncio.to_thread(self._store.release_delivery, event.platform, event.event_id)
        except Exception as exc:  # the database is what failed: the retry will be refused, polling still answers
            logger.error("could not release %s event %s: %s", event.platform, event.event_id, exc)

    async def forget_old(self, now: datetime | None = None) -> int:
        before = (now or datetime.now(UTC)) - KEEP_CLAIMS
        return await asyncio.to_thread(self._store.forget_deliveries, before)
