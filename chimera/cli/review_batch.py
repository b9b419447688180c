"""`chimera review approve|reject` for several reviews: select (ids or filters), show, confirm, decide, report.

One line per review (accepted, or refused / failed with the reason) and a summary; exit 0 when every decision
was accepted, 1 otherwise. Confirmation is asked on a terminal; elsewhere `--yes` says it (`--dry-run` only
lists). A single task id with no filter is the one-review form (chimera/cli/review.py), asked nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from rich.markup import escape

from chimera.cli import render
from chimera.control import review_batch
from chimera.control.review_batch import BatchItem, BatchReport, ReviewFilter
from chimera.control.reviews import ReviewRow, review_decision
from schemas.review import ReviewAction

PAST: dict[ReviewAction, str] = {"approve": "approved", "reject": "rejected", "edit": "edited"}
STATUS_STYLE = {"accepted": "green", "refused": "red", "failed": "yellow"}


def counted(n: int) -> str:
    return f"{n} review" if n == 1 else f"{n} reviews"


def interactive() -> bool:
    """Whether a person can answer a prompt (tests replace it to answer one)."""
    return sys.stdin.isatty()


def decide_many(
    action: ReviewAction,
    task_ids: Sequence[str],
    where: ReviewFilter,
    reviewer: str | None,
    reason: str,
    *,
    yes: bool,
    dry_run: bool,
    json_: bool,
) -> None:
    # Checked before connecting: a malformed decision or filter is a usage error, and nothing is sent.
    with render.reported_errors():
        review_decision(action, reviewer, reason)
        if not where.is_empty():
            where.query()
    by_filter = not where.is_empty()
    selected = render.run(lambda client, _: review_batch.select_reviews(client, task_ids=task_ids, where=where))
    if dry_run:
        if json_:
            render.emit_json(BatchReport(action=action, dry_run=True, selected=selected))
            return
        _print_selection(action, selected, where, "would be")
        render.say("dry run: nothing was sent")
        return
    if (by_filter or len(selected) > 1) and not yes:
        _confirm(action, selected, where, json_)
    results = render.run(
        lambda client, _: review_batch.decide_reviews(client, [r.task_id for r in selected], action, reviewer, reason)
    )
    report = BatchReport.of(action, selected, results)
    if json_:
        render.emit_json(report)
        if not report.all_accepted:
            raise typer.Exit(render.EXIT_FAILED)
        return
    _print_results(report)


def _confirm(action: ReviewAction, selected: list[ReviewRow], where: ReviewFilter, json_: bool) -> None:
    n = len(selected)
    if json_:
        render.fail(f"{counted(n)} selected: --json cannot ask to confirm; add --yes (or --dry-run)", render.EXIT_USAGE)
    _print_selection(action, selected, where, "will be")
    if not interactive():
        render.fail(
            f"{counted(n)} selected: confirm with --yes (no terminal to ask on), or list them with --dry-run",
            render.EXIT_USAGE,
        )
    if not typer.confirm(f"{action} {counted(n)}?", default=False):
        render.say("nothing was decided")
        raise typer.Exit(render.EXIT_FAILED)


def _print_selection(action: ReviewAction, rows: list[ReviewRow], where: ReviewFilter, mood: str) -> None:
    matching = f" matching {where.describe()}" if not where.is_empty() else ""
    render.say(f"{counted(len(rows))}{escape(matching)} {mood} {PAST[action]}:")
    console = render.out()
    for row in rows:
        campaign = f"{row.tenant_id}/{row.campaign_id}" if row.campaign_id else "-"
        console.print(f"  {escape(row.task_id)}", soft_wrap=True)
        if row.campaign_id:
            console.print(
                f"    {escape(row.task_type)} on {escape(row.platform)} · campaign {escape(campaign)} · "
                f"confidence {render.confidence(row.confidence)}",
                soft_wrap=True,
            )
        if row.note:
            console.print(f"    [dim]{escape(row.note)}[/]", soft_wrap=True)


def _print_results(report: BatchReport) -> None:
    for item in report.results:
        _print_item(item)
    total = len(report.results)
    render.say(
        f"{report.action}: {report.accepted} accepted, {report.refused} refused, {report.failed} failed "
        f"(of {counted(total)})"
    )
    if not report.all_accepted:
        left = total - report.accepted
        render.fail(f"{left} of {counted(total)} not {PAST[report.action]}: each line says why")


def _print_item(item: BatchItem) -> None:
    style = STATUS_STYLE[item.status]
    render.say(f"[{style}]{item.status:<8}[/] {escape(item.task_id)}: {escape(item.message)}")
