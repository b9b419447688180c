"""The wallet MCP server with CHIMERA_WALLET_BACKEND=cdp, as a real process over stdio, through the real cdp-sdk,
against a loopback fake of the CDP API (tests/helpers/fake_cdp.py) that signs with the accounts' keys and
submits to a real anvil running as Base Sepolia (chain 84532, TestUSDC's code at Circle's USDC address).

Without the anvil binary (`make chain`) the module is skipped, loudly; with CI set it fails instead.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.types import TextResourceContents
from web3 import Web3

from chimera.chain.anvil import Anvil
from chimera.chain.token import TestUSDC
from chimera.settings import WALLET_ENV
from mcp_servers.wallet.cdp_backend import NETWORKS, PENDING_HASH, account_name, cdp_idempotency_key
from tests.helpers.chain import running_anvil
from tests.helpers.fake_cdp import FakeCdp, FakeNetwork, TestKeys, fake_cdp
from tests.integration.test_wallet_server import ok, refused

PROJECT_ROOT = Path(__file__).resolve().parents[2]
USDC = 10**6
ACME = {"tenant_id": "acme", "agent_id": "ava"}
PAYEE = "0x000000000000000000000000000000000000bEEF"
SEPOLIA = NETWORKS["base-sepolia"]


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    yield from running_anvil(chain_id=SEPOLIA.chain_id)


@pytest.fixture(scope="module")
def usdc(node: Anvil) -> TestUSDC:
    """TestUSDC's code and storage (name, symbol, owner) at Base Sepolia's USDC address, as the backend expects."""
    w3 = Web3(Web3.HTTPProvider(node.url))
    deployed = TestUSDC.deploy(w3)
    node.rpc("anvil_setCode", [SEPOLIA.usdc, w3.eth.get_code(deployed.address).to_0x_hex()])
    for slot in range(16):
        value = w3.eth.get_storage_at(deployed.address, slot)
        if int.from_bytes(value, "big"):
            node.rpc("anvil_setStorageAt", [SEPOLIA.usdc, hex(slot), value.to_0x_hex()])
    token = TestUSDC(w3, SEPOLIA.usdc, deployed.owner)
    assert token.contract.functions.symbol().call() == "USDC"
    return token


@pytest.fixture(scope="module")
def keys() -> TestKeys:
    return TestKeys.generate()


@pytest.fixture
def cdp(node: Anvil, usdc: TestUSDC, keys: TestKeys) -> Iterator[FakeCdp]:
    with fake_cdp(keys, {"base-sepolia": FakeNetwork(node.url, SEPOLIA.chain_id, SEPOLIA.usdc)}) as api:
        yield api


def credentials(keys: TestKeys) -> dict[str, str]:
    return {
        "CHIMERA_SECRET_CDP_API_KEY_ID": keys.api_key_id,
        "CHIMERA_SECRET_CDP_API_KEY_SECRET": keys.api_key_secret,
        "CHIMERA_SECRET_CDP_WALLET_SECRET": keys.wallet_secret,
    }


@asynccontextmanager
async def wallet_session(
    sandbox: Path, api: FakeCdp, node: Anvil, secrets: dict[str, str], **extra: str
) -> AsyncIterator[ClientSession]:
    env = {
        "CHIMERA_SANDBOX_DIR": str(sandbox),
        "PYTHONPATH": str(PROJECT_ROOT),
        "CHIMERA_WALLET_BACKEND": "cdp",
        "CHIMERA_CDP_BASE_URL": api.base_url,
        "CHIMERA_WALLET_RPC_URL": node.url,
        **secrets,
        **extra,
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_servers.wallet"], env=env, cwd=PROJECT_ROOT)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def funded(session: ClientSession, usdc: TestUSDC, ids: dict[str, str], amount: int) -> str:
    address = str((await ok(session, "balance", **ids))["address"])
    assert usdc.mint(address, amount * USDC).succeeded
    assert usdc.fund_gas(address, 10**18).succeeded
    return address


def ledger_path(sandbox: Path) -> Path:
    return sandbox / "wallet" / "cdp" / "base-sepolia" / "ledger.sqlite3"


def ledger_rows(sandbox: Path) -> list[sqlite3.Row]:
    if not ledger_path(sandbox).exists():
        return []
    conn = sqlite3.connect(ledger_path(sandbox))
    conn.row_factory = sqlite3.Row
    try:
        return list(conn.execute("SELECT * FROM transfers"))
    finally:
        conn.close()


def payee() -> str:
    """A fresh recipient per test: the chain is shared by the module."""
    return Web3.to_checksum_address("0x" + uuid.uuid4().hex + "00000000")


async def test_one_account_per_agent_by_name_stable_across_restarts(
    node: Anvil, cdp: FakeCdp, keys: TestKeys, tmp_path: Path
) -> None:
    bob = {"tenant_id": "acme", "agent_id": "bob"}
    rival = {"tenant_id": "rival", "agent_id": "ava"}
    async with wallet_session(tmp_path, cdp, node, credentials(keys)) as session:
        empty = await ok(session, "balance", **ACME)
        assert (empty["amount"], empty["native_wei"], empty["display"]) == (0, 0, "0.000000 USDC")
        ava = empty["address"]
        assert Web3.is_checksum_address(ava)
        assert (await ok(session, "balance", **ACME))["address"] == ava
        others = {(await ok(session, "balance", **ids))["address"] for ids in (bob, rival)}
        assert len(others) == 2 and ava not in others
        (shown,) = (await session.read_resource("wallet://acme/ava/address")).contents
        assert isinstance(shown, TextResourceContents) and json.loads(shown.text) == {"address": ava}
    async with wallet_session(tmp_path / "other-process", cdp, node, credentials(keys)) as session:
        assert (await ok(session, "balance", **ACME))["address"] == ava  # found by name, not made again

    names = cdp.account_names()
    assert set(names) == {account_name("acme", "ava"), account_name("acme", "bob"), account_name("rival", "ava")}
    assert all(re.fullmatch(r"chimera-[0-9a-f]{28}", n) for n in names)
    assert names[account_name("acme", "ava")] == ava.lower()
    creates = [r for r in cdp.requests if r.method == "POST" and r.path == "/v2/evm/accounts"]
    assert len(creates) == 3  # one per agent; the second process found Ava's by name


async def test_a_confirmed_transfer_and_one_key_is_one_transfer(
    node: Anvil, usdc: TestUSDC, cdp: FakeCdp, keys: TestKeys, tmp_path: Path
) -> None:
    to = payee()
    async with wallet_session(tmp_path, cdp, node, credentials(keys)) as session:
        address = await funded(session, usdc, ACME, 100)
        held = await ok(session, "balance", **ACME)
        assert (held["amount"], held["display"], held["native_wei"]) == (100 * USDC, "100.000000 USDC", 10**18)

        args = {**ACME, "to": to, "amount": 1_500_000, "idempotency_key": "pay-1", "memo": "hi"}
        sent = await ok(session, "transfer", **args)
        assert (sent["status"], sent["nonce"], sent["duplicate"]) == ("confirmed", 0, False)
        assert sent["tx_hash"] == cdp.sent[0]
        assert usdc.balance_of(to) == 1_500_000 and usdc.balance_of(address) == 100 * USDC - 1_500_000
        (send,) = cdp.sends()
        (row,) = ledger_rows(tmp_path)
        unsigned = bytes(row["raw_tx"])
        assert send.headers["X-Idempotency-Key"] == cdp_idempotency_key(
            "base-sepolia", "acme", "ava", "pay-1", unsigned
        )
        assert send.body is not None and send.body["transaction"] == "0x" + unsigned.hex()
        assert send.body is not None and send.body["network"] == "base-sepolia"
        assert send.body["transaction"].startswith("0x02")

        again = await ok(session, "transfer", **args)
        assert again == {**sent, "duplicate": True}
        assert len(cdp.sends()) == 1 and usdc.balance_of(to) == 1_500_000  # answered from the ledger
        conflict = await refused(session, "transfer", **{**args, "amount": 2 * USDC})
        assert conflict["error"] == "idempotency_conflict" and sent["tx_hash"] in conflict["message"]

        first = await ok(session, "transaction_status", **ACME, tx_hash=sent["tx_hash"])
        assert (first["status"], first["confirmations"], first["nonce"]) == ("confirmed", 1, 0)
        node.mine(3)
        later = await ok(session, "transaction_status", **ACME, idempotency_key="pay-1")
        assert later == {**first, "confirmations": 4}
        assert later["block_number"] == usdc.receipt(sent["tx_hash"]).block_number  # type: ignore[union-attr]

        request = {"to": to, "amount": 2 * USDC, "asset": "USDC", "reference": "invoice-7"}
        paid = await ok(session, "pay_request", **ACME, request=request, idempotency_key="pay-2")
        assert (paid["status"], paid["nonce"]) == ("confirmed", 1)
        listed = (await ok(session, "list_transactions", **ACME))["transactions"]
        assert [(t["idempotency_key"], t["kind"], t["amount"]) for t in listed] == [
            ("pay-2", "pay_request", 2 * USDC),
            ("pay-1", "transfer", 1_500_000),
        ]
        assert usdc.balance_of(to) == 3_500_000 and usdc.next_nonce(address) == 2
        bob = {"tenant_id": "acme", "agent_id": "bob"}
        hidden = await refused(session, "transaction_status", **bob, tx_hash=sent["tx_hash"])
        assert hidden["error"] == "not_found"


async def test_a_retry_after_a_lost_send_response_is_one_transfer(
    node: Anvil, usdc: TestUSDC, cdp: FakeCdp, keys: TestKeys, tmp_path: Path
) -> None:
    """CDP signs and sends, and its answer is lost: the caller only knows the outcome is unknown."""
    to = payee()
    async with wallet_session(tmp_path, cdp, node, credentials(keys)) as session:
        address = await funded(session, usdc, ACME, 10)
        args = {**ACME, "to": to, "amount": 3 * USDC, "idempotency_key": "retry-me"}
        cdp.lose_responses = 1
        lost = await refused(session, "transfer", **args)
        assert lost["error"] == "chain_unavailable" and lost["retry_after_seconds"] == 5
        (row,) = ledger_rows(tmp_path)
        assert row["status"] == "pending" and row["tx_hash"].startswith(PENDING_HASH)  # the hash never arrived
        assert usdc.balance_of(to) == 3 * USDC  # yet CDP did send it

        again = await ok(session, "transfer", **args)
        assert again == {"tx_hash": cdp.sent[0], "status": "confirmed", "nonce": 0, "duplicate": True}
        assert len(cdp.sends()) == 2 and len(cdp.sent) == 1  # asked twice, sent once (CDP's idempotency)
        assert cdp.sends()[0].headers["X-Idempotency-Key"] == cdp.sends()[1].headers["X-Idempotency-Key"]
        assert cdp.sends()[0].body == cdp.sends()[1].body  # the ledger's bytes, not a rebuilt transaction
        assert usdc.balance_of(to) == 3 * USDC and usdc.next_nonce(address) == 1
        (row,) = ledger_rows(tmp_path)
        assert (row["tx_hash"], row["status"]) == (cdp.sent[0], "confirmed")

        # A lost answer is also settled by asking for the status.
        cdp.lose_responses = 1
        assert (await refused(session, "transfer", **{**args, "idempotency_key": "status-me"}))["error"] == (
            "chain_unavailable"
        )
        status = await ok(session, "transaction_status", **ACME, idempotency_key="status-me")
        assert (status["tx_hash"], status["status"], status["nonce"]) == (cdp.sent[1], "confirmed", 1)
        assert usdc.balance_of(to) == 6 * USDC and len(cdp.sent) == 2


async def test_refusals_send_nothing(node: Anvil, usdc: TestUSDC, cdp: FakeCdp, keys: TestKeys, tmp_path: Path) -> None:
    to = payee()
    async with wallet_session(tmp_path, cdp, node, credentials(keys)) as session:
        address = await funded(session, usdc, ACME, 5)
        base = {**ACME, "to": to, "amount": USDC, "idempotency_key": "k"}
        too_much = await refused(session, "transfer", **{**base, "amount": 5 * USDC + 1})
        assert too_much["error"] == "insufficient_funds" and "5.000000 USDC" in too_much["message"]
        cases: list[tuple[dict[str, Any], str]] = [
            ({"amount": 0}, "invalid_amount"),
            ({"to": PAYEE.replace("bEEF", "BEEf")}, "invalid_address"),
            ({"idempotency_key": "has space"}, "invalid_idempotency_key"),
        ]
        for change, code in cases:
            assert (await refused(session, "transfer", **{**base, **change}))["error"] == code, change
        poor = {"tenant_id": "acme", "agent_id": "poor"}
        poor_address = str((await ok(session, "balance", **poor))["address"])
        assert usdc.mint(poor_address, USDC).succeeded
        no_gas = await refused(session, "transfer", **{**poor, "to": to, "amount": 1, "idempotency_key": "k"})
        assert no_gas["error"] == "insufficient_funds" and "gas" in no_gas["message"]
        assert cdp.sends() == [] and ledger_rows(tmp_path) == []
        assert usdc.balance_of(address) == 5 * USDC and usdc.next_nonce(address) == 0


async def test_a_send_cdp_refuses_outright_leaves_no_row_and_no_nonce_gap(
    node: Anvil, usdc: TestUSDC, cdp: FakeCdp, keys: TestKeys, tmp_path: Path
) -> None:
    to = payee()
    async with wallet_session(tmp_path, cdp, node, credentials(keys)) as session:
        address = await funded(session, usdc, ACME, 10)
        cdp.refuse_sends = True
        policy = await refused(session, "transfer", **ACME, to=to, amount=USDC, idempotency_key="blocked")
        assert policy["error"] == "wallet_unavailable" and "policy_violation" in policy["message"]
        assert ledger_rows(tmp_path) == [] and cdp.sent == []
        cdp.refuse_sends = False
        sent = await ok(session, "transfer", **ACME, to=to, amount=USDC, idempotency_key="allowed")
        assert (sent["status"], sent["nonce"]) == ("confirmed", 0)  # the refused send's nonce was not kept
        # The refused key was never spent: once the policy allows it, it is a new transfer (new bytes, new CDP key).
        later = await ok(session, "transfer", **ACME, to=to, amount=USDC, idempotency_key="blocked")
        assert (later["status"], later["nonce"], later["duplicate"]) == ("confirmed", 1, False)
        assert usdc.balance_of(to) == 2 * USDC and usdc.next_nonce(address) == 2
        assert len({r.headers["X-Idempotency-Key"] for r in cdp.sends()}) == 3


async def test_credentials_missing_or_wrong_are_wallet_unavailable_naming_the_secret(
    node: Anvil, cdp: FakeCdp, keys: TestKeys, tmp_path: Path
) -> None:
    missing = {k: v for k, v in credentials(keys).items() if k != "CHIMERA_SECRET_CDP_WALLET_SECRET"}
    async with wallet_session(tmp_path, cdp, node, missing) as session:
        tools = {t.name for t in (await session.list_tools()).tools}
        assert tools >= {"balance", "transfer", "pay_request", "transaction_status", "list_transactions"}
        down = await refused(session, "balance", **ACME)
        assert down["error"] == "wallet_unavailable"
        assert "cdp/wallet-secret" in down["message"] and "CHIMERA_SECRET_CDP_WALLET_SECRET" in down["message"]
        assert (await ok(session, "list_transactions", **ACME))["transactions"] == []
    assert cdp.requests == []  # nothing was asked of CDP without the credentials

    impostor = TestKeys.generate()
    for name, wrong in [
        ("CHIMERA_SECRET_CDP_API_KEY_SECRET", impostor.api_key_secret),  # a key CDP does not know
        ("CHIMERA_SECRET_CDP_WALLET_SECRET", impostor.wallet_secret),  # account writes need the wallet secret
    ]:
        async with wallet_session(tmp_path, cdp, node, {**credentials(keys), name: wrong}) as session:
            denied = await refused(session, "balance", **ACME)
        assert denied["error"] == "wallet_unavailable" and "401 unauthorized" in denied["message"]
        assert "cdp/api-key-secret" in denied["message"] and "cdp/wallet-secret" in denied["message"]
        for secret in (wrong, keys.api_key_secret, keys.wallet_secret):
            assert secret not in denied["message"]
    assert cdp.account_names() == {}

    async with wallet_session(
        tmp_path, cdp, node, {**credentials(keys), "CHIMERA_SECRET_CDP_API_KEY_SECRET": "not-a-key"}
    ) as session:
        garbled = await refused(session, "balance", **ACME)
    assert garbled["error"] == "wallet_unavailable" and "cdp/api-key-secret" in garbled["message"]
    assert "not-a-key" not in garbled["message"]


async def test_cdp_5xx_is_chain_unavailable_and_the_key_retries_to_one_transfer(
    node: Anvil, usdc: TestUSDC, cdp: FakeCdp, keys: TestKeys, tmp_path: Path
) -> None:
    to = payee()
    async with wallet_session(tmp_path, cdp, node, credentials(keys)) as session:
        await funded(session, usdc, ACME, 10)
        args = {**ACME, "to": to, "amount": USDC, "idempotency_key": "through-an-outage"}
        for status in (500, 503):
            cdp.fail_status = status
            down = await refused(session, "balance", **ACME)
            assert down["error"] == "chain_unavailable" and down["retry_after_seconds"] == 5
            assert str(status) in down["message"]
            sent = await refused(session, "transfer", **args)
            assert sent["error"] == "chain_unavailable"
        (row,) = ledger_rows(tmp_path)
        assert row["status"] == "pending"  # a 5xx is an unknown outcome: the row stays for the retry
        cdp.fail_status = None
        done = await ok(session, "transfer", **args)
        assert (done["status"], done["duplicate"]) == ("confirmed", True)
        assert usdc.balance_of(to) == USDC and len(cdp.sent) == 1


async def test_a_chain_that_is_not_the_network_is_refused(
    node: Anvil, cdp: FakeCdp, keys: TestKeys, tmp_path: Path
) -> None:
    async with wallet_session(tmp_path, cdp, node, credentials(keys), CHIMERA_CDP_NETWORK="base") as session:
        wrong = await refused(session, "transfer", **ACME, to=PAYEE, amount=USDC, idempotency_key="k")
    assert wrong["error"] == "chain_unavailable" and "84532" in wrong["message"] and "8453)" in wrong["message"]
    assert cdp.sends() == []


async def test_no_key_material_in_the_wallets_files(
    node: Anvil, usdc: TestUSDC, cdp: FakeCdp, keys: TestKeys, tmp_path: Path
) -> None:
    async with wallet_session(tmp_path, cdp, node, credentials(keys)) as session:
        await funded(session, usdc, ACME, 10)
        await ok(session, "transfer", **ACME, to=payee(), amount=USDC, idempotency_key="a")
        cdp.lose_responses = 1
        await refused(session, "transfer", **ACME, to=payee(), amount=USDC, idempotency_key="b")
    assert_no_key_material(tmp_path, cdp.account_keys(), [keys.api_key_secret, keys.wallet_secret])


def assert_no_key_material(sandbox: Path, held: list[bytes], secrets: list[str]) -> None:
    files = [p for p in sandbox.rglob("*") if p.is_file()]
    assert ledger_path(sandbox) in files
    assert not any(p.name.endswith(".json") for p in files)  # no keystore: CDP holds the keys
    assert len(held) == 1
    for path in files:
        data = path.read_bytes()
        for key in held:
            assert key not in data and key.hex().encode() not in data, path
        assert not any(secret.encode() in data for secret in secrets), path


def test_the_allowlist_passes_the_cdp_settings_to_the_server() -> None:
    assert {
        "CHIMERA_WALLET_BACKEND",
        "CHIMERA_CDP_NETWORK",
        "CHIMERA_CDP_BASE_URL",
        "CHIMERA_SECRET_CDP_API_KEY_ID",
        "CHIMERA_SECRET_CDP_API_KEY_SECRET",
        "CHIMERA_SECRET_CDP_WALLET_SECRET",
    } <= set(WALLET_ENV)


def test_names_keys_and_backend_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_servers.wallet.backends import wallet_backend_from_env
    from mcp_servers.wallet.cdp_backend import CdpWallet
    from mcp_servers.wallet.sandbox import SandboxWallet

    name = account_name("acme", "ava")
    assert len(name) == 36 and name == account_name("acme", "ava") != account_name("acme", "avb")
    key = cdp_idempotency_key("base-sepolia", "acme", "ava", "k", b"\x02tx")
    assert uuid.UUID(key).version == 4 and key == cdp_idempotency_key("base-sepolia", "acme", "ava", "k", b"\x02tx")
    assert key != cdp_idempotency_key("base-sepolia", "acme", "ava", "k", b"\x02other")
    assert (
        key
        != cdp_idempotency_key("base", "acme", "ava", "k", b"\x02tx")
        != cdp_idempotency_key("base-sepolia", "acme", "bob", "k", b"\x02tx")
    )
    assert {n: Web3.is_checksum_address(net.usdc) for n, net in NETWORKS.items()} == {
        "base-sepolia": True,
        "base": True,
    }

    monkeypatch.delenv("CHIMERA_WALLET_BACKEND", raising=False)
    assert isinstance(wallet_backend_from_env(tmp_path), SandboxWallet)
    monkeypatch.setenv("CHIMERA_WALLET_BACKEND", "cdp")
    chosen = wallet_backend_from_env(tmp_path)
    assert isinstance(chosen, CdpWallet) and chosen.network.name == "base-sepolia"
    monkeypatch.setenv("CHIMERA_CDP_NETWORK", "ethereum")
    with pytest.raises(ValueError, match="CHIMERA_CDP_NETWORK"):
        wallet_backend_from_env(tmp_path)
    monkeypatch.setenv("CHIMERA_WALLET_BACKEND", "live")
    with pytest.raises(ValueError, match="CHIMERA_WALLET_BACKEND"):
        wallet_backend_from_env(tmp_path)
