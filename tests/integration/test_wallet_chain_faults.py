"""The sandbox wallet against a real anvil when the chain misbehaves: a transaction the node dropped from its
pool, a nonce gap left by one, and a chain that stops answering mid-payment. Automining is switched off so
transactions wait in the pool as on a real network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chimera.chain.anvil import Anvil
from chimera.secrets.env import EnvSecrets
from mcp_servers.wallet.sandbox import SandboxWallet
from tests.helpers.chain import running_anvil
from tests.integration.test_wallet_server import PAYEE, USDC, token_of


@pytest.fixture
def node() -> Iterator[Anvil]:
    yield from running_anvil()


@pytest.fixture
def wallet(node: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SandboxWallet:
    monkeypatch.setattr("mcp_servers.wallet.sandbox.RECEIPT_WAIT_SECONDS", 0.5)  # the pool holds them: do not wait
    w = SandboxWallet(node.url, tmp_path / "wallet", EnvSecrets(), scrypt_n=2**14)
    address = w.address("acme", "ava")
    token = token_of(node, tmp_path)
    assert token.mint(address, 10 * USDC).succeeded and token.fund_gas(address, 10**18).succeeded
    node.rpc("evm_setAutomine", [False])
    return w


def pool(node: Anvil) -> list[str]:
    content = node.rpc("txpool_content")
    return [tx["hash"] for by_sender in content["pending"].values() for tx in by_sender.values()]


def test_a_dropped_transaction_is_rebroadcast_with_the_same_bytes(
    node: Anvil, wallet: SandboxWallet, tmp_path: Path
) -> None:
    sent = wallet.transfer("acme", "ava", PAYEE, 2 * USDC, "drop-me")
    assert sent["status"] == "pending" and pool(node) == [sent["tx_hash"]]
    node.rpc("anvil_dropTransaction", [sent["tx_hash"]])
    node.mine()
    assert pool(node) == [] and token_of(node, tmp_path).balance_of(PAYEE) == 0  # gone, nothing paid

    status = wallet.transaction_status("acme", "ava", idempotency_key="drop-me")  # sees no receipt: resends
    assert status["status"] == "pending" and pool(node) == [sent["tx_hash"]]
    node.mine()
    done = wallet.transaction_status("acme", "ava", idempotency_key="drop-me")
    assert done["status"] == "confirmed" and done["tx_hash"] == sent["tx_hash"] and done["confirmations"] == 1
    node.mine(2)
    assert wallet.transaction_status("acme", "ava", idempotency_key="drop-me")["confirmations"] == 3
    assert token_of(node, tmp_path).balance_of(PAYEE) == 2 * USDC


def test_a_nonce_gap_left_by_a_dropped_transfer_is_filled_before_the_next(
    node: Anvil, wallet: SandboxWallet, tmp_path: Path
) -> None:
    first = wallet.transfer("acme", "ava", PAYEE, 1 * USDC, "first")
    node.rpc("anvil_dropTransaction", [first["tx_hash"]])  # nonce 0 is now missing from the pool
    second = wallet.transfer("acme", "ava", PAYEE, 2 * USDC, "second")
    assert (first["nonce"], second["nonce"]) == (0, 1)
    assert sorted(pool(node)) == sorted([first["tx_hash"], second["tx_hash"]])  # the gap was filled first
    node.mine()
    for key in ("first", "second"):
        assert wallet.transaction_status("acme", "ava", idempotency_key=key)["status"] == "confirmed"
    assert token_of(node, tmp_path).balance_of(PAYEE) == 3 * USDC


def test_a_transfer_over_the_balance_is_refused_before_anything_is_signed(node: Anvil, wallet: SandboxWallet) -> None:
    from mcp_servers.common import ToolError

    with pytest.raises(ToolError) as refused:
        wallet.transfer("acme", "ava", PAYEE, 11 * USDC, "too-much")
    assert refused.value.code == "insufficient_funds" and "10.000000 USDC" in refused.value.message
    assert pool(node) == [] and wallet.list_transactions("acme", "ava", 10) == []
