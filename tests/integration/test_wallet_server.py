"""The wallet MCP server as a real process over stdio (the MCP SDK client) against a real anvil.

One anvil serves the module; each test has its own sandbox dir, so its own token, keys and ledger. Without the
anvil binary (`make chain`) the chain tests are skipped, loudly; with CI set they fail instead.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import CallToolResult, TextContent, TextResourceContents
from web3 import Web3

from chimera.chain.anvil import Anvil
from chimera.chain.token import TestUSDC
from chimera.settings import default_mcp_servers
from tests.helpers.chain import running_anvil

PROJECT_ROOT = Path(__file__).resolve().parents[2]
USDC = 10**6
ACME = {"tenant_id": "acme", "agent_id": "ava"}
PAYEE = "0x000000000000000000000000000000000000bEEF"


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    yield from running_anvil()


@asynccontextmanager
async def wallet_session(sandbox: Path, rpc_url: str | None) -> AsyncIterator[ClientSession]:
    env = {"CHIMERA_SANDBOX_DIR": str(sandbox), "PYTHONPATH": str(PROJECT_ROOT), "CHIMERA_WALLET_SCRYPT_N": "16384"}
    if rpc_url is not None:
        env["CHIMERA_WALLET_RPC_URL"] = rpc_url
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_servers.wallet"], env=env, cwd=PROJECT_ROOT)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def _payload(result: CallToolResult) -> dict[str, Any]:
    assert isinstance(result.content[0], TextContent)
    payload = json.loads(result.content[0].text)
    assert isinstance(payload, dict)
    if not result.is_error:
        assert result.structured_content == payload
    return payload


async def ok(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    payload = _payload(result)
    assert not result.is_error, payload
    return payload


async def refused(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    payload = _payload(result)
    assert result.is_error, payload
    return payload


def token_of(node: Anvil, sandbox: Path) -> TestUSDC:
    """The sandbox's token, as the server recorded it."""
    return TestUSDC.load_or_deploy(Web3(Web3.HTTPProvider(node.url)), sandbox / "wallet" / "token.json")


async def funded(session: ClientSession, node: Anvil, sandbox: Path, ids: dict[str, str], usdc: int) -> str:
    address = str((await ok(session, "balance", **ids))["address"])
    token = token_of(node, sandbox)
    assert token.mint(address, usdc * USDC).succeeded
    assert token.fund_gas(address, 10**18).succeeded
    return address


def ledger_rows(sandbox: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(sandbox / "wallet" / "ledger.sqlite3")
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute("SELECT * FROM transfers"))
    finally:
        conn.close()


async def test_balance_of_a_new_wallet_and_a_confirmed_transfer(node: Anvil, tmp_path: Path) -> None:
    async with wallet_session(tmp_path, node.url) as session:
        empty = await ok(session, "balance", **ACME)
        assert empty["amount"] == 0 and empty["native_wei"] == 0 and empty["asset"] == "USDC"
        assert Web3.is_checksum_address(empty["address"])
        address = await funded(session, node, tmp_path, ACME, 100)
        assert address == empty["address"]
        held = await ok(session, "balance", **ACME)
        assert (held["amount"], held["display"], held["native_wei"]) == (100 * USDC, "100.000000 USDC", 10**18)

        sent = await ok(session, "transfer", **ACME, to=PAYEE, amount=1_500_000, idempotency_key="pay-1", memo="hi")
        assert (sent["status"], sent["nonce"], sent["duplicate"]) == ("confirmed", 0, False)
        token = token_of(node, tmp_path)
        assert token.balance_of(PAYEE) == 1_500_000
        assert token.balance_of(address) == 100 * USDC - 1_500_000

        first = await ok(session, "transaction_status", **ACME, tx_hash=sent["tx_hash"])
        assert first["status"] == "confirmed" and first["confirmations"] == 1 and first["nonce"] == 0
        node.mine(3)
        later = await ok(session, "transaction_status", **ACME, idempotency_key="pay-1")
        assert later == {**first, "confirmations": 4}
        assert later["block_number"] == token.receipt(sent["tx_hash"]).block_number  # type: ignore[union-attr]


async def test_one_idempotency_key_is_one_transfer(node: Anvil, tmp_path: Path) -> None:
    async with wallet_session(tmp_path, node.url) as session:
        address = await funded(session, node, tmp_path, ACME, 10)
        args = {**ACME, "to": PAYEE, "amount": 2 * USDC, "idempotency_key": "once"}
        first = await ok(session, "transfer", **args)
        again = await ok(session, "transfer", **args)
        assert again == {**first, "duplicate": True}
        token = token_of(node, tmp_path)
        assert token.balance_of(PAYEE) == 2 * USDC and token.balance_of(address) == 8 * USDC
        assert token.next_nonce(address) == 1
        (row,) = ledger_rows(tmp_path)
        assert (row["idempotency_key"], row["tx_hash"], row["nonce"], row["amount"]) == (
            "once",
            first["tx_hash"],
            0,
            str(2 * USDC),
        )
        assert row["status"] == "confirmed" and row["to_address"] == PAYEE

        conflict = await refused(session, "transfer", **{**args, "amount": 3 * USDC})
        assert conflict["error"] == "idempotency_conflict" and first["tx_hash"] in conflict["message"]
        assert token.balance_of(PAYEE) == 2 * USDC and len(ledger_rows(tmp_path)) == 1

        second = await ok(session, "transfer", **{**args, "idempotency_key": "twice"})
        assert second["nonce"] == 1 and second["duplicate"] is False
        assert token.balance_of(PAYEE) == 4 * USDC


async def test_refusals_send_nothing(node: Anvil, tmp_path: Path) -> None:
    async with wallet_session(tmp_path, node.url) as session:
        address = await funded(session, node, tmp_path, ACME, 5)
        base = {**ACME, "to": PAYEE, "amount": USDC, "idempotency_key": "k"}
        cases: list[tuple[dict[str, Any], str]] = [
            ({"amount": 5 * USDC + 1}, "insufficient_funds"),
            ({"amount": 0}, "invalid_amount"),
            ({"amount": -3}, "invalid_amount"),
            ({"to": "0x1234"}, "invalid_address"),
            ({"to": "not an address"}, "invalid_address"),
            ({"to": PAYEE.replace("bEEF", "BEEf")}, "invalid_address"),  # a checksum typo
            ({"to": PAYEE.replace("0x", "0X")}, "invalid_address"),
            ({"idempotency_key": "has space"}, "invalid_idempotency_key"),
        ]
        for change, code in cases:
            assert (await refused(session, "transfer", **{**base, **change}))["error"] == code, change
        token = token_of(node, tmp_path)
        assert token.balance_of(address) == 5 * USDC and token.next_nonce(address) == 0
        assert ledger_rows(tmp_path) == []
        missing = await refused(session, "transaction_status", **ACME, idempotency_key="never")
        assert missing["error"] == "not_found"
        both = await refused(session, "transaction_status", **ACME)
        assert both["error"] == "invalid_arguments"
        for ids in ({"tenant_id": "ACME", "agent_id": "ava"}, {"tenant_id": "acme", "agent_id": "../bob"}):
            assert (await refused(session, "balance", **ids))["error"] == "invalid_id"

    async with wallet_session(tmp_path / "poor", node.url) as session:  # tokens but no gas money
        poor = str((await ok(session, "balance", **ACME))["address"])
        assert token_of(node, tmp_path / "poor").mint(poor, USDC).succeeded
        no_gas = await refused(session, "transfer", **{**base, "amount": 1})
        assert no_gas["error"] == "insufficient_funds" and "gas" in no_gas["message"]


async def test_pay_request_lists_and_resources(node: Anvil, tmp_path: Path) -> None:
    async with wallet_session(tmp_path, node.url) as session:
        address = await funded(session, node, tmp_path, ACME, 10)
        await ok(session, "transfer", **ACME, to=PAYEE, amount=USDC, idempotency_key="a")
        request = {"to": PAYEE, "amount": 2 * USDC, "asset": "USDC", "reference": "invoice-7"}
        paid = await ok(session, "pay_request", **ACME, request=request, idempotency_key="b")
        assert paid["status"] == "confirmed" and paid["nonce"] == 1
        again = await ok(session, "pay_request", **ACME, request=request, idempotency_key="b")
        assert again["duplicate"] is True and again["tx_hash"] == paid["tx_hash"]
        other = await refused(
            session, "pay_request", **ACME, request={**request, "reference": "invoice-8"}, idempotency_key="b"
        )
        assert other["error"] == "idempotency_conflict"
        euro = await refused(session, "pay_request", **ACME, request={**request, "asset": "EURC"}, idempotency_key="c")
        assert euro["error"] == "unsupported_asset"
        assert token_of(node, tmp_path).balance_of(PAYEE) == 3 * USDC

        listed = (await ok(session, "list_transactions", **ACME, limit=10))["transactions"]
        assert [t["idempotency_key"] for t in listed] == ["b", "a"]
        assert (listed[0]["kind"], listed[0]["reference"], listed[0]["amount"]) == (
            "pay_request",
            "invoice-7",
            2 * USDC,
        )
        assert listed[1]["kind"] == "transfer" and listed[1]["reference"] is None
        assert [
            t["idempotency_key"] for t in (await ok(session, "list_transactions", **ACME, limit=1))["transactions"]
        ] == ["b"]
        assert (await refused(session, "list_transactions", **ACME, limit=0))["error"] == "invalid_limit"

        templates = {t.uri_template for t in (await session.list_resource_templates()).resource_templates}
        assert templates == {
            "wallet://{tenant_id}/{agent_id}/address",
            "wallet://{tenant_id}/{agent_id}/transactions/recent",
        }
        (shown,) = (await session.read_resource("wallet://acme/ava/address")).contents
        assert isinstance(shown, TextResourceContents) and json.loads(shown.text) == {"address": address}
        (recent,) = (await session.read_resource("wallet://acme/ava/transactions/recent")).contents
        assert isinstance(recent, TextResourceContents)
        assert json.loads(recent.text)["transactions"] == listed


async def test_agents_see_only_their_own_wallet(node: Anvil, tmp_path: Path) -> None:
    bob = {"tenant_id": "acme", "agent_id": "bob"}
    rival = {"tenant_id": "rival", "agent_id": "ava"}
    async with wallet_session(tmp_path, node.url) as session:
        ava_address = await funded(session, node, tmp_path, ACME, 10)
        sent = await ok(session, "transfer", **ACME, to=PAYEE, amount=USDC, idempotency_key="shared-key")
        for other in (bob, rival):
            assert (await ok(session, "list_transactions", **other))["transactions"] == []
            hidden = await refused(session, "transaction_status", **other, tx_hash=sent["tx_hash"])
            assert hidden["error"] == "not_found"
            assert (await ok(session, "balance", **other))["address"] != ava_address
        # Bob's own key "shared-key" is his own payment, not a duplicate of Ava's.
        await funded(session, node, tmp_path, bob, 10)
        bobs = await ok(session, "transfer", **bob, to=PAYEE, amount=USDC, idempotency_key="shared-key")
        assert bobs["duplicate"] is False and bobs["tx_hash"] != sent["tx_hash"]
        (mine,) = (await ok(session, "list_transactions", **ACME))["transactions"]
        assert mine["tx_hash"] == sent["tx_hash"]
        assert token_of(node, tmp_path).balance_of(PAYEE) == 2 * USDC


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("rpc_url", [None, f"http://127.0.0.1:{_closed_port()}"])
async def test_the_server_starts_and_lists_tools_without_a_chain(tmp_path: Path, rpc_url: str | None) -> None:
    async with wallet_session(tmp_path, rpc_url) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == {
            "balance",
            "transfer",
            "pay_request",
            "transaction_status",
            "list_transactions",
            "x402_quote",
            "pay_x402",
        }
        assert all(t.output_schema for t in tools.values())
        assert {"tenant_id", "agent_id"} <= set(tools["transfer"].input_schema["required"])
        down = await refused(session, "balance", **ACME)
        assert down["error"] == "chain_unavailable"
        sent = await refused(session, "transfer", **ACME, to=PAYEE, amount=USDC, idempotency_key="k")
        assert sent["error"] == "chain_unavailable"
        assert (await ok(session, "list_transactions", **ACME))["transactions"] == []
        (shown,) = (await session.read_resource("wallet://acme/ava/address")).contents
        assert isinstance(shown, TextResourceContents) and Web3.is_checksum_address(json.loads(shown.text)["address"])


def test_the_allowlist_entry_binds_the_agent_and_hides_the_money_tools() -> None:
    entry = default_mcp_servers()["wallet"]
    assert entry.args == ["-m", "mcp_servers.wallet"]
    assert entry.bound_arguments == ["tenant_id", "agent_id"]
    assert set(entry.publish_tools) == {"transfer", "pay_request", "pay_x402"}
    assert "CHIMERA_WALLET_RPC_URL" in entry.pass_env


def test_a_retry_after_an_unknown_outcome_rebroadcasts_the_same_signed_transfer(
    node: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ledger row is written before the broadcast; the broadcast then fails (the outcome is unknown)."""
    from chimera.chain.keystore import Keystore
    from chimera.secrets.env import EnvSecrets
    from mcp_servers.common import ToolError
    from mcp_servers.wallet.sandbox import SandboxWallet

    wallet = SandboxWallet(node.url, tmp_path / "wallet", EnvSecrets(), scrypt_n=2**14)
    address = wallet.address("acme", "ava")
    token = token_of(node, tmp_path)
    assert token.mint(address, 10 * USDC).succeeded and token.fund_gas(address, 10**18).succeeded
    eth = type(token.w3.eth)
    real_send = eth.send_raw_transaction
    sent: list[bytes] = []

    def lost(self: Any, raw: Any) -> Any:
        sent.append(bytes(raw))
        raise ConnectionError("the node went away mid-call")

    monkeypatch.setattr(eth, "send_raw_transaction", lost)
    with pytest.raises(ToolError) as caught:
        wallet.transfer("acme", "ava", PAYEE, 3 * USDC, "retry-me")
    assert caught.value.code == "chain_unavailable"
    (row,) = ledger_rows(tmp_path)
    assert row["status"] == "pending" and bytes(row["raw_tx"]) == sent[0]
    assert token.balance_of(PAYEE) == 0

    monkeypatch.setattr(eth, "send_raw_transaction", real_send)
    again = wallet.transfer("acme", "ava", PAYEE, 3 * USDC, "retry-me")
    assert again == {"tx_hash": row["tx_hash"], "status": "confirmed", "nonce": 0, "duplicate": True}
    assert Web3.keccak(sent[0]).to_0x_hex() == row["tx_hash"]
    assert wallet.transfer("acme", "ava", PAYEE, 3 * USDC, "retry-me")["duplicate"] is True
    assert token.balance_of(PAYEE) == 3 * USDC and token.next_nonce(address) == 1

    # The ledger holds signed transactions, never the key that signed them.
    password = (tmp_path / "wallet" / "keystore-password").read_text().strip()
    key = Keystore(tmp_path / "wallet" / "keys", password).unlock("acme", "ava")._account.key
    ledger_bytes = (tmp_path / "wallet" / "ledger.sqlite3").read_bytes()
    assert bytes(key) not in ledger_bytes and key.hex().encode() not in ledger_bytes


async def test_the_model_is_offered_only_the_reading_tools_without_the_bound_ids(tmp_path: Path) -> None:
    from chimera.db import StateStore
    from chimera.mcp.toolset import ToolCatalog
    from tests.helpers.mcp_hosts import approved_host

    store = StateStore(f"sqlite:///{tmp_path / 'chimera.db'}")
    host = await approved_host(tmp_path / "sb", {"wallet": default_mcp_servers()["wallet"]}, store=store)
    catalog = await ToolCatalog(host).catalog()
    offered = {t.name: t for t in catalog.tools}
    # No transfer, pay_request or pay_x402: a model may quote an x402 resource, never pay it.
    assert set(offered) == {"balance", "transaction_status", "list_transactions", "x402_quote"}
    for tool in offered.values():
        assert not {"tenant_id", "agent_id"} & set(tool.input_schema.get("properties", {}))
