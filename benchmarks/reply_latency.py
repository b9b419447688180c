"""Benchmark: how long from a mention to its published reply, on the fast path (webhook -> signal -> reply).

It starts the embedded stack in this process (a private Temporal dev server on a free loopback port, workers
of every role, the ingress on a free port, all state in a temp directory), starts the example campaign
(examples/campaign.yaml) with a one-day cycle so that only pushed mentions can be answered during the run,
waits for its first cycle to settle, then injects N friendly mentions through the sandbox path (the code of
`chimera sandbox mention`: the mention is added to the sandbox platform, then its signed X webhook goes to the
ingress) at a steady rate, and reads back when each reply landed in the sandbox's posts table.

Latency = the reply's `created_at` in the posts table minus the mention's `created_at` (both the sandbox's
clock). With `--background-campaigns N` it measures again once N more campaigns of the same persona run
(started after the measured one, so routing still sends every mention to it: the oldest campaign on the
handle), after their first cycles have settled.

    .venv/bin/python benchmarks/reply_latency.py [--mentions 200] [--rate 2] [--background-campaigns 50]
        [--warmup 3] [--timeout 60]

Targets: p50 < 2 s, p99 < 10 s. The sandbox's post rate limit (50 per 15 minutes) is lifted for the run: a
real account's limits are the platform's, and this measures Chimera's path, not the limit. The workers run as
`chimera dev` runs them (every role in one process, unversioned).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_stack as bs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "campaign.yaml"
HANDLE = "@mira_threads"  # the example persona's twitter handle
DAY = 24 * 3600
QUESTIONS = (
    "what's your favourite thrift find this spring?",
    "any tips for mending a torn jacket lining?",
    "how do you pick good denim at a thrift store?",
    "which fabrics last longest secondhand?",
    "how do you start a thrift-flip project?",
    "where do you find the best vintage knitwear?",
    "what is your go-to sewing kit for quick fixes?",
    "how do you wash secondhand wool safely?",
)


def private_environment(state_dir: Path) -> None:
    """Before anything reads settings: this run's own state dir, Temporal port and ingress port."""
    from chimera.settings import default_mcp_servers
    from mcp_servers.social.config import RATE_LIMIT_ENV

    os.environ["CHIMERA_STATE_DIR"] = str(state_dir)
    os.environ["TEMPORAL_ADDRESS"] = f"127.0.0.1:{bs.free_port()}"
    os.environ["CHIMERA_INGRESS_PORT"] = str(bs.free_port())
    for name in (
        "CHIMERA_DATABASE_URL",
        "CHIMERA_WORKER_DEPLOYMENT_NAME",
        "CHIMERA_WORKER_BUILD_ID",
        "CHIMERA_INGRESS_URL",
        "TEMPORAL_PROFILE",
        "TEMPORAL_CONFIG_FILE",
    ):
        os.environ.pop(name, None)
    servers = default_mcp_servers()
    for name in ("twitter", "instagram"):
        servers[name].env[RATE_LIMIT_ENV] = "1000000"
    os.environ["CHIMERA_MCP_SERVERS"] = json.dumps({k: v.model_dump() for k, v in servers.items()})


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ingress: list[float] = field(default_factory=list)  # push -> the ingress's 200 (after signal-with-start)
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        if not self.latencies:
            return f"{self.name:<28} no reply published ({len(self.missing)} missing)"
        lat = sorted(self.latencies)
        p50, p99 = bs.pct(lat, 0.50), bs.pct(lat, 0.99)
        published = f"{len(lat)}/{len(lat) + len(self.missing)} published"
        mean = statistics.fmean(lat)
        figures = f"p50 {p50:6.2f} s   p99 {p99:6.2f} s   mean {mean:5.2f} s   max {lat[-1]:6.2f} s"
        return f"{self.name:<28} {figures}   ({published})"


def at(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def main(args: argparse.Namespace) -> int:
    import httpx2 as httpx

    from chimera.cli.runtime import embedded
    from chimera.control.campaigns import load_campaign_input, start_campaign
    from chimera.ingress.credentials import load_secrets
    from chimera.ingress.sandbox import push_mention, sandbox_platform
    from chimera.ingress.server import serving
    from schemas.activity_table import ROLES
    from workers.roles import run_workers

    async with embedded(ui=False) as rt:
        stop = asyncio.Event()
        workers = asyncio.create_task(run_workers(rt.client, ROLES, rt.deps, rt.config.task_queues, stop))
        try:
            async with serving(rt.settings, rt.config, rt.client, rt.deps.store) as url, httpx.AsyncClient() as http:
                stamp = dt.datetime.now().strftime("%m%d%H%M%S")
                inp = load_campaign_input(EXAMPLE, rt.config, id_suffix=stamp, cycle_interval_seconds=DAY)
                main_handle = await start_campaign(rt.client, inp)
                print(f"campaign {inp.spec.campaign_id}: waiting for its first cycle to settle", flush=True)
                await settled([main_handle], args.settle_timeout)
                sandbox = sandbox_platform(rt.settings, "twitter")
                secrets = load_secrets(rt.settings)

                async def push(author: str, text: str) -> Any:
                    return await push_mention(sandbox, HANDLE, author, text, http=http, base_url=url, secrets=secrets)

                phases = [await measure("alone", push, sandbox, main_handle, args)]
                if args.background_campaigns:
                    handles = []
                    for i in range(args.background_campaigns):
                        bg = load_campaign_input(
                            EXAMPLE, rt.config, id_suffix=f"{stamp}-bg{i}", cycle_interval_seconds=DAY
                        )
                        handles.append(await start_campaign(rt.client, bg))
                    print(f"{len(handles)} background campaigns started: waiting for their first cycles", flush=True)
                    await settled(handles, args.settle_timeout)
                    name = f"{args.background_campaigns} background campaigns"
                    phases.append(await measure(name, push, sandbox, main_handle, args))
        finally:
            stop.set()
            await workers
    report(phases, args)
    return 0 if all(p.latencies and not p.missing for p in phases) else 1


async def settled(handles: list[Any], within: float) -> None:
    """Until every campaign has run its first cycle and none of its tasks is still planned or running."""
    from workflows.campaign import CampaignWorkflow

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        busy = 0
        for handle in handles:
            st = await handle.query(CampaignWorkflow.status)
            busy += st.cycle < 1 or any(t.status in ("planned", "running") for t in st.tasks)
        if not busy:
            return
        await asyncio.sleep(1.0)
    print(f"warning: {busy} campaign(s) still busy after {within:.0f}s; measuring anyway", flush=True)


async def measure(name: str, push: Any, sandbox: Any, campaign: Any, args: argparse.Namespace) -> Phase:
    """Push warm-up + N mentions at `rate` a second; wait for their replies; latency per measured mention."""
    from workflows.campaign import CampaignWorkflow

    phase = Phase(name)
    sent: dict[str, float] = {}  # mention id -> its created_at (epoch seconds)
    measured: set[str] = set()
    total = args.warmup + args.mentions
    print(f"{name}: pushing {total} mentions ({args.warmup} warm-up) at {args.rate:g}/s", flush=True)

    async def one(i: int) -> None:
        author = f"reader{i % 97}"
        began = time.monotonic()
        report = await push(author, f"{HANDLE} hi! {QUESTIONS[i % len(QUESTIONS)]}")
        if i >= args.warmup:
            phase.ingress.append(time.monotonic() - began)
        mention_id = report.mention["id"]
        sent[mention_id] = at(report.mention["created_at"])
        if i >= args.warmup:
            measured.add(mention_id)
        phase.outcomes.update(e.get("outcome", "?") for e in report.delivery.events)
        if report.delivery.status != 200:
            phase.outcomes[f"http {report.delivery.status}"] += 1

    tasks = []
    start = time.monotonic()
    for i in range(total):
        await asyncio.sleep(max(0.0, start + i / args.rate - time.monotonic()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    published: dict[str, float] = {}
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and not set(sent) <= set(published):
        for post in await asyncio.to_thread(sandbox.posts):
            if post["reply_to"] in sent and post["reply_to"] not in published:
                published[post["reply_to"]] = at(post["created_at"])
        await asyncio.sleep(0.2)
    for mention_id in sorted(measured):
        if mention_id in published:
            phase.latencies.append(published[mention_id] - sent[mention_id])
        else:
            phase.missing.append(mention_id)
    if phase.missing:
        st = await campaign.query(CampaignWorkflow.status)
        stuck = Counter(t.status for t in st.tasks if t.task_type == "reply" and any(m in t.key for m in phase.missing))
        print(f"{name}: {len(phase.missing)} without a reply after {args.timeout:g}s; their tasks: {dict(stuck)}")
    return phase


def report(phases: list[Phase], args: argparse.Namespace) -> None:
    print()
    print(f"reply latency: mention -> reply in the sandbox posts table, N={args.mentions} per phase")
    print(f"(after {args.warmup} warm-up mentions, {args.rate:g} mentions/s, pushed through the ingress)")
    for phase in phases:
        print("  " + phase.line())
        answered = sorted(phase.ingress)
        if answered:
            median, p99 = bs.pct(answered, 0.50), bs.pct(answered, 0.99)
            print(
                f"  {'':<28} of which the webhook (sandbox -> ingress -> signal): p50 {median:.3f} s, p99 {p99:.3f} s"
            )
        print(f"  {'':<28} ingress outcomes: {dict(phase.outcomes)}")
    ok = all(p.latencies and bs.pct(p.latencies, 0.50) < 2 and bs.pct(p.latencies, 0.99) < 10 for p in phases)
    print(f"targets p50 < 2 s, p99 < 10 s: {'met' if ok and not any(p.missing for p in phases) else 'NOT met'}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=200, help="measured mentions per phase (default 200)")
    parser.add_argument("--rate", type=float, default=2.0, help="mentions pushed per second (default 2)")
    parser.add_argument("--warmup", type=int, default=3, help="mentions pushed first and not measured (default 3)")
    parser.add_argument("--background-campaigns", type=int, default=0, help="then measure again with N more running")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the last replies")
    parser.add_argument("--settle-timeout", type=float, default=300.0, help="seconds to wait for first cycles")
    parser.add_argument("--keep", action="store_true", help="keep the temp state directory (its path is printed)")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    state = Path(tempfile.mkdtemp(prefix="chimera-reply-latency-"))
    sys.path.insert(0, str(ROOT))
    private_environment(state)
    code = 1
    try:
        code = asyncio.run(main(arguments))
    finally:
        if arguments.keep:
            print(f"state kept in {state}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(state)
        sys.stdout.flush()
        os._exit(code)  # temporalio issue #300: the interpreter can abort at exit after all work is done
