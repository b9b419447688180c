"""The live wallet backend: CDP server wallets through Coinbase's cdp-sdk, on Base Sepolia or Base.

Each agent has one CDP EVM account, named `chimera-<hash>` (account_name); CDP holds its key and signs, so no
key is ever on this machine. Transfers are USDC `transfer(to, amount)` calls built here with an explicit nonce,
written to the idempotency ledger (mcp_servers/wallet/ledger.py) as the unsigned transaction before CDP is asked
to sign and send it, with a CDP idempotency key derived from the ledger key: a retry after an unknown outcome
sends the same bytes under the same key, and CDP answers it with the first transaction. Balances come from CDP's
token-balances endpoint; receipts and confirmations from the network's JSON-RPC (CHIMERA_WALLET_RPC_URL).
specs/mcp/wallet.md, "Live backend (CDP)".

`import cdp` takes seconds and the SDK reports usage unless told not to: it is imported on first use, after
DISABLE_CDP_USAGE_TRACKING and DISABLE_CDP_ERROR_REPORTING are set.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import hashlib
import os
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from web3 import Web3
from web3.exceptions import Web3Exception, Web3RPCError

from chimera.chain.keystore import ID_PATTERN
from chimera.chain.token import TestUSDC, TokenError, TransferRevertedError
from chimera.secrets.base import SecretSource
from chimera.secrets.env import env_name
from mcp_servers.common import ToolError
from mcp_servers.wallet.backend import ASSET, display
from mcp_servers.wallet.checks import check_key, checked_transfer
from mcp_servers.wallet.ledger import Entry, Ledger, now
from mcp_servers.wallet.sandbox import RPC_URL_ENV, _listed

NETWORK_ENV = "CHIMERA_CDP_NETWORK"
BASE_URL_ENV = "CHIMERA_CDP_BASE_URL"
DEFAULT_BASE_URL = "https://api.cdp.coinbase.com/platform"  # the SDK's own default
API_KEY_ID = "cdp/api-key-id"
API_KEY_SECRET = "cdp/api-key-secret"
WALLET_SECRET = "cdp/wallet-secret"
NATIVE_TOKEN = "0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE"  # EIP-7528: how token-balances names the native coin
PENDING_HASH = "cdp-pending:"  # a ledger row's tx_hash until CDP has answered with the real one
CALL_SECONDS = 60.0  # the SDK's own request timeout is 5 minutes
RETRY_SECONDS = 5.0
RECEIPT_WAIT_SECONDS = 5.0
BALANCE_PAGES = 10  # token-balances pages read looking for USDC (100 tokens a page)
T = TypeVar("T")


@dataclass(frozen=True)
class Network:
    name: str  # CDP's network name
    chain_id: int
    usdc: str  # Circle's USDC contract
    public_rpc: str  # the default CHIMERA_WALLET_RPC_URL (rate-limited; configure your own for production)


NETWORKS = {
    "base-sepolia": Network(
        "base-sepolia", 84532, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", "https://sepolia.base.org"
    ),
    "base": Network("base", 8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "https://mainnet.base.org"),
}


def account_name(tenant_id: str, agent_id: str) -> str:
    """The agent's CDP account name: "chimera-" and 28 hex digits of sha256("tenant/agent") (36 characters, CDP's
    maximum). Ids are slugs without "/", so two agents never share a name; the same agent always gets its own."""
    return "chimera-" + hashlib.sha256(f"{tenant_id}/{agent_id}".encode()).hexdigest()[:28]


def cdp_idempotency_key(network: str, tenant_id: str, agent_id: str, key: str, unsigned: bytes) -> str:
    """The X-Idempotency-Key for one ledger row: stable for its key and its unsigned transaction, so every resend
    of the row is the same request to CDP. CDP requires a UUID v4: a v4-shaped UUID from a hash."""
    text = f"chimera-wallet/{network}/{tenant_id}/{agent_id}/{key}/{unsigned.hex()}"
    return str(uuid.UUID(bytes=hashlib.sha256(text.encode()).digest()[:16], version=4))


@dataclass(frozen=True)
class Credentials:
    api_key_id: str
    api_key_secret: str
    wallet_secret: str

    def __repr__(self) -> str:
        return "Credentials(...)"


class _SdkLoop:
    """One CdpClient on one event loop in a daemon thread: the SDK is async (aiohttp), the tools are not, and the
    server may already run a loop in the calling thread. The client is made on the loop, at its first call."""

    def __init__(self, make_client: Callable[[], Any]) -> None:
        self._make_client = make_client
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def call(self, action: Callable[[Any], Awaitable[T]], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(self._run(action), self._running())
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout:.0f}s") from None

    async def _run(self, action: Callable[[Any], Awaitable[T]]) -> T:
        if self._client is None:
            self._client = self._make_client()
        return await action(self._client)

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="cdp-sdk", daemon=True).start()
                self._loop = loop
                atexit.register(self.close)
            return self._loop

    def close(self) -> None:
        """Close the client's HTTP session (at exit; aiohttp warns about one left open)."""
        loop, client = self._loop, self._client
        if loop is None or client is None:
            return
        self._client = None
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(5)


def _import_cdp() -> Any:
    os.environ["DISABLE_CDP_USAGE_TRACKING"] = "true"  # the SDK otherwise reports each call to Coinbase
    os.environ["DISABLE_CDP_ERROR_REPORTING"] = "true"
    import cdp  # type: ignore[import-untyped]

    return cdp


class CdpWallet:
    """A WalletBackend over CDP server wallets on one network, with its own ledger file."""

    def __init__(
        self,
        network: str,
        ledger_path: Path,
        secrets: SecretSource,
        *,
        rpc_url: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        if network not in NETWORKS:
            raise ValueError(f"{NETWORK_ENV} is one of {sorted(NETWORKS)}, not {network!r}")
        self.network = NETWORKS[network]
        self._ledger_path = ledger_path
        self._secrets = secrets
        self._rpc_url = rpc_url or self.network.public_rpc
        self._base_url = base_url
        self._sdk: _SdkLoop | None = None
        self._lock = threading.Lock()
        self._token: TestUSDC | None = None
        self._ledger: Ledger | None = None
        self._addresses: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return f"CdpWallet({self.network.name} via {self._base_url})"

    # -- setup, lazily: tools/list needs none of it ----------------------------------------------------

    def _credentials(self) -> Credentials:
        values = {}
        for name in (API_KEY_ID, API_KEY_SECRET, WALLET_SECRET):
            value = self._secrets.get(name)
            if not value:
                raise ToolError(
                    "wallet_unavailable", f"the CDP secret '{name}' is not configured (e.g. {env_name(name)})"
                )
            values[name] = value
        return Credentials(values[API_KEY_ID], values[API_KEY_SECRET], values[WALLET_SECRET])

    def _client(self) -> _SdkLoop:
        with self._lock:
            if self._sdk is None:
                credentials = self._credentials()
                cdp = _import_cdp()
                base_url = self._base_url

                def make() -> Any:
                    return cdp.CdpClient(
                        api_key_id=credentials.api_key_id,
                        api_key_secret=credentials.api_key_secret,
                        wallet_secret=credentials.wallet_secret,
                        base_path=base_url,
                    )

                self._sdk = _SdkLoop(make)
            return self._sdk

    def _cdp(self, action: Callable[[Any], Coroutine[Any, Any, T]], what: str) -> T:
        """One SDK call; its failures become the wallet's error codes."""
        try:
            return self._client().call(action, CALL_SECONDS)
        except ToolError:
            raise
        except Exception as exc:
            raise self._mapped(exc, what) from None

    def _mapped(self, exc: Exception, what: str) -> ToolError:
        from cdp.openapi_client.errors import ApiError, NetworkError  # type: ignore[import-untyped]

        secrets = f"the secrets '{API_KEY_ID}', '{API_KEY_SECRET}' and '{WALLET_SECRET}'"
        if isinstance(exc, TimeoutError):
            return ToolError(
                "chain_unavailable", f"CDP did not answer {what} ({exc}); the outcome is unknown", RETRY_SECONDS
            )
        if isinstance(exc, NetworkError):
            return ToolError(
                "chain_unavailable",
                f"CDP at {self._base_url} could not be reached for {what}: {exc.error_type}: {exc.error_message}",
                RETRY_SECONDS,
            )
        if isinstance(exc, ApiError):
            status, kind, message = exc.http_code or 500, exc.error_type, exc.error_message
            said = f"CDP answered {what} with {status} {kind}: {message}"
            if status in (401, 403) or kind in ("unauthorized", "forbidden"):
                return ToolError("wallet_unavailable", f"{said}; check {secrets}")
            if kind == "idempotency_error":
                return ToolError("idempotency_conflict", said)
            if kind == "insufficient_balance":
                return ToolError("insufficient_funds", said)
            if status >= 500 or status == 429 or kind in ("rate_limit_exceeded", "timed_out"):
                # CDP: "5xx errors are not a guarantee of failure ... treat the operation's status as unknown".
                return ToolError("chain_unavailable", f"{said} (retry later)", RETRY_SECONDS)
            return ToolError("wallet_unavailable", said)
        if isinstance(exc, ValueError):
            # The SDK's own refusals to build a request: credentials it cannot use. Its text is not echoed.
            text = str(exc)
            if "JWT" in text or "API Key" in text:
                return ToolError(
                    "wallet_unavailable", f"the CDP API key ('{API_KEY_ID}', '{API_KEY_SECRET}') is unusable"
                )
            if "EC key" in text or "Wallet Secret" in text:
                return ToolError(
                    "wallet_unavailable", f"the CDP secret '{WALLET_SECRET}' is not a usable wallet secret"
                )
        return ToolError("wallet_unavailable", f"the CDP SDK failed {what}: {type(exc).__name__}")

    def _chain(self) -> TestUSDC:
        """USDC on the network's JSON-RPC, for dry runs, nonces and receipts (TestUSDC's ERC-20 calls)."""
        if self._token is not None:
            return self._token
        w3 = Web3(Web3.HTTPProvider(self._rpc_url, request_kwargs={"timeout": 10}))
        chain_id = self._guarded(lambda: int(w3.eth.chain_id))
        if chain_id != self.network.chain_id:
            raise ToolError(
                "chain_unavailable",
                f"the RPC at {self._rpc_url} serves chain {chain_id}, "
                f"not {self.network.name} ({self.network.chain_id})",
            )
        self._token = TestUSDC(w3, self.network.usdc, self.network.usdc)  # the owner is never used here
        return self._token

    def _guarded(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except (OSError, TokenError, Web3RPCError) as exc:
            if isinstance(exc, TransferRevertedError):
                raise
            raise ToolError(
                "chain_unavailable", f"the chain at {self._rpc_url} did not answer: {exc}", RETRY_SECONDS
            ) from exc

    def _book(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger(self._ledger_path)
        return self._ledger

    # -- tools -----------------------------------------------------------------------------------------

    def address(self, tenant_id: str, agent_id: str) -> str:
        """The agent's CDP account address; the account is created on first use (get-or-create by name)."""
        for kind, value in (("tenant", tenant_id), ("agent", agent_id)):
            if not isinstance(value, str) or not ID_PATTERN.match(value):
                raise ToolError("invalid_id", f"invalid {kind} id {value!r}")
        found = self._addresses.get((tenant_id, agent_id))
        if found is None:
            name = account_name(tenant_id, agent_id)

            async def get_or_create(client: Any) -> str:
                return str((await client.evm.get_or_create_account(name=name)).address)

            found = Web3.to_checksum_address(self._cdp(get_or_create, f"the account {name}"))
            self._addresses[(tenant_id, agent_id)] = found
        return found

    def balance(self, tenant_id: str, agent_id: str) -> dict[str, Any]:
        address = self.address(tenant_id, agent_id)
        network, usdc = self.network.name, self.network.usdc.lower()

        async def balances(client: Any) -> tuple[int, int]:
            amounts: dict[str, int] = {}
            page: str | None = None
            for _ in range(BALANCE_PAGES):
                result = await client.evm.list_token_balances(address, network, page_size=100, page_token=page)
                for held in result.balances:
                    amounts[held.token.contract_address.lower()] = int(held.amount.amount)
                page = result.next_page_token
                if not page or usdc in amounts:
                    break
            return amounts.get(usdc, 0), amounts.get(NATIVE_TOKEN.lower(), 0)

        amount, native = self._cdp(balances, "the token balances")
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
        sender = self.address(tenant_id, agent_id)
        token = self._chain()
        with self._book().writing() as conn:
            known = Ledger.find(conn, tenant_id, agent_id, idempotency_key)
            if known is None:
                entry = self._prepared(
                    conn, token, sender, tenant_id, agent_id, idempotency_key, kind, recipient, amount
                )
                entry = replace(entry, reference=reference, memo=memo)
                Ledger.insert(conn, entry)  # committed before CDP is asked to send it
        if known is not None:
            if not known.same_request(kind, recipient, amount, reference, memo):
                raise ToolError(
                    "idempotency_conflict",
                    f"idempotency_key {idempotency_key!r} was used for a different payment ({known.tx_hash})",
                )
            return self._settled(token, known, duplicate=True)
        return self._settled(token, entry, duplicate=False)

    def _prepared(
        self,
        conn: Any,
        token: TestUSDC,
        sender: str,
        tenant_id: str,
        agent_id: str,
        key: str,
        kind: str,
        to: str,
        amount: int,
    ) -> Entry:
        """Dry-run and build the unsigned transfer with its nonce (as the sandbox: the chain's pending nonce or 1 +
        the highest unmined ledger nonce); insufficient USDC or gas is refused here, before anything is sent."""
        from cdp.utils import serialize_unsigned_transaction  # type: ignore[import-untyped]
        from eth_account.typed_transactions.dynamic_fee_transaction import DynamicFeeTransaction

        pending = self._guarded(lambda: token.next_nonce(sender))
        unmined = Ledger.highest_unmined_nonce(conn, sender)
        nonce = pending if unmined is None else max(pending, unmined + 1)
        try:
            tx = self._guarded(lambda: token.build_transfer(sender, to, amount, nonce=nonce))
        except TransferRevertedError as exc:
            held = self._guarded(lambda: token.balance_of(sender))
            raise ToolError(
                "insufficient_funds", f"the wallet holds {display(held)}, less than {display(amount)} ({exc})"
            ) from exc
        gas_cost = int(tx["gas"]) * int(tx["maxFeePerGas"])
        native = self._guarded(lambda: int(token.w3.eth.get_balance(Web3.to_checksum_address(sender))))
        if native < gas_cost:
            raise ToolError("insufficient_funds", f"the wallet has {native} wei for gas, the transfer needs {gas_cost}")
        unsigned = DynamicFeeTransaction.from_dict(
            {
                "type": 2,
                "chainId": self.network.chain_id,
                "nonce": nonce,
                "gas": int(tx["gas"]),
                "maxFeePerGas": int(tx["maxFeePerGas"]),
                "maxPriorityFeePerGas": int(tx["maxPriorityFeePerGas"]),
                "to": self.network.usdc,
                "value": 0,
                "data": tx["data"],
                "accessList": [],
            }
        )
        raw = bytes.fromhex(str(serialize_unsigned_transaction(unsigned)).removeprefix("0x"))
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
            tx_hash=PENDING_HASH + cdp_idempotency_key(self.network.name, tenant_id, agent_id, key, raw),
            raw_tx=raw,  # unsigned: CDP signs it
            status="pending",
            block_number=None,
            created_at=now(),
        )

    def _settled(self, token: TestUSDC, entry: Entry, *, duplicate: bool) -> dict[str, Any]:
        """Have CDP sign and send the ledger's bytes unless it already answered with their hash, then wait briefly."""
        if entry.tx_hash.startswith(PENDING_HASH):
            entry = replace(entry, tx_hash=self._sent(entry, first=not duplicate))
        if entry.status == "pending":
            receipt = self._guarded(lambda: token.receipt(entry.tx_hash))
            if receipt is None:
                try:
                    receipt = token.wait_for_receipt(entry.tx_hash, timeout=RECEIPT_WAIT_SECONDS)
                except (TokenError, OSError, Web3Exception):
                    receipt = None
            if receipt is not None:
                status = "confirmed" if receipt.succeeded else "failed"
                self._book().set_status(entry.tx_hash, status, receipt.block_number)
                entry = replace(entry, status=status, block_number=receipt.block_number)
        return {"tx_hash": entry.tx_hash, "status": entry.status, "nonce": entry.nonce, "duplicate": duplicate}

    def _sent(self, entry: Entry, *, first: bool) -> str:
        """CDP's hash for the row's transaction. The same CDP idempotency key every time: a send whose answer was
        lost is answered again, not repeated. A first send refused outright (4xx) sent nothing: the row goes, and
        the same key later builds a new transaction (new nonce and bytes, so a new CDP key)."""
        from cdp.openapi_client.errors import ApiError, NetworkError

        key = cdp_idempotency_key(
            self.network.name, entry.tenant_id, entry.agent_id, entry.idempotency_key, entry.raw_tx
        )
        network, sender, raw = self.network.name, entry.sender, "0x" + entry.raw_tx.hex()

        async def send(client: Any) -> str:
            return str(
                await client.evm.send_transaction(address=sender, transaction=raw, network=network, idempotency_key=key)
            )

        try:
            tx_hash = self._client().call(send, CALL_SECONDS).lower()
        except ToolError:
            raise
        except Exception as exc:
            refused = (
                isinstance(exc, ApiError)
                and not isinstance(exc, NetworkError)
                and 400 <= (exc.http_code or 500) < 500
                and exc.http_code not in (409, 422, 429)  # in progress, idempotency, rate: maybe sent or pending
            )
            if first and refused:
                self._book().forget(entry.tenant_id, entry.agent_id, entry.idempotency_key)
            raise self._mapped(exc, "the transfer") from None
        self._book().set_tx_hash(entry.tenant_id, entry.agent_id, entry.idempotency_key, tx_hash)
        return tx_hash

    def transaction_status(
        self, tenant_id: str, agent_id: str, *, tx_hash: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        if (tx_hash is None) == (idempotency_key is None):
            raise ToolError("invalid_arguments", "give exactly one of tx_hash and idempotency_key")
        if idempotency_key is not None:
            check_key(idempotency_key)
        entry = self._book().get(tenant_id, agent_id, key=idempotency_key, tx_hash=tx_hash)
        if entry is None:
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
        }

    def list_transactions(self, tenant_id: str, agent_id: str, limit: int) -> list[dict[str, Any]]:
        if isinstance(limit, bool) or not 1 <= limit <= 100:
            raise ToolError("invalid_limit", f"limit is 1 to 100, got {limit!r}")
        return [_listed(e) for e in self._book().recent(tenant_id, agent_id, limit)]


def cdp_wallet_from_env(sandbox_dir: Path) -> CdpWallet:
    """CHIMERA_CDP_NETWORK (default base-sepolia), CHIMERA_CDP_BASE_URL, CHIMERA_WALLET_RPC_URL; the credentials
    are the secrets cdp/api-key-id, cdp/api-key-secret and cdp/wallet-secret, read at the first call."""
    from chimera.secrets import secret_source
    from chimera.settings import Settings

    network = os.environ.get(NETWORK_ENV) or "base-sepolia"
    return CdpWallet(
        network,
        sandbox_dir / "wallet" / "cdp" / network / "ledger.sqlite3",
        secret_source(Settings()),
        rpc_url=os.environ.get(RPC_URL_ENV),
        base_url=os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
    )
