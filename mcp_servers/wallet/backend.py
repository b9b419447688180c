"""What the wallet server asks of a backend (specs/mcp/wallet.md). The sandbox backend is in sandbox.py.

Every method takes the bound tenant and agent, returns the JSON object of the tool's result, and raises
mcp_servers.common.ToolError with a code on failure.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

ASSET = "USDC"
DECIMALS = 6


class WalletBackend(Protocol):
    def address(self, tenant_id: str, agent_id: str) -> str: ...

    def balance(self, tenant_id: str, agent_id: str) -> dict[str, Any]: ...

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
    ) -> dict[str, Any]: ...

    def transaction_status(
        self, tenant_id: str, agent_id: str, *, tx_hash: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]: ...

    def list_transactions(self, tenant_id: str, agent_id: str, limit: int) -> list[dict[str, Any]]: ...


@runtime_checkable
class X402Payer(Protocol):
    """What a backend adds to pay HTTP 402 resources (x402_payer.py). Optional: without it the x402 tools
    answer `unsupported_backend`."""

    def x402_quote(self, tenant_id: str, agent_id: str, url: str) -> dict[str, Any]: ...

    def pay_x402(
        self, tenant_id: str, agent_id: str, url: str, max_amount: int, pay_to: str, idempotency_key: str
    ) -> dict[str, Any]: ...


def display(amount: int) -> str:
    """Token units as a decimal string with the asset, e.g. 1500000 -> "1.500000 USDC"."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**DECIMALS)
    return f"{sign}{whole}.{frac:0{DECIMALS}d} {ASSET}"
