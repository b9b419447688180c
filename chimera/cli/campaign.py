"""`chimera campaign ...`: start a campaign from its file, see it, and steer it while it runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from chimera.cli import render, usage
from chimera.cli.render import AllFlag, JsonFlag, LimitOption, PageOption
from chimera.control import campaigns
from chimera.control.listing import PAGE_SIZE, Page
from schemas.events import CampaignStatus
from schemas.payment import display_usdc

if TYPE_CHECKING:
    from chimera.db import UsageSummary
    from chimera.db.payments import CampaignMoney

app = typer.Typer(help="Start, inspect and steer campaigns.", no_args_is_help=True)

CampaignRef = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="TENANT/CAMPAIGN, the workflow id (campaign-TENANT-CAMPAIGN), or a campaign id only one tenant uses.",
        show_default=False,
    ),
]


@app.command()
def start(
    file: Annotated[Path, typer.Argument(help="The campaign YAML file (see specs/campaign-file.md).")],
    max_cycles: Annotated[
        int | None, typer.Option("--max-cycles", min=1, help="End after this many cycles (demos, trials).")
    ] = None,
) -> None:
    """Start a campaign. Its id is used once: a finished campaign cannot be started again."""
    from chimera.campaign_file import CampaignFileError  # the file loaders load only for `start`

    config = render.load_config()
    try:
        inp = campaigns.load_campaign_input(file, config, max_cycles=max_cycles)
    except CampaignFileError as exc:
        render.print_issues(exc.source, exc.errors)
        render.fail(f"{file}: {len(exc.errors)} problem(s); nothing was started")
    handle = render.run(lambda client, _: campaigns.start_campaign(client, inp), config)
    spec = inp.spec
    ref = f"{spec.tenant_id}/{spec.campaign_id}"
    render.say(f"[green]started[/] campaign {ref}: {escape(spec.name)}")
    render.say(f"workflow {handle.id}, run {handle.result_run_id}")
    render.say(f"follow it with `chimera campaign status {ref}`; it needs a worker: `chimera worker --role all`")


@app.command("list")
def list_(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's campaigns.")] = None,
    state: Annotated[
        str | None, typer.Option("--state", help="Only campaigns in this state: running, paused, stopped, completed.")
    ] = None,
    limit: LimitOption = PAGE_SIZE,
    page: PageOption = None,
    all_: AllFlag = False,
    check: Annotated[
        bool, typer.Option("--check", help="Also ask each campaign for its status (pending reviews, stop reason).")
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Campaigns (the latest run of each), running ones first, from their search attributes."""
    render.exclusive(page, all_)
    result = render.run(
        lambda client, _: campaigns.list_campaigns(
            client, tenant=tenant, state=state, limit=None if all_ else limit, page=page, check=check
        )
    )
    if json_:
        render.emit_json(result)
    else:
        _print_campaigns(result, filtered=bool(tenant or state))
        limited = None if limit == PAGE_SIZE else str(limit)
        options = {"--tenant": tenant, "--state": state, "--limit": limited, "--check": check}
        render.page_footer(result, "campaigns", "running first, then the newest run", "campaign list", options)
    render.exit_if_unchecked(r.check_error for r in result.rows)


def _print_campaigns(result: Page[campaigns.CampaignRow], filtered: bool) -> None:
    if not result.rows:
        if result.offset:
            render.say("no more campaigns")
        else:
            render.say("no campaign matches" if filtered else "no campaigns yet: `chimera campaign start FILE`")
        return
    console = render.out()
    for row in result.rows:
        cycle = "-" if row.cycle is None else str(row.cycle)
        state = render.styled(row.state) if row.state else "[dim]not recorded[/]"
        line = f"   workflow {render.styled(row.status)} · state {state} · cycle {cycle}"
        if row.checked:
            line += f" · pending reviews {row.pending_reviews}"
        console.print(f"[bold]{escape(row.tenant_id)}/{escape(row.campaign_id)}[/]  agent {escape(row.agent_id)}")
        console.print(f"{line} · started {render.started(row.started_at)}")
        if row.stop_reason:
            console.print(f"   [red]stopped:[/] {escape(row.stop_reason)}")
        render.row_notes(row.note, row.check_error)


class StatusView(CampaignStatus):
    """`campaign status --json`: the workflow's status, plus today's call ledger from the state store."""

    usage: dict[str, Any] | None = None  # chimera.db.UsageSummary (today, the campaign's time zone), as JSON
    usage_error: str | None = None  # why the ledger could not be read (usage is then null)
    payments: dict[str, int] | None = None  # spent_units, received_units, open_units (USDC base units)
    payments_error: str | None = None


@app.command()
def status(ref: CampaignRef, json_: JsonFlag = False) -> None:
    """The campaign's state, goals, budget and tasks, and today's calls: cost per published post, tokens by tier."""
    st = render.run(lambda client, _: campaigns.campaign_status(client, ref))
    summary, problem = usage.read_today(st.tenant_id, st.campaign_id)
    money, money_problem = usage.read_money(st.tenant_id, st.campaign_id)
    if json_:
        ledger = None if summary is None else summary.model_dump(mode="json")
        paid = None if money is None else dataclasses.asdict(money)
        view = StatusView(
            **st.model_dump(), usage=ledger, usage_error=problem, payments=paid, payments_error=money_problem
        )
        render.emit_json(view)
        return
    print_status(st, summary, problem, money)


def print_status(
    st: CampaignStatus,
    summary: UsageSummary | None = None,
    problem: str | None = None,
    money: CampaignMoney | None = None,
) -> None:
    lines = [
        f"[bold]{st.tenant_id}/{st.campaign_id}[/] · agent {st.agent_id} · {render.styled(st.state)}"
        f" · cycle {st.cycle}",
        "Goals: " + "; ".join(escape(g) for g in st.goals),
        f"Budget: ${st.spend_today_usd:.4f} spent of ${st.daily_budget_usd:.2f} today",
    ]
    if summary is not None:
        lines += [usage.headline(summary), *filter(None, [usage.tokens_line(summary)])]
    elif problem:
        lines.append(f"[dim]{escape(problem)}[/]")
    if money is not None and (money.spent_units or money.received_units or money.open_units):
        lines.append(
            f"Payments: revenue {display_usdc(money.received_units)} · paid {display_usdc(money.spent_units)}"
            + (f" · under way {display_usdc(money.open_units)}" if money.open_units else "")
        )
    lines += [
        "Tasks: " + (", ".join(f"{k} {v}" for k, v in sorted(st.tasks_by_state.items())) or "none yet"),
        f"Re-plans: {st.replans}",
    ]
    if st.paused_by:
        lines.append(f"Paused by: {escape(st.paused_by)}")
    if st.stop_reason:
        lines.append(f"[red]Stopped:[/] {escape(st.stop_reason)}")
    if st.cycle_errors:
        lines.append(f"[yellow]Failed cycles:[/] {len(st.cycle_errors)}, last: {escape(st.cycle_errors[-1])}")
    if st.pending_reviews:
        lines.append("Waiting for review: " + ", ".join(st.pending_reviews) + "  (`chimera review list`)")
    console = render.out()
    console.print(Panel("\n".join(lines), title="campaign", expand=False))
    calls = None if summary is None else usage.table(summary, "calls today by tier")
    if calls is not None:
        console.print(calls)
    if not st.tasks:
        return
    # Keys, not full ids: a task's id is `<tenant>.<campaign>.<key>`.
    table = Table(title=f"tasks (id = {st.tenant_id}.{st.campaign_id}.KEY)")
    render.id_column(table, "Key")
    for header in ("Type", "Platform", "Status", "Cycle", "Try", "Conf."):
        table.add_column(header, no_wrap=True)
    table.add_column("Post / reason", overflow="fold")
    for task in st.tasks:
        table.add_row(
            task.key,
            task.task_type,
            task.platform,
            render.styled(task.status),
            str(task.cycle),
            str(task.attempt),
            render.confidence(task.confidence),
            escape(task.post_id or task.reason or ""),
        )
    console.print(table)


@app.command()
def pause(
    ref: CampaignRef,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
) -> None:
    """Pause: no new task starts until resume (running tasks finish)."""
    _signal(ref, "pause", reason=reason)


@app.command()
def resume(
    ref: CampaignRef,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
) -> None:
    """Resume a paused campaign."""
    _signal(ref, "resume", reason=reason)


@app.command()
def budget(
    ref: CampaignRef,
    usd: Annotated[float, typer.Argument(metavar="USD", help="The new daily budget in US dollars (> 0).")],
) -> None:
    """Set the daily budget (applies to tasks not yet started)."""
    _signal(ref, "set_budget", daily_budget_usd=usd)


@app.command()
def goals(
    ref: CampaignRef,
    goal: Annotated[list[str], typer.Argument(metavar="GOAL...", help="The new goals, replacing the old ones.")],
) -> None:
    """Replace the goals; the campaign re-plans at once."""
    _signal(ref, "set_goals", goals=goal)


@app.command()
def stop(
    ref: CampaignRef,
    reason: Annotated[str, typer.Option("--reason", help="Why: required, it is recorded and shown.")],
) -> None:
    """Emergency stop: cancel every live task and end the campaign. It cannot be resumed."""
    _signal(ref, "emergency_stop", reason=reason)


def _signal(ref: str, name: campaigns.CampaignSignal, **fields: str | float | list[str]) -> None:
    # Validate before connecting: a malformed request is a usage error whatever the server's state.
    with render.reported_errors():
        request = campaigns.campaign_request(name, None, **fields)
    ack = render.run(lambda client, _: campaigns.send_campaign_signal(client, ref, name, request))
    render.report_ack(ack)
