"""One way for tests (and the history recorder) to wait for something that happens elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str = "condition", within: float = 20.0, every: float = 0.1
) -> T:
    """Poll `check` in real time until it returns a truthy value, which is returned."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not within {within:g}s: {what}")
        await asyncio.sleep(every)
