"""One verified delivery, event by event: claim (de-duplicate), route, signal; and what happened to each.

Events are handled in the order the platform sent them. If the store or Temporal fails part way, the failed
event's claim is released and `Unavailable` carries the results so far: the ingress answers 503, the platform
retries the whole delivery, the events already signalled come back as repeats (never signalled twice) and the
rest are handled then. Polling stays the fallback for anything a crash in between loses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel

from chimera.db import CampaignRecord, StateStore
from chimera.ingress import routing
from chimera.ingress.deliveries import Deliveries
from chimera.ingress.payloads import Batch, PushedMention
from schemas.events import MentionDelivery

Outcome = Literal["signalled", "repeat", "unroutable", "closed", "skipped"]
logger = logging.getLogger("chimera.ingress")


class EventResult(BaseModel):
    """What the ingress did with one event (the body of its answer lists them)."""

    platform: str
    event_id: str
    outcome: Outcome
    campaign: str | None = None  # tenant/campaign that took it (signalled) or refused it (closed)
    detail: str = ""


class Unavailable(Exception):
    """The store or Temporal failed: answer 503 so the platform retries."""

    def __init__(self, message: str, results: list[EventResult]) -> None:
        super().__init__(message)
        self.results = results


class Signaller(Protocol):
    async def __call__(self, campaign: CampaignRecord, delivery: MentionDelivery) -> bool: ...


def _now() -> datetime:
    return datetime.now(UTC)


class Ingress:
    def __init__(
        self,
        store: StateStore,
        signal: Signaller,
        accounts: Mapping[str, str],
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._signal = signal
        self._accounts = dict(accounts)
        self._clock = clock
        self.deliveries = Deliveries(store)

    async def receive(self, batch: Batch) -> list[EventResult]:
        received_at = self._clock().isoformat()
        results = [
            EventResult(platform=s.platform, event_id=s.event_id, outcome="skipped", detail=s.reason)
            for s in batch.skipped
        ]
        for event in batch.mentions:
            try:
                results.append(await self._one(event, received_at))
            except Unavailable as exc:
                raise Unavailable(str(exc), results) from exc
        return results

    async def _one(self, event: PushedMention, received_at: str) -> EventResult:
        where = f"{event.platform} event {event.event_id} for account {event.account_id}"
        try:
            first = await self.deliveries.claim(event)
        except Exception as exc:
            logger.error("%s: cannot record the delivery: %s", where, exc)
            raise Unavailable(f"the state store failed: {type(exc).__name__}", []) from exc
        if not first:
            logger.info("%s: a repeat, refused (already handled)", where)
            return _result(event, "repeat", detail="already received: not signalled again")
        delivery = MentionDelivery(
            event_id=f"{event.platform}:{event.event_id}", mention=event.mention, received_at=received_at
        )
        try:
            return await self._route(event, delivery, where)
        except Exception as exc:
            await self.deliveries.release(event)
            logger.error(
                "%s: not delivered (%s: %s); the platform's retry will try again", where, type(exc).__name__, exc
            )
            raise Unavailable(f"could not signal the campaign: {type(exc).__name__}", []) from exc

    async def _route(self, event: PushedMention, delivery: MentionDelivery, where: str) -> EventResult:
        found = routing.candidates(self._store, event.platform, event.account_id, self._accounts)
        closed: list[str] = []
        while (campaign := await asyncio.to_thread(next, found, None)) is not None:
            name = f"{campaign.tenant_id}/{campaign.campaign_id}"
            if await self._signal(campaign, delivery):
                logger.info("%s: signalled campaign %s", where, name)
                return _result(event, "signalled", name, "the campaign plans a reply now")
            closed.append(name)
        handle = routing.handle_for(event.platform, event.account_id, self._accounts)
        if closed:
            logger.warning("%s: campaign(s) %s have closed; left to polling", where, ", ".join(closed))
            return _result(event, "closed", closed[0], "the campaign's workflow has closed: not restarted")
        logger.warning("%s: no running or paused campaign has handle %r on %s", where, handle, event.platform)
        return _result(
            event, "unroutable", detail=f"no running or paused campaign has {event.platform} handle {handle!r}"
        )


def _result(event: PushedMention, outcome: Outcome, campaign: str | None = None, detail: str = "") -> EventResult:
    return EventResult(
        platform=event.platform, event_id=event.event_id, outcome=outcome, campaign=campaign, detail=detail
    )
