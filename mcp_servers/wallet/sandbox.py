"""The sandbox wallet backend: TestUSDC on a local anvil, agents' keys in the encrypted Keystore.

Configuration: CHIMERA_WALLET_RPC_URL (the anvil JSON-RPC URL) and CHIMERA_SANDBOX_DIR; under
`<sandbox>/wallet/` live the token record (token.json), the keystore (keys/), its generated password when no
secret is configured (keystore-password) and the idempotency ledger (ledger.sqlite3). The server starts without a
chain; each call that needs one answers `chain_unavailable` until it is reachable.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from web3 import Web3
from web3.exceptions import Web3Exception, Web3RPCError

from chimera.chain.keystore import ID_PATTERN, AgentSigner, Keystore, KeystoreError, keystore_password
from chimera.chain.token import TestUSDC, TokenError, TransferRevertedError
from chimera.secrets.base import SecretSource
from mcp_servers.common import ToolError
from mcp_servers.wallet.backend import ASSET, display
from mcp_servers.wallet.checks import check_key, checked_transfer
from mcp_servers.wallet.ledger import Entry, Ledger, now
from mcp_servers.wallet.sandbox_x402 import SandboxX402, listed

RPC_URL_ENV = "CHIMERA_WALLET_RPC_URL"
SCRYPT_N_ENV = "CHIMERA_WALLET_SCRYPT_N"  # scrypt work factor for new keys; tests lower it, default eth-account's
UNAVAILABLE_RETRY_SECONDS = 5.0
RECEIPT_WAIT_SECONDS = 5.0  # anvil mines at once; a slower chain answers "pending" and status tells the rest
T = TypeVar("T")


class SandboxWallet:
    """A WalletBackend and X402Payer over one anvil chain and one sandbox dir."""

    def __init__(
        self, rpc_url: str | None, wallet_dir: Path, secrets: SecretSource, *, scrypt_n: int | None = None
    ) -> None:
        self._rpc_url = rpc_url
        self._dir = wallet_dir
        self._secrets = secrets
        self._scrypt_n = scrypt_n
        self._lock = threading.Lock()
        self._token: TestUSDC | None = None
        self._keystore: Keystore | None = None
        self._ledger: Ledger | None = None
        self._signers: dict[tuple[str, str], AgentSigner] = {}
        self._x402 = SandboxX402(self)

    # -- setup, lazily: tools/list needs none of it ----------------------------------------------------

    def _chain(self) -> TestUSDC:
        if self._token is not None:
            return self._token
        if not self._rpc_url:
            raise ToolError("chain_unavailable", f"no chain is configured ({RPC_URL_ENV} is not set)")
        w3 = Web3(Web3.HTTPProvider(self._rpc_url, request_kwargs={"timeout": 10}))
        self._token = self._guarded(lambda: TestUSDC.load_or_deploy(w3, self._dir / "token.json"))
        return self._token

    def _guarded(self, action: Callable[[], T]) -> T:
        """Chain calls: an unreachable node becomes `chain_unavailable` (retry later)."""
        try:
            return action()
        except (OSError, TokenError, Web3RPCError) as exc:
            if isinstance(exc, TransferRevertedError):
                raise
            raise ToolError(
                "chain_unavailable", f"the chain at {self._rpc_url} did not answer: {exc}", UNAVAILABLE_RETRY_SECONDS
            ) from exc

    def _keys(self) -> Keystore:
        if self._keystore is None:
            self._keystore = Keystore(
                self._dir / "keys", keystore_password(self._secrets, self._dir), scrypt_n=self._scrypt_n
            )
        return self._keystore

    def _book(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self._dir / "ledger.sqlite3")
        return self._ledger

    def address(self, tenant_id: str, agent_id: str) -> str:
        """The agent's address; its key is made (and stored encrypted) on first use."""
        for kind, value in (("tenant", tenant_id), ("agent", agent_id)):
            if not isinstance(value, str) or not ID_PATTERN.match(value):
                raise ToolError("invalid_id", f"invalid {kind} id {value!r}")
        keys = self._keys()
        try:
            with self._lock:
                if not keys.path(tenant_id, agent_id).exists():
                    try:
                        return keys.create(tenant_id, agent_id)
                    except KeystoreError:
                        if not keys.path(tenant_id, agent_id).exists():
                            raise  # not another process's key made just now
            return keys.address(tenant_id, agent_id)
        except KeystoreError as exc:
            raise ToolError("wallet_unavailable", str(exc)) from exc

    def _signer(self, tenant_id: str, agent_id: str) -> AgentSigner:
        self.address(tenant_id, agent_id)
        found = self._signers.get((tenant_id, agent_id))
        if found is None:
            try:
                found = self._keys().unlock(tenant_id, agent_id)
            except KeystoreError as exc:
                raise ToolError("wallet_unavailable", str(exc)) from exc
            self._signers[(tenant_id, agent_id)] = found
        return found

    # -- tools -----------------------------------------------------------------------------------------

    def balance(self, tenant_id: str, agent_id: str) -> dict[str, Any]:
        address = self.address(tenant_id, agent_id)
        token = self._chain()
        amount = self._guarded(lambda: token.balance_of(address))
        native = self._guarded(lambda: int(token.w3.eth.get_balance(Web3.to_checksum_address(address))))
        return {"address": address, "asset": ASSET, "amount": amount, "display": display(amount), "native_wei": native}

    def transfer(
        self,
        tenant_id: str,
        agent_id: str,
        to: str,
        amount: int,
        idempotency_key: str,
        *,
        memo: str | None = None,
        reference: str | None = None,
        kind: str = "transfer",
    ) -> dict[str, Any]:
        recipient = checked_transfer(to, amount, idempotency_key, memo)
        signer = self._signer(tenant_id, agent_id)
        token = self._chain()
        with self._book().writing() as conn:
            known = Ledger.find(conn, tenant_id, agent_id, idempotency_key)
            if known is None and Ledger.key_used(conn, tenant_id, agent_id, idempotency_key):
                raise ToolError(
                    "idempotency_conflict", f"idempotency_key {idempotency_key!r} was used for an x402 payment"
                )
            if known is None:
                entry = self._signed(conn, token, signer, tenant_id, agent_id, idempotency_key, kind, recipient, amount)
                entry = replace(entry, reference=reference, memo=memo)
                Ledger.insert(conn, entry)  # committed before the broadcast below
        if known is not None:
            if not known.same_request(kind, recipient, amount, reference, memo):
                raise ToolError(
                    "idempotency_conflict",
                    f"idempotency_key {idempotency_key!r} was used for a different payment ({known.tx_hash})",
                )
            return self._settled(token, known, duplicate=True)
        return self._settled(token, entry, duplicate=False)

    def _signed(
        self,
        conn: sqlite3.Connection,
        token: TestUSDC,
        signer: AgentSigner,
        tenant_id: str,
        agent_id: str,
        key: str,
        kind: str,
        to: str,
        amount: int,
    ) -> Entry:
        """Dry-run, build and sign the transfer (nothing is sent): insufficient funds are refused here."""
        sender = signer.address
        pending = self._guarded(lambda: token.next_nonce(sender))
        unmined = Ledger.highest_unmined_nonce(conn, sender)  # signed, not yet mined: the chain may not know it
        nonce = pending if unmined is None else max(pending, unmined + 1)
        try:
            tx = self._guarded(lambda: token.build_transfer(sender, to, amount, nonce=nonce))
        except TransferRevertedError as exc:
            held = token.balance_of(sender)
            raise ToolError(
                "insufficient_funds", f"the wallet holds {display(held)}, less than {display(amount)} ({exc})"
            ) from exc
        gas_cost = int(tx["gas"]) * int(tx["maxFeePerGas"])
        native = self._guarded(lambda: int(token.w3.eth.get_balance(sender)))
        if native < gas_cost:
            raise ToolError("insufficient_funds", f"the wallet has {native} wei for gas, the transfer needs {gas_cost}")
        raw = signer.sign_transaction(dict(tx))
        return Entry(
            tenant_id=tenant_id,
            agent_id=agent_id,
            idempotency_key=key,
            kind=kind,
            sender=sender,
            to_address=to,
            amount=amount,
            asset=ASSET,
            reference=None,
            memo=None,
            nonce=nonce,
            tx_hash=Web3.keccak(raw).to_0x_hex(),
            raw_tx=raw,
            status="pending",
            block_number=None,
            created_at=now(),
        )

    def _settled(self, token: TestUSDC, entry: Entry, *, duplicate: bool) -> dict[str, Any]:
        """Broadcast the ledger's signed bytes unless the chain already has them, then wait briefly for a receipt."""
        if entry.status == "pending":
            receipt = self._guarded(lambda: token.receipt(entry.tx_hash))
            if receipt is None:
                # A node that dropped an earlier transfer of this sender (a nonce gap) holds every later one.
                for earlier in self._book().unmined_before(entry.sender, entry.nonce):
                    if self._guarded(functools.partial(token.receipt, earlier.tx_hash)) is None:
                        self._broadcast(token, earlier.raw_tx)
                self._broadcast(token, entry.raw_tx)
                try:
                    receipt = token.wait_for_receipt(entry.tx_hash, timeout=RECEIPT_WAIT_SECONDS)
                except (TokenError, OSError, Web3Exception):
                    receipt = None
            if receipt is not None:
                status = "confirmed" if receipt.succeeded else "failed"
                self._book().set_status(entry.tx_hash, status, receipt.block_number)
                entry = replace(entry, status=status, block_number=receipt.block_number)
        return {"tx_hash": entry.tx_hash, "status": entry.status, "nonce": entry.nonce, "duplicate": duplicate}

    def _broadcast(self, token: TestUSDC, raw: bytes) -> None:
        try:
            self._guarded(lambda: token.w3.eth.send_raw_transaction(raw))
        except ToolError as exc:
            # "already known" / "nonce too low": the same bytes are in the pool or mined already.
            if not isinstance(exc.__cause__, Web3RPCError):
                raise

    def transaction_status(
        self, tenant_id: str, agent_id: str, *, tx_hash: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        if (tx_hash is None) == (idempotency_key is None):
            raise ToolError("invalid_arguments", "give exactly one of tx_hash and idempotency_key")
        if idempotency_key is not None:
            check_key(idempotency_key)
        entry = self._book().get(tenant_id, agent_id, key=idempotency_key, tx_hash=tx_hash)
        if entry is None:
            paid = self._book().get_x402(tenant_id, agent_id, key=idempotency_key, tx_hash=tx_hash)
            if paid is not None:
                return self._x402.status(paid)
            what = f"idempotency_key {idempotency_key!r}" if idempotency_key is not None else f"tx_hash {tx_hash!r}"
            raise ToolError("not_found", f"this wallet has no transaction with {what}")
        token = self._chain()
        if entry.status == "pending":
            self._settled(token, entry, duplicate=True)
        entry = self._book().get(tenant_id, agent_id, key=entry.idempotency_key) or entry
        confirmations = self._guarded(lambda: token.confirmations(entry.tx_hash)) if entry.status != "pending" else 0
        return {
            "tx_hash": entry.tx_hash,
            "status": entry.status,
            "confirmations": confirmations,
            "block_number": entry.block_number,
            "nonce": entry.nonce,
            "kind": entry.kind,
        }

    def list_transactions(self, tenant_id: str, agent_id: str, limit: int) -> list[dict[str, Any]]:
        if isinstance(limit, bool) or not 1 <= limit <= 100:
            raise ToolError("invalid_limit", f"limit is 1 to 100, got {limit!r}")
        book = self._book()
        rows = [_listed(e) for e in book.recent(tenant_id, agent_id, limit)]
        rows += [listed(e) for e in book.recent_x402(tenant_id, agent_id, limit)]
        rows.sort(key=lambda r: r["created_at"], reverse=True)  # stable: a transfers tie keeps its nonce order
        return rows[:limit]

    # -- x402 (the X402Payer protocol) -----------------------------------------------------------------

    def x402_quote(self, tenant_id: str, agent_id: str, url: str) -> dict[str, Any]:
        return self._x402.quote(tenant_id, agent_id, url)

    def pay_x402(
        self, tenant_id: str, agent_id: str, url: str, max_amount: int, pay_to: str, idempotency_key: str
    ) -> dict[str, Any]:
        return self._x402.pay(tenant_id, agent_id, url, max_amount, pay_to, idempotency_key)


def _listed(entry: Entry) -> dict[str, Any]:
    return {
        "tx_hash": entry.tx_hash,
        "idempotency_key": entry.idempotency_key,
        "kind": entry.kind,
        "to": entry.to_address,
        "amount": entry.amount,
        "asset": entry.asset,
        "reference": entry.reference,
        "memo": entry.memo,
        "status": entry.status,
        "nonce": entry.nonce,
        "block_number": entry.block_number,
        "created_at": entry.created_at,
    }


def sandbox_wallet_from_env(sandbox_dir: Path) -> SandboxWallet:
    from chimera.secrets import secret_source
    from chimera.settings import Settings

    scrypt = os.environ.get(SCRYPT_N_ENV)
    return SandboxWallet(
        os.environ.get(RPC_URL_ENV),
        sandbox_dir / "wallet",
        secret_source(Settings()),
        scrypt_n=int(scrypt) if scrypt else None,
    )
