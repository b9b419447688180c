"""The demo's money act (specs/payments.md): Mira's agent pays, through PaymentWorkflow and the CFO Judge,

1. an x402-priced premium news service in the sandbox, each cycle before planning (HTTP 402, within policy),
2. Jonas's agent a collaboration fee (agent to agent, credited to his campaign as revenue),
3. Jonas's agent a larger fee, which the CFO Judge escalates and a finance approver approves.

Everything runs on the sandbox chain: a local anvil started here, TestUSDC deployed on it by the wallet server,
the agents' keys in its encrypted keystore. Without anvil (`make chain`) the act is skipped, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from rich.console import Console
from rich.markup import escape
from web3 import Web3

from chimera.access.credentials import UserCredentials, load_credentials
from chimera.access.users import add_user, rotate
from chimera.chain.anvil import Anvil, AnvilError, AnvilNotInstalledError, find_anvil
from chimera.chain.token import TestUSDC
from chimera.cli.runtime import Runtime
from chimera.control.payments import decide_payment, request_payment
from chimera.db.users import UserExists
from schemas.campaign import CampaignSpec
from schemas.payment import Counterparty, PaymentInput, PaymentOutcome, display_usdc
from workflows.payment import PaymentWorkflow

RPC_URL_ENV = "CHIMERA_WALLET_RPC_URL"
PREMIUM_PRICE_UNITS = 50_000  # 0.05 USDC per premium headline batch
FUNDING_USDC = 20


@contextlib.contextmanager
def sandbox_chain(console: Console) -> Iterator[Anvil | None]:
    """A local anvil for the demo's wallets, its URL in the environment the wallet server inherits; None (and
    why) when anvil is not installed."""
    try:
        binary = find_anvil()
    except AnvilNotInstalledError as exc:
        console.print(f"[yellow]payments skipped:[/] {exc}")
        yield None
        return
    try:
        node = Anvil(binary=binary)
        node.start()
    except AnvilError as exc:
        console.print(f"[yellow]payments skipped:[/] anvil did not start: {exc}")
        yield None
        return
    before = os.environ.get(RPC_URL_ENV)
    os.environ[RPC_URL_ENV] = node.url
    try:
        yield node
    finally:
        if before is None:
            os.environ.pop(RPC_URL_ENV, None)
        else:
            os.environ[RPC_URL_ENV] = before
        node.stop()


@dataclass
class Treasury:
    """The money act's parts: the premium news service, its payee, and the partner campaign."""

    rt: Runtime
    console: Console
    premium: Any  # mcp_servers.news.premium.PremiumNews
    publisher: str
    partner: CampaignSpec

    @classmethod
    async def open(
        cls, rt: Runtime, node: Anvil, console: Console, spec: CampaignSpec, partner: CampaignSpec
    ) -> Treasury:
        """Deploy the token (the wallet server's first balance call does), fund the paying agent, start the
        premium news service, and register the partner campaign (its agent's wallet is made on first use)."""
        from mcp_servers.news.premium import start_premium_news

        await asyncio.to_thread(rt.deps.store.ensure_campaign, partner)
        payer = await _wallet(rt, spec, "balance", {})
        token = TestUSDC.load_or_deploy(
            Web3(Web3.HTTPProvider(node.url)), rt.settings.sandbox_dir / "wallet" / "token.json"
        )
        await asyncio.to_thread(token.mint, str(payer["address"]), FUNDING_USDC * 10**6)
        await asyncio.to_thread(token.fund_gas, str(payer["address"]), 10**18)
        publisher = Account.create().address  # the premium news publisher's payee address
        # The x402 facilitator submits the signed authorizations and pays their gas: a key made for this run.
        facilitator = Account.create()
        await asyncio.to_thread(token.fund_gas, facilitator.address, 10**18)
        premium = start_premium_news(
            node.url,
            token.address,
            publisher,
            facilitator.key.hex(),
            price=PREMIUM_PRICE_UNITS,
            sandbox_dir=rt.settings.sandbox_dir,
        )
        console.print(
            f"[bold]wallets[/] · sandbox chain {node.url} · TestUSDC {token.address}\n"
            f"  {spec.persona.name}'s agent {payer['address']}: funded {FUNDING_USDC} USDC\n"
            f"  premium news (x402, {display_usdc(PREMIUM_PRICE_UNITS)} a request): {premium.url}/premium/headlines"
        )
        return cls(rt, console, premium, publisher, partner)

    def policy_for(self, spec: CampaignSpec) -> CampaignSpec:
        """The campaign buys the sandbox premium news each cycle: its news watch names the service, and its payments
        policy allowlists it, pinned to the publisher's address (both are this run's)."""
        service = Counterparty(name="premium-news", url_prefix=f"{self.premium.url}/premium/", address=self.publisher)
        payments = spec.payments.model_copy(update={"counterparties": [*spec.payments.counterparties, service]})
        news = spec.news.model_copy(update={"premium_url": self.premium.headlines_url()})
        return spec.model_copy(update={"payments": payments, "news": news})

    async def run(self, spec: CampaignSpec, stamp: str) -> None:
        self.console.rule("payments")
        requester = load_credentials(self.rt.settings)
        approver = await asyncio.to_thread(self._finance_approver, spec.tenant_id, requester)
        jonas = self.partner.persona.id
        store = self.rt.deps.store
        bought = await asyncio.to_thread(store.list_payments, spec.tenant_id, spec.campaign_id)
        for line in sorted((p for p in bought if p.kind == "x402"), key=lambda p: p.payment_id):
            self.console.print(
                f"  [bold]{line.payment_id}[/] x402 → premium news (the campaign's own purchase, before planning): "
                f"{render_status(line.status)} {display_usdc(line.amount_units)} · approved by {line.decided_by}"
                f" · tx {line.tx_hash or '-'}"
            )
        await self._pay(
            spec,
            f"collab-{stamp}",
            requester,
            kind="agent",
            to=jonas,
            amount_units=500_000,
            purpose="collaboration fee: Jonas's mending tips for the thrift-flip challenge",
        )
        await self._pay(
            spec,
            f"livestream-{stamp}",
            requester,
            kind="agent",
            to=jonas,
            amount_units=2_500_000,
            purpose="co-hosted thrift-flip challenge live stream with Jonas's repair café",
            approver=approver,
        )
        money = await asyncio.to_thread(self.rt.deps.store.campaign_money, spec.tenant_id, self.partner.campaign_id)
        paid = await asyncio.to_thread(self.rt.deps.store.campaign_money, spec.tenant_id, spec.campaign_id)
        self.console.print(
            f"  {spec.campaign_id}: paid {display_usdc(paid.spent_units)} · "
            f"{self.partner.campaign_id}: revenue {display_usdc(money.received_units)} "
            f"(`chimera campaign status` shows both; `chimera payment list --tenant {spec.tenant_id}`)"
        )

    async def _pay(
        self,
        spec: CampaignSpec,
        payment_id: str,
        requester: UserCredentials,
        *,
        approver: UserCredentials | None = None,
        **fields: Any,
    ) -> PaymentOutcome:
        rt = self.rt
        inp = PaymentInput(
            payment_id=payment_id,
            tenant_id=spec.tenant_id,
            campaign_id=spec.campaign_id,
            agent_id=spec.persona.id,
            requested_by=requester.user,
            poll_seconds=1,
            runtime=rt.config.runtime_options(),
            **fields,
        )
        handle, _ = await request_payment(rt.client, inp, rt.config.task_queues.planner)
        self.console.print(f"  [bold]{payment_id}[/] {inp.kind} → {escape(inp.to)}: {escape(inp.purpose)}")
        while approver is not None:
            view = await handle.query(PaymentWorkflow.payment)
            if view.status == "pending_approval" and view.verdict is not None:
                self.console.print(
                    f"    [yellow]escalated[/] by the CFO Judge: {escape('; '.join(view.verdict.reasons))}"
                )
                ack = await decide_payment(
                    rt.client, spec.tenant_id, payment_id, "approve", "budgeted co-hosting fee", credentials=approver
                )
                self.console.print(f"    finance approver {approver.user}: {escape(ack.message)}")
                break
            if view.status not in ("requested", "reserved"):
                break
            await asyncio.sleep(0.3)
        outcome = await handle.result()
        style = "green" if outcome.status == "settled" else "red"
        amount = display_usdc(outcome.amount_units) if outcome.amount_units else ""
        by = f" · approved by {outcome.approved_by}" if outcome.approved_by else ""
        self.console.print(f"    [{style}]{outcome.status}[/] {amount}{by} · tx {outcome.tx_hash or '-'}")
        if outcome.status != "settled":
            self.console.print(f"    {escape(outcome.reason)}")
        return outcome

    def _finance_approver(self, tenant_id: str, admin: UserCredentials) -> UserCredentials:
        """The demo's finance approver (a person in real life; not the requester, who may not approve)."""
        name = "demo-finance"
        store = self.rt.deps.store
        try:
            return add_user(store, name, tenant_id, "finance_approver", by=admin)
        except UserExists:
            return rotate(store, name, by=admin)

    def close(self) -> None:
        self.premium.stop()


async def _wallet(rt: Runtime, spec: CampaignSpec, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    from chimera.mcp.host import CallContext

    context = CallContext(tenant_id=spec.tenant_id, actor="demo", agent_id=spec.persona.id)
    full = {"tenant_id": spec.tenant_id, "agent_id": spec.persona.id, **args}
    return (await rt.deps.mcp.call_tool("wallet", tool, full, context)).data


def render_status(status: str) -> str:
    return f"[{'green' if status == 'settled' else 'red'}]{status}[/]"


def partner_file(campaign: Path) -> Path:
    return campaign.parent / "partner-campaign.yaml"
