"""Shared reads: one read serves every caller with the same key for the TTL; failures are never kept."""

from __future__ import annotations

import asyncio

import pytest

from chimera.mcp.shared_reads import SharedReads


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_callers_share_one_read_and_the_ttl_ends_it() -> None:
    clock, calls = Clock(), []
    reads = SharedReads(ttl_seconds=10, clock=clock)

    async def read() -> list[str]:
        calls.append(1)
        await asyncio.sleep(0.05)
        return ["mention"]

    results = await asyncio.gather(*(reads.get(("acme", "twitter", "mentions"), read) for _ in range(20)))
    assert results == [["mention"]] * 20 and len(calls) == 1  # single flight
    assert await reads.get(("acme", "twitter", "mentions"), read) == ["mention"] and len(calls) == 1  # kept
    assert await reads.get(("globex", "twitter", "mentions"), read) == ["mention"] and len(calls) == 2  # other key
    clock.now += 10.5
    await reads.get(("acme", "twitter", "mentions"), read)
    assert len(calls) == 3  # expired: read again


async def test_a_failed_read_reaches_every_waiter_and_is_not_kept() -> None:
    reads, calls = SharedReads(ttl_seconds=10), []

    async def broken() -> int:
        calls.append(1)
        await asyncio.sleep(0.05)
        raise ConnectionError("platform down")

    outcomes = await asyncio.gather(*(reads.get("k", broken) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes) and len(calls) == 1

    async def fine() -> int:
        return 7

    assert await reads.get("k", fine) == 7  # the failure was not kept


async def test_a_cancelled_reader_does_not_cancel_its_waiters() -> None:
    reads = SharedReads(ttl_seconds=10)
    started = asyncio.Event()

    async def slow() -> str:
        started.set()
        await asyncio.sleep(10)
        return "never"

    async def quick() -> str:
        return "mine"

    reader = asyncio.create_task(reads.get("k", slow))
    await started.wait()
    waiter = asyncio.create_task(reads.get("k", quick))
    await asyncio.sleep(0.01)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await waiter == "mine"  # it read for itself once the reader was gone
