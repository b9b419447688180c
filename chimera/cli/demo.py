"""`chimera demo`: the example campaign on embedded defaults, shown live from plan to post."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from chimera.cli import usage
from chimera.cli.demo_audience import Audience
from chimera.cli.demo_money import Treasury, partner_file, sandbox_chain
from chimera.cli.runtime import Runtime, embedded
from chimera.control.campaigns import load_campaign_input, start_campaign
from chimera.db import UsageSummary
from schemas.activity_table import ROLES
from schemas.campaign import CampaignSpec
from schemas.events import CampaignStatus, TaskView
from schemas.review import ReviewView
from workers.roles import run_workers
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow

console = Console()
NEWS_CHECK_SECONDS = 2  # the demo's cycles are seconds apart, so its news watch looks every 2 s
STYLE = {
    "recalled": "blue",
    "planned": "dim",
    "running": "cyan",
    "written": "cyan",
    "judged": "magenta",
    "pending_review": "yellow",
    "published": "green",
    "rejected": "red",
    "failed": "red",
    "budget_exhausted": "red",
    "cancelled": "dim",
}


class Progress:
    """Prints each task's steps once, as the campaign and its task workflows report them."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._seen: dict[str, set[str]] = {}

    async def show(self, status: CampaignStatus) -> None:
        for task in status.tasks:
            steps = self._seen.setdefault(task.task_id, set())
            await self._step(task, steps, "planned", f"{task.task_type} on {task.platform}")
            if task.status == "running":
                await self._running(task, steps)
            elif task.status != "planned":
                await self._running(task, steps)  # catch up on steps finished between polls
                reason = f" ({task.reason})" if task.reason and task.status != "published" else ""
                extra = f" post {task.post_id}" if task.post_id else ""
                await self._step(task, steps, task.status, f"{_confidence(task)}{extra}{reason}")

    async def _running(self, task: TaskView, steps: set[str]) -> None:
        view = await self._review(task.task_id)
        if view is None or not view.text:
            return
        used = f" · tools: {', '.join(view.tools_used)}" if view.tools_used else ""
        image = f" · image {view.media_ids[0]}" if view.media_ids else ""
        await self._step(task, steps, "written", f"“{_short(view.text, 140)}”{image}{used}")
        for memory in (m for m in view.memories_used if m.id in view.memories_cited):
            what = "an earlier exchange" if memory.source == "conversation" else f"a {memory.kind} memory"
            text = f"↳ {what}: “{_short(memory.text, 80)}”"
            await self._step(task, steps, f"recalled {memory.id}", text, label="recalled")
        if view.verdict is not None:
            v = view.verdict
            decision = {"approve": "approved", "escalate": "escalated", "reject": "rejected"}[v.decision]
            await self._step(task, steps, "judged", f"confidence {v.confidence:.2f} → {decision}")

    async def _review(self, task_id: str) -> ReviewView | None:
        try:
            handle = self._client.get_workflow_handle_for(ContentTaskWorkflow.run, task_id)
            return await handle.query(ContentTaskWorkflow.review)
        except RPCError:
            return None

    async def _step(self, task: TaskView, steps: set[str], step: str, text: str, label: str | None = None) -> None:
        """Print a task's step once; `label` is what the line says when the step's key is more specific."""
        if step in steps:
            return
        steps.add(step)
        label = label or step
        style = STYLE.get(label, "bold")
        console.print(f"  {task.key:<24} [{style}]{label:<15}[/] {escape(text)}")


async def _run(path: Path, cycles: int, cycle_seconds: int) -> None:
    with sandbox_chain(console) as node:  # before the runtime: the wallet server inherits the chain's URL
        async with embedded(ui=True, rehearsal=True) as rt:
            stop = asyncio.Event()
            workers = asyncio.create_task(run_workers(rt.client, ROLES, rt.deps, rt.config.task_queues, stop))
            treasury: Treasury | None = None
            try:
                # Under a fresh id, so every demo run is a new campaign.
                stamp = dt.datetime.now().strftime("%m%d-%H%M%S")
                inp = load_campaign_input(
                    path,
                    rt.config,
                    max_cycles=cycles,
                    id_suffix=stamp,
                    cycle_interval_seconds=cycle_seconds,
                    news_check_seconds=NEWS_CHECK_SECONDS,
                )
                if node is not None:
                    partner = load_campaign_input(partner_file(path), rt.config, id_suffix=stamp).spec
                    treasury = await Treasury.open(rt, node, console, inp.spec, partner)
                    inp = inp.model_copy(update={"spec": treasury.policy_for(inp.spec)})
                audience = Audience(rt.settings.sandbox_dir, stamp, console)
                audience.ask_first()
                handle = await start_campaign(rt.client, inp)
                _intro(rt, inp.spec, cycles)
                final = await _follow(rt.client, handle, audience)
                ledger = await asyncio.to_thread(usage.store_today, rt.deps.store, final.tenant_id, final.campaign_id)
                _summary(rt, final, ledger[0])
                if treasury is not None:
                    await treasury.run(inp.spec, stamp)
            finally:
                if treasury is not None:
                    treasury.close()
                stop.set()
                await workers


async def _follow(
    client: Client, handle: WorkflowHandle[CampaignWorkflow, CampaignStatus], audience: Audience
) -> CampaignStatus:
    progress = Progress(client)
    cycle = 0
    while True:
        status = await handle.query(CampaignWorkflow.status)
        if status.cycle != cycle:
            cycle = status.cycle
            console.rule(f"cycle {cycle}")
        await progress.show(status)
        await audience.react(status, handle)
        if (await handle.describe()).close_time is not None:
            final = await handle.result()
            await progress.show(final)
            return final
        await asyncio.sleep(0.5)


def _intro(rt: Runtime, spec: CampaignSpec, cycles: int) -> None:
    console.print(f"[bold]Chimera demo[/] · campaign [bold]{spec.campaign_id}[/] for {spec.persona.name}")
    console.print(f"  goals: {'; '.join(spec.goals)}")
    console.print(f"  {cycles} cycle(s), every {spec.cycle_interval_seconds}s · model: offline provider (no LLM)")
    if rt.server.ui_url:
        console.print(f"  Web UI: {rt.server.ui_url}/namespaces/{rt.config.namespace}/workflows")


def _summary(rt: Runtime, final: CampaignStatus, ledger: UsageSummary | None = None) -> None:
    console.rule("summary")
    table = Table("state", "tasks")
    for state, count in sorted(final.tasks_by_state.items()):
        table.add_row(state, str(count))
    console.print(table)
    console.print(
        f"spend today: ${final.spend_today_usd:.4f} of ${final.daily_budget_usd:.2f} · re-plans: {final.replans}"
    )
    if ledger is not None:
        console.print(usage.headline(ledger))
        tokens = usage.tokens_line(ledger)
        if tokens:
            console.print(tokens)
        calls = usage.table(ledger, "calls today by tier")
        if calls is not None:
            console.print(calls)
    console.print(f"sandbox posts: {rt.settings.sandbox_dir.resolve()} (twitter.sqlite3, instagram.sqlite3)")
    if final.pending_reviews:
        console.print(
            f"\n[yellow]{len(final.pending_reviews)} review(s) wait for a human.[/] Start Chimera, then decide:"
        )
        console.print("  make dev                      # or: .venv/bin/chimera dev (keeps Temporal + workers up)")
        console.print("  .venv/bin/chimera review list")
        first = final.pending_reviews[0]
        console.print(f"  .venv/bin/chimera review show {first}")
        console.print(f'  .venv/bin/chimera review approve {first} --reason "on brand"')
    if rt.server.ui_url:
        console.print(f'\nWeb UI (while `chimera dev` runs): {rt.server.ui_url} · filter ReviewState="pending"')


def _confidence(task: TaskView) -> str:
    return f"confidence {task.confidence:.2f}" if task.confidence is not None else ""


def _short(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def run_demo(campaign: Path, cycles: int, cycle_seconds: int) -> None:
    asyncio.run(_run(campaign, cycles, cycle_seconds))
