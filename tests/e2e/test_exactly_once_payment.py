"""Exactly one on-chain transfer when a worker dies after the payment was broadcast but before the activity
completed.

The Worker role runs as a real `chimera worker --role worker` process; its wallet server broadcasts the transfer
(anvil mines it) and then hangs (tests/e2e/hanging_wallet.py). The test kills the worker's whole process group
once the payee holds the money, and a second worker takes over. Temporal retries `send_payment` after its
start-to-close timeout; the retry looks the payment up by its idempotency key and settles the first transfer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from web3 import Web3

from chimera.chain.anvil import Anvil
from chimera.chain.token import TestUSDC
from chimera.settings import McpServerConfig, default_mcp_servers
from schemas.activity_table import Role
from schemas.options import ActivityOptions, RetrySpec, RuntimeOptions
from schemas.payment import Counterparty, PaymentInput, PaymentOutcome, PaymentPolicy, payment_workflow_id
from tests.e2e.hanging_wallet import HANG_FILE_ENV
from tests.e2e.worker_processes import kill, split_roles, worker_process
from tests.helpers.chain import running_anvil
from tests.helpers.dev_server import start_dev_server
from tests.helpers.polling import eventually
from tests.unit.test_store import make_spec
from workers.dependencies import Dependencies
from workers.roles import activity_threads, build_workers
from workflows.payment import PaymentWorkflow

PAYEE = "0x000000000000000000000000000000000000bEEF"
pytestmark = pytest.mark.e2e


@pytest.fixture
def node() -> Iterator[Anvil]:
    yield from running_anvil()


def servers(flag: Path, rpc_url: str) -> dict[str, McpServerConfig]:
    """The allowlist: only the wallet, served by its hanging variant (same tools, same bound arguments)."""
    wallet = default_mcp_servers()["wallet"]
    hanging = wallet.model_copy(
        update={
            "args": ["-m", "tests.e2e.hanging_wallet"],
            "env": {HANG_FILE_ENV: str(flag), "CHIMERA_WALLET_RPC_URL": rpc_url, "CHIMERA_WALLET_SCRYPT_N": "16384"},
        }
    )
    return {"wallet": hanging}


async def test_killed_worker_after_the_broadcast_still_pays_once(
    dev_server_path: str, tmp_path: Path, node: Anvil
) -> None:
    flag = tmp_path / "hang"
    flag.touch()
    env_server: WorkflowEnvironment = await start_dev_server(dev_server_path)
    allowlist = servers(flag, node.url)
    settings, child_env = split_roles(env_server, tmp_path, allowlist)
    deps = Dependencies.build(settings)
    policy = PaymentPolicy(counterparties=[Counterparty(name="newswire", address=PAYEE)])
    spec = make_spec(campaign="launch", agent="ava", goals=["Grow the spring launch"], payments=policy)
    deps.store.ensure_campaign(spec)
    await deps.mcp.approve("wallet", actor="test")
    payer = (await deps.mcp.read_resource("wallet", f"wallet://{spec.tenant_id}/ava/address"))["address"]
    token = TestUSDC.load_or_deploy(Web3(Web3.HTTPProvider(node.url)), settings.sandbox_dir / "wallet" / "token.json")
    assert token.mint(payer, 5 * 10**6).succeeded and token.fund_gas(payer, 10**18).succeeded

    send = ActivityOptions(start_to_close_seconds=5, retry=RetrySpec(initial_interval_seconds=0.5))
    inp = PaymentInput(
        payment_id="killed-worker",
        tenant_id=spec.tenant_id,
        campaign_id=spec.campaign_id,
        agent_id="ava",
        kind="address",
        to=PAYEE,
        amount_units=700_000,
        purpose="newswire coverage of the spring launch",
        requested_by="maya",
        poll_seconds=1,
        runtime=RuntimeOptions(activities={"send_payment": send}),
    )
    roles: tuple[Role, ...] = ("planner", "judge")  # in this process; the worker role runs in the child
    first = worker_process(child_env)
    second: subprocess.Popen[bytes] | None = None
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=activity_threads(deps, roles)) as executor:
            workers = build_workers(env_server.client, roles, deps, inp.runtime.task_queues, executor)
            runs = [asyncio.create_task(w.run()) for w in workers]
            try:
                handle = await env_server.client.start_workflow(
                    PaymentWorkflow.run,
                    inp,
                    id=payment_workflow_id(inp.tenant_id, inp.payment_id),
                    task_queue=inp.runtime.task_queues.planner,
                )

                async def paid() -> bool:
                    return await asyncio.to_thread(token.balance_of, PAYEE) == 700_000

                await eventually(paid, "the chain has the payment", within=60)
                # The payee holds the money; the worker still waits for the wallet's answer. Kill it.
                kill(first)
                await asyncio.to_thread(flag.unlink)
                second = worker_process(child_env)
                outcome: PaymentOutcome = await asyncio.wait_for(handle.result(), timeout=120)
            finally:
                await asyncio.gather(*(w.shutdown() for w in workers))
                await asyncio.gather(*runs, return_exceptions=True)
    finally:
        for proc in (first, second):
            kill(proc)
        await deps.aclose()
        await env_server.shutdown()

    assert outcome.status == "settled", outcome.reason
    assert token.balance_of(PAYEE) == 700_000 and token.balance_of(payer) == 5 * 10**6 - 700_000  # one transfer
    assert token.next_nonce(payer) == 1  # the agent signed exactly one transaction
    line = deps.store.payment(spec.tenant_id, "killed-worker")
    assert line is not None and line.status == "settled" and line.tx_hash == outcome.tx_hash
    audit = deps.store.audit_entries(spec.tenant_id, limit=500)
    calls = [e.detail for e in audit if e.action == "mcp_call" and e.detail.get("server") == "wallet"]
    lookups = [d for d in calls if d.get("tool") == "transaction_status"]
    assert lookups and lookups[0]["outcome"] == "ok"  # the retry looked the payment up first
