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
    from chimera.db.payments import CampaignMoney


def _usd(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return f"${text if '.' in text else text + '.00'}"


def _short_usd(value: float) -> str:
    """Four decimals, or six for sub-cent-hundredth amounts (a cheap reply's call)."""
    return f"${value:.4f}" if value >= 0.0001 or value == 0 else f"${value:.6f}"


def _count(n: int) -> str:
    """Compact counts, so the table fits 80 columns: 950, 6.1k, 2.3M."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


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
    tiers = {t: n for t, n in summary.tokens_per_task.items() if n}  # paid tools use no tokens
    if not tiers:
        return None
    return "Tokens per task: " + ", ".join(f"{escape(t)} {n:,.0f}" for t, n in sorted(tiers.items()))


def table(summary: UsageSummary, title: str = "calls by tier") -> Table | None:
    """Tier, model, calls, input/cached/output tokens, cost ('est.' when any line was estimated); None if empty."""
    return combined([(None, summary)], title)


def combined(items: Sequence[tuple[str | None, UsageSummary]], title: str) -> Table | None:
    """One table for several summaries, a first column naming each one's label (when labelled); None if empty."""
    if not any(summary.rows for _, summary in items):
        return None
    # A campaign column only when the table mixes campaigns.
    labelled = len({label for label, summary in items if summary.rows}) > 1
    estimated = any(row.estimated_calls for _, summary in items for row in summary.rows)
    caption = "~ estimated: list prices, nothing billed (offline models, sandbox tools)" if estimated else None
    grid = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    if labelled:
        grid.add_column("campaign", overflow="fold")
    # Minimum widths keep the names readable on an 80-column terminal (the numbers give way first).
    grid.add_column("tier", overflow="fold", min_width=8)
    grid.add_column("model", overflow="fold", min_width=12)
    for header in ("calls", "in", "cached", "out", "cost"):
        grid.add_column(header, justify="right", overflow="fold")
    for label, summary in items:
        for row in summary.rows:
            mark = "~" if row.estimated_calls else ""
            cells = [
                escape(row.tier),
                escape(row.model),
                _count(row.calls),
                _count(row.input_tokens),
                _count(row.cached_input_tokens),
                _count(row.output_tokens),
                mark + _short_usd(row.cost_usd),
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
    store, problem = _settings_store("call ledger")
    if store is None:
        return None, problem
    try:
        return store_today(store, tenant_id, campaign_id)
    finally:
        store.close()


def read_money(tenant_id: str, campaign_id: str) -> tuple[CampaignMoney | None, str | None]:
    """What the campaign paid and received (the payment ledger), or (None, why it could not be read)."""
    from sqlalchemy.exc import SQLAlchemyError

    from chimera.db import StoreError

    store, problem = _settings_store("payment ledger")
    if store is None:
        return None, problem
    try:
        return store.campaign_money(tenant_id, campaign_id), None
    except (StoreError, SQLAlchemyError, ValueError) as exc:
        return None, f"payment ledger unavailable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    finally:
        store.close()


def _settings_store(what: str) -> tuple[StateStore | None, str | None]:
    from sqlalchemy.engine import make_url

    from chimera.db import StateStore
    from chimera.settings import Settings

    url = Settings().resolved_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        return None, f"{what} unavailable: no state database at {parsed.database}"
    try:
        return StateStore(url), None
    except ValueError as exc:
        return None, f"{what} unavailable: {exc}"
