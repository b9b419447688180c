"""TestUSDC, the sandbox chain's USDC-like token (6 decimals, owner mint, EIP-3009), through web3 (specs/chain.md).

The token is deployed from the committed artifact (chimera/chain/artifacts/TestUSDC.json, built once by
chimera/chain/contracts/compile.mjs): nothing is compiled at run time. The deployer and owner is one of the
node's own unlocked dev accounts, which mints and pays for gas; agents' transfers are signed locally
(keystore.AgentSigner) with explicit nonces and sent raw.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from eth_abi.abi import decode as abi_decode
from eth_typing import ChecksumAddress
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound
from web3.types import TxParams, TxReceipt, Wei

ARTIFACT_PATH = Path(__file__).parent / "artifacts" / "TestUSDC.json"
DECIMALS = 6
GAS_MARGIN = 1.2  # estimates are exact for the current state; a little headroom for a changed one


class TokenError(Exception):
    """The token is not deployed where its record says, or a call to it failed."""


class TransferRevertedError(TokenError):
    """The chain refused a token transaction; the message names the contract's error and its arguments."""


class Signer(Protocol):
    """What signs an agent's transactions (keystore.AgentSigner)."""

    @property
    def address(self) -> ChecksumAddress: ...

    def sign_transaction(self, transaction: dict[str, Any]) -> bytes: ...


@dataclass(frozen=True)
class Receipt:
    """What the chain recorded for one mined transaction."""

    tx_hash: str
    status: int  # 1 success, 0 reverted
    block_number: int
    transaction_index: int  # the position in its block: transactions of one sender are mined in nonce order
    gas_used: int

    @property
    def succeeded(self) -> bool:
        return self.status == 1


@cache
def load_artifact() -> dict[str, Any]:
    """The committed TestUSDC artifact: abi, bytecode, compiler and OpenZeppelin versions."""
    artifact: dict[str, Any] = json.loads(ARTIFACT_PATH.read_text())
    return artifact


class TestUSDC:
    """A deployed TestUSDC on the chain `w3` talks to."""

    __test__ = False  # pytest: a class named Test* that is not a test class

    def __init__(self, w3: Web3, address: str, owner: str) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.owner = to_checksum_address(owner)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=load_artifact()["abi"])

    # -- deployment ------------------------------------------------------------------------------------

    @classmethod
    def deploy(cls, w3: Web3, owner: str | None = None) -> TestUSDC:
        """Deploy a new TestUSDC owned by `owner` (default: the node's first unlocked dev account)."""
        owner_address = to_checksum_address(owner or w3.eth.accounts[0])
        artifact = load_artifact()
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx_hash = factory.constructor(owner_address).transact({"from": owner_address})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
        address = receipt.get("contractAddress")
        if receipt["status"] != 1 or address is None:
            raise TokenError(f"deploying TestUSDC failed (tx {HexBytes(tx_hash).to_0x_hex()})")
        return cls(w3, address, owner_address)

    @classmethod
    def load_or_deploy(cls, w3: Web3, record_path: Path) -> TestUSDC:
        """The token recorded in `record_path` (a small JSON next to the chain state) if the chain still has
        its code; otherwise a fresh deployment, recorded there (a chain started without its old state)."""
        chain_id = w3.eth.chain_id
        if record_path.exists():
            record = json.loads(record_path.read_text())
            if record.get("chain_id") == chain_id and w3.eth.get_code(to_checksum_address(record["address"])):
                return cls(w3, record["address"], record["owner"])
        token = cls.deploy(w3)
        record_path.parent.mkdir(parents=True, exist_ok=True)
        temp = record_path.with_suffix(".tmp")
        temp.write_text(json.dumps({"chain_id": chain_id, "address": token.address, "owner": token.owner}) + "\n")
        os.replace(temp, record_path)
        return token

    # -- reads -----------------------------------------------------------------------------------------

    def balance_of(self, address: str) -> int:
        """The balance in token units (6 decimals)."""
        balance: int = self.contract.functions.balanceOf(to_checksum_address(address)).call()
        return balance

    def total_supply(self) -> int:
        supply: int = self.contract.functions.totalSupply().call()
        return supply

    # -- writes ----------------------------------------------------------------------------------------

    def mint(self, to: str, amount: int) -> Receipt:
        """Mint `amount` units to `to`, sent by the owner (an unlocked account of the node)."""
        _check_amount(amount)
        call = self.contract.functions.mint(to_checksum_address(to), amount)
        tx_hash = self._revert_checked(call, self.owner).transact({"from": self.owner})
        return self.wait_for_receipt(HexBytes(tx_hash).to_0x_hex())

    def fund_gas(self, to: str, wei: int) -> Receipt:
        """Send `wei` of the chain's native coin from the owner to `to`, so `to` can pay for its transfers."""
        tx_hash = self.w3.eth.send_transaction({"from": self.owner, "to": to_checksum_address(to), "value": Wei(wei)})
        return self.wait_for_receipt(HexBytes(tx_hash).to_0x_hex())

    def build_transfer(self, sender: str, to: str, amount: int, *, nonce: int) -> TxParams:
        """An unsigned EIP-1559 `transfer(to, amount)` from `sender` with this exact nonce.

        Gas is estimated against the current state, so a transfer that would revert (say, more than the
        balance) raises TransferRevertedError here, before anything is signed or sent."""
        _check_amount(amount)
        if nonce < 0:
            raise ValueError(f"a nonce is never negative, got {nonce}")
        sender = to_checksum_address(sender)
        call = self._revert_checked(self.contract.functions.transfer(to_checksum_address(to), amount), sender)
        gas = int(call.estimate_gas({"from": sender}) * GAS_MARGIN)
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        priority = 1_000_000  # 0.001 gwei: anvil needs none; a tip keeps the type-2 fields meaningful
        tx: TxParams = call.build_transaction(
            {
                "from": sender,
                "chainId": self.w3.eth.chain_id,
                "nonce": nonce,
                "gas": gas,
                "maxPriorityFeePerGas": priority,
                "maxFeePerGas": 2 * base_fee + priority,
            }
        )
        return tx

    def transfer(self, signer: Signer, to: str, amount: int, *, nonce: int | None = None) -> str:
        """Sign locally and send a transfer of `amount` units from the signer's address; return the tx hash.

        `nonce` None takes the sender's next nonce, pending transactions included."""
        if nonce is None:
            nonce = self.next_nonce(signer.address)
        tx = self.build_transfer(signer.address, to, amount, nonce=nonce)
        raw = signer.sign_transaction(dict(tx))
        return HexBytes(self.w3.eth.send_raw_transaction(raw)).to_0x_hex()

    def next_nonce(self, address: str) -> int:
        """The next nonce of `address`, counting its transactions still waiting in the pool."""
        return self.w3.eth.get_transaction_count(to_checksum_address(address), "pending")

    # -- receipts --------------------------------------------------------------------------------------

    def receipt(self, tx_hash: str) -> Receipt | None:
        """The transaction's receipt, or None while it is not mined (or unknown)."""
        try:
            raw = self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None
        return _receipt(raw)

    def wait_for_receipt(self, tx_hash: str, timeout: float = 30.0) -> Receipt:
        """Wait until the transaction is mined; TokenError if it is not within `timeout` seconds."""
        try:
            raw = self.w3.eth.wait_for_transaction_receipt(HexBytes(tx_hash), timeout=timeout, poll_latency=0.05)
        except TimeExhausted:
            raise TokenError(f"transaction {tx_hash} was not mined within {timeout}s") from None
        return _receipt(raw)

    def confirmations(self, tx_hash: str) -> int:
        """Blocks since inclusion, counting the including block: 0 while pending, 1 once mined, then +1 a block."""
        found = self.receipt(tx_hash)
        if found is None:
            return 0
        return self.w3.eth.block_number - found.block_number + 1

    # -- helpers ---------------------------------------------------------------------------------------

    def _revert_checked(self, call: Any, sender: ChecksumAddress) -> Any:
        """`call`, after a dry run (eth_call) that turns a revert into TransferRevertedError with its reason."""
        try:
            call.call({"from": sender})
        except ContractLogicError as exc:
            raise TransferRevertedError(
                f"{call.fn_name} from {sender} would revert: {self.explain_revert(exc.data, exc.message)}"
            ) from None
        return call

    def explain_revert(self, data: Any, fallback: str | None = None) -> str:
        """A contract custom error's revert data as `Name(arg=value, ...)`, from the artifact's ABI."""
        payload = HexBytes(data) if isinstance(data, str | bytes) and data else HexBytes(b"")
        for error in _abi_errors():
            if payload[:4] == error.selector:
                values = abi_decode(list(error.types), bytes(payload[4:]))
                args = ", ".join(f"{name}={value}" for name, value in zip(error.names, values, strict=True))
                return f"{error.name}({args})"
        return fallback or (payload.to_0x_hex() if payload else "reverted without a reason")

    def __repr__(self) -> str:
        return f"TestUSDC({self.address} on chain {self.w3.eth.chain_id})"


@dataclass(frozen=True)
class _AbiError:
    name: str
    names: tuple[str, ...]
    types: tuple[str, ...]
    selector: bytes


@cache
def _abi_errors() -> tuple[_AbiError, ...]:
    errors = []
    for entry in load_artifact()["abi"]:
        if entry["type"] == "error":
            types = tuple(i["type"] for i in entry["inputs"])
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            errors.append(_AbiError(entry["name"], tuple(i["name"] for i in entry["inputs"]), types, selector))
    return tuple(errors)


def _receipt(raw: TxReceipt) -> Receipt:
    return Receipt(
        tx_hash=HexBytes(raw["transactionHash"]).to_0x_hex(),
        status=int(raw["status"]),
        block_number=int(raw["blockNumber"]),
        transaction_index=int(raw["transactionIndex"]),
        gas_used=int(raw["gasUsed"]),
    )


def _check_amount(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValueError(f"an amount is a positive whole number of token units, got {amount!r}")
