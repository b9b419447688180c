"""`chimera payment ...`: ask an agent to pay, follow a payment, decide escalated ones, set the daily caps.

A request starts one PaymentWorkflow (the payment id is its idempotency key); the CFO Judge decides, and a
payment it escalates waits for `chimera payment approve|reject` by a finance approver. specs/payments.md.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from temporalio.client import Client

from chimera.cli import render
from chimera.cli.ops import db_errors
from chimera.cli.render import JsonFlag
from chimera.settings import Settings
from chimera.temporal_config import TemporalConfig
from schemas.payment import PaymentInput, PaymentKind, PaymentOutcome, PaymentView, display_usdc, usdc_units

app = typer.Typer(help="Agents' payments: request, follow, approve or reject, daily caps.", no_args_is_help=True)

TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant.", show_default=False)]
PaymentArg = Annotated[str, typer.Argument(metavar="PAYMENT", help="The payment id.", show_default=False)]


def kind_of(to: str) -> tuple[PaymentKind, str]:
    """`agent:<id>` pays another agent, an http(s) URL is an x402 resource, anything else an address."""
    if to.startswith("agent:"):
        return "agent", to.removeprefix("agent:")
    if to.startswith(("http://", "https://")):
        return "x402", to
    return "address", to


@app.command("request")
def request(
    tenant: TenantOption,
    campaign: Annotated[str, typer.Option("--campaign", help="The campaign it is for (its agent pays).")],
    to: Annotated[str, typer.Option("--to", help="An address, agent:<id>, or an x402 resource URL.")],
    purpose: Annotated[str, typer.Option("--purpose", help="Why: it must serve one of the campaign's goals.")],
    amount: Annotated[
        str | None, typer.Option("--amount", metavar="USDC", help="How much (x402: the most to pay; default: quoted).")
    ] = None,
    payment_id: Annotated[str | None, typer.Option("--id", help="The payment id (default: a new one).")] = None,
    payee_campaign: Annotated[
        str | None, typer.Option("--payee-campaign", help="agent:<id>: the payee campaign credited.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for the outcome (an escalation waits for a human).")
    ] = False,
) -> None:
    """Ask the campaign's agent to pay. Signed in as a campaign manager; the CFO Judge decides the rest."""
    from chimera.access.credentials import NotSignedIn, load_credentials
    from chimera.access.users import NotAllowed, check_authority
    from chimera.cli.ops import _store
    from chimera.control.payments import request_payment

    kind, target = kind_of(to.strip())
    try:
        units = usdc_units(amount) if amount is not None else None
    except ValueError as exc:
        render.fail(f"--amount: {exc}", render.EXIT_USAGE)
    with db_errors():
        store = _store()
        try:
            record = store.get_campaign(tenant, campaign)
            if record is None:
                render.fail(f"unknown campaign {tenant}/{campaign}")
            change = f"payment of {amount or 'the quoted price'} USDC to {to} for {campaign}"
            who = check_authority(store, load_credentials(Settings()), "payment.request", tenant, change).actor
        except NotSignedIn as exc:
            render.fail(str(exc), render.EXIT_USAGE)
        except NotAllowed as exc:
            render.fail(f"refused: {exc}")
        finally:
            store.close()
    config = render.load_config()
    try:
        inp = PaymentInput(
            payment_id=payment_id or f"pay-{uuid.uuid4().hex[:12]}",
            tenant_id=tenant,
            campaign_id=campaign,
            agent_id=record.agent_id,
            kind=kind,
            to=target,
            amount_units=units,
            purpose=purpose,
            requested_by=who,
            payee_campaign_id=payee_campaign,
            poll_seconds=Settings().payments.confirm_poll_seconds,
            runtime=config.runtime_options(),
        )
    except ValueError as exc:
        render.fail(str(exc), render.EXIT_USAGE)

    async def go(client: Client, _: TemporalConfig) -> PaymentOutcome | None:
        handle, started = await request_payment(client, inp, config.task_queues.planner)
        render.say(
            f"payment {inp.payment_id}: {'requested' if started else 'requested before (one id is one payment)'}"
            f" · `chimera payment show {inp.payment_id} --tenant {tenant}`"
        )
        return await handle.result() if wait else None

    outcome = render.run(go, config)
    if outcome is not None:
        _print(outcome)


@app.command("show")
def show(payment_id: PaymentArg, tenant: TenantOption, json_: JsonFlag = False) -> None:
    """A payment's status: the CFO Judge's reasons, the deadline of an escalation, the transaction."""
    from chimera.control.payments import show_payment

    view = render.run(lambda client, _: show_payment(client, tenant, payment_id))
    if json_:
        render.emit_json(view)
    else:
        _print(view)


def _decide(action: str, payment_id: str, tenant: str, reason: str) -> None:
    from chimera.control.payments import decide_payment

    ack = render.run(lambda client, _: decide_payment(client, tenant, payment_id, action, reason))
    render.report_ack(ack)


@app.command("approve")
def approve(
    payment_id: PaymentArg,
    tenant: TenantOption,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
) -> None:
    """Approve an escalated payment (a finance approver, not its requester): it is then signed and sent."""
    _decide("approve", payment_id, tenant, reason)


@app.command("reject")
def reject(
    payment_id: PaymentArg,
    tenant: TenantOption,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
) -> None:
    """Reject an escalated payment: nothing is signed, its reservation is released."""
    _decide("reject", payment_id, tenant, reason)


@app.command("list")
def list_(
    tenant: TenantOption,
    campaign: Annotated[str | None, typer.Option("--campaign", help="Only this campaign's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    json_: JsonFlag = False,
) -> None:
    """The payment ledger, newest first: payments out (and their status) and payments in from other agents."""
    from chimera.cli.ops import _store

    with db_errors():
        store = _store()
        try:
            lines = store.list_payments(tenant, campaign, limit)
        finally:
            store.close()
    if json_:
        render.emit_data(
            [
                {**line.__dict__, "day": line.day.isoformat(), "updated_at": line.updated_at.isoformat()}
                for line in lines
            ]
        )
        return
    if not lines:
        render.say("no payment yet")
        return
    table = Table(box=None, pad_edge=False)
    for header in ("PAYMENT", "DIR", "CAMPAIGN", "AGENT", "AMOUNT", "TO", "STATUS", "REASON"):
        table.add_column(header, overflow="fold")
    for line in lines:
        table.add_row(
            escape(line.payment_id),
            line.direction,
            escape(line.campaign_id),
            escape(line.agent_id),
            display_usdc(line.amount_units),
            escape(line.counterparty),
            render.styled(line.status),
            escape(render.first_line(line.reason)),
        )
    render.out().print(table)


@app.command("limit")
def limit(
    usdc: Annotated[str, typer.Argument(metavar="USDC", help="The daily cap in USDC (0 blocks paying).")],
    tenant: TenantOption,
    agent: Annotated[str | None, typer.Option("--agent", help="This agent's cap, not the tenant's.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the cap (the default applies again).")] = False,
) -> None:
    """Set the daily payment cap of a tenant or one of its agents (an administrator's; audited)."""
    from chimera.access.credentials import NotSignedIn, load_credentials
    from chimera.access.users import NotAllowed, check_authority
    from chimera.cli.ops import _store

    try:
        units = usdc_units(usdc)
    except ValueError as exc:
        render.fail(str(exc), render.EXIT_USAGE)
    scope, scope_id = ("agent", agent) if agent else ("tenant", tenant)
    with db_errors():
        store = _store()
        try:
            change = f"{scope} {scope_id} payment cap {'cleared' if clear else usdc}"
            who = check_authority(store, load_credentials(Settings()), "payment.limit", tenant, change).actor
            store.set_payment_limit(tenant, scope, scope_id, None if clear else units, who)
        except NotSignedIn as exc:
            render.fail(str(exc), render.EXIT_USAGE)
        except NotAllowed as exc:
            render.fail(f"refused: {exc}")
        finally:
            store.close()
    render.say(f"{scope} {scope_id}: daily payment cap {'cleared' if clear else display_usdc(units)}")


def _print(view: PaymentView | PaymentOutcome) -> None:
    amount = display_usdc(view.amount_units) if view.amount_units is not None else "(not quoted yet)"
    lines = [f"[bold]payment {escape(view.payment_id)}[/] · {render.styled(view.status)} · {amount}"]
    if isinstance(view, PaymentView):
        lines.append(f"{view.kind} to {escape(view.to)} · campaign {escape(view.campaign_id)} · agent {view.agent_id}")
        lines.append(f"Purpose: {escape(view.purpose)}")
        if view.verdict is not None:
            lines.append(f"CFO Judge: {view.verdict.decision}")
            lines.extend(f"  - {escape(r)}" for r in view.verdict.reasons)
        if view.status == "pending_approval":
            lines.append(f"Waiting for a finance approver until {render.until(view.deadline)}")
    if view.to_address:
        lines.append(f"Payee address: {view.to_address}")
    if view.tx_hash:
        lines.append(f"Transaction: {view.tx_hash}")
    if view.reason:
        lines.append(f"Reason: {escape(view.reason)}")
    render.out().print("\n".join(lines))
