"""`chimera mcp`: the allowlisted MCP servers, their approval, and a direct tool call (see specs/cli.md).

No Temporal needed: these talk to the servers through the same McpHost the workers use, so a listing
quarantines a server whose definitions changed, and every call is audited (on the `_platform` chain, actor
`operator` unless --actor says otherwise).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from chimera.cli import render
from chimera.cli.ops import db_errors
from chimera.cli.render import JsonFlag
from chimera.settings import Settings
from schemas.access import FLEET_SCOPE, Action

if TYPE_CHECKING:  # the MCP SDK and the store load only when a command runs (CLI start-up stays fast)
    from chimera.db import StateStore
    from chimera.mcp import McpHost, ServerStatus

T = TypeVar("T")

app = typer.Typer(help="MCP servers: list, approve, call a tool.", no_args_is_help=True)


@contextmanager
def _host() -> Iterator[tuple[McpHost, StateStore]]:
    from chimera.db import StateStore
    from chimera.mcp import McpHost

    settings = Settings()
    settings.ensure_dirs()
    store = StateStore.from_settings(settings)
    try:
        yield McpHost.from_settings(settings, store), store
    finally:
        store.close()


def _run(host: McpHost, work: Coroutine[Any, Any, T]) -> T:
    """Run one command's work, then close the host's pooled sessions (their servers exit)."""

    async def closing() -> T:
        try:
            return await work
        finally:
            await host.aclose()

    return asyncio.run(closing())


def _verified(store: StateStore, action: Action, change: str, tenant_id: str = FLEET_SCOPE) -> str:
    """The signed-in user, if they hold `action` here; else the command fails (and the refusal is audited)."""
    from chimera.access.credentials import NotSignedIn, load_credentials
    from chimera.access.users import NotAllowed, check_authority

    try:
        creds = load_credentials(Settings())
        return check_authority(store, creds, action, tenant_id, change).actor
    except NotSignedIn as exc:
        render.fail(str(exc), render.EXIT_USAGE)
    except NotAllowed as exc:
        render.fail(f"refused: {exc}")


def _state(state: str) -> str:
    style = {"approved": "green", "quarantined": "bold red", "unapproved": "yellow", "unavailable": "red"}[state]
    return f"[{style}]{state}[/{style}]"


async def _statuses(host: McpHost) -> list[ServerStatus]:
    return [await host.status(name) for name in host.server_names]


@app.command("list")
def list_servers(json_: JsonFlag = False) -> None:
    """Every allowlisted server: transport, state (approved, quarantined, unapproved, unavailable), tools."""
    with db_errors(), _host() as (host, _store):
        statuses = _run(host, _statuses(host))
    if json_:
        render.emit_json(statuses)
        return
    table = Table(box=None, pad_edge=False)
    for header in ("SERVER", "TRANSPORT", "STATE", "TOOLS"):
        table.add_column(header)
    for s in statuses:
        detail = ", ".join(s.tools) if s.tools else escape(s.error or "")
        table.add_row(s.name, s.transport, _state(s.state), escape(detail))
    render.out().print(table)
    for s in statuses:
        if s.state == "quarantined":
            diff = "; ".join(f"{k}: {', '.join(v)}" for k, v in s.changes.items() if v)
            render.say(
                f"{s.name}: changed since approval ({escape(diff)}); review, then `chimera mcp approve {s.name}`"
            )
        elif s.state == "unapproved":
            render.say(f"{s.name}: not approved yet; review its tools, then `chimera mcp approve {s.name}`")


@app.command("approve")
def approve(
    name: Annotated[str, typer.Argument(help="The server, as named in the allowlist.")],
) -> None:
    """Pin the tool definitions NAME offers now; lifts a quarantine. Refused if a tool shadows another server's.
    A fleet administrator's (signed with your credentials; the audit records you)."""
    from chimera.mcp import McpError

    with db_errors(), _host() as (host, store):
        actor = _verified(store, "mcp.approve", f"approve {name}")
        try:
            pin = _run(host, host.approve(name, actor))
        except McpError as exc:
            render.fail(str(exc))
    tools = ", ".join(sorted(str(t.get("name")) for t in pin.pinned_tools))
    render.say(f"approved {name}: {len(pin.pinned_tools)} tools pinned (sha256 {pin.pinned_hash[:12]}…): {tools}")


def _parse_args(pairs: list[str]) -> dict[str, Any]:
    """key=value pairs; a value that parses as JSON (5, true, null, [..], {..}) is taken as that, else a string."""
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            render.fail(f"--arg {pair!r}: expected key=value", render.EXIT_USAGE)
        try:
            args[key] = json.loads(raw)
        except ValueError:
            args[key] = raw
    return args


@app.command("call")
def call(
    name: Annotated[str, typer.Argument(help="The server.")],
    tool: Annotated[str, typer.Argument(help="The tool.")],
    arg: Annotated[list[str] | None, typer.Option("--arg", help="An argument, key=value (repeatable).")] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Audit the call on this tenant's chain (default: _platform).")
    ] = None,
    allow_publish: Annotated[
        bool, typer.Option("--allow-publish", help="Allow a tool that publishes (it bypasses the Judge).")
    ] = False,
) -> None:
    """Call TOOL on server NAME, checked and audited like a worker's call; prints the JSON result. An
    administrator's (of --tenant, or of the fleet)."""
    from chimera.mcp import CallContext, McpError

    arguments = _parse_args(arg or [])
    with db_errors(), _host() as (host, store):
        try:
            config = host.config(name)
        except McpError as exc:
            render.fail(str(exc))
        if tool in config.publish_tools and not allow_publish:
            render.fail(f"{name}.{tool} publishes without the Judge; pass --allow-publish to do it anyway")
        actor = _verified(store, "mcp.call", f"call {name}.{tool}", tenant or FLEET_SCOPE)
        context = CallContext(actor=actor, **({"tenant_id": tenant} if tenant else {}))
        try:
            result = _run(host, host.call_tool(name, tool, arguments, context))
        except McpError as exc:
            render.fail(str(exc))
    print(json.dumps(result.data, indent=2, ensure_ascii=False))
    if result.ref:
        render.err().print(f"({result.size_bytes} bytes; kept outside workflow history as {result.ref})")


def register(app_: typer.Typer) -> None:
    app_.add_typer(app, name="mcp")
