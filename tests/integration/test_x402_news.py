"""An agent pays the premium news endpoint through x402: the wallet MCP server over stdio, a real anvil, real
EIP-3009 signatures, the x402 library's client, resource server and facilitator.

One anvil serves the module; each test has its own sandbox dir (its own token, keys and ledger) and its own
premium news server priced in that token. Without the anvil binary (`make chain`) the tests are skipped, loudly;
with CI set they fail instead.
"""

from __future__ import annotations

import base64
import json
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from eth_account import Account
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult
from web3 import Web3

from chimera.chain.anvil import Anvil
from chimera.chain.keystore import AgentSigner
from chimera.chain.token import TestUSDC
from mcp_servers.news.premium import PremiumNews, start_premium_news
from mcp_servers.wallet import x402_payer
from tests.helpers.chain import running_anvil
from tests.integration.test_wallet_server import _payload, ok, refused

PROJECT_ROOT = Path(__file__).resolve().parents[2]
USDC = 10**6
PRICE = 50_000
ACME = {"tenant_id": "acme", "agent_id": "ava"}
PUBLISHER = "0x00000000000000000000000000000000000000Ad"


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    yield from running_anvil()


def token_of(node: Anvil, sandbox: Path) -> TestUSDC:
    """The sandbox's token (deployed on first use, as the wallet server does)."""
    return TestUSDC.load_or_deploy(Web3(Web3.HTTPProvider(node.url)), sandbox / "wallet" / "token.json")


@pytest.fixture
def news(node: Anvil, tmp_path: Path) -> Iterator[PremiumNews]:
    token = token_of(node, tmp_path)
    facilitator = Account.create()  # submits the authorizations and pays their gas: a key made for this test
    assert token.fund_gas(facilitator.address, 10**18).succeeded
    with start_premium_news(node.url, token.address, PUBLISHER, facilitator.key.hex(), sandbox_dir=tmp_path) as running:
        yield running


@asynccontextmanager
async def wallet_session(sandbox: Path, rpc_url: str) -> AsyncIterator[ClientSession]:
    env = {
        "CHIMERA_SANDBOX_DIR": str(sandbox),
        "PYTHONPATH": str(PROJECT_ROOT),
        "CHIMERA_WALLET_SCRYPT_N": "16384",
        "CHIMERA_WALLET_RPC_URL": rpc_url,
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_servers.wallet"], env=env, cwd=PROJECT_ROOT)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def funded(session: ClientSession, node: Anvil, sandbox: Path, usdc: int) -> str:
    """The agent's address holding `usdc` USDC; no gas money: the facilitator pays the gas."""
    address = str((await ok(session, "balance", **ACME))["address"])
    assert token_of(node, sandbox).mint(address, usdc * USDC).succeeded
    return address


def x402_rows(sandbox: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(sandbox / "wallet" / "ledger.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute("SELECT * FROM x402_payments"))
    finally:
        conn.close()


def settlements(token: TestUSDC, payer: str) -> list[Any]:
    """Every authorization of `payer` the token has executed."""
    return list(token.contract.events.AuthorizationUsed.get_logs(argument_filters={"authorizer": payer}, from_block=0))


def _decoded(header: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(header))
    return decoded


def _encoded(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


async def test_the_endpoint_answers_402_without_payment_and_the_quote_reads_it(
    node: Anvil, tmp_path: Path, news: PremiumNews
) -> None:
    url = news.headlines_url("fashion")
    unpaid = httpx.get(url)
    assert unpaid.status_code == 402 and "headlines" not in unpaid.text
    required = _decoded(unpaid.headers["payment-required"])
    (accepts,) = required["accepts"]
    token = token_of(node, tmp_path)
    assert required["x402Version"] == 2
    assert accepts == {
        "scheme": "exact",
        "network": "eip155:31337",
        "asset": token.address,
        "amount": str(PRICE),
        "payTo": Web3.to_checksum_address(PUBLISHER),
        "maxTimeoutSeconds": 300,
        "extra": {"name": "USDC", "version": "2"},
    }
    async with wallet_session(tmp_path, node.url) as session:
        quoted = await ok(session, "x402_quote", **ACME, url=url)
        assert quoted == {
            "url": url,
            "amount": PRICE,
            "asset": token.address,
            "asset_symbol": "USDC",
            "pay_to": Web3.to_checksum_address(PUBLISHER),
            "network": "eip155:31337",
            "scheme": "exact",
            "description": "Premium news headlines, by topic",
            "max_timeout_seconds": 300,
        }
        free = await refused(session, "x402_quote", **ACME, url=f"{news.url}/elsewhere")
        assert free["error"] == "not_payable"
        closed = await refused(session, "x402_quote", **ACME, url=f"http://127.0.0.1:{_closed_port()}/x")
        assert closed["error"] == "resource_unavailable" and closed["retry_after_seconds"] == 5.0
        bad = await refused(session, "x402_quote", **ACME, url="file:///etc/passwd")
        assert bad["error"] == "invalid_url"


async def test_a_paid_fetch_moves_the_price_once_per_key(node: Anvil, tmp_path: Path, news: PremiumNews) -> None:
    url = news.headlines_url("fashion")
    publisher = Web3.to_checksum_address(PUBLISHER)
    async with wallet_session(tmp_path, node.url) as session:
        agent = await funded(session, node, tmp_path, 1)
        token = token_of(node, tmp_path)
        args = {**ACME, "url": url, "max_amount": PRICE, "pay_to": publisher, "idempotency_key": "payment-1"}
        paid = await ok(session, "pay_x402", **args)
        assert (paid["status"], paid["duplicate"], paid["amount"], paid["pay_to"]) == (
            "confirmed",
            False,
            PRICE,
            publisher,
        )
        assert paid["content_type"] == "application/json" and paid["content_lost"] is False
        assert paid["body"]["topic"] == "fashion" and paid["body"]["headlines"]
        assert {"title", "url", "source", "published_at"} <= set(paid["body"]["headlines"][0])
        assert token.balance_of(agent) == USDC - PRICE and token.balance_of(publisher) == PRICE
        (used,) = settlements(token, agent)
        assert used["transactionHash"].to_0x_hex() == paid["tx_hash"]
        receipt = token.receipt(paid["tx_hash"])
        assert receipt is not None and receipt.succeeded

        again = await ok(session, "pay_x402", **args)
        assert again == {**paid, "duplicate": True}
        assert token.balance_of(agent) == USDC - PRICE and token.balance_of(publisher) == PRICE
        assert len(settlements(token, agent)) == 1

        conflict = await refused(session, "pay_x402", **{**args, "max_amount": PRICE + 1})
        assert conflict["error"] == "idempotency_conflict"
        reused = await refused(session, "transfer", **ACME, to=publisher, amount=1, idempotency_key="payment-1")
        assert reused["error"] == "idempotency_conflict"

        status = await ok(session, "transaction_status", **ACME, idempotency_key="payment-1")
        assert (status["tx_hash"], status["status"], status["kind"], status["nonce"]) == (
            paid["tx_hash"],
            "confirmed",
            "x402",
            None,
        )
        assert status["confirmations"] == 1 and status["block_number"] == receipt.block_number
        node.mine(2)
        assert (await ok(session, "transaction_status", **ACME, tx_hash=paid["tx_hash"]))["confirmations"] == 3
        (listed,) = (await ok(session, "list_transactions", **ACME))["transactions"]
        assert (listed["kind"], listed["to"], listed["amount"], listed["reference"], listed["tx_hash"]) == (
            "x402",
            publisher,
            PRICE,
            url,
            paid["tx_hash"],
        )

        (row,) = x402_rows(tmp_path)
        assert row["status"] == "confirmed" and row["tx_hash"] == paid["tx_hash"]
        assert row["auth_nonce"] == x402_payer.authorization_nonce("acme", "ava", "payment-1")
        assert _decoded(row["payment_header"])["payload"]["authorization"]["nonce"] == row["auth_nonce"]


async def test_refusals_move_nothing(node: Anvil, tmp_path: Path, news: PremiumNews) -> None:
    url = news.headlines_url()
    publisher = Web3.to_checksum_address(PUBLISHER)
    base = {**ACME, "url": url, "max_amount": PRICE, "pay_to": publisher, "idempotency_key": "k"}
    async with wallet_session(tmp_path, node.url) as session:
        poor = await refused(session, "pay_x402", **base)  # an empty wallet
        assert poor["error"] == "insufficient_funds"
        agent = await funded(session, node, tmp_path, 1)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"max_amount": PRICE - 1}, "over_limit"),
            ({"pay_to": "0x000000000000000000000000000000000000bEEF"}, "payee_mismatch"),
            ({"pay_to": "not an address"}, "invalid_address"),
            ({"max_amount": 0}, "invalid_amount"),
            ({"url": "ftp://example.com/x"}, "invalid_url"),
            ({"url": f"{news.url}/elsewhere"}, "not_payable"),
            ({"idempotency_key": "has space"}, "invalid_idempotency_key"),
        ]
        for change, code in cases:
            assert (await refused(session, "pay_x402", **{**base, **change}))["error"] == code, change
        token = token_of(node, tmp_path)
        assert token.balance_of(agent) == USDC and token.balance_of(publisher) == 0
        assert settlements(token, agent) == [] and x402_rows(tmp_path) == []
        # A refused key is still free: the approved payment goes through with it.
        assert (await ok(session, "pay_x402", **base))["status"] == "confirmed"
        assert token.balance_of(publisher) == PRICE


def _signed(news: PremiumNews, signer: AgentSigner, *, nonce: str, valid_before: int | None = None) -> str:
    """A PAYMENT-SIGNATURE for the endpoint, made the way the wallet makes it."""
    url = news.headlines_url()
    token_address = _decoded(httpx.get(url).headers["payment-required"])["accepts"][0]["asset"]
    quoted = x402_payer.quote(url, "eip155:31337", token_address, ("USDC", "2"))
    return x402_payer.sign_payment(signer, quoted, nonce, valid_before or int(time.time()) + 300, PRICE)


def test_forged_expired_underfunded_and_replayed_payments_get_402_and_no_content(
    node: Anvil, tmp_path: Path, news: PremiumNews
) -> None:
    token = token_of(node, tmp_path)
    payer = AgentSigner(Account.create())
    assert token.mint(payer.address, USDC).succeeded
    url = news.headlines_url()

    def refused_with(header: str) -> str:
        answer = httpx.get(url, headers={"PAYMENT-SIGNATURE": header})
        assert answer.status_code == 402 and "headlines" not in answer.text, answer.text
        assert "payment-response" not in answer.headers
        reason = _decoded(answer.headers["payment-required"])["error"]
        assert answer.json() == {"error": reason}
        return str(reason)

    # Signed by another key, claiming to be from the funded payer.
    thief = AgentSigner(Account.create())
    stolen = _decoded(_signed(news, thief, nonce="0x" + "11" * 32))
    stolen["payload"]["authorization"]["from"] = payer.address
    assert refused_with(_encoded(stolen)) == "invalid_exact_evm_payload_signature"
    # The payer's own signature, with the amount lowered afterwards (here and in what it claims to accept).
    tampered = _decoded(_signed(news, payer, nonce="0x" + "22" * 32))
    tampered["payload"]["authorization"]["value"] = "1"
    assert refused_with(_encoded(tampered)) == "invalid_exact_evm_payload_authorization_value_mismatch"
    tampered["accepted"]["amount"] = "1"
    assert refused_with(_encoded(tampered))  # no requirement asks for 1 unit
    # Expired.
    expired = _signed(news, payer, nonce="0x" + "33" * 32, valid_before=int(time.time()) - 60)
    assert refused_with(expired) == "invalid_exact_evm_payload_authorization_valid_before"
    # Underfunded: a valid signature by a wallet without the price.
    assert refused_with(_signed(news, AgentSigner(Account.create()), nonce="0x" + "44" * 32))
    # Not a payment at all.
    assert refused_with("bm90IGEgcGF5bWVudA==")
    assert token.balance_of(PUBLISHER) == 0 and settlements(token, payer.address) == []

    # A good payment pays once; the same header again is a replay.
    good = _signed(news, payer, nonce="0x" + "55" * 32)
    first = httpx.get(url, headers={"PAYMENT-SIGNATURE": good})
    assert first.status_code == 200 and first.json()["headlines"] and "payment-response" in first.headers
    assert refused_with(good)
    assert token.balance_of(PUBLISHER) == PRICE and len(settlements(token, payer.address)) == 1


def test_a_retry_after_a_lost_response_records_the_one_payment(
    node: Anvil, tmp_path: Path, news: PremiumNews, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payment is sent and settled, but the wallet dies before it hears the answer (the outcome is unknown)."""
    from chimera.secrets.env import EnvSecrets
    from mcp_servers.common import ToolError
    from mcp_servers.wallet.sandbox import SandboxWallet

    wallet = SandboxWallet(node.url, tmp_path / "wallet", EnvSecrets(), scrypt_n=2**14)
    agent = wallet.address("acme", "ava")
    token = token_of(node, tmp_path)
    assert token.mint(agent, USDC).succeeded
    real_send = x402_payer.send_payment
    sent: list[str] = []

    def died(url: str, header: str) -> x402_payer.Delivery:
        sent.append(header)
        real_send(url, header)  # the resource settles and answers; the answer never arrives
        raise ToolError("resource_unavailable", "the connection dropped mid-answer")

    monkeypatch.setattr(x402_payer, "send_payment", died)
    args = ("acme", "ava", news.headlines_url("tech"), PRICE, PUBLISHER, "lost-1")
    with pytest.raises(ToolError) as caught:
        wallet.pay_x402(*args)
    assert caught.value.code == "resource_unavailable"
    (row,) = x402_rows(tmp_path)
    assert row["status"] == "pending" and row["payment_header"] == sent[0] and row["tx_hash"] is None
    assert token.balance_of(PUBLISHER) == PRICE  # paid, though the wallet does not know it yet

    monkeypatch.setattr(x402_payer, "send_payment", real_send)
    again = wallet.pay_x402(*args)
    (used,) = settlements(token, agent)
    assert again == {
        "tx_hash": used["transactionHash"].to_0x_hex(),
        "status": "confirmed",
        "duplicate": True,
        "amount": PRICE,
        "pay_to": Web3.to_checksum_address(PUBLISHER),
        "content_type": None,
        "body": None,
        "content_lost": True,
    }
    assert wallet.pay_x402(*args) == again
    assert len(sent) == 1 and token.balance_of(PUBLISHER) == PRICE and token.balance_of(agent) == USDC - PRICE
    status = wallet.transaction_status("acme", "ava", idempotency_key="lost-1")
    assert status["status"] == "confirmed" and status["tx_hash"] == again["tx_hash"]

    # A lost answer the wallet survives: the chain shows the payment at once, so the first call records it.
    def lost(url: str, header: str) -> x402_payer.Delivery:
        real_send(url, header)
        return x402_payer.Delivery("unknown", reason="no answer: ReadTimeout")

    monkeypatch.setattr(x402_payer, "send_payment", lost)
    first = wallet.pay_x402("acme", "ava", news.headlines_url(), PRICE, PUBLISHER, "lost-2")
    assert (first["status"], first["duplicate"], first["content_lost"], first["body"]) == (
        "confirmed",
        False,
        True,
        None,
    )
    assert token.balance_of(PUBLISHER) == 2 * PRICE and len(settlements(token, agent)) == 2


def test_a_retry_after_a_crash_before_sending_sends_the_same_authorization(
    node: Anvil, tmp_path: Path, news: PremiumNews, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chimera.secrets.env import EnvSecrets
    from mcp_servers.common import ToolError
    from mcp_servers.wallet.sandbox import SandboxWallet

    wallet = SandboxWallet(node.url, tmp_path / "wallet", EnvSecrets(), scrypt_n=2**14)
    agent = wallet.address("acme", "ava")
    token = token_of(node, tmp_path)
    assert token.mint(agent, USDC).succeeded
    real_send = x402_payer.send_payment
    sent: list[str] = []

    def crashed(url: str, header: str) -> x402_payer.Delivery:
        sent.append(header)
        raise ToolError("resource_unavailable", "the process died before the request left")

    monkeypatch.setattr(x402_payer, "send_payment", crashed)
    args = ("acme", "ava", news.headlines_url(), PRICE, PUBLISHER, "crash-1")
    with pytest.raises(ToolError):
        wallet.pay_x402(*args)
    assert token.balance_of(PUBLISHER) == 0

    def recorded(url: str, header: str) -> x402_payer.Delivery:
        sent.append(header)
        return real_send(url, header)

    monkeypatch.setattr(x402_payer, "send_payment", recorded)
    again = wallet.pay_x402(*args)
    assert again["status"] == "confirmed" and again["duplicate"] is True and again["body"]["headlines"]
    assert sent[0] == sent[1]  # the same signed authorization, not a new one
    assert token.balance_of(PUBLISHER) == PRICE and len(settlements(token, agent)) == 1


def test_an_old_ledger_file_gains_the_x402_table(node: Anvil, tmp_path: Path) -> None:
    """A ledger written before x402 (only `transfers`) keeps its rows and works for both kinds."""
    from mcp_servers.wallet.ledger import Ledger

    path = tmp_path / "wallet" / "ledger.sqlite3"
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE transfers (tenant_id TEXT NOT NULL, agent_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, "
        "kind TEXT NOT NULL, sender TEXT NOT NULL, to_address TEXT NOT NULL, amount TEXT NOT NULL, asset TEXT NOT "
        "NULL, reference TEXT, memo TEXT, nonce INTEGER NOT NULL, tx_hash TEXT NOT NULL UNIQUE, raw_tx BLOB NOT "
        "NULL, status TEXT NOT NULL, block_number INTEGER, created_at REAL NOT NULL, "
        "PRIMARY KEY (tenant_id, agent_id, idempotency_key))"
    )
    old.execute(
        "INSERT INTO transfers VALUES ('acme', 'ava', 'old-1', 'transfer', '0x1', '0x2', '5', 'USDC', NULL, NULL, "
        "0, '0xabc', x'00', 'confirmed', 7, 1.0)"
    )
    old.commit()
    old.close()
    ledger = Ledger(path)
    assert ledger.get("acme", "ava", key="old-1") is not None
    assert ledger.recent_x402("acme", "ava", 10) == []
    with ledger.writing() as conn:
        assert Ledger.key_used(conn, "acme", "ava", "old-1") == "transfers"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_backend_without_x402_answers_unsupported_backend(tmp_path: Path) -> None:
    from mcp_servers.wallet.server import build_server

    class TransfersOnly:  # a WalletBackend that is not an X402Payer (as the CDP backend)
        def address(self, tenant_id: str, agent_id: str) -> str:
            return PUBLISHER

        def balance(self, tenant_id: str, agent_id: str) -> dict[str, Any]:
            raise NotImplementedError

        def transfer(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            raise NotImplementedError

        def transaction_status(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            raise NotImplementedError

        def list_transactions(self, tenant_id: str, agent_id: str, limit: int) -> list[dict[str, Any]]:
            return []

    server = build_server(TransfersOnly())
    for tool, arguments in (
        ("x402_quote", {"url": "http://127.0.0.1:1/x"}),
        ("pay_x402", {"url": "http://127.0.0.1:1/x", "max_amount": 1, "pay_to": PUBLISHER, "idempotency_key": "k"}),
    ):
        result = await server.call_tool(tool, {**ACME, **arguments})
        assert isinstance(result, CallToolResult) and result.is_error
        assert _payload(result)["error"] == "unsupported_backend"
