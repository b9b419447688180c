"""The sandbox wallet's x402 payments: quote, pay once per idempotency key, reconcile with the chain.

`pay` in order (specs/mcp/wallet.md, "x402 payments"):

1. Quote the resource (an unpaid GET, expecting 402) and check the caller's bounds: the amount at most
   `max_amount` (`over_limit`), the payee exactly `pay_to` (`payee_mismatch`), the balance (`insufficient_funds`).
2. Sign the EIP-3009 authorization with the nonce derived from (tenant, agent, key), and write the ledger row
   with the signed PAYMENT-SIGNATURE, `status = pending`, BEFORE sending it.
3. Send it; then ask the chain whether the authorization is used, and record the settlement transaction.

A retry of a key that is not yet `confirmed` first asks the chain: a used authorization is recorded as paid
(the body is then lost: `content_lost`), never paid again. Otherwise it re-sends the stored authorization (or
signs a fresh one with the same nonce once the stored one is near expiry or was refused).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from web3 import Web3

from chimera.chain.token import TestUSDC
from mcp_servers.common import ToolError
from mcp_servers.wallet import x402_payer
from mcp_servers.wallet.backend import ASSET, display
from mcp_servers.wallet.ledger import Ledger, X402Entry, now

if TYPE_CHECKING:
    from mcp_servers.wallet.sandbox import SandboxWallet

KIND = "x402"


class SandboxX402:
    """x402 payments for one SandboxWallet (its chain, keys and ledger)."""

    def __init__(self, wallet: SandboxWallet) -> None:
        self._wallet = wallet
        self._domain: tuple[str, str] | None = None

    def _network(self, token: TestUSDC) -> tuple[str, tuple[str, str]]:
        """Our CAIP-2 network and the token's EIP-712 (name, version), read from the token once."""
        chain_id = self._wallet._guarded(lambda: int(token.w3.eth.chain_id))
        if self._domain is None:
            fields = self._wallet._guarded(lambda: token.contract.functions.eip712Domain().call())
            self._domain = (str(fields[1]), str(fields[2]))
        return f"eip155:{chain_id}", self._domain

    def _quote(self, token: TestUSDC, url: str) -> x402_payer.Quote:
        network, domain = self._network(token)
        return x402_payer.quote(x402_payer.check_url(url), network, token.address, domain)

    def quote(self, tenant_id: str, agent_id: str, url: str) -> dict[str, Any]:
        self._wallet.address(tenant_id, agent_id)  # the bound ids are checked as for every wallet tool
        return self._quote(self._wallet._chain(), url).to_result(ASSET)

    def pay(
        self, tenant_id: str, agent_id: str, url: str, max_amount: int, pay_to: str, idempotency_key: str
    ) -> dict[str, Any]:
        from mcp_servers.wallet.checks import check_key, is_address

        check_key(idempotency_key)
        x402_payer.check_url(url)
        if isinstance(max_amount, bool) or not isinstance(max_amount, int) or max_amount <= 0:
            raise ToolError("invalid_amount", f"max_amount is a positive whole number of base units, {max_amount!r}")
        if not is_address(pay_to):
            raise ToolError("invalid_address", f"{pay_to!r} is not an EVM address (0x and 40 hex digits)")
        payee = Web3.to_checksum_address(pay_to)
        signer = self._wallet._signer(tenant_id, agent_id)
        token = self._wallet._chain()
        book = self._wallet._book()
        with book.writing() as conn:
            known = Ledger.find_x402(conn, tenant_id, agent_id, idempotency_key)
            if known is None and Ledger.key_used(conn, tenant_id, agent_id, idempotency_key):
                raise ToolError("idempotency_conflict", f"idempotency_key {idempotency_key!r} was used for a transfer")
        if known is not None:
            if not known.same_request(url, max_amount, payee):
                raise ToolError(
                    "idempotency_conflict",
                    f"idempotency_key {idempotency_key!r} was used for another x402 payment ({known.url})",
                )
            return self._retry(token, signer, known)

        chosen = self._checked_quote(token, signer.address, url, max_amount, payee)
        nonce = x402_payer.authorization_nonce(tenant_id, agent_id, idempotency_key)
        valid_before = x402_payer.valid_before_for(chosen)
        header = x402_payer.sign_payment(signer, chosen, nonce, valid_before, max_amount)
        entry = X402Entry(
            tenant_id=tenant_id,
            agent_id=agent_id,
            idempotency_key=idempotency_key,
            url=url,
            max_amount=max_amount,
            pay_to=payee,
            amount=chosen.amount,
            asset=ASSET,
            token=token.address,
            network=chosen.requirement.network,
            sender=signer.address,
            auth_nonce=nonce,
            valid_before=valid_before,
            payment_header=header,
            from_block=self._wallet._guarded(lambda: int(token.w3.eth.block_number)),
            status="pending",
            tx_hash=None,
            block_number=None,
            content_type=None,
            body=None,
            content_lost=False,
            error=None,
            created_at=now(),
        )
        with book.writing() as conn:
            raced = Ledger.find_x402(conn, tenant_id, agent_id, idempotency_key)
            if raced is None:
                if Ledger.key_used(conn, tenant_id, agent_id, idempotency_key):
                    raise ToolError("idempotency_conflict", f"idempotency_key {idempotency_key!r} is taken")
                Ledger.insert_x402(conn, entry)  # committed before the payment is sent below
        if raced is not None:  # another process wrote this key meanwhile: answer as its retry
            return self._retry(token, signer, raced)
        return self._deliver(token, entry, duplicate=False)

    def _checked_quote(self, token: TestUSDC, sender: str, url: str, max_amount: int, payee: str) -> x402_payer.Quote:
        chosen = self._quote(token, url)
        if chosen.amount > max_amount:
            raise ToolError(
                "over_limit", f"{url} asks {display(chosen.amount)}, more than the approved {display(max_amount)}"
            )
        if chosen.pay_to != payee:
            raise ToolError("payee_mismatch", f"{url} asks payment to {chosen.pay_to}, not the approved {payee}")
        held = self._wallet._guarded(lambda: token.balance_of(sender))
        if held < chosen.amount:
            raise ToolError(
                "insufficient_funds", f"the wallet holds {display(held)}, less than {display(chosen.amount)}"
            )
        return chosen

    def _retry(self, token: TestUSDC, signer: Any, entry: X402Entry) -> dict[str, Any]:
        if entry.status != "confirmed":
            entry = self.reconcile(token, entry)
        if entry.status == "confirmed":
            return _result(entry, duplicate=True)
        if entry.status == "pending" and entry.valid_before > time.time() + x402_payer.RESEND_MARGIN_SECONDS:
            return self._deliver(token, entry, duplicate=True)  # the SAME signed authorization again
        # Refused before, or about to expire: quote again and sign a fresh authorization with the SAME nonce.
        chosen = self._checked_quote(token, entry.sender, entry.url, entry.max_amount, entry.pay_to)
        valid_before = x402_payer.valid_before_for(chosen)
        header = x402_payer.sign_payment(signer, chosen, entry.auth_nonce, valid_before, entry.max_amount)
        entry = replace(
            entry, amount=chosen.amount, valid_before=valid_before, payment_header=header, status="pending", error=None
        )
        self._wallet._book().save_x402(entry)  # before it is sent
        return self._deliver(token, entry, duplicate=True)

    def _deliver(self, token: TestUSDC, entry: X402Entry, *, duplicate: bool) -> dict[str, Any]:
        """Send the entry's signed payment, then record what the chain says happened."""
        delivery = x402_payer.send_payment(entry.url, entry.payment_header)
        if delivery.outcome == "settled":
            entry = replace(entry, content_type=delivery.content_type, body=delivery.body)
        entry = self.reconcile(token, entry, hinted_tx=delivery.tx_hash)
        if entry.status == "confirmed" or (entry.status == "pending" and delivery.outcome == "settled"):
            return _result(entry, duplicate=duplicate)
        if delivery.outcome == "refused":
            self._wallet._book().save_x402(replace(entry, status="refused", error=delivery.reason))
            raise ToolError("payment_refused", f"{entry.url} refused the payment: {delivery.reason}")
        raise ToolError(
            "resource_unavailable",
            f"the outcome of the payment to {entry.url} is unknown ({delivery.reason}); retry with the same "
            "idempotency_key: it never pays twice",
            x402_payer.UNAVAILABLE_RETRY_SECONDS,
        )

    def reconcile(self, token: TestUSDC, entry: X402Entry, hinted_tx: str | None = None) -> X402Entry:
        """The entry as the chain has it: confirmed with its settlement tx once the authorization is used."""
        guarded = self._wallet._guarded
        if guarded(lambda: x402_payer.authorization_used(token, entry.sender, entry.auth_nonce)):
            found = guarded(lambda: x402_payer.settlement_of(token, entry.sender, entry.auth_nonce, entry.from_block))
            tx_hash, block = found if found is not None else (hinted_tx, None)
            entry = replace(
                entry,
                status="confirmed",
                tx_hash=tx_hash.lower() if tx_hash else None,
                block_number=block,
                content_lost=entry.body is None,
                error=None,
            )
        elif hinted_tx is not None:
            # The resource says settled, the chain does not show it yet: pending, the status tool looks again.
            entry = replace(entry, tx_hash=hinted_tx.lower())
        self._wallet._book().save_x402(entry)
        return entry

    def status(self, entry: X402Entry) -> dict[str, Any]:
        token = self._wallet._chain()
        if entry.status != "confirmed":
            entry = self.reconcile(token, entry, hinted_tx=entry.tx_hash)
        confirmations = 0
        if entry.status == "confirmed" and entry.tx_hash:
            tx_hash = entry.tx_hash
            confirmations = self._wallet._guarded(lambda: token.confirmations(tx_hash))
        return {
            "tx_hash": entry.tx_hash,
            "status": public_status(entry),
            "confirmations": confirmations,
            "block_number": entry.block_number,
            "nonce": None,
            "kind": KIND,
        }


def public_status(entry: X402Entry) -> str:
    """The tools' status: a refused payment moved nothing, so it shows as failed (a retry may still pay)."""
    return "failed" if entry.status == "refused" else entry.status


def _result(entry: X402Entry, *, duplicate: bool) -> dict[str, Any]:
    return {
        "tx_hash": entry.tx_hash,
        "status": public_status(entry),
        "duplicate": duplicate,
        "amount": entry.amount,
        "pay_to": entry.pay_to,
        "content_type": entry.content_type,
        "body": x402_payer.body_value(entry.content_type, entry.body),
        "content_lost": entry.content_lost,
    }


def listed(entry: X402Entry) -> dict[str, Any]:
    """An x402 payment in list_transactions: `to` is the payee, `reference` the resource's URL."""
    return {
        "tx_hash": entry.tx_hash,
        "idempotency_key": entry.idempotency_key,
        "kind": KIND,
        "to": entry.pay_to,
        "amount": entry.amount,
        "asset": entry.asset,
        "reference": entry.url,
        "memo": None,
        "status": public_status(entry),
        "nonce": None,
        "block_number": entry.block_number,
        "created_at": entry.created_at,
    }
