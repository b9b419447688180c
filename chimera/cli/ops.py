"""Operator commands on the state store (no Temporal needed): `chimera db`, `chimera budget`, `chimera audit`.

They connect with the settings (chimera/settings.py): `db upgrade` as the migration role
(CHIMERA_MIGRATION_DATABASE_URL, default CHIMERA_DATABASE_URL), the rest as the application role,
and `audit verify` without `--tenant` as the auditor (CHIMERA_AUDIT_DATABASE_URL) on PostgreSQL.
See specs/database.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from chimera.cli import render, usage
from chimera.cli.render import JsonFlag
from chimera.settings import Settings

if TYPE_CHECKING:  # SQLAlchemy and the store load only when a command uses them (CLI start-up stays fast)
    from chimera.db import StateStore

db_app = typer.Typer(help="The database schema: apply migrations, show the revision.", no_args_is_help=True)


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


@contextmanager
def db_errors() -> Iterator[None]:
    """Store and driver errors become `error: ...` and exit 1 (never a traceback)."""
    from sqlalchemy.exc import SQLAlchemyError

    from chimera.db import StoreError

    try:
        yield
    except (StoreError, ValueError) as exc:
        render.fail(str(exc))
    except SQLAlchemyError as exc:
        render.fail(f"database error: {str(exc).splitlines()[0]}")


class RevisionInfo(BaseModel):
    database: str
    current: str | None
    head: str
    up_to_date: bool


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply the migrations up to REVISION (as the migration role: CHIMERA_MIGRATION_DATABASE_URL)."""
    from chimera.db import migrate

    settings = Settings()
    url = settings.migration_database_url or settings.resolved_database_url
    with db_errors():
        before, after = migrate.upgrade(url, revision)
    if before == after:
        render.say(f"{escape(_redact(url))} is already at revision {after}")
    else:
        render.say(f"upgraded {escape(_redact(url))} from {before or 'an empty database'} to revision {after}")


@db_app.command("current")
def db_current(json_: JsonFlag = False) -> None:
    """Where the database stands: its revision and the one this code needs (exit 1 when behind)."""
    from chimera.db import migrate

    settings = Settings()
    url = settings.resolved_database_url
    with db_errors():
        current = migrate.current_revision(url)
    info = RevisionInfo(
        database=_redact(url), current=current, head=migrate.head(), up_to_date=current == migrate.head()
    )
    if json_:
        render.emit_json(info)
    else:
        render.say(f"database: {escape(info.database)}")
        render.say(f"current:  {info.current or '(none: never migrated)'}")
        render.say(f"head:     {info.head}" + ("" if info.up_to_date else "  -> run `chimera db upgrade`"))
        for rev, doc in migrate.revisions():
            mark = "*" if rev == current else " "
            render.say(f"  {mark} {rev}  {escape(doc.splitlines()[0] if doc else '')}")
    if not info.up_to_date:
        raise typer.Exit(render.EXIT_FAILED)


def _store(url: str | None = None) -> StateStore:
    from chimera.db import StateStore

    settings = Settings()
    return StateStore(url or settings.resolved_database_url)


def _tenants(tenant: str | None, *, auditor: bool = False) -> tuple[StateStore, list[str]]:
    """The store to use and the tenants to cover: the one asked, or every tenant the connection can see."""
    from chimera.db import StateStore

    settings = Settings()
    url = (settings.audit_database_url if auditor else None) or settings.resolved_database_url
    store = StateStore(url)
    if tenant is not None:
        return store, [tenant]
    tenants = store.tenants()
    if not tenants and store.dialect == "postgresql":
        store.close()
        hint = "pass --tenant, or set CHIMERA_AUDIT_DATABASE_URL (the auditor role) to cover every tenant"
        render.fail(f"no tenant is visible to this database role: {hint}", render.EXIT_USAGE)
    return store, tenants


# --- chimera budget ------------------------------------------------------------------------------

budget_app = typer.Typer(help="Daily budgets per tenant, agent and campaign: see and set them.", no_args_is_help=True)
TenantOption = Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")]


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}".rstrip("0").rstrip(".")


@budget_app.command("show")
def budget_show(
    tenant: TenantOption = None,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign (needs --tenant).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Spent, reserved and left today at each level (each campaign's day, in its time zone)."""
    if campaign is not None and tenant is None:
        render.fail("--campaign needs --tenant", render.EXIT_USAGE)
    with db_errors():
        # The auditor may list the tenants (it reads the audit chain and the tenants only); their budgets are
        # read as the application role, one tenant's transaction at a time.
        lister, tenants = _tenants(tenant, auditor=tenant is None)
        lister.close()
        store = _store()
        try:
            lines = [line for t in tenants for line in store.budget_report(t, campaign)]
            limits = {t: store.budget_limits(t) for t in tenants}
            # Each campaign's call ledger on the day its campaign line is counted on.
            ledgers = {
                (line.tenant_id, line.campaign_id): store.usage_summary(
                    line.tenant_id, line.campaign_id, line.day, line.day
                )
                for line in lines
                if line.level == "campaign"
            }
        finally:
            store.close()
    if json_:
        # BudgetLine fields, and `usage` (chimera.db.UsageSummary) on each campaign-level line (null on the others).
        render.emit_data(
            [
                {
                    **line.model_dump(mode="json"),
                    "usage": ledgers[(line.tenant_id, line.campaign_id)].model_dump(mode="json")
                    if line.level == "campaign"
                    else None,
                }
                for line in lines
            ]
        )
        return
    if not lines:
        render.say("no campaign" + (f" for tenant {escape(tenant)}" if tenant else ""))
    table = Table(title="daily budgets today (each campaign's day)")
    render.id_column(table, "campaign, day")
    table.add_column("level", no_wrap=True)
    for header in ("limit", "spent", "reserved", "left"):
        table.add_column(header, justify="right", no_wrap=True)
    for line in lines:
        table.add_row(
            f"{escape(line.tenant_id)}/{escape(line.campaign_id)}\n[dim]{line.day} {escape(line.timezone)}[/]",
            f"{line.level} {escape(line.scope_id)}",
            _usd(line.limit_usd) if line.limit_usd is not None else "[dim]none[/]",
            _usd(line.spent_usd),
            _usd(line.reserved_usd),
            _usd(line.left_usd),
        )
    if lines:
        render.out().print(table)
    for (t, c), summary in ledgers.items():
        if summary.calls:
            render.say(f"{escape(t)}/{escape(c)}: {usage.headline(summary)}")
    calls = usage.combined([(f"{t}/{c}", s) for (t, c), s in ledgers.items()], "calls today by tier")
    if calls is not None:
        render.out().print(calls)
    for t, items in limits.items():
        for scope, scope_id, daily in items:
            render.say(f"limit: tenant {escape(t)} {scope} {escape(scope_id)} {_usd(daily)}/day")


@budget_app.command("set")
def budget_set(
    usd: Annotated[float, typer.Argument(metavar="USD", help="The daily limit in US dollars (0 blocks spending).")],
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant.", show_default=False)],
    agent: Annotated[str | None, typer.Option("--agent", help="Set this agent's limit, not the tenant's.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the limit instead (USD is ignored).")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
) -> None:
    """Set the daily limit of a tenant, or of one of its agents (a campaign's is `chimera campaign budget`).
    An administrator's (of the tenant, or of the fleet): signed with your credentials, the audit records you."""
    from chimera.access.credentials import NotSignedIn, load_credentials
    from chimera.access.users import NotAllowed, check_authority

    if usd < 0:
        render.fail(f"a daily budget cannot be negative ({usd})", render.EXIT_USAGE)
    scope, scope_id = ("agent", agent) if agent else ("tenant", tenant)
    with db_errors():
        store = _store()
        try:
            change = f"{scope} {scope_id} budget {'cleared' if clear else usd}"
            who = check_authority(store, load_credentials(Settings()), "tenant.budget", tenant, change).actor
            store.set_budget(tenant, scope, scope_id, None if clear else usd, actor=who, reason=reason)
        except NotSignedIn as exc:
            render.fail(str(exc), render.EXIT_USAGE)
        except NotAllowed as exc:
            render.fail(f"refused: {exc}")
        finally:
            store.close()
    what = f"agent {agent} of tenant {tenant}" if agent else f"tenant {tenant}"
    render.say(f"{escape(what)}: " + ("no daily limit" if clear else f"daily limit {_usd(usd)}"))


# --- chimera audit -------------------------------------------------------------------------------

audit_app = typer.Typer(
    help="The tamper-evident audit log: verify the chains, show recent entries.", no_args_is_help=True
)


class TenantAuditCheck(BaseModel):
    tenant_id: str
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None


@audit_app.command("verify")
def audit_verify(tenant: TenantOption = None, json_: JsonFlag = False) -> None:
    """Check each tenant's hash chain; exit 1 naming the first entry altered, removed or reordered."""
    with db_errors():
        store, tenants = _tenants(tenant, auditor=True)
        try:
            checks = []
            for t in tenants:
                check = store.verify_audit(t)
                checks.append(
                    TenantAuditCheck(
                        tenant_id=t,
                        ok=check.ok,
                        entries=check.entries,
                        first_bad_seq=check.first_bad_seq,
                        problem=check.problem,
                    )
                )
        finally:
            store.close()
    if json_:
        render.emit_json(checks)
    else:
        if not checks:
            render.say("no tenant has an audit log yet")
        for c in checks:
            if c.ok:
                render.say(f"[green]ok[/]  tenant {escape(c.tenant_id)}: {c.entries} entries, one unbroken chain")
            else:
                render.err().print(
                    f"[bold red]BROKEN[/] tenant {escape(c.tenant_id)}: first bad entry #{c.first_bad_seq}: "
                    f"{escape(c.problem or '')} ({c.entries} entries verified before it)",
                    soft_wrap=True,
                )
    if any(not c.ok for c in checks):
        raise typer.Exit(render.EXIT_FAILED)


@audit_app.command("tail")
def audit_tail(
    tenant: TenantOption = None,
    n: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many entries (per tenant).")] = 20,
    json_: JsonFlag = False,
) -> None:
    """The most recent entries, oldest first: who did what, when."""
    with db_errors():
        store, tenants = _tenants(tenant, auditor=True)
        try:
            entries = [e for t in tenants for e in store.audit_entries(t, limit=n)]
        finally:
            store.close()
    if json_:
        render.emit_json(entries)
        return
    if not entries:
        render.say("no audit entry" + (f" for tenant {escape(tenant)}" if tenant else ""))
        return
    table = Table()
    render.id_column(table, "tenant #seq")
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("actor")
    table.add_column("action", no_wrap=True)
    render.id_column(table, "subject")
    table.add_column("detail")
    for e in entries:
        detail = json.dumps(e.detail, sort_keys=True, ensure_ascii=False)
        table.add_row(
            f"{escape(e.tenant_id)} #{e.seq}",
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            escape(e.actor),
            escape(e.action),
            escape(e.subject),
            escape(detail if len(detail) <= 80 else detail[:79] + "…"),
        )
    render.out().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(budget_app, name="budget")
    app.add_typer(audit_app, name="audit")
