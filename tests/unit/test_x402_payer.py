"""Choosing the x402 requirement this wallet can pay, and the nonce one idempotency key always signs."""

from __future__ import annotations

from typing import Any

import pytest
from x402 import PaymentRequired, PaymentRequirements

from mcp_servers.common import ToolError
from mcp_servers.wallet.x402_payer import authorization_nonce, check_url, choose_requirement

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
NETWORK = "eip155:31337"
DOMAIN = ("USDC", "2")


def requirement(**change: Any) -> PaymentRequirements:
    fields: dict[str, Any] = {
        "scheme": "exact",
        "network": NETWORK,
        "asset": TOKEN,
        "amount": "50000",
        "pay_to": "0x00000000000000000000000000000000000000Ad",
        "max_timeout_seconds": 300,
        "extra": {"name": "USDC", "version": "2"},
        **change,
    }
    return PaymentRequirements(**fields)


def choose(*accepts: PaymentRequirements) -> PaymentRequirements:
    return choose_requirement(PaymentRequired(accepts=list(accepts)), NETWORK, TOKEN.lower(), DOMAIN)


def test_the_exact_requirement_in_our_token_on_our_chain_is_chosen() -> None:
    ours = requirement()
    assert choose(requirement(scheme="upto"), requirement(network="eip155:8453"), ours) == ours


@pytest.mark.parametrize(
    ("accepts", "code"),
    [
        ([requirement(scheme="upto")], "not_payable"),
        ([requirement(network="eip155:8453")], "unsupported_network"),
        ([requirement(asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e")], "unsupported_asset"),
        ([requirement(extra={"name": "USD Coin", "version": "2"})], "unsupported_asset"),
        ([requirement(extra={"name": "USDC", "version": "2", "assetTransferMethod": "permit2"})], "unsupported_asset"),
        ([requirement(amount="0")], "unsupported_asset"),
    ],
)
def test_what_does_not_fit_is_named(accepts: list[PaymentRequirements], code: str) -> None:
    with pytest.raises(ToolError) as caught:
        choose(*accepts)
    assert caught.value.code == code


def test_one_key_one_nonce() -> None:
    nonce = authorization_nonce("acme", "ava", "payment-1")
    assert nonce == authorization_nonce("acme", "ava", "payment-1") and len(nonce) == 66
    others = {authorization_nonce("acme", "ava", "payment-2"), authorization_nonce("acme", "bob", "payment-1")}
    assert nonce not in others and len(others) == 2
    # The separator keeps ("a", "b-c") and ("a-b", "c") apart.
    assert authorization_nonce("a", "b", "c-d") != authorization_nonce("a", "b-c", "d")


@pytest.mark.parametrize("url", ["ftp://x/y", "file:///etc/passwd", "not a url", "http://", 7])
def test_only_http_urls(url: object) -> None:
    with pytest.raises(ToolError) as caught:
        check_url(url)
    assert caught.value.code == "invalid_url"
