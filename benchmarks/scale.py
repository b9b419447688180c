"""Benchmark: Chimera at scale (issue 9): worker memory with 1,000 idle campaigns, and the time 200 active
campaigns started together take to complete a cycle.

    .venv/bin/python benchmarks/scale.py                    # 1,000 idle, then 200 active x 5 tasks
    .venv/bin/python benchmarks/scale.py --only idle --idle 1000
    .venv/bin/python benchmarks/scale.py --quick            # smoke run: 50 idle, 20 active x 3 tasks

Both parts run real CampaignWorkflows on embedded defaults (offline model, sandbox MCP servers over stdio,
PostgreSQL in a fresh schema as the app role; --db sqlite for the file default), each part on a dev server
of its own (chimera.devserver, headless, SQLite file in a temp dir), served by `chimera worker --role all`
processes (one unless --worker-processes says more). Campaigns are the example campaign (persona Mira) on
twitter, one post a cycle, as in benchmarks/throughput.py (see bench_stack.bench_spec for why).

Idle. --idle campaigns start at once (64 start RPCs in flight), with a 24 h cycle interval and no cycle
limit: each runs its first cycle (observe, plan, one post published), then waits on its next-cycle timer,
which is what an idle campaign is. The burst is timed from the first campaign's start to the last task's
close (server clock), waited for through visibility counts; then every campaign's status query must show
cycle 1 with no task open. After --settle seconds the worker process's memory is read from /proc: VmRSS of
the process alone, its peak (VmHWM), and the tree with its descendants (the pooled stdio MCP servers are
child processes): summed RSS (counts shared pages once per process, so it overstates) and summed PSS
(shared pages split among sharers). The planner worker caches at most `worker_concurrency.cached_workflows`
workflows (200 by default; the SDK's own default is 1,000), so most idle campaigns are evicted and replay
their short history when their timer fires. Target: < 400 MB.

Active. --active campaigns of --active-tasks tasks each (1 post + pushed mentions answered, as in the
throughput benchmark), max_cycles=1, start at once after one warm-up campaign. Figure: first campaign start
-> last campaign closed (its cycle done: every planned task closed), per-campaign p50/p95, tasks failed or
stuck, campaigns that did not complete, and the per-step latencies from the histories. Target: 5 minutes.

The exit status is non-zero only on a crash, never on a missed target. --versioned, --server-env and the
environment variables passed to the workers are as in benchmarks/throughput.py.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime

import bench_stack as bs
from temporalio.client import Client, WorkflowHandle

from schemas.events import CampaignStatus
from workflows.campaign import CampaignWorkflow

RSS_TARGET_MIB = 400.0
CYCLE_TARGET_SECONDS = 300.0
IDLE_CYCLE_SECONDS = 24 * 3600
OPEN = frozenset({"planned", "running", "pending_review"})


@dataclass
class IdleResult:
    campaigns: int
    start_rpc_seconds: float = 0.0
    burst_seconds: float = float("nan")
    idle_confirmed: int = 0
    posts_published: int = 0
    posts_other: int = 0
    at_rest: bs.Memory | None = None
    idle: bs.Memory | None = None
    notes: list[str] = field(default_factory=list)


async def count(client: Client, query: str) -> int:
    return (await client.count_workflows(query)).count


async def wait_for_tasks(client: Client, expected: int, give_up_after: float, notes: list[str]) -> datetime | None:
    """Until `expected` task workflows exist and none runs (visibility counts, polled every second);
    returns the last task's close time (server clock)."""
    deadline = time.monotonic() + give_up_after
    shown = time.monotonic()
    while True:
        total = await count(client, "WorkflowType = 'ContentTaskWorkflow'")
        running = await count(client, "WorkflowType = 'ContentTaskWorkflow' AND ExecutionStatus = 'Running'")
        if total >= expected and running == 0:
            break
        if time.monotonic() > deadline:
            notes.append(f"gave up after {give_up_after:.0f} s: {total - running}/{expected} tasks closed")
            break
        if time.monotonic() - shown > 15:
            print(f"  ... {total - running}/{expected} tasks closed", flush=True)
            shown = time.monotonic()
        await asyncio.sleep(1.0)
    last: datetime | None = None
    async for execution in client.list_workflows("WorkflowType = 'ContentTaskWorkflow'"):
        if execution.close_time is not None and (last is None or execution.close_time > last):
            last = execution.close_time
    return last


async def idle_part(args: argparse.Namespace) -> IdleResult:
    result = IdleResult(args.idle)
    with bs.run_dir(args.keep, "scale-idle") as tmp, bs.database(args.db) as url:
        async with bs.temporal_stack(tmp) as stack:
            setup = bs.chimera_setup(stack, url, args.versioned, args.server_env)
            await bs.approve_servers(setup)
            sandbox = bs.prepare_sandbox(setup)
            workers = bs.chimera_workers(setup, stack, 1)
            try:
                await bs.chimera_ready(setup, stack, workers)
                pid = workers.pids[0]
                result.at_rest = bs.memory_of(pid)
                campaigns = bs.chimera_campaigns(
                    setup,
                    stack,
                    sandbox,
                    args.idle,
                    1,
                    label="idle",
                    tenants=args.tenants,
                    cycle_interval_seconds=IDLE_CYCLE_SECONDS,
                    max_cycles=None,
                )
                began = time.monotonic()
                handles = await bs.bounded(campaigns, 64, lambda c: bs.start_chimera(stack.client, c))
                result.start_rpc_seconds = time.monotonic() - began
                last = await wait_for_tasks(stack.client, args.idle, args.timeout, result.notes)
                described = await bs.closes(stack.client, [h.id for h in handles])
                starts = [s for _, s, _ in described.values() if s is not None]
                if last is not None and starts:
                    result.burst_seconds = (last - min(starts)).total_seconds()
                await confirm_idle(handles, result)
                workers.check_alive()
                await asyncio.sleep(args.settle)
                result.idle = bs.memory_of(pid)
            finally:
                workers.stop()
    return result


async def confirm_idle(handles: list[WorkflowHandle[CampaignWorkflow, CampaignStatus]], result: IdleResult) -> None:
    """Every campaign's own word: first cycle done, no task open, waiting for the next cycle."""

    async def one(handle: WorkflowHandle[CampaignWorkflow, CampaignStatus]) -> CampaignStatus | None:
        try:
            return await handle.query(CampaignWorkflow.status, rpc_timeout=bs.QUERY_TIMEOUT)
        except Exception as exc:  # a campaign that does not answer is a figure, not a crash
            result.notes.append(f"{handle.id}: {type(exc).__name__}: {exc}")
            return None

    for st in await bs.bounded(handles, 16, one):
        if st is None:
            continue
        if st.state == "running" and st.cycle == 1 and not any(t.status in OPEN for t in st.tasks):
            result.idle_confirmed += 1
        result.posts_published += sum(t.status == "published" for t in st.tasks)
        result.posts_other += sum(t.status != "published" for t in st.tasks)


async def active_part(args: argparse.Namespace) -> bs.RunResult:
    with bs.run_dir(args.keep, "scale-active") as tmp, bs.database(args.db) as url:
        async with bs.temporal_stack(tmp) as stack:
            setup = bs.chimera_setup(stack, url, args.versioned, args.server_env)
            await bs.approve_servers(setup)
            sandbox = bs.prepare_sandbox(setup)
            workers = bs.chimera_workers(setup, stack, args.worker_processes)
            try:
                await bs.chimera_ready(setup, stack, workers)
                warm = bs.chimera_campaigns(setup, stack, sandbox, 1, args.active_tasks, label="warm")
                await bs.run_chimera(stack, workers, warm, tasks_per_campaign=args.active_tasks, give_up_after=300)
                campaigns = bs.chimera_campaigns(
                    setup, stack, sandbox, args.active, args.active_tasks, label="active", tenants=args.tenants
                )
                return await bs.run_chimera(
                    stack, workers, campaigns, tasks_per_campaign=args.active_tasks, give_up_after=args.timeout
                )
            finally:
                workers.stop()


def mib(value: float | None) -> str:
    return f"{value:.0f} MB" if value is not None else "-"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report_idle(r: IdleResult) -> None:
    print(f"\nIdle: {r.campaigns} campaigns on one `chimera worker --role all` process")
    print(
        f"  burst: start RPCs {r.start_rpc_seconds:.1f} s; first start -> last post closed {r.burst_seconds:.1f} s; "
        f"posts published {r.posts_published}, other {r.posts_other}; idle confirmed {r.idle_confirmed}/{r.campaigns}"
    )
    for name, m in (("at rest (before)", r.at_rest), ("all idle", r.idle)):
        if m is not None:
            print(
                f"  {name:<16} worker RSS {m.rss_mib:.0f} MB (peak {m.hwm_mib:.0f} MB); with {m.children} "
                f"child process(es): RSS sum {m.tree_rss_mib:.0f} MB, PSS sum {m.tree_pss_mib:.0f} MB"
            )
            for command, (n, pss) in sorted(m.by_command.items()):
                print(f"    {command:<22} x{n}: PSS {pss:.0f} MB")
    for note in r.notes[:10]:
        print(f"  note: {note}")


def report_active(r: bs.RunResult) -> None:
    bs.print_run(r)
    spans = [(c - s).total_seconds() for s, c in zip(r.campaign_starts, r.campaign_closes, strict=True) if s and c]
    done = sum(s == "completed" for s in r.campaign_states)
    last = max((c for c in r.campaign_closes if c is not None), default=None)
    cycle = (last - r.started_at).total_seconds() if last and done == r.campaigns else float("nan")
    print(
        f"  campaigns completed {done}/{r.campaigns}; all cycles done after {cycle:.1f} s; per campaign "
        f"p50 {bs.pct(spans, 0.5):.1f} s, p95 {bs.pct(spans, 0.95):.1f} s"
    )


def summary(idle: IdleResult | None, active: bs.RunResult | None) -> None:
    print("\nSummary")
    header = f"{'figure':<52} {'value':>12}  {'target':<12} verdict"
    print(header)
    print("-" * len(header))
    if idle is not None and idle.idle is not None:
        m = idle.idle
        print(
            f"{f'worker RSS, {idle.campaigns} idle campaigns (process alone)':<52} {mib(m.rss_mib):>12}  "
            f"{'< 400 MB':<12} {verdict(m.rss_mib < RSS_TARGET_MIB)}"
        )
        print(
            f"{'  the same, with its MCP children (PSS sum)':<52} {mib(m.tree_pss_mib):>12}  "
            f"{'< 400 MB':<12} {verdict(m.tree_pss_mib < RSS_TARGET_MIB)}"
        )
        print(f"{'  idle burst: first start -> all idle':<52} {idle.burst_seconds:>10.1f} s  {'-':<12}")
    if active is not None:
        done = sum(s == "completed" for s in active.campaign_states)
        last = max((c for c in active.campaign_closes if c is not None), default=None)
        cycle = (last - active.started_at).total_seconds() if last and done == active.campaigns else float("nan")
        ok = cycle == cycle and cycle <= CYCLE_TARGET_SECONDS and active.failed == active.stuck == 0
        label = f"{active.campaigns} active campaigns x {active.tasks_per_campaign}: cycle done"
        print(f"{label:<52} {cycle:>10.1f} s  {'<= 300 s':<12} {verdict(ok)}")
        print(
            f"{'  tasks failed / stuck; campaigns not completed':<52} "
            f"{f'{active.failed} / {active.stuck}; {active.campaigns - done}':>12}  {'0':<12}"
        )


async def main(args: argparse.Namespace) -> None:
    bs.cancel_on_sigterm()
    if args.quick:
        args.idle = min(args.idle, 50)
        args.active = min(args.active, 20)
        args.active_tasks = min(args.active_tasks, 3)
        args.timeout = min(args.timeout, 600.0)
    idle = active = None
    if args.only in (None, "idle"):
        print(f"== idle: {args.idle} campaigns ...", flush=True)
        idle = await idle_part(args)
        report_idle(idle)
    if args.only in (None, "active"):
        print(f"\n== active: {args.active} campaigns x {args.active_tasks} tasks ...", flush=True)
        active = await active_part(args)
        report_active(active)
    summary(idle, active)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=1000, help="idle campaigns on one worker process")
    parser.add_argument("--active", type=int, default=200, help="active campaigns started together")
    parser.add_argument("--active-tasks", type=int, default=5, help="tasks per active campaign's cycle")
    parser.add_argument("--worker-processes", type=int, default=1, help="worker processes for the active part")
    parser.add_argument("--only", choices=["idle", "active"], help="run one part")
    bs.add_stack_options(parser)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds idle before memory is read")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds a part may take before giving up")
    parser.add_argument("--quick", action="store_true", help="smoke run: 50 idle, 20 active x 3 tasks")
    parser.add_argument("--keep", action="store_true", help="keep each part's directory (logs, sandbox, server db)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
