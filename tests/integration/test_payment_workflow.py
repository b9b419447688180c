"""PaymentWorkflow end to end on real parts: the time-skipping Temporal test server, the real payment and access
activities, the real wallet MCP server signing on a real anvil chain, and the SQLite ledger.

Covers the CFO Judge's three answers, the finance approver's signal (roles, the requester, the deadline), an
emergency stop that blocks signing, a send whose worker died after the broadcast (one transfer), insufficient
funds, agent-to-agent payments credited to the payee's campaign, and no key material in any history or log.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from web3 import Web3

from activities.access import AccessActivities
from activities.payments import PaymentActivities
from activities.registry import entry_of, implements
from chimera.access.credentials import UserCredentials
from chimera.access.signing import new_key_id, new_private_key, public_key_of
from chimera.chain.anvil import Anvil
from chimera.chain.keystore import Keystore, keystore_password
from chimera.chain.token import TestUSDC
from chimera.db import StateStore
from chimera.db.users import ScopeStop
from chimera.mcp.host import McpHost
from chimera.secrets import secret_source
from chimera.settings import PaymentSettings, Settings, default_mcp_servers
from chimera.temporal_config import TemporalConfig, ensure_search_attributes
from schemas.access import Role
from schemas.activity_table import Activities
from schemas.options import RuntimeOptions, TaskQueues
from schemas.payment import (
    Counterparty,
    PaymentDecision,
    PaymentInput,
    PaymentOutcome,
    PaymentPolicy,
    SendRequest,
    WalletSent,
    payment_workflow_id,
)
from schemas.review import Ack, AckQuery
from tests.helpers.chain import running_anvil
from tests.helpers.mcp_hosts import approved_host
from tests.helpers.polling import eventually
from tests.unit.test_store import make_spec
from workflows.payment import PaymentWorkflow

USDC = 10**6
TENANT = "acme"
NEWSWIRE = "0x000000000000000000000000000000000000bEEF"
STRANGER = "0x000000000000000000000000000000000000dEaD"
POLICY = PaymentPolicy(
    per_payment_usdc=5,
    review_above_usdc=1,
    counterparties=[Counterparty(name="newswire", address=NEWSWIRE)],
    agents=["bea"],
    approval_deadline_seconds=3600,
)
GOALS = ["Grow awareness of the spring launch", "Partner with creators for launch coverage"]


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    yield from running_anvil()


@dataclass
class World:
    client: Client
    store: StateStore
    host: McpHost
    sandbox: Path
    node: Anvil
    queue: str

    @property
    def token(self) -> TestUSDC:
        return TestUSDC.load_or_deploy(Web3(Web3.HTTPProvider(self.node.url)), self.sandbox / "wallet" / "token.json")

    def keystore(self) -> Keystore:
        wallet = self.sandbox / "wallet"
        return Keystore(wallet / "keys", keystore_password(secret_source(Settings()), wallet), scrypt_n=16384)

    async def address(self, agent: str) -> str:
        found = await self.host.read_resource("wallet", f"wallet://{TENANT}/{agent}/address")
        return str(found["address"])

    async def fund(self, agent: str, usdc: int) -> str:
        address = await self.address(agent)
        assert self.token.mint(address, usdc * USDC).succeeded
        assert self.token.fund_gas(address, 10**18).succeeded
        return address

    def request(self, payment_id: str, **fields: Any) -> PaymentInput:
        base: dict[str, Any] = {
            "payment_id": payment_id,
            "tenant_id": TENANT,
            "campaign_id": "launch",
            "agent_id": "ava",
            "kind": "address",
            "to": NEWSWIRE,
            "amount_units": 500_000,
            "purpose": "newswire coverage of the spring launch",
            "requested_by": "maya",
            "poll_seconds": 1,
            "runtime": RuntimeOptions(task_queues=TaskQueues(planner=self.queue, worker=self.queue, judge=self.queue)),
        }
        return PaymentInput(**(base | fields))

    async def start(self, inp: PaymentInput) -> WorkflowHandle[PaymentWorkflow, PaymentOutcome]:
        return await self.client.start_workflow(
            PaymentWorkflow.run, inp, id=payment_workflow_id(inp.tenant_id, inp.payment_id), task_queue=self.queue
        )

    def enrol(self, name: str, role: Role, tenant: str = TENANT) -> UserCredentials:
        key_id, private = new_key_id(), new_private_key()
        self.store.add_user(name, tenant, role, key_id, public_key_of(private), "test")
        return UserCredentials.model_validate(
            {"user": name, "tenant_id": tenant, "role": role, "key_id": key_id, "private_key": private}
        )


class DiesAfterBroadcast(PaymentActivities):
    """The first send reaches the chain, then its worker 'dies' before the activity completes (it raises, so the
    server never hears the result): the retry must find the payment, not pay again."""

    died = 0

    @implements(Activities.send_payment)
    async def send_payment(self, req: SendRequest) -> WalletSent:
        sent = await super().send_payment(req)
        if activity.info().attempt == 1:
            DiesAfterBroadcast.died += 1
            raise RuntimeError("worker killed after the broadcast")
        return sent


@pytest.fixture
async def world(node: Anvil, tmp_path: Path, test_server_path: str) -> AsyncIterator[World]:
    store = StateStore(f"sqlite:///{tmp_path / 'chimera.db'}")
    store.ensure_campaign(make_spec(campaign="launch", agent="ava", goals=GOALS, payments=POLICY))
    store.ensure_campaign(make_spec(campaign="collab", agent="bea", goals=["Collaborate on launch content"]))
    wallet = default_mcp_servers()["wallet"].model_copy(
        update={"env": {"CHIMERA_WALLET_RPC_URL": node.url, "CHIMERA_WALLET_SCRYPT_N": "16384"}}
    )
    sandbox = tmp_path / "sandbox"
    host = await approved_host(sandbox, {"wallet": wallet}, store=store)
    queue = f"payments-{uuid.uuid4().hex[:8]}"
    settings = PaymentSettings(agent_daily_usdc=20, tenant_daily_usdc=50)
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path, data_converter=pydantic_data_converter
    ) as env:
        await ensure_search_attributes(env.client, TemporalConfig())
        payments = DiesAfterBroadcast(store, host, settings)
        instances = [payments, AccessActivities(store)]
        acts = [getattr(i, a) for i in instances for a in dir(type(i)) if entry_of(getattr(i, a)) is not None]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as executor:
            async with Worker(
                env.client, task_queue=queue, workflows=[PaymentWorkflow], activities=acts, activity_executor=executor
            ):
                yield World(env.client, store, host, sandbox, node, queue)
    await host.aclose()
    store.close()


async def ack(handle: WorkflowHandle[Any, Any], request_id: str) -> Ack:
    async def answered() -> Ack | None:
        result: Ack | None = await handle.query(PaymentWorkflow.ack, AckQuery(request_id=request_id))
        return result

    return await eventually(answered, f"an answer to {request_id}")


async def pending(handle: WorkflowHandle[Any, Any]) -> None:
    async def waiting() -> bool:
        return (await handle.query(PaymentWorkflow.payment)).status == "pending_approval"

    await eventually(waiting, "the payment waits for a finance approver")


def decision(creds: UserCredentials, handle: WorkflowHandle[Any, Any], action: str, request_id: str) -> PaymentDecision:
    raw = PaymentDecision(request_id=request_id, action=action, approver=creds.user, reason="checked the invoice")
    return creds.sign(raw, raw.access_action, handle.id)


async def test_a_payment_within_policy_is_approved_sent_confirmed_and_settled(world: World) -> None:
    payer = await world.fund("ava", 10)
    before = world.token.balance_of(NEWSWIRE)
    handle = await world.start(world.request("within-1"))
    outcome = await handle.result()
    assert outcome.status == "settled" and outcome.approved_by == "cfo", outcome.reason
    assert world.token.balance_of(NEWSWIRE) - before == 500_000
    assert world.token.balance_of(payer) == 10 * USDC - 500_000
    line = world.store.payment(TENANT, "within-1")
    assert line is not None and line.status == "settled" and line.tx_hash == outcome.tx_hash
    trail = [e.action for e in world.store.audit_entries(TENANT) if e.subject == "within-1"]
    assert {"payment_reserved", "payment_approved", "payment_sent", "payment_settled"} <= set(trail)
    assert DiesAfterBroadcast.died >= 1  # this send's first attempt 'died' after its broadcast
    assert world.store.campaign_money(TENANT, "launch").spent_units == 500_000


async def test_a_worker_killed_after_the_broadcast_still_makes_exactly_one_transfer(world: World) -> None:
    await world.fund("ava", 10)
    before = world.token.balance_of(NEWSWIRE)
    died = DiesAfterBroadcast.died
    outcome = await (await world.start(world.request("killed-1", amount_units=700_000))).result()
    assert DiesAfterBroadcast.died == died + 1
    assert outcome.status == "settled"
    assert world.token.balance_of(NEWSWIRE) - before == 700_000  # not 1.4 USDC
    listed = await world.host.call_tool(
        "wallet", "list_transactions", {"tenant_id": TENANT, "agent_id": "ava", "limit": 100}
    )
    keys = [t["idempotency_key"] for t in listed.data["transactions"]]
    assert keys.count("payment:killed-1") == 1


async def test_the_cfo_rejects_outside_the_allowlist_over_the_cap_and_off_goal(world: World) -> None:
    await world.fund("ava", 10)
    stranger = await (await world.start(world.request("stranger", to=STRANGER))).result()
    over = await (await world.start(world.request("over-cap", amount_units=6 * USDC))).result()
    off_goal = await (await world.start(world.request("off-goal", purpose="buy a yacht for the weekend"))).result()
    assert stranger.status == "rejected" and "not on the campaign's allowlist" in stranger.reason
    assert over.status == "rejected" and "over the per-payment cap of 5.00 USDC" in over.reason
    assert off_goal.status == "rejected" and "names no campaign goal" in off_goal.reason
    assert world.token.balance_of(STRANGER) == 0
    for pid in ("stranger", "over-cap", "off-goal"):
        line = world.store.payment(TENANT, pid)
        assert line is not None and line.status == "rejected" and line.tx_hash is None


async def test_over_the_threshold_waits_for_a_finance_approver_who_is_not_the_requester(world: World) -> None:
    await world.fund("ava", 10)
    lena = world.enrol("lena", "content_reviewer")
    maya = world.enrol("maya", "finance_approver")  # she requested it
    fran = world.enrol("fran", "finance_approver")
    before = world.token.balance_of(NEWSWIRE)
    handle = await world.start(world.request("big-1", amount_units=3 * USDC))
    await pending(handle)
    assert world.token.balance_of(NEWSWIRE) == before  # nothing signed while it waits
    view = await handle.query(PaymentWorkflow.payment)
    assert view.verdict is not None and "over the review threshold of 1.00 USDC" in view.verdict.reasons[0]

    await handle.signal(PaymentWorkflow.decide, decision(lena, handle, "approve", "by-lena"))
    await handle.signal(PaymentWorkflow.decide, decision(maya, handle, "approve", "by-maya"))
    refused_role, refused_self = await ack(handle, "by-lena"), await ack(handle, "by-maya")
    assert not refused_role.accepted and "finance_approver" in refused_role.message
    assert not refused_self.accepted and "requested this payment" in refused_self.message

    await handle.signal(PaymentWorkflow.decide, decision(fran, handle, "approve", "by-fran"))
    assert (await ack(handle, "by-fran")).accepted
    outcome = await handle.result()
    assert outcome.status == "settled" and outcome.approved_by == "fran"
    assert world.token.balance_of(NEWSWIRE) - before == 3 * USDC
    line = world.store.payment(TENANT, "big-1")
    assert line is not None and line.decided_by == "fran"


async def test_an_escalation_nobody_decides_expires_and_frees_its_reservation(world: World) -> None:
    await world.fund("ava", 10)
    handle = await world.start(world.request("ignored", amount_units=3 * USDC))
    await pending(handle)
    outcome = await handle.result()  # time-skipping runs the hour-long deadline out
    assert outcome.status == "expired" and outcome.tx_hash is None
    line = world.store.payment(TENANT, "ignored")
    assert line is not None and line.status == "expired"


async def test_an_emergency_stop_recorded_while_it_waits_blocks_the_signing(world: World) -> None:
    await world.fund("ava", 10)
    fran = world.enrol("fran", "finance_approver")
    before = world.token.balance_of(NEWSWIRE)
    handle = await world.start(world.request("stopped-1", amount_units=2 * USDC))
    await pending(handle)
    stop = ScopeStop("stop-ava", "agent", TENANT, "ava", "compromised persona", "ops", datetime.now(UTC))
    world.store.record_scope_stop(stop)
    await handle.signal(PaymentWorkflow.decide, decision(fran, handle, "approve", "late-approval"))
    outcome = await handle.result()
    assert outcome.status == "cancelled" and "was not signed" in outcome.reason
    assert world.token.balance_of(NEWSWIRE) == before
    listed = await world.host.call_tool(
        "wallet", "list_transactions", {"tenant_id": TENANT, "agent_id": "ava", "limit": 100}
    )
    assert "payment:stopped-1" not in [t["idempotency_key"] for t in listed.data["transactions"]]
    # A new payment of the stopped agent is refused before anything is reserved.
    refused = await (await world.start(world.request("after-stop"))).result()
    assert refused.status == "refused" and "was stopped" in refused.reason


async def test_insufficient_funds_fail_the_payment_and_release_its_share_of_the_cap(world: World) -> None:
    assert world.token.fund_gas(await world.address("ava"), 10**18).succeeded  # gas, no USDC
    outcome = await (await world.start(world.request("broke-1"))).result()
    assert outcome.status == "failed" and "insufficient_funds" in outcome.reason
    line = world.store.payment(TENANT, "broke-1")
    assert line is not None and line.status == "failed" and line.tx_hash is None
    assert world.store.campaign_money(TENANT, "launch").open_units == 0


async def test_one_agent_pays_another_and_the_payee_campaign_shows_the_revenue(world: World) -> None:
    await world.fund("ava", 10)
    bea = await world.address("bea")
    handle = await world.start(
        world.request("collab-fee", kind="agent", to="bea", purpose="collaboration fee for launch coverage")
    )
    outcome = await handle.result()
    assert outcome.status == "settled", outcome.reason
    assert outcome.to_address == bea and world.token.balance_of(bea) == 500_000
    assert world.store.campaign_money(TENANT, "collab").received_units == 500_000
    assert world.store.campaign_money(TENANT, "launch").spent_units == 500_000
    unknown = await (await world.start(world.request("to-nobody", kind="agent", to="zed"))).result()
    assert unknown.status == "rejected" and "no agent 'zed'" in unknown.reason


async def test_no_key_material_in_histories_ledger_or_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await world.fund("ava", 10)
    fran = world.enrol("fran", "finance_approver")
    handles = [await world.start(world.request("scan-1"))]
    big = await world.start(world.request("scan-2", amount_units=2 * USDC))
    await pending(big)
    await big.signal(PaymentWorkflow.decide, decision(fran, big, "approve", "scan-approve"))
    handles.append(big)
    for h in handles:
        assert (await h.result()).status == "settled"
    keys = world.keystore()
    secret = bytes(keys.unlock(TENANT, "ava")._account.key)  # the test reads the key only to look for it
    assert len(secret) == 32
    histories = [(await h.fetch_history()).to_json() for h in handles]
    files = [
        (world.sandbox.parent / "chimera.db").read_bytes(),
        (world.sandbox / "wallet" / "ledger.sqlite3").read_bytes(),
    ]
    for blob in [h.encode() for h in histories] + files + [caplog.text.encode()]:
        assert secret not in blob  # raw bytes
        assert secret.hex().encode() not in blob.lower()  # hex text, with or without 0x
    assert not re.search(r"private[_ ]?key|ciphertext", "".join(histories), re.IGNORECASE)
