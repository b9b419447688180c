"""The sandbox chain on a real anvil subprocess: runtime, TestUSDC, and agents' locally signed transfers.

One anvil serves the module (state-file tests start their own). Without the anvil binary (`make chain`)
the module is skipped, loudly; with CI set it fails instead.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import Web3RPCError

from chimera.chain.anvil import ANVIL_BIN_ENV, Anvil, AnvilError, AnvilNotInstalledError, find_anvil
from chimera.chain.keystore import AgentSigner, Keystore
from chimera.chain.token import TestUSDC, TransferRevertedError

USDC = 10**6


@pytest.fixture(scope="module")
def anvil_bin() -> Path:
    try:
        return find_anvil()
    except AnvilNotInstalledError as exc:
        message = f"anvil NOT TESTED: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def node(anvil_bin: Path) -> Iterator[Anvil]:
    with Anvil(binary=anvil_bin) as running:
        yield running


@pytest.fixture(scope="module")
def w3(node: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(node.url))


@pytest.fixture(scope="module")
def token(w3: Web3) -> TestUSDC:
    return TestUSDC.deploy(w3)


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> Keystore:
    return Keystore(tmp_path_factory.mktemp("keys"), "test-password", scrypt_n=2**14)


_agents = iter(range(1000))


@pytest.fixture
def funded(token: TestUSDC, keystore: Keystore) -> AgentSigner:
    """A new agent with 100 USDC and gas money."""
    agent = f"agent-{next(_agents)}"
    address = keystore.create("acme", agent)
    assert token.mint(address, 100 * USDC).succeeded
    assert token.fund_gas(address, 10**18).succeeded
    return keystore.unlock("acme", agent)


@pytest.fixture
def payee(keystore: Keystore) -> str:
    return keystore.create("acme", f"payee-{next(_agents)}")


def test_anvil_answers_on_loopback_with_its_chain_id(node: Anvil, w3: Web3) -> None:
    assert node.running and node.url.startswith("http://127.0.0.1:")
    assert node.rpc("eth_chainId") == hex(31337)
    assert w3.eth.chain_id == 31337


def test_stop_ends_the_process_and_frees_the_port(anvil_bin: Path) -> None:
    other = Anvil(binary=anvil_bin, chain_id=84532)
    other.start()
    port = other.port
    assert other.rpc("eth_chainId") == hex(84532)
    other.stop()
    assert not other.running
    with pytest.raises(AnvilError, match="not running"):
        other.url  # noqa: B018
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_a_missing_binary_names_make_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ANVIL_BIN_ENV, str(tmp_path / "no-anvil"))
    with pytest.raises(AnvilNotInstalledError, match=r"make chain.*CHIMERA_ANVIL_BIN"):
        find_anvil()
    with pytest.raises(AnvilNotInstalledError):
        Anvil().start()


def test_the_token_is_a_six_decimal_usdc(token: TestUSDC, w3: Web3) -> None:
    functions = token.contract.functions
    assert (functions.decimals().call(), functions.symbol().call(), functions.name().call()) == (6, "USDC", "USD Coin")
    assert functions.owner().call() == token.owner == w3.eth.accounts[0]
    assert w3.eth.get_code(token.address) != b""


def test_mint_raises_the_balance_and_the_supply(token: TestUSDC, payee: str) -> None:
    supply = token.total_supply()
    receipt = token.mint(payee, 5 * USDC)
    assert receipt.succeeded and receipt.block_number > 0 and receipt.gas_used > 0
    assert token.balance_of(payee) == 5 * USDC
    assert token.total_supply() == supply + 5 * USDC


def test_a_locally_signed_transfer_moves_the_tokens(token: TestUSDC, funded: AgentSigner, payee: str) -> None:
    tx_hash = token.transfer(funded, payee, 30 * USDC, nonce=0)
    receipt = token.wait_for_receipt(tx_hash)
    assert receipt.succeeded and receipt.tx_hash == tx_hash
    assert (token.balance_of(funded.address), token.balance_of(payee)) == (70 * USDC, 30 * USDC)
    assert token.next_nonce(funded.address) == 1
    (event,) = token.contract.events.Transfer().process_receipt(token.w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
    assert (event["args"]["from"], event["args"]["to"], event["args"]["value"]) == (funded.address, payee, 30 * USDC)


def test_nonces_order_transfers_and_a_used_nonce_is_refused(token: TestUSDC, funded: AgentSigner, payee: str) -> None:
    later = token.transfer(funded, payee, 2 * USDC, nonce=1)  # waits in the pool for nonce 0
    time.sleep(0.2)
    assert token.receipt(later) is None and token.confirmations(later) == 0
    earlier = token.transfer(funded, payee, 1 * USDC, nonce=0)
    first, second = token.wait_for_receipt(earlier), token.wait_for_receipt(later)
    assert first.succeeded and second.succeeded
    assert (first.block_number, first.transaction_index) < (second.block_number, second.transaction_index)
    assert token.balance_of(payee) == 3 * USDC
    with pytest.raises(Web3RPCError, match="nonce too low"):
        token.transfer(funded, payee, 1 * USDC, nonce=0)
    assert token.balance_of(payee) == 3 * USDC


def test_confirmations_grow_as_blocks_are_mined(token: TestUSDC, funded: AgentSigner, payee: str, node: Anvil) -> None:
    tx_hash = token.transfer(funded, payee, 1 * USDC)
    token.wait_for_receipt(tx_hash)
    assert token.confirmations(tx_hash) == 1
    node.mine(3)
    assert token.confirmations(tx_hash) == 4
    node.mine()
    assert token.confirmations(tx_hash) == 5


def test_more_than_the_balance_is_refused_with_the_contracts_reason(
    token: TestUSDC, funded: AgentSigner, payee: str
) -> None:
    with pytest.raises(
        TransferRevertedError, match=r"ERC20InsufficientBalance\(sender=0x\w+, balance=100000000, needed=100000001\)"
    ):
        token.transfer(funded, payee, 100 * USDC + 1)
    assert token.next_nonce(funded.address) == 0  # nothing was sent
    assert token.balance_of(payee) == 0


def test_bad_amounts_are_refused_before_the_chain(token: TestUSDC, funded: AgentSigner, payee: str) -> None:
    for amount in (0, -1, True):
        with pytest.raises(ValueError, match="positive whole number"):
            token.transfer(funded, payee, amount)


def test_the_chain_and_the_token_survive_a_restart_with_a_state_file(
    anvil_bin: Path, tmp_path: Path, keystore: Keystore
) -> None:
    state, record = tmp_path / "anvil-state.json", tmp_path / "token.json"
    holder = keystore.create("acme", "survivor")
    with Anvil(binary=anvil_bin, state_path=state) as first:
        token = TestUSDC.load_or_deploy(Web3(Web3.HTTPProvider(first.url)), record)
        token.mint(holder, 7 * USDC)
        first.mine(2)
        height = token.w3.eth.block_number
    assert state.is_file() and record.is_file()
    with Anvil(binary=anvil_bin, state_path=state) as second:
        again = TestUSDC.load_or_deploy(Web3(Web3.HTTPProvider(second.url)), record)
        assert again.address == token.address
        assert again.balance_of(holder) == 7 * USDC
        assert again.w3.eth.block_number == height
    with Anvil(binary=anvil_bin) as fresh:  # a chain without the old state: the record is stale, so redeploy
        fresh_token = TestUSDC.load_or_deploy(Web3(Web3.HTTPProvider(fresh.url)), record)
        assert fresh_token.balance_of(holder) == 0
        assert fresh_token.w3.eth.get_code(fresh_token.address) != b""
