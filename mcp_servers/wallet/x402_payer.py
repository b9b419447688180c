"""Paying an HTTP 402 resource with the x402 protocol, v2 (specs/mcp/wallet.md, "x402 payments").

The library (x402==2.25.0) does the protocol: it decodes PAYMENT-REQUIRED, builds and signs the EIP-3009
authorization (its exact EVM client scheme, under our spend controls), encodes PAYMENT-SIGNATURE and decodes
PAYMENT-RESPONSE. What Chimera adds, for money safety:

- the authorization's nonce is derived from (tenant, agent, idempotency key), so every attempt for one key signs
  the same nonce and the token (which refuses a used nonce) moves money at most once per key;
- the chain, not the resource, says whether a payment happened: `authorizationState(from, nonce)` and the
  token's AuthorizationUsed log name the settlement transaction.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

# The mcp SDK ships its HTTP client as the `httpx2` distribution; there is no plain `httpx` in the venv.
import httpx2 as httpx
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from x402 import PaymentRequired, PaymentRequirements, x402ClientSync
from x402.http import x402HTTPClientSync
from x402.http.constants import PAYMENT_SIGNATURE_HEADER
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.mechanisms.evm.types import ExactEIP3009Authorization, ExactEIP3009Payload, TypedDataDomain, TypedDataField

from chimera.chain.keystore import AgentSigner
from chimera.chain.token import TestUSDC
from mcp_servers.common import ToolError

SCHEME = "exact"
QUOTE_TIMEOUT_SECONDS = 10.0
PAY_TIMEOUT_SECONDS = 60.0  # the resource verifies and settles on chain before it answers
UNAVAILABLE_RETRY_SECONDS = 5.0
MAX_VALIDITY_SECONDS = 3600  # an authorization expires at most this long after signing
RESEND_MARGIN_SECONDS = 30  # a stored authorization this close to expiry is signed anew (same nonce) instead
MAX_BODY_BYTES = 1_000_000
NONCE_DOMAIN = b"chimera/x402/v1"


@dataclass(frozen=True)
class Quote:
    """What a resource asks: the one requirement this wallet can pay, and the 402 it came in."""

    url: str
    payment_required: PaymentRequired
    requirement: PaymentRequirements

    @property
    def amount(self) -> int:
        return int(self.requirement.amount)

    @property
    def pay_to(self) -> str:
        return to_checksum_address(self.requirement.pay_to)

    def to_result(self, asset_symbol: str) -> dict[str, Any]:
        resource = self.payment_required.resource
        return {
            "url": self.url,
            "amount": self.amount,
            "asset": to_checksum_address(self.requirement.asset),
            "asset_symbol": asset_symbol,
            "pay_to": self.pay_to,
            "network": self.requirement.network,
            "scheme": self.requirement.scheme,
            "description": resource.description if resource is not None else "",
            "max_timeout_seconds": self.requirement.max_timeout_seconds,
        }


@dataclass(frozen=True)
class Delivery:
    """The resource's answer to a paid request. `outcome`: "settled" (2xx with a successful PAYMENT-RESPONSE),
    "refused" (402), "unknown" (no answer, 5xx, or anything else)."""

    outcome: str
    tx_hash: str | None = None
    content_type: str | None = None
    body: str | None = None
    reason: str | None = None


def check_url(url: object) -> str:
    if not isinstance(url, str) or httpx.URL(url).scheme not in ("http", "https") or not httpx.URL(url).host:
        raise ToolError("invalid_url", f"an x402 resource is an http:// or https:// URL, got {url!r}")
    return url


def _http_client() -> x402HTTPClientSync:
    return x402HTTPClientSync(x402ClientSync())


def quote(url: str, network: str, token: str, domain: tuple[str, str]) -> Quote:
    """GET `url` unpaid and pick the `exact` requirement in `token` on `network` signed under `domain`."""
    try:
        response = httpx.get(url, timeout=QUOTE_TIMEOUT_SECONDS, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise ToolError(
            "resource_unavailable", f"{url} did not answer: {exc.__class__.__name__}", UNAVAILABLE_RETRY_SECONDS
        ) from exc
    if response.status_code >= 500:
        raise ToolError("resource_unavailable", f"{url} answered {response.status_code}", UNAVAILABLE_RETRY_SECONDS)
    if response.status_code != 402:
        raise ToolError("not_payable", f"{url} answered {response.status_code}, not 402 Payment Required")
    try:
        required = _http_client().get_payment_required_response(response.headers.get, response.content)
    except ValueError as exc:
        raise ToolError("not_payable", f"{url} answered 402 without a readable PAYMENT-REQUIRED: {exc}") from exc
    if not isinstance(required, PaymentRequired):
        raise ToolError("not_payable", f"{url} speaks x402 version {required.x402_version}; this wallet pays v2")
    return Quote(url, required, choose_requirement(required, network, token, domain))


def choose_requirement(
    required: PaymentRequired, network: str, token: str, domain: tuple[str, str]
) -> PaymentRequirements:
    """The first `exact` requirement on our network in our token; the codes say which part did not fit."""
    exact = [r for r in required.accepts if r.scheme == SCHEME]
    if not exact:
        offered = sorted({r.scheme for r in required.accepts})
        raise ToolError("not_payable", f"no {SCHEME!r} payment is offered (schemes: {offered})")
    ours = [r for r in exact if r.network == network]
    if not ours:
        raise ToolError(
            "unsupported_network", f"payment is asked on {sorted({r.network for r in exact})}, this wallet is {network}"
        )
    in_token = [r for r in ours if r.asset.lower() == token.lower()]
    if not in_token:
        raise ToolError("unsupported_asset", f"payment is asked in {sorted({r.asset for r in ours})}, not {token}")
    for requirement in in_token:
        extra = requirement.extra or {}
        if extra.get("assetTransferMethod", "eip3009") != "eip3009":
            continue
        if (extra.get("name"), extra.get("version")) != domain:
            continue  # an authorization signed under another EIP-712 domain would be worthless to the token
        if not requirement.amount.isdigit() or int(requirement.amount) <= 0 or not Web3.is_address(requirement.pay_to):
            continue
        return requirement
    raise ToolError(
        "unsupported_asset", f"no requirement in {token} is an EIP-3009 transfer under the token's domain {domain}"
    )


def authorization_nonce(tenant_id: str, agent_id: str, idempotency_key: str) -> str:
    """The EIP-3009 nonce for one payment: the same key always signs the same nonce."""
    return Web3.keccak(NONCE_DOMAIN + f"\0{tenant_id}\0{agent_id}\0{idempotency_key}".encode()).to_0x_hex()


class _AgentSigner:
    """The x402 ClientEvmSigner over the keystore's AgentSigner (the key stays inside it)."""

    def __init__(self, signer: AgentSigner) -> None:
        self._signer = signer

    @property
    def address(self) -> str:
        return self._signer.address

    def sign_typed_data(
        self,
        domain: TypedDataDomain,
        types: dict[str, list[TypedDataField]],
        primary_type: str,
        message: dict[str, Any],
    ) -> bytes:
        domain_data = {
            "name": domain.name,
            "version": domain.version,
            "chainId": domain.chain_id,
            "verifyingContract": domain.verifying_contract,
        }
        fields = {name: [{"name": f.name, "type": f.type} for f in entries] for name, entries in types.items()}
        return self._signer.sign_typed_data(domain_data, fields, message)


class _FixedNonceScheme(ExactEvmClientScheme):
    """The library's exact EVM client, with the authorization's nonce and expiry chosen by the wallet (the
    library draws a random nonce, which would make each retry a new, payable authorization)."""

    def __init__(self, signer: _AgentSigner, nonce: str, valid_before: int) -> None:
        super().__init__(signer)
        self._nonce = nonce
        self._valid_before = valid_before

    def create_payment_payload(
        self, requirements: PaymentRequirements, extensions: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        authorization = ExactEIP3009Authorization(
            from_address=self._signer.address,
            to=requirements.pay_to,
            value=requirements.amount,
            valid_after="0",
            valid_before=str(self._valid_before),
            nonce=self._nonce,
        )
        signature = self._sign_authorization(authorization, requirements)
        return ExactEIP3009Payload(authorization=authorization, signature=signature).to_dict()


def sign_payment(signer: AgentSigner, chosen: Quote, nonce: str, valid_before: int, max_amount: int) -> str:
    """The PAYMENT-SIGNATURE header value paying `chosen` (signed data, safe to store; no key)."""
    requirement = chosen.requirement
    client = x402ClientSync()
    client.register(requirement.network, _FixedNonceScheme(_AgentSigner(signer), nonce, valid_before))
    # The library's own spend cap, too: only this token on this network, at most the approved amount.
    client.set_spend_controls(
        {
            "allowed_assets": [
                {"network": requirement.network, "asset": requirement.asset, "max_amount_per_payment": str(max_amount)}
            ]
        }
    )
    only_ours = chosen.payment_required.model_copy(update={"accepts": [requirement]})
    http = x402HTTPClientSync(client)
    payload = http.create_payment_payload(only_ours)
    return http.encode_payment_signature_header(payload)[PAYMENT_SIGNATURE_HEADER]


def valid_before_for(chosen: Quote) -> int:
    return int(time.time()) + min(chosen.requirement.max_timeout_seconds or MAX_VALIDITY_SECONDS, MAX_VALIDITY_SECONDS)


def send_payment(url: str, payment_header: str) -> Delivery:
    """GET `url` with the signed payment; never raises for the resource's failures (they are outcomes)."""
    try:
        response = httpx.get(
            url, headers={PAYMENT_SIGNATURE_HEADER: payment_header}, timeout=PAY_TIMEOUT_SECONDS, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        return Delivery("unknown", reason=f"no answer: {exc.__class__.__name__}")
    client = _http_client()
    if response.status_code == 402:
        try:
            reason = client.get_payment_required_response(response.headers.get, response.content).error
        except ValueError:
            reason = None
        return Delivery("refused", reason=reason or "the resource refused the payment")
    if not 200 <= response.status_code < 300:
        return Delivery("unknown", reason=f"the resource answered {response.status_code}")
    try:
        settled = client.get_payment_settle_response(response.headers.get)
    except ValueError:
        return Delivery("unknown", reason="the resource answered without a PAYMENT-RESPONSE")
    content_type = response.headers.get("content-type", "")
    body = response.content[:MAX_BODY_BYTES].decode("utf-8", errors="replace")
    if not settled.success:
        return Delivery("refused", reason=settled.error_reason or "settlement failed")
    return Delivery("settled", tx_hash=settled.transaction or None, content_type=content_type, body=body)


def body_value(content_type: str | None, body: str | None) -> Any:
    """The stored body as the tool returns it: parsed JSON for a JSON resource, else the text."""
    if body is None:
        return None
    if content_type and "json" in content_type:
        try:
            return json.loads(body)
        except json.JSONDecodeError:
            return body
    return body


def authorization_used(token: TestUSDC, sender: str, nonce: str) -> bool:
    used: bool = token.contract.functions.authorizationState(to_checksum_address(sender), HexBytes(nonce)).call()
    return used


def settlement_of(token: TestUSDC, sender: str, nonce: str, from_block: int) -> tuple[str, int] | None:
    """The transaction that used this authorization (its AuthorizationUsed log), with its block; None if none."""
    logs = token.contract.events.AuthorizationUsed.get_logs(
        argument_filters={"authorizer": to_checksum_address(sender), "nonce": HexBytes(nonce)}, from_block=from_block
    )
    if not logs:
        return None
    first = logs[0]
    return HexBytes(first["transactionHash"]).to_0x_hex(), int(first["blockNumber"])
