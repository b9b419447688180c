"""`chimera review ...`: the human review queue. Drafts the judge escalated wait here until a decision."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel

from chimera.cli import render
from chimera.cli.render import AllFlag, JsonFlag, LimitOption, PageOption
from chimera.cli.review_batch import decide_many
from chimera.control import reviews
from chimera.control.listing import PAGE_SIZE, Page
from chimera.control.review_batch import ReviewFilter
from schemas.policy import Verdict
from schemas.review import ReviewAction, ReviewView

app = typer.Typer(help="See and decide the drafts waiting for a human.", no_args_is_help=True)

TaskArg = Annotated[
    str, typer.Argument(metavar="TASK", help="The task id, as `chimera review list` shows it.", show_default=False)
]


@app.command("list")
def list_(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's reviews.")] = None,
    campaign: Annotated[
        str | None, typer.Option("--campaign", metavar="ID", help="Only this campaign's: CAMPAIGN or TENANT/CAMPAIGN.")
    ] = None,
    limit: LimitOption = PAGE_SIZE,
    page: PageOption = None,
    all_: AllFlag = False,
    check: Annotated[
        bool, typer.Option("--check", help="Also ask each task for its draft, deadline and safety flags.")
    ] = False,
    json_: JsonFlag = False,
) -> None:
    """Pending reviews, lowest confidence first, from search attributes (--check adds the drafts)."""
    render.exclusive(page, all_)
    result = render.run(
        lambda client, _: reviews.list_reviews(
            client, tenant, campaign, limit=None if all_ else limit, page=page, check=check
        )
    )
    if json_:
        render.emit_json(result)
    else:
        _print_reviews(result, check)
        limited = None if limit == PAGE_SIZE else str(limit)
        options = {"--tenant": tenant, "--campaign": campaign, "--limit": limited, "--check": check}
        order = "this page by the judge's risk (safety flags first)" if check else "lowest confidence first"
        render.page_footer(result, "pending reviews", order, "review list", options)
        if result.rows:
            render.say("decide with `chimera review approve|edit|reject TASK`; `chimera review show TASK` for details")
    render.exit_if_unchecked(r.check_error for r in result.rows)


def _print_reviews(result: Page[reviews.ReviewRow], check: bool) -> None:
    if not result.rows:
        render.say("no more reviews" if result.offset else "no review is waiting")
        return
    # One block per review: the id stays whole on its own line to be copied, at any width.
    console = render.out()
    for n, row in enumerate(result.rows, result.offset + 1):
        console.print(f"[bold]{n}. {escape(row.task_id)}[/]")
        console.print(
            f"   {escape(row.task_type)} on {escape(row.platform)} · campaign {escape(row.tenant_id)}/"
            f"{escape(row.campaign_id)} · confidence {render.confidence(row.confidence)} · "
            f"task started {render.ago(row.started_at)}",
            soft_wrap=True,
        )
        view = row.review
        if view is not None:
            console.print(f"   flags: {escape(render.flags(view.verdict))} · deadline {render.until(view.deadline)}")
            console.print(f"   [dim]{escape(render.first_line(view.text))}[/]")
        render.row_notes(row.note, row.check_error)
    if not check:
        render.say("[dim]safety flags, drafts and deadlines are not in visibility: `--check` asks each task[/]")


@app.command()
def show(task: TaskArg, json_: JsonFlag = False) -> None:
    """The draft, why it was escalated, its deadline and state."""
    view = render.run(lambda client, _: reviews.show_review(client, task))
    if json_:
        render.emit_json(view)
        return
    print_review(view)


MEDIA_HINT = "$CHIMERA_STATE_DIR/sandbox/media"
NO_FEEDBACK = (
    "Feedback: none applied (no reviewer has decided this agent's drafts of this type yet, "
    "or the draft was judged before learning feedback)"
)


def print_review(view: ReviewView) -> None:
    console = render.out()
    head = [
        f"[bold]{view.task_id}[/]",
        f"{view.task_type} on {view.platform} · campaign {view.campaign_id} · review {render.styled(view.state)}",
        f"Brief: {escape(view.brief)}",
        f"Deadline: {render.when(view.deadline)}",
    ]
    if view.reviewer:
        head.append(f"Decided by {escape(view.reviewer)}" + (f": {escape(view.reason)}" if view.reason else ""))
    head.extend(outcome_lines(view))
    console.print(Panel("\n".join(head), title="review", expand=False))
    if view.note:
        console.print(f"[dim]{escape(view.note)}[/]", soft_wrap=True)
    if view.mention:
        m = view.mention
        console.print(Panel(escape(m.text), title=f"in answer to @{escape(m.author)} on {m.platform}", expand=False))
    console.print(Panel(escape(view.text) or "[dim](no draft yet)[/]", title="draft", expand=False))
    if view.media_ids:
        console.print(f"image: {', '.join(view.media_ids)} (in the media store, {MEDIA_HINT})")
    if view.tools_used:
        console.print(f"tools used: {', '.join(view.tools_used)}")
    memory = memory_lines(view)
    if memory:
        console.print(Panel("\n".join(memory), title="memories the writer was given", expand=False))
    verdict = view.verdict
    if verdict is None:
        return
    c = verdict.components
    lines = [
        f"Judge: {verdict.decision} at confidence {verdict.confidence:.2f} (risk {verdict.risk:.2f})",
        *([f"Drafted by: {escape(verdict.author.describe())} ({verdict.author.tier} tier)"] if verdict.author else []),
        f"  model {c.model_probability:.2f} · persona {c.persona_similarity:.2f} · safety {c.safety:.2f}"
        f" · history {c.historical_success:.2f}",
        "Flags: " + escape(render.flags(verdict)),
        *(f"  - {f.rule} ({f.severity}, {f.where}): {escape(f.detail)}" for f in verdict.flags),
        "Reasons:",
        *(f"  - {escape(r)}" for r in verdict.reasons),
        *feedback_lines(verdict),
    ]
    console.print(Panel("\n".join(lines), title="why it needs a human", expand=False))


MEMORY_SOURCES = {
    "conversation": "earlier exchange",
    "memory": "memory",
    "recent_post": "own recent post",
    "learning": "learning",
}


def memory_lines(view: ReviewView) -> list[str]:
    """Each memory put in front of the writer, and whether the draft drew on it (specs/memory.md)."""
    lines = []
    for m in view.memories_used:
        used = "[green]used[/] " if m.id in view.memories_cited else "     "
        score = f" · score {m.score:.3f}" if m.score is not None else ""
        text = " ".join(m.text.split())
        text = text if len(text) <= 140 else text[:139] + "…"
        lines.append(f"{used}{MEMORY_SOURCES.get(m.source, m.source)} ({m.kind}, {m.created_at[:10]}{score}) {m.id}")
        lines.append(f"        {escape(text)}")
    return lines


def outcome_lines(view: ReviewView) -> list[str]:
    """How the task ended: the post and its link, or why it was not published (none while it runs)."""
    if view.outcome_status is None:
        return []
    if view.outcome_status == "published":
        link = f" · {escape(view.post_url)}" if view.post_url else ""
        return [f"Published: post {escape(view.post_id or '?')}{link}"]
    why = f": {escape(view.outcome_reason)}" if view.outcome_reason else ""
    return [f"Not published: {render.styled(view.outcome_status)}{why}"]


def feedback_lines(verdict: Verdict) -> list[str]:
    """What reviewers' feedback (learning feedback, specs/judge.md) changed in this verdict."""
    cal = verdict.calibration
    if cal is None:
        return [NO_FEEDBACK]
    lines = [f"Feedback from reviewers of this agent's {escape(cal.task_type)} drafts:"]
    before, after = cal.bands_before, cal.bands_after
    if before is not None and after is not None and before != after:
        lines.append(
            f"  bands: approve at {_moved(before.approve_at, after.approve_at)},"
            f" escalate at {_moved(before.escalate_at, after.escalate_at)}"
        )
    else:
        lines.append("  bands: unchanged")
    lines.append(f"  from {cal.reviews} recent reviews: {cal.counts}")
    lines.append(f"  {escape(cal.reason)}")
    if verdict.uncalibrated_decision is not None:
        lines.append(
            f"  [bold]it changed the decision[/]: {verdict.uncalibrated_decision} by the campaign's bands,"
            f" {verdict.decision} with the feedback"
        )
    else:
        lines.append("  it did not change the decision")
    return lines


def _moved(before: float, after: float) -> str:
    return f"{before:.2f} -> {after:.2f}" if before != after else f"{after:.2f} (unchanged)"


TasksArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="TASK",
        help="Task ids, as `chimera review list` shows them; or select with the filters instead.",
        show_default=False,
    ),
]
FILTERS = "Select from the pending queue"
TenantFilter = Annotated[
    str | None, typer.Option("--tenant", help="Only this tenant's reviews.", rich_help_panel=FILTERS)
]
CampaignFilter = Annotated[
    str | None,
    typer.Option("--campaign", metavar="ID", help="CAMPAIGN or TENANT/CAMPAIGN.", rich_help_panel=FILTERS),
]
PlatformFilter = Annotated[
    str | None, typer.Option("--platform", help="twitter or instagram.", rich_help_panel=FILTERS)
]
TaskTypeFilter = Annotated[str | None, typer.Option("--task-type", help="post or reply.", rich_help_panel=FILTERS)]
MinConfidence = Annotated[
    float | None,
    typer.Option("--min-confidence", min=0.0, max=1.0, help="Confidence at least this.", rich_help_panel=FILTERS),
]
MaxConfidence = Annotated[
    float | None,
    typer.Option("--max-confidence", min=0.0, max=1.0, help="Confidence at most this.", rich_help_panel=FILTERS),
]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Decide several reviews without asking to confirm.")]
DryRunFlag = Annotated[bool, typer.Option("--dry-run", help="Only list what would be decided; send nothing.")]


@app.command()
def approve(
    tasks: TasksArg = None,
    reason: Annotated[str, typer.Option("--reason", help="Optional note for the audit log.")] = "",
    tenant: TenantFilter = None,
    campaign: CampaignFilter = None,
    platform: PlatformFilter = None,
    task_type: TaskTypeFilter = None,
    min_confidence: MinConfidence = None,
    max_confidence: MaxConfidence = None,
    yes: YesFlag = False,
    dry_run: DryRunFlag = False,
    json_: JsonFlag = False,
) -> None:
    """Approve drafts as written: they are published. One TASK, several, or every pending review the filters
    select (shown first, and confirmed unless --yes)."""
    where = ReviewFilter(
        tenant=tenant,
        campaign=campaign,
        platform=platform,
        task_type=task_type,
        min_confidence=min_confidence,
        max_confidence=max_confidence,
    )
    _decide_selected("approve", tasks or [], where, None, reason, yes, dry_run, json_)


@app.command()
def reject(
    reason: Annotated[str, typer.Option("--reason", help="Why: required; the planner re-plans with it.")],
    tasks: TasksArg = None,
    tenant: TenantFilter = None,
    campaign: CampaignFilter = None,
    platform: PlatformFilter = None,
    task_type: TaskTypeFilter = None,
    min_confidence: MinConfidence = None,
    max_confidence: MaxConfidence = None,
    yes: YesFlag = False,
    dry_run: DryRunFlag = False,
    json_: JsonFlag = False,
) -> None:
    """Reject drafts: they are never published and each task is re-planned with the reason. One TASK, several,
    or every pending review the filters select (shown first, and confirmed unless --yes)."""
    where = ReviewFilter(
        tenant=tenant,
        campaign=campaign,
        platform=platform,
        task_type=task_type,
        min_confidence=min_confidence,
        max_confidence=max_confidence,
    )
    _decide_selected("reject", tasks or [], where, None, reason, yes, dry_run, json_)


def _decide_selected(
    action: ReviewAction,
    tasks: list[str],
    where: ReviewFilter,
    reviewer: str | None,
    reason: str,
    yes: bool,
    dry_run: bool,
    json_: bool,
) -> None:
    if len(tasks) == 1 and where.is_empty() and not (dry_run or json_):
        _decide(tasks[0], action, reviewer, reason)  # the one-review form: as before, nothing to confirm
        return
    decide_many(action, tasks, where, reviewer, reason, yes=yes, dry_run=dry_run, json_=json_)


@app.command()
def edit(
    task: TaskArg,
    text: Annotated[str, typer.Option("--text", help="The text to publish instead of the draft.")],
    reason: Annotated[str, typer.Option("--reason", help="A note for the audit log (required with --override).")] = "",
    override: Annotated[
        bool, typer.Option("--override", help="Publish despite a high-risk flag on the edit (audited; needs --reason).")
    ] = False,
) -> None:
    """Publish your own text instead of the draft. The Judge checks it first: a high-risk flag blocks it and
    says why, unless you --override with a --reason."""
    _decide(task, "edit", None, reason, text, override)


def _decide(
    task: str, action: ReviewAction, reviewer: str | None, reason: str, text: str | None = None, override: bool = False
) -> None:
    # Validate before connecting: a rejection without a reason is a usage error, whatever the server says.
    with render.reported_errors():
        decision = reviews.review_decision(action, reviewer, reason, text, override)
    ack = render.run(lambda client, _: reviews.send_review_decision(client, task, decision))
    render.report_ack(ack)
