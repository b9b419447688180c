"""`chimera stop agent|tenant|fleet` and `chimera resume agent|tenant|fleet`: the emergency stop of a whole
scope, and allowing it to run again (administrators only). See specs/access.md and specs/cli.md."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from chimera.cli import render
from schemas.events import StopScope

stop_app = typer.Typer(help="Emergency stop of an agent, a tenant or the whole fleet.", no_args_is_help=True)
resume_app = typer.Typer(help="Allow a stopped agent, tenant or fleet to run again (administrators).")

Reason = Annotated[str, typer.Option("--reason", help="Why: recorded in the audit chain and sent with the alert.")]
AgentRef = Annotated[str, typer.Argument(metavar="TENANT/AGENT", help="The agent, e.g. acme-agency/mira-okafor.")]
TenantRef = Annotated[str, typer.Argument(metavar="TENANT", help="The tenant id.")]


def register(app: typer.Typer) -> None:
    app.add_typer(stop_app, name="stop")
    app.add_typer(resume_app, name="resume")


@stop_app.command("agent")
def stop_agent(agent: AgentRef, reason: Reason) -> None:
    """Stop every campaign and task of one agent: nothing more is published or paid."""
    tenant, agent_id = _agent(agent)
    _run("agent", tenant, agent_id, reason, lift=False)


@stop_app.command("tenant")
def stop_tenant(tenant: TenantRef, reason: Reason) -> None:
    """Stop every campaign and task of one tenant."""
    _run("tenant", tenant, None, reason, lift=False)


@stop_app.command("fleet")
def stop_fleet(reason: Reason) -> None:
    """Stop every campaign and task of every tenant (the fleet's administrators only)."""
    _run("fleet", None, None, reason, lift=False)


@resume_app.command("agent")
def resume_agent(agent: AgentRef, reason: Reason) -> None:
    tenant, agent_id = _agent(agent)
    _run("agent", tenant, agent_id, reason, lift=True)


@resume_app.command("tenant")
def resume_tenant(tenant: TenantRef, reason: Reason) -> None:
    _run("tenant", tenant, None, reason, lift=True)


@resume_app.command("fleet")
def resume_fleet(reason: Reason) -> None:
    _run("fleet", None, None, reason, lift=True)


def _agent(ref: str) -> tuple[str, str]:
    tenant, slash, agent = ref.partition("/")
    if not slash or not tenant or not agent:
        render.fail(f"'{ref}' is not TENANT/AGENT", render.EXIT_USAGE)
    return tenant, agent


def _run(scope: StopScope, tenant: str | None, agent: str | None, reason: str, *, lift: bool) -> None:
    from chimera.control.scopes import scope_request, stop_scope

    with render.reported_errors():
        request = scope_request(scope, tenant, agent, reason, lift=lift)
    result = render.run(lambda client, config: stop_scope(client, config, request))
    if not result.accepted:
        render.fail(f"refused: {result.message}")
    render.say(f"[green]accepted:[/] {escape(result.message)} (by {escape(result.actor)})")
    for workflow_id in result.campaigns:
        render.say(f"  stopped campaign {escape(workflow_id)}")
