"""The wallet MCP server: an agent's USDC wallet (specs/mcp/wallet.md).

tenant_id and agent_id are bound arguments: the host fills them from the task and hides them from the model.
`transfer`, `pay_request` and `pay_x402` move money: they are allowlisted as publish_tools, so no model is ever
offered them; only PaymentWorkflow calls them (specs/payments.md). The backend is chosen by CHIMERA_WALLET_BACKEND
(mcp_servers.wallet.backends): the sandbox chain or CDP server wallets; the x402 tools need a backend that
is also an X402Payer, and answer `unsupported_backend` otherwise. Failures are is_error results with
`{"error", "message", "retry_after_seconds"}`; only `chain_unavailable` and `resource_unavailable` are worth retrying.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult
from pydantic import BaseModel

from mcp_servers.common import ToolError, run_tool, sandbox_dir_from_env, serve
from mcp_servers.wallet.backend import ASSET, WalletBackend, X402Payer

RECENT_LIMIT = 10
ADDRESS_URI = "wallet://{tenant_id}/{agent_id}/address"
RECENT_URI = "wallet://{tenant_id}/{agent_id}/transactions/recent"
Status = Literal["pending", "confirmed", "failed"]


class Balance(BaseModel):
    address: str
    asset: str
    amount: int
    display: str
    native_wei: int


class Sent(BaseModel):
    tx_hash: str
    status: Status
    nonce: int
    duplicate: bool


class TxStatus(BaseModel):
    tx_hash: str | None  # None only for an x402 payment not (yet) settled
    status: Status
    confirmations: int
    block_number: int | None
    nonce: int | None  # the sender's transaction nonce; None for x402 (the facilitator sends the transaction)
    kind: str | None = None  # optional, so a backend from before x402 still fits the schema


class Listed(BaseModel):
    tx_hash: str | None
    idempotency_key: str
    kind: str
    to: str
    amount: int
    asset: str
    reference: str | None
    memo: str | None
    status: Status
    nonce: int | None
    block_number: int | None
    created_at: float


class Transactions(BaseModel):
    transactions: list[Listed]


class X402Quote(BaseModel):
    url: str
    amount: int
    asset: str
    asset_symbol: str
    pay_to: str
    network: str
    scheme: str
    description: str
    max_timeout_seconds: int | None


class X402Paid(BaseModel):
    tx_hash: str | None
    status: Status
    duplicate: bool
    amount: int
    pay_to: str
    content_type: str | None
    body: Any
    content_lost: bool


class PaymentRequest(BaseModel):
    """A payment request: pay `amount` base units of `asset` to `to`, quoting `reference`."""

    to: str
    amount: int
    asset: str
    reference: str


def build_server(backend: WalletBackend | None = None) -> MCPServer:
    """A wallet MCP server; `backend` defaults to the one the environment chooses (backends.py)."""
    if backend is None:
        from mcp_servers.wallet.backends import wallet_backend_from_env

        backend = wallet_backend_from_env(sandbox_dir_from_env())
    wallet = backend
    server = MCPServer(
        "wallet",
        log_level="WARNING",
        instructions="The agent's USDC wallet: its balance and its transactions. Amounts are integer base units "
        "(6 decimals: 1000000 is 1 USDC).",
    )

    @server.tool()
    def balance(tenant_id: str, agent_id: str) -> Annotated[CallToolResult, Balance]:
        """The wallet's USDC balance.

        Args:
            tenant_id: Filled in by the host.
            agent_id: Filled in by the host.

        Returns {"address", "asset": "USDC", "amount" (integer base units, 6 decimals), "display" (e.g.
        "1.500000 USDC"), "native_wei" (gas money)}. Error codes: "invalid_id", "wallet_unavailable",
        "chain_unavailable" (retry later).
        """
        return run_tool(lambda: wallet.balance(tenant_id, agent_id))

    @server.tool()
    def transfer(
        tenant_id: str, agent_id: str, to: str, amount: int, idempotency_key: str, memo: str | None = None
    ) -> Annotated[CallToolResult, Sent]:
        """Send USDC. The same idempotency_key again never sends twice: it answers the first transfer
        (duplicate=true), rebroadcasting its signed transaction if its outcome was unknown.

        Args:
            tenant_id: Filled in by the host.
            agent_id: Filled in by the host.
            to: The recipient's EVM address (0x and 40 hex digits).
            amount: Integer base units, more than 0 (1000000 is 1 USDC).
            idempotency_key: 1 to 128 of letters, digits, "_", ".", ":", "-"; one key is one payment.
            memo: Optional note kept in the wallet's ledger (not on chain), at most 256 characters.

        Returns {"tx_hash", "status": "pending"|"confirmed"|"failed", "nonce", "duplicate"}. Error codes:
        "invalid_address", "invalid_amount", "invalid_idempotency_key", "invalid_memo", "idempotency_conflict"
        (the key was used with other arguments), "insufficient_funds", "invalid_id", "wallet_unavailable",
        "chain_unavailable" (retry later, with the same key).
        """
        return run_tool(lambda: wallet.transfer(tenant_id, agent_id, to, amount, idempotency_key, memo=memo))

    @server.tool()
    def pay_request(
        tenant_id: str, agent_id: str, request: PaymentRequest, idempotency_key: str
    ) -> Annotated[CallToolResult, Sent]:
        """Pay a payment request: a transfer of its amount to its address, with its reference kept in the ledger.

        Args:
            tenant_id: Filled in by the host.
            agent_id: Filled in by the host.
            request: {"to", "amount" (integer base units), "asset" (only "USDC"), "reference" (1 to 128 chars)}.
            idempotency_key: As for transfer; one key is one payment.

        Returns {"tx_hash", "status", "nonce", "duplicate"} as transfer. Error codes: transfer's, and
        "unsupported_asset", "invalid_reference".
        """

        def action() -> dict[str, Any]:
            if request.asset != ASSET:
                raise ToolError("unsupported_asset", f'this wallet pays only "{ASSET}", not {request.asset!r}')
            if not 1 <= len(request.reference) <= 128:
                raise ToolError("invalid_reference", "a payment request's reference is 1 to 128 characters")
            return wallet.transfer(
                tenant_id,
                agent_id,
                request.to,
                request.amount,
                idempotency_key,
                reference=request.reference,
                kind="pay_request",
            )

        return run_tool(action)

    def x402(tenant_id: str, agent_id: str) -> X402Payer:
        if not isinstance(wallet, X402Payer):
            raise ToolError("unsupported_backend", f"this wallet's backend ({type(wallet).__name__}) cannot pay x402")
        wallet.address(tenant_id, agent_id)
        return wallet

    @server.tool()
    def x402_quote(tenant_id: str, agent_id: str, url: str) -> Annotated[CallToolResult, X402Quote]:
        """What an HTTP resource priced with x402 (HTTP 402 Payment Required) asks to be paid. Pays nothing.

        Args:
            tenant_id: Filled in by the host.
            agent_id: Filled in by the host.
            url: The resource, an http:// or https:// URL.

        Returns {"url", "amount" (integer base units), "asset" (the token address), "asset_symbol": "USDC",
        "pay_to", "network" (e.g. "eip155:31337"), "scheme": "exact", "description", "max_timeout_seconds"}.
        Error codes: "invalid_url", "not_payable" (no 402, or no usable requirement), "unsupported_network",
        "unsupported_asset", "resource_unavailable" (retry later), "unsupported_backend", "invalid_id",
        "chain_unavailable" (retry later).
        """
        return run_tool(lambda: x402(tenant_id, agent_id).x402_quote(tenant_id, agent_id, url))

    @server.tool()
    def pay_x402(
        tenant_id: str, agent_id: str, url: str, max_amount: int, pay_to: str, idempotency_key: str
    ) -> Annotated[CallToolResult, X402Paid]:
        """Pay an x402 resource and fetch it: at most max_amount, only to pay_to. The same idempotency_key
        again never pays twice: it answers the first payment (duplicate=true).

        Args:
            tenant_id: Filled in by the host.
            agent_id: Filled in by the host.
            url: The resource, an http:// or https:// URL.
            max_amount: The approved amount, integer base units; a higher price is refused.
            pay_to: The approved payee's address; any other payee is refused.
            idempotency_key: As for transfer; one key is one payment.

        Returns {"tx_hash", "status": "confirmed"|"pending"|"failed", "duplicate", "amount", "pay_to",
        "content_type", "body" (the resource's JSON, or null when lost), "content_lost"}. Error codes:
        x402_quote's, and "over_limit", "payee_mismatch", "insufficient_funds", "payment_refused", "invalid_amount",
        "invalid_address", "invalid_idempotency_key", "idempotency_conflict", "wallet_unavailable",
        "resource_unavailable" (outcome unknown: retry with the same key).
        """
        return run_tool(
            lambda: x402(tenant_id, agent_id).pay_x402(tenant_id, agent_id, url, max_amount, pay_to, idempotency_key)
        )

    @server.tool()
    def transaction_status(
        tenant_id: str, agent_id: str, tx_hash: str | None = None, idempotency_key: str | None = None
    ) -> Annotated[CallToolResult, TxStatus]:
        """The status of one of this wallet's transactions, by its hash or by its idempotency key (exactly one).

        Args:
            tenant_id: Filled in by the host.
            agent_id: Filled in by the host.
            tx_hash: The transaction hash a transfer or an x402 payment returned.
            idempotency_key: The key the payment was sent with.

        Returns {"tx_hash", "status", "confirmations" (0 while pending, 1 once mined, +1 a block),
        "block_number", "nonce" (null for x402), "kind" ("transfer", "pay_request" or "x402")}. Error codes:
        "invalid_arguments", "invalid_idempotency_key", "not_found" (not this wallet's), "chain_unavailable"
        (retry later).
        """
        return run_tool(
            lambda: wallet.transaction_status(tenant_id, agent_id, tx_hash=tx_hash, idempotency_key=idempotency_key)
        )

    @server.tool()
    def list_transactions(tenant_id: str, agent_id: str, limit: int = 10) -> Annotated[CallToolResult, Transactions]:
        """This wallet's transactions, newest first.

        Args:
            tenant_id: Filled in by the host.
            agent_id: Filled in by the host.
            limit: At most this many, 1 to 100.

        Returns {"transactions": [{tx_hash, idempotency_key, kind, to, amount, asset, reference, memo, status,
        nonce, block_number, created_at}]}. Error codes: "invalid_limit".
        """
        return run_tool(lambda: {"transactions": wallet.list_transactions(tenant_id, agent_id, limit)})

    @server.resource(ADDRESS_URI, mime_type="application/json", description='{"address": ...}: the wallet address')
    def address(tenant_id: str, agent_id: str) -> str:
        try:
            return json.dumps({"address": wallet.address(tenant_id, agent_id)})
        except ToolError as exc:
            raise ValueError(f"{exc.code}: {exc.message}") from exc

    @server.resource(
        RECENT_URI,
        mime_type="application/json",
        description=f'{{"transactions": [...]}}: the wallet\'s {RECENT_LIMIT} newest transactions, newest first',
    )
    def recent(tenant_id: str, agent_id: str) -> str:
        try:
            return json.dumps({"transactions": wallet.list_transactions(tenant_id, agent_id, RECENT_LIMIT)})
        except ToolError as exc:
            raise ValueError(f"{exc.code}: {exc.message}") from exc

    return server


def main(argv: list[str] | None = None) -> None:
    serve(build_server, "python -m mcp_servers.wallet", argv)
