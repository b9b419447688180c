"""The call ledger in the CLI: today's spend, cost per published post, tokens by tier (status, budget, demo).

Light at import: the store (SQLAlchemy) loads only when a command reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from chimera.db import StateStore, UsageSummary


def _usd(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return f"${text if '.' in text else text + '.00'}"


def _count(n: int) -> str:
    return f"{n:,}"


def headline(summary: UsageSummary) -> str:
    """One line: what the ledger's calls cost (its estimated part) and the cost per published post."""
    est = f" ({_usd(summary.estimated_usd)} estimated)" if summary.estimated_usd else ""
    per_post = "-" if summary.cost_per_published_usd is None else _usd(summary.cost_per_published_usd)
    return (
        f"Calls: {summary.calls} costing {_usd(summary.spent_usd)}{est} · "
        f"per published post {per_post} ({summary.published_posts} published)"
    )


def tokens_line(summary: UsageSummary) -> str | None:
    """Tokens per task by tier (all four counts over the distinct tasks or plans of the tier); None if no call."""
    if not summary.tokens_per_task:
        return None
    return "Tokens per task: " + ", ".join(f"{escape(t)} {n:,.0f}" for t, n in sorted(summary.tokens_per_task.items()))


def table(summary: UsageSummary, title: str = "calls by tier") -> Table | None:
    """Tier, model, calls, input/cached/output tokens, cost ('est.' when any line was estimated); None if empty."""
    return combined([(None, summary)], title)


def combined(items: Sequence[tuple[str | None, UsageSummary]], title: str) -> Table | None:
    """One table for several summaries, a first column naming each one's label (when labelled); None if empty."""
    if not any(summary.rows for _, summary in items):
        return None
    labelled = any(label is not None for label, _ in items)
    grid = Table(title=title, title_justify="left")
    if labelled:
        grid.add_column("campaign", overflow="fold")
    grid.add_column("tier", no_wrap=True)
    grid.add_column("model", overflow="fold")
    for header in ("calls", "input", "cached", "output", "cost"):
        grid.add_column(header, justify="right", no_wrap=True)
    for label, summary in items:
        for row in summary.rows:
            mark = " [yellow]est.[/]" if row.estimated_calls else ""
            cells = [
                escape(row.tier),
                f"{escape(row.provider)}:{escape(row.model)}",
                _count(row.calls),
                _count(row.input_tokens),
                _count(row.cached_input_tokens),
                _count(row.output_tokens),
                _usd(row.cost_usd) + mark,
            ]
            grid.add_row(*([escape(label or "")] if labelled else []), *cells)
    return grid


def store_today(store: StateStore, tenant_id: str, campaign_id: str) -> tuple[UsageSummary | None, str | None]:
    """(today's usage of the campaign, None), or (None, why it could not be read): never raises."""
    from sqlalchemy.exc import SQLAlchemyError

    from chimera.db import StoreError

    try:
        return store.usage_today(tenant_id, campaign_id), None
    except (StoreError, SQLAlchemyError, ValueError) as exc:
        return None, f"call ledger unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def read_today(tenant_id: str, campaign_id: str) -> tuple[UsageSummary | None, str | None]:
    """store_today with the settings' database (as `budget show` connects); a SQLite file that does not exist
    is not created: the ledger is then reported unavailable."""
    from sqlalchemy.engine import make_url

    from chimera.db import StateStore
    from chimera.settings import Settings

    url = Settings().resolved_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        return None, f"call ledger unavailable: no state database at {parsed.database}"
    try:
        store = StateStore(url)
    except ValueError as exc:
        return None, f"call ledger unavailable: {exc}"
    try:
        return store_today(store, tenant_id, campaign_id)
    finally:
        store.close()
