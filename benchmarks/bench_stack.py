"""Shared by benchmarks/throughput.py and benchmarks/scale.py: a private Temporal dev server, a private
PostgreSQL schema, worker processes, Chimera campaigns started and awaited, and the figures read back
from Temporal (task close times, activity latencies from workflow histories) and from /proc (CPU, RSS).

Nothing here touches a developer's running Chimera: every run gets a temp directory, a dev server on
free loopback ports with its own SQLite file, its own schema (or SQLite file), and its own sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import psycopg
import yaml
from psycopg import sql
from temporalio.api.enums.v1 import EventType, TaskQueueType, TimeoutType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from chimera.campaign_file import load_campaign
from chimera.cli.runtime import approve_on_first_use
from chimera.control.campaigns import campaign_input, start_campaign
from chimera.db import migrate
from chimera.devserver import dev_server
from chimera.settings import Settings, default_mcp_servers
from chimera.temporal_config import TemporalConfig, connect, load_temporal_config
from mcp_servers.common import sqlite_transaction
from mcp_servers.social.config import RATE_LIMIT_ENV
from mcp_servers.social.sandbox import SandboxPlatform
from schemas.campaign import CampaignSpec
from schemas.campaign_run import CampaignInput
from schemas.events import CampaignStatus, MentionDelivery
from schemas.plan import Mention
from workers.dependencies import Dependencies
from workflows.campaign import CampaignWorkflow

ROOT = Path(__file__).resolve().parents[1]
CHIMERA_CLI = Path(sys.executable).parent / "chimera"
EXAMPLE_CAMPAIGN = ROOT / "examples" / "campaign.yaml"
PG_CONNINFO = os.environ.get("CHIMERA_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")
BOOTSTRAP_SQL = ROOT / "deploy" / "postgres" / "bootstrap.sql"
PG_ROLES = ("chimera_owner", "chimera_app", "chimera_auditor")
# Tuning a reader may set for a run; every other CHIMERA_*/TEMPORAL_* variable is kept from the workers.
PASSED_THROUGH = (
    "CHIMERA_WORKER_CONCURRENCY",
    "CHIMERA_MCP_MAX_SESSIONS_PER_SERVER",
    "CHIMERA_MCP_SESSION_IDLE_SECONDS",
    "CHIMERA_OBSERVE_SHARE_SECONDS",
)
# The sandbox's top twitter trend is a banned topic on purpose (the demo shows a rejection and a re-plan);
# the throughput shape wants every task approved once, so the benchmark's own sandbox drops it.
BANNED_SEED_TREND = "#FreeCryptoGiveaway"
TERMINAL = frozenset({"published", "rejected", "failed", "budget_exhausted", "cancelled"})
T = TypeVar("T")

# --- small things ---------------------------------------------------------------------------


def add_stack_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark of a Chimera stack takes: its store, versioning, MCP env, tenants."""
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres", help="Chimera's state store")
    parser.add_argument(
        "--versioned",
        action="store_true",
        help="Chimera's workers poll as a worker deployment version (specs/deploy.md)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="SERVER:KEY=VALUE",
        help="add to an MCP server's environment, e.g. memory:OMP_NUM_THREADS=1 (repeatable)",
    )
    parser.add_argument("--tenants", type=int, default=1, help="spread Chimera's campaigns over this many tenants")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def bounded(items: Iterable[T], limit: int, one: Callable[[T], Awaitable[Any]]) -> list[Any]:
    """`one(item)` for every item, at most `limit` at a time (so the driver never floods the server)."""
    gate = asyncio.Semaphore(limit)

    async def run(item: T) -> Any:
        async with gate:
            return await one(item)

    return list(await asyncio.gather(*(run(i) for i in items)))


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


QUERY_TIMEOUT = timedelta(seconds=10)  # a query to a workflow no worker can run must not hang the report


def cancel_on_sigterm() -> None:
    """SIGTERM (e.g. from `timeout`) cancels the run like Ctrl-C, so the `finally`s stop the worker
    processes and the dev server and drop the schema instead of leaving them behind."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


@contextlib.contextmanager
def run_dir(keep: bool, name: str) -> Iterator[Path]:
    """A temp directory for one run (dev server db, logs, sandbox, state); kept with --keep."""
    if keep:
        path = Path(tempfile.mkdtemp(prefix=f"chimera-{name}-"))
        print(f"  (keeping {path})")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"chimera-{name}-") as tmp:
        yield Path(tmp)


# --- /proc: CPU and memory of processes we started ------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces


def children_of(pid: int) -> list[int]:
    """Every live descendant of `pid` (the MCP stdio servers a worker spawned, and theirs)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents.setdefault(int(_stat_fields(int(entry.name))[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def label_of(pid: int) -> str:
    """`mcp_servers.memory` for `python -m mcp_servers.memory`, else the program's name."""
    with contextlib.suppress(OSError):
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        if "-m" in args[:-1]:
            return args[args.index("-m") + 1]
        return Path(args[0]).name or "?"
    return "?"


def cpu_breakdown(pid: int) -> defaultdict[str, float]:
    """User + system CPU seconds of `pid` itself, of its children that exited, and of each live
    descendant by what it runs (the pooled MCP servers)."""
    out: defaultdict[str, float] = defaultdict(float)
    with contextlib.suppress(OSError, ValueError, IndexError):
        f = [int(x) for x in _stat_fields(pid)[11:15]]  # utime stime cutime cstime
        out["worker process"] += (f[0] + f[1]) / CLOCK_TICKS
        out["exited children"] += (f[2] + f[3]) / CLOCK_TICKS
    for child in children_of(pid):
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[label_of(child)] += sum(int(x) for x in _stat_fields(child)[11:13]) / CLOCK_TICKS
    return out


def cpu_seconds(pid: int) -> float:
    return sum(cpu_breakdown(pid).values())


def status_kib(pid: int, key: str) -> int:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM); 0 if the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages split among their sharers, so a tree's sum is not inflated."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


@dataclass
class Memory:
    rss_mib: float  # the process alone
    hwm_mib: float  # its peak RSS
    tree_rss_mib: float  # with every descendant (RSS sums count shared pages once per process)
    tree_pss_mib: float
    children: int
    by_command: dict[str, tuple[int, float]]  # descendants by what they run: (count, PSS MiB)


def memory_of(pid: int) -> Memory:
    kids = children_of(pid)
    tree = [pid, *kids]
    by_command: dict[str, tuple[int, float]] = {}
    for kid in kids:
        n, mib = by_command.get(label_of(kid), (0, 0.0))
        by_command[label_of(kid)] = (n + 1, mib + pss_kib(kid) / 1024)
    return Memory(
        rss_mib=status_kib(pid, "VmRSS") / 1024,
        hwm_mib=status_kib(pid, "VmHWM") / 1024,
        tree_rss_mib=sum(status_kib(p, "VmRSS") for p in tree) / 1024,
        tree_pss_mib=sum(pss_kib(p) for p in tree) / 1024,
        children=len(kids),
        by_command=by_command,
    )


def find_pid(marker: str) -> int | None:
    """The process whose command line contains `marker` (the dev server, by its unique db file)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    return int(entry.name)
    return None


# --- PostgreSQL: a fresh schema per run, as the PostgreSQL tests make one ---------------------


def _pg_url(role: str, schema: str) -> str:
    p = psycopg.conninfo.conninfo_to_dict(PG_CONNINFO)
    return (
        f"postgresql+psycopg://{role}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p.get('dbname', 'test')}"
        f"?options={quote(f'-csearch_path={schema}')}"
    )


def _missing_roles() -> list[str]:
    with psycopg.connect(PG_CONNINFO, autocommit=True, connect_timeout=3) as conn:
        rows = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [list(PG_ROLES)]).fetchall()
    return sorted(set(PG_ROLES) - {r[0] for r in rows})


def _ensure_roles() -> None:
    """deploy/postgres/bootstrap.sql (idempotent) when the roles are missing, as .ci/run and the tests do."""
    if not _missing_roles():
        return
    psql = shutil.which("psql")
    if psql is None:
        raise SystemExit(f"PostgreSQL roles {_missing_roles()} are missing and psql is not installed")
    params = psycopg.conninfo.conninfo_to_dict(PG_CONNINFO)
    params["dbname"] = "postgres"
    conninfo = psycopg.conninfo.make_conninfo("", **params)
    subprocess.run(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", str(BOOTSTRAP_SQL)],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def database(kind: Literal["postgres", "sqlite"]) -> Iterator[str | None]:
    """The application URL of a fresh, migrated schema owned by chimera_owner (dropped afterwards);
    None for SQLite (Chimera's default, a file in the state dir)."""
    if kind == "sqlite":
        yield None
        return
    _ensure_roles()
    schema = f"chimera_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION chimera_owner").format(sql.Identifier(schema)))
    try:
        migrate.upgrade(_pg_url("chimera_owner", schema))
        yield _pg_url("chimera_app", schema)
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# --- Temporal: a private dev server --------------------------------------------------------


@dataclass
class Stack:
    dir: Path
    address: str
    config: TemporalConfig
    config_path: Path
    client: Client
    server_pid: int | None


@contextlib.asynccontextmanager
async def temporal_stack(directory: Path) -> AsyncIterator[Stack]:
    """chimera.devserver's dev server (headless, SQLite file in `directory`) on free ports, with the
    project's temporal.yaml pointed at it (written to `directory` for the worker processes)."""
    raw = yaml.safe_load((ROOT / "temporal.yaml").read_text())
    address = f"127.0.0.1:{free_port()}"
    raw["address"] = address
    raw.setdefault("dev_server", {})["ui_port"] = free_port()
    config_path = directory / "temporal.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    config = load_temporal_config(config_path)
    server_dir = directory / "temporal"
    async with dev_server(config, address, server_dir, ui=False, log=directory / "temporal-server.log"):
        client = await connect(config, address=address)
        pid = find_pid(str((server_dir / config.dev_server.db_filename).resolve()))
        yield Stack(directory, address, config, config_path, client, pid)


def base_env(stack: Stack) -> dict[str, str]:
    """The environment of a worker process: ours without Temporal/Chimera settings (but the tuning
    knobs in PASSED_THROUGH), pointed at the stack's server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "CHIMERA_")) or k in PASSED_THROUGH}
    env.update(TEMPORAL_ADDRESS=stack.address, CHIMERA_TEMPORAL_CONFIG=str(stack.config_path))
    return env


# --- worker processes ----------------------------------------------------------------------


class WorkerProcesses:
    """N separate OS processes polling the stack's queues; stopped with SIGTERM (graceful), then killed."""

    def __init__(self, commands: list[list[str]], env: dict[str, str], cwd: Path, name: str) -> None:
        self.logs = [cwd / f"{name}-{i}.log" for i in range(len(commands))]
        self.procs: list[subprocess.Popen[bytes]] = []
        for command, log in zip(commands, self.logs, strict=True):
            with log.open("wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        command,
                        cwd=cwd,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,  # its own group: stopping it stops its MCP children too
                    )
                )

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def send(self, sig: signal.Signals) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(sig)

    def children(self) -> Counter[str]:
        """Live descendants of every process, by what they run (the pooled MCP servers)."""
        return Counter(label_of(kid) for pid in self.pids for kid in children_of(pid))

    def cpu(self) -> defaultdict[str, float]:
        total: defaultdict[str, float] = defaultdict(float)
        for pid in self.pids:
            for k, v in cpu_breakdown(pid).items():
                total[k] += v
        return total

    def check_alive(self) -> None:
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker process {proc.pid} exited with {proc.returncode}:\n{tail}")

    async def ready(self, client: Client, queues: dict[str, str], within: float = 120.0) -> None:
        """Until every queue has a poller from each process (the planner queue: workflow pollers too)."""
        deadline = time.monotonic() + within
        wanted = [(q, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY) for q in queues.values()]
        wanted.append((queues["planner"], TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        while True:
            self.check_alive()
            counts = []
            for queue, kind in wanted:
                resp = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind
                    )
                )
                counts.append(len({p.identity for p in resp.pollers}))
            if min(counts) >= len(self.procs):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not poll within {within:.0f} s (pollers per queue: {counts})")
            await asyncio.sleep(0.3)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # A stdio MCP server whose worker was killed may linger in the worker's group: end that group.
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


# --- what a run measured -----------------------------------------------------------------------


@dataclass
class Durations:
    wait_run: list[float] = field(default_factory=list)  # scheduled -> closed: what the workflow waits
    run: list[float] = field(default_factory=list)  # started -> closed: the activity (or task) itself
    failed_attempts: int = 0  # attempts that failed or timed out (retried or not)
    causes: Counter[str] = field(default_factory=Counter)  # why, for workflow tasks


@dataclass
class TaskRow:
    workflow_id: str
    outcome: str  # published, rejected, failed, ..., running (stuck), missing
    start: datetime | None = None
    close: datetime | None = None


@dataclass
class RunResult:
    side: str  # "chimera" or "bare"
    campaigns: int
    tasks_per_campaign: int
    processes: int
    started_at: datetime  # the first campaign's start (server clock)
    tasks: list[TaskRow]
    campaign_states: list[str]  # each campaign workflow's status: completed, running, failed, ...
    campaign_starts: list[datetime | None]
    campaign_closes: list[datetime | None]
    steps: dict[str, Durations]
    worker_cpu: dict[str, float]  # CPU seconds during the run: the worker processes, their MCP children
    server_cpu_seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def worker_cpu_seconds(self) -> float:
        return sum(self.worker_cpu.values())

    @property
    def published(self) -> int:
        return sum(t.outcome == "published" for t in self.tasks)

    @property
    def stuck(self) -> int:
        return sum(t.outcome in ("running", "planned", "pending_review", "missing") for t in self.tasks)

    @property
    def failed(self) -> int:
        return len(self.tasks) - self.published - self.stuck

    @property
    def last_close(self) -> datetime | None:
        closes = [t.close for t in self.tasks if t.close is not None]
        return max(closes) if closes else None

    @property
    def wall_seconds(self) -> float:
        last = self.last_close
        return (last - self.started_at).total_seconds() if last else float("nan")

    @property
    def tasks_per_second(self) -> float:
        wall = self.wall_seconds
        return self.published / wall if wall and wall == wall else 0.0


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0.05}


def _ts(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e9


def step_durations(histories: Iterable[Sequence[HistoryEvent]]) -> dict[str, Durations]:
    """Per activity type, and for workflow tasks and child starts: scheduled -> closed and started -> closed,
    from the event times the server wrote (so the driver's own load never enters the figures)."""
    steps: dict[str, Durations] = {}
    E = EventType
    for events in histories:
        by_id = {e.event_id: e for e in events}
        started: dict[int, float] = {}
        for e in events:
            t = e.event_type
            if t == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started[e.activity_task_started_event_attributes.scheduled_event_id] = _ts(e)
            elif t == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                started[e.workflow_task_started_event_attributes.scheduled_event_id] = _ts(e)
            elif t in (E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, E.EVENT_TYPE_ACTIVITY_TASK_FAILED):
                attrs = (
                    e.activity_task_completed_event_attributes
                    if t == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
                    else e.activity_task_failed_event_attributes
                )
                scheduled = by_id[attrs.scheduled_event_id]
                d = steps.setdefault(scheduled.activity_task_scheduled_event_attributes.activity_type.name, Durations())
                d.wait_run.append(_ts(e) - _ts(scheduled))
                d.run.append(_ts(e) - started.get(attrs.scheduled_event_id, _ts(scheduled)))
                d.failed_attempts += t == E.EVENT_TYPE_ACTIVITY_TASK_FAILED
            elif t == E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
                scheduled = by_id[e.activity_task_timed_out_event_attributes.scheduled_event_id]
                name = scheduled.activity_task_scheduled_event_attributes.activity_type.name
                steps.setdefault(name, Durations()).failed_attempts += 1
            elif t == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                sid = e.workflow_task_completed_event_attributes.scheduled_event_id
                d = steps.setdefault("(workflow task)", Durations())
                d.wait_run.append(_ts(e) - _ts(by_id[sid]))
                d.run.append(_ts(e) - started.get(sid, _ts(by_id[sid])))
            elif t == E.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                d = steps.setdefault("(workflow task)", Durations())
                d.failed_attempts += 1
                cause = e.workflow_task_failed_event_attributes.cause
                d.causes[WorkflowTaskFailedCause.Name(cause).removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")] += 1
            elif t == E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
                d = steps.setdefault("(workflow task)", Durations())
                d.failed_attempts += 1
                kind = e.workflow_task_timed_out_event_attributes.timeout_type
                d.causes["timed out: " + TimeoutType.Name(kind).removeprefix("TIMEOUT_TYPE_")] += 1
            elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                initiated = by_id[e.child_workflow_execution_started_event_attributes.initiated_event_id]
                d = steps.setdefault("(child start)", Durations())
                d.wait_run.append(_ts(e) - _ts(initiated))
                d.run.append(_ts(e) - _ts(initiated))
    return steps


async def histories(client: Client, workflow_ids: Iterable[str]) -> list[list[HistoryEvent]]:
    async def one(workflow_id: str) -> list[HistoryEvent]:
        try:
            return list((await client.get_workflow_handle(workflow_id).fetch_history()).events)
        except RPCError:
            return []

    return await bounded(list(workflow_ids), 16, one)


async def await_closed(client: Client, workflow_ids: Sequence[str], deadline: float) -> None:
    """Wait (until the monotonic `deadline`) for each workflow to close: a task signals its campaign just
    before it completes, so a completed campaign's last task may still be finishing."""

    async def one(workflow_id: str) -> None:
        with contextlib.suppress(Exception):  # failed, missing or still open: describe() reports it
            await asyncio.wait_for(
                client.get_workflow_handle(workflow_id).result(), max(0.1, deadline - time.monotonic())
            )

    await bounded(workflow_ids, 64, one)


async def closes(
    client: Client, workflow_ids: Sequence[str]
) -> dict[str, tuple[str, datetime | None, datetime | None]]:
    """Each workflow's (status, start, close) as the server describes it."""

    async def one(workflow_id: str) -> tuple[str, tuple[str, datetime | None, datetime | None]]:
        try:
            d = await client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            return workflow_id, ("missing", None, None)
        status = d.status.name.lower() if d.status is not None else "unknown"
        return workflow_id, (status, d.start_time, d.close_time)

    return dict(await bounded(workflow_ids, 16, one))


# --- Chimera campaigns ---------------------------------------------------------------------


# --versioned: the workers poll as this worker deployment version (specs/deploy.md), made current at start.
DEPLOYMENT_NAME, BUILD_ID = "chimera-bench", "bench-1"


@dataclass
class ChimeraSetup:
    settings: Settings  # what the driver uses (approvals, sandbox seeding); the workers read the same from env
    env: dict[str, str]
    versioned: bool


def chimera_setup(
    stack: Stack, database_url: str | None, versioned: bool = False, server_env: Sequence[str] = ()
) -> ChimeraSetup:
    """Embedded defaults in the stack's directory: offline model, sandbox MCP servers (stdio), the given
    database. Only the sandbox's post rate limit is lifted (a platform policy, 50 posts per 15 min per
    account, which a throughput run on one sandbox account would hit; Chimera's durable retry-after would
    then be measured instead of Chimera). `server_env` entries SERVER:KEY=VALUE add to a server's environment
    (to try a setting, e.g. memory:OMP_NUM_THREADS=1)."""
    servers = default_mcp_servers()
    extra: dict[str, dict[str, str]] = {
        "twitter": {RATE_LIMIT_ENV: "1000000"},
        "instagram": {RATE_LIMIT_ENV: "1000000"},
    }
    for entry in server_env:
        server, _, assignment = entry.partition(":")
        key, sep, value = assignment.partition("=")
        if server not in servers or not key or not sep:
            raise SystemExit(f"--server-env {entry!r}: expected SERVER:KEY=VALUE with SERVER one of {sorted(servers)}")
        extra.setdefault(server, {})[key] = value
    for name, env_add in extra.items():
        servers[name] = servers[name].model_copy(update={"env": {**servers[name].env, **env_add}})
    state_dir = stack.dir / "chimera"
    env = base_env(stack)
    env["CHIMERA_STATE_DIR"] = str(state_dir)
    env["CHIMERA_MCP_SERVERS"] = json.dumps({k: v.model_dump(mode="json") for k, v in servers.items()})
    if database_url:
        env["CHIMERA_DATABASE_URL"] = database_url
    if versioned:
        env.update(CHIMERA_WORKER_DEPLOYMENT_NAME=DEPLOYMENT_NAME, CHIMERA_WORKER_BUILD_ID=BUILD_ID)
    settings = Settings(
        _env_file=None,  # not a .env in the cwd: the workers (cwd: the run dir) would not read it
        state_dir=state_dir,
        database_url=database_url,
        temporal_config=stack.config_path,
        mcp_servers=servers,
    )
    settings.ensure_dirs()
    return ChimeraSetup(settings, env, versioned)


async def approve_servers(setup: ChimeraSetup) -> None:
    """Pin the allowlisted servers, as `chimera dev` does on first use (`chimera worker` never approves)."""
    deps = Dependencies.build(setup.settings)
    try:
        await approve_on_first_use(deps)
    finally:
        await deps.aclose()


def prepare_sandbox(setup: ChimeraSetup) -> SandboxPlatform:
    """The twitter sandbox, seeded, without the banned top trend (see BANNED_SEED_TREND)."""
    sandbox = SandboxPlatform(setup.settings.sandbox_dir, "twitter")
    with sqlite_transaction(sandbox.path, write=True) as conn:
        conn.execute("DELETE FROM trends WHERE topic = ?", (BANNED_SEED_TREND,))
    return sandbox


def chimera_workers(setup: ChimeraSetup, stack: Stack, processes: int, *, sampled: bool = False) -> WorkerProcesses:
    """`processes` separate `chimera worker --role all` processes; `sampled`: the same worker under
    benchmarks/sampled_worker.py, each writing its stack samples to profile-<i>.json in the stack's dir."""
    if sampled:
        script = str(Path(__file__).with_name("sampled_worker.py"))
        commands = [[sys.executable, script, str(stack.dir / f"profile-{i}.json")] for i in range(processes)]
    else:
        commands = [[str(CHIMERA_CLI), "worker", "--role", "all"]] * processes
    return WorkerProcesses(commands, setup.env, stack.dir, "chimera-worker")


def print_profiles(directory: Path) -> None:
    """What benchmarks/sampled_worker.py wrote: busy-thread samples by package and by Chimera function."""
    for path in sorted(directory.glob("profile-*.json")):
        data = json.loads(path.read_text())
        busy = max(1, data["busy_thread_samples"])
        print(
            f"\n  {path.stem}: {data['busy_thread_samples']} busy-thread samples over {data['ticks']} ticks "
            f"({data['seconds']:.1f} s, every 10 ms); share of busy samples:"
        )
        sections = (
            ("innermost package", "leaf", 10),
            ("innermost function", "leaf_function", 10),
            ("innermost Chimera frame", "repo", 15),
        )
        for title, key, n in sections:
            print(f"    by {title}:")
            for name, count in data[key][:n]:
                print(f"      {count / busy:6.1%}  {name}")
        print("    Chimera functions on the stack (cumulative):")
        for name, count in data["cumul"][:15]:
            print(f"      {count / busy:6.1%}  {name}")


async def chimera_ready(setup: ChimeraSetup, stack: Stack, workers: WorkerProcesses) -> None:
    """Every process polls; with --versioned, their deployment version is then made current."""
    await workers.ready(stack.client, chimera_queues(stack))
    if not setup.versioned:
        return
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=stack.client.namespace, deployment_name=DEPLOYMENT_NAME, build_id=BUILD_ID, identity="benchmark"
    )
    for attempt in range(50):  # the server registers the deployment a moment after its first poll
        try:
            await stack.client.workflow_service.set_worker_deployment_current_version(request)
            return
        except RPCError:
            if attempt == 49:
                raise
            await asyncio.sleep(0.2)


def chimera_queues(stack: Stack) -> dict[str, str]:
    q = stack.config.task_queues
    return {"planner": q.planner, "worker": q.worker, "judge": q.judge}


def bench_spec(tenant: str, campaign: str, config: TemporalConfig, cycle_interval_seconds: int) -> CampaignSpec:
    """The example campaign (persona Mira) on twitter only, one task a cycle of its own.

    One task a cycle, because the sandbox holds one account's mentions that every campaign observes: a
    cycle that planned replies from them would have all campaigns answer the same mentions (one wins, the
    others are refused as already replied). So a cycle plans its one post, and the replies come as mentions
    pushed to their own campaign (the ingress's path: the `mention` signal), each planned at once."""
    spec = load_campaign(EXAMPLE_CAMPAIGN, config)
    return spec.model_copy(
        update={
            "tenant_id": tenant,
            "campaign_id": campaign,
            "platforms": ["twitter"],
            "max_tasks_per_cycle": 1,
            "daily_budget_usd": 10_000.0,
            "cycle_interval_seconds": cycle_interval_seconds,
        }
    )


def friendly_mentions(sandbox: SandboxPlatform, count: int, tag: str) -> list[Mention]:
    """Distinct, harmless questions for the persona, stored in the sandbox so replies can be published."""
    questions = [
        "how do you stop a thrifted wool jumper from pilling?",
        "what is your favourite stitch for mending jeans at the knee?",
        "any tips for dyeing a linen shirt at home?",
        "how do you spot real vintage at a flea market?",
        "which charity shops in Berlin are worth the trip?",
    ]
    mentions = []
    for i in range(count):
        m = sandbox.add_mention(f"fan_{tag}_{i}", f"@mira_threads {questions[i % len(questions)]} ({tag}-{i})")
        mentions.append(Mention.model_validate(m))
    return mentions


@dataclass
class ChimeraCampaign:
    inp: CampaignInput
    mentions: list[Mention]


def chimera_campaigns(
    setup: ChimeraSetup,
    stack: Stack,
    sandbox: SandboxPlatform,
    count: int,
    tasks: int,
    *,
    label: str,
    tenants: int = 1,
    cycle_interval_seconds: int = 3600,
    max_cycles: int | None = 1,
) -> list[ChimeraCampaign]:
    """`count` campaigns of `tasks` tasks each: the cycle's post and tasks-1 pushed mentions."""
    out = []
    for i in range(count):
        spec = bench_spec(f"bench{i % tenants}", f"{label}-{i}", stack.config, cycle_interval_seconds)
        inp = campaign_input(spec, stack.config, max_cycles=max_cycles)
        out.append(ChimeraCampaign(inp, friendly_mentions(sandbox, tasks - 1, f"{label}{i}")))
    return out


async def start_chimera(client: Client, campaign: ChimeraCampaign) -> WorkflowHandle[CampaignWorkflow, CampaignStatus]:
    handle = await start_campaign(client, campaign.inp)
    for mention in campaign.mentions:
        delivery = MentionDelivery(event_id=f"bench-{mention.id}", mention=mention, received_at=now_iso())
        await handle.signal(CampaignWorkflow.mention, delivery)
    return handle


async def run_chimera(
    stack: Stack,
    workers: WorkerProcesses,
    campaigns: list[ChimeraCampaign],
    *,
    tasks_per_campaign: int,
    give_up_after: float,
) -> RunResult:
    """Start every campaign at once (with its mentions), wait for all to complete (or the timeout), then
    read each task's outcome from the campaigns' final status and its close time from the server."""
    client = stack.client
    cpu_before, server_before = workers.cpu(), cpu_seconds(stack.server_pid or 0)
    children_before = workers.children()
    handles = await bounded(campaigns, 64, lambda c: start_chimera(client, c))
    deadline = time.monotonic() + give_up_after
    notes: list[str] = []

    async def final(handle: WorkflowHandle[CampaignWorkflow, CampaignStatus]) -> CampaignStatus | None:
        try:
            return await asyncio.wait_for(handle.result(), max(1.0, deadline - time.monotonic()))
        except TimeoutError:
            with contextlib.suppress(RPCError):
                return await handle.query(CampaignWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
            return None
        except Exception as exc:  # a failed campaign is a figure, not a crash
            notes.append(f"campaign {handle.id}: {type(exc).__name__}: {exc}")
            return None

    statuses = await asyncio.gather(*(final(h) for h in handles))
    outcomes: dict[str, str] = {}
    for handle, st in zip(handles, statuses, strict=True):
        if st is None:
            notes.append(f"campaign {handle.id}: no status")
            outcomes.update({f"{handle.id}#task{i}": "missing" for i in range(tasks_per_campaign)})
            continue
        outcomes.update({t.task_id: t.status for t in st.tasks})
        missing = tasks_per_campaign - len(st.tasks)
        if missing > 0:
            notes.append(f"campaign {handle.id} planned {len(st.tasks)} of {tasks_per_campaign} tasks")
            outcomes.update({f"{handle.id}#missing{i}": "missing" for i in range(missing)})
        if st.replans:
            notes.append(f"campaign {handle.id}: {st.replans} re-plan(s)")
        notes.extend(f"campaign {handle.id}: {e}" for e in st.cycle_errors)
    real_ids = [i for i in outcomes if "#" not in i]
    await await_closed(client, real_ids, deadline)
    worker_cpu = cpu_delta(cpu_before, workers.cpu())
    server_cpu = cpu_seconds(stack.server_pid or 0) - server_before
    children_after = workers.children()
    if children_after != children_before:  # a session spawned mid-run: its start-up CPU is in the figures
        notes.append(f"MCP server processes before the run {dict(children_before)}, after {dict(children_after)}")
    described = await closes(client, [h.id for h in handles] + real_ids)
    rows = []
    for task_id, outcome in outcomes.items():
        status, start, close = described.get(task_id, ("missing", None, None))
        if status != "completed" and outcome in TERMINAL:
            outcome = status  # the workflow itself failed or is still running
        rows.append(TaskRow(task_id, outcome, start, close if status == "completed" else None))
    starts = [described[h.id][1] for h in handles if described[h.id][1] is not None]
    events = await histories(client, [h.id for h in handles] + real_ids)
    return RunResult(
        side="chimera",
        campaigns=len(campaigns),
        tasks_per_campaign=tasks_per_campaign,
        processes=len(workers.procs),
        started_at=min(s for s in starts if s is not None),
        tasks=rows,
        campaign_states=[described[h.id][0] for h in handles],
        campaign_starts=[described[h.id][1] for h in handles],
        campaign_closes=[described[h.id][2] for h in handles],
        steps=step_durations(events),
        worker_cpu=worker_cpu,
        server_cpu_seconds=server_cpu,
        notes=notes,
    )


# --- printing ------------------------------------------------------------------------------

STEP_ORDER = [
    "register_campaign",
    "observe",
    "plan",
    "reserve_budget",
    "execute_task",
    "judge_result",
    "record_verdict",
    "commit_result",
    "publish",
    "settle_budget",
    "record_outcome",
    "(workflow task)",
    "(child start)",
]


def print_run(result: RunResult) -> None:
    r = result
    print(
        f"\n{r.side} {r.campaigns}x{r.tasks_per_campaign}, {r.processes} worker process(es): "
        f"{r.published}/{len(r.tasks)} tasks published, {r.failed} failed, {r.stuck} stuck; "
        f"{r.wall_seconds:.1f} s first start -> last task closed = {r.tasks_per_second:.2f} tasks/s"
    )
    parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r.worker_cpu.items(), key=lambda kv: -kv[1]))
    print(
        f"  CPU s during the run: worker processes and children {r.worker_cpu_seconds:.1f} ({parts}); "
        f"Temporal server {r.server_cpu_seconds:.1f}"
    )
    header = f"  {'step':<18} {'n':>5} {'wait+run p50':>12} {'p95':>8} {'run p50':>9} {'p95':>8} {'failed':>6}  (ms)"
    print(header)
    names = [n for n in STEP_ORDER if n in r.steps] + sorted(set(r.steps) - set(STEP_ORDER))
    for name in names:
        d = r.steps[name]
        ms = [x * 1000 for x in d.wait_run]
        run = [x * 1000 for x in d.run]
        print(
            f"  {name:<18} {len(ms):>5} {pct(ms, 0.5):>12.0f} {pct(ms, 0.95):>8.0f} "
            f"{pct(run, 0.5):>9.0f} {pct(run, 0.95):>8.0f} {d.failed_attempts:>6}"
        )
    for name in names:
        if r.steps[name].causes:
            causes = ", ".join(f"{k} x{v}" for k, v in r.steps[name].causes.most_common())
            print(f"  {name} failures: {causes}")
    for note in r.notes[:10]:
        print(f"  note: {note}")
    if len(r.notes) > 10:
        print(f"  ... {len(r.notes) - 10} more notes")
