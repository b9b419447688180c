"""Reads that the campaigns of one tenant share for a few seconds, so a burst of campaigns on the same
account reads its mentions and trends once, not once per campaign.

Single flight: while a read is under way, others with the same key wait for it instead of starting
their own. A failed read is not kept (every waiter sees the failure; the next one tries again). Keys
always carry the tenant, so no tenant ever sees another's data; a platform read's key carries the account too
(its bound URI, `<platform>://accounts/<account>/...`), so campaigns share only reads of the same account.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 4096  # beyond this, the oldest kept reads are dropped


class SharedReads:
    def __init__(self, ttl_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._kept: dict[Hashable, tuple[float, Any]] = {}
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    async def get(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        while True:
            kept = self._kept.get(key)
            if kept is not None and kept[0] > self._clock():
                value: T = kept[1]
                return value
            running = self._running.get(key)
            if running is None or running.get_loop() is not asyncio.get_running_loop():
                return await self._read(key, read)
            try:
                shared: T = await asyncio.shield(running)
                return shared
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not running.cancelled() or (task is not None and task.cancelling()):
                    raise  # we are the ones cancelled
                # The reader was cancelled, not us: read for ourselves.

    async def _read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            value = await read()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: the waiters (if any) re-raise it themselves
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(value)
            self._keep(key, value)
            return value
        finally:
            if self._running.get(key) is future:
                del self._running[key]

    def _keep(self, key: Hashable, value: Any) -> None:
        if self._ttl <= 0:
            return
        now = self._clock()
        if len(self._kept) >= MAX_ENTRIES:
            self._kept = {k: v for k, v in self._kept.items() if v[0] > now}
            while len(self._kept) >= MAX_ENTRIES:
                del self._kept[next(iter(self._kept))]
        self._kept[key] = (now + self._ttl, value)
