"""Benchmark: what one MCP tool call costs through Chimera's host, pooled sessions against a new session per call.

Runs the embedded sandbox servers (news, twitter, memory) over stdio through McpHost, exactly as activities
call them (pin check, schema checks, audit), and prints p50/p95 latency and CPU seconds per call for:

  per-call  a session that closes after each call (what every call cost before the pool: spawn, initialize,
            list, call, shut down)
  pooled    the session pool (chimera.mcp.pool), sessions kept open and reused

    .venv/bin/python benchmarks/mcp_calls.py [--calls 30] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from chimera.db import StateStore
from chimera.mcp import McpHost
from chimera.mcp.pool import SessionPool
from chimera.settings import default_mcp_servers

CALLS: dict[str, tuple[str, dict[str, Any]]] = {
    "news": ("trending_topics", {"limit": 5}),
    "twitter": ("find_tweet", {"idempotency_key": "bench-none"}),
    "memory": ("search_memories", {"tenant_id": "bench", "agent_id": "a", "query": "linen dresses"}),
}


def cpu_seconds() -> float:
    """This process and its finished children (the stdio servers that have exited)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def measure(host: McpHost, server: str, calls: int, concurrency: int) -> tuple[list[float], float]:
    tool, args = CALLS[server]
    gate = asyncio.Semaphore(concurrency)
    times: list[float] = []

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            await host.call_tool(server, tool, dict(args))
            times.append(time.perf_counter() - started)

    cpu = cpu_seconds()
    await asyncio.gather(*(one() for _ in range(calls)))
    await host.aclose()  # the children exit, so their CPU is counted
    return times, (cpu_seconds() - cpu) / calls


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    servers = {name: default_mcp_servers()[name] for name in CALLS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = StateStore(f"sqlite:///{root / 'chimera.db'}")
        modes = {
            "per-call": SessionPool(idle_seconds=1e-9),  # every session has idled too long by its next use
            "pooled": SessionPool(),
        }
        setup = McpHost(servers, root / "sb", store)
        for name in servers:
            await setup.approve(name, actor="bench")
        await setup.aclose()
        print(f"{args.calls} calls per server and mode, {args.concurrency} at a time, stdio sandbox servers")
        print(f"{'server':8} {'mode':9} {'p50 ms':>8} {'p95 ms':>8} {'CPU s/call':>11}")
        for server in CALLS:
            for mode, pool in modes.items():
                host = McpHost(servers, root / "sb", store, pool=pool)
                times, cpu = await measure(host, server, args.calls, args.concurrency)
                p50, p95 = statistics.median(times) * 1000, pct(times, 0.95) * 1000
                print(f"{server:8} {mode:9} {p50:8.1f} {p95:8.1f} {cpu:11.3f}")
        store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(main(parser.parse_args()))
