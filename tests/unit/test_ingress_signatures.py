"""The webhook signatures against known vectors and an independent computation of the documented algorithms."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from chimera.ingress import signatures

# RFC 4231, test case 2: HMAC-SHA256 with key "Jefe".
RFC_KEY = "Jefe"
RFC_DATA = b"what do ya want for nothing?"
RFC_HEX = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
RFC_BASE64 = base64.b64encode(bytes.fromhex(RFC_HEX)).decode()


def test_x_signature_is_sha256_equals_base64_of_the_hmac() -> None:
    assert RFC_BASE64 == "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
    assert signatures.x_signature(RFC_KEY, RFC_DATA) == "sha256=" + RFC_BASE64


def test_meta_signature_is_sha256_equals_lowercase_hex_of_the_hmac() -> None:
    assert signatures.meta_signature(RFC_KEY, RFC_DATA) == "sha256=" + RFC_HEX


def test_crc_response_signs_the_token_under_the_consumer_secret() -> None:
    secret, token = "consumer-secret-1", "crc-token-Xy9"
    expected = base64.b64encode(hmac.new(secret.encode(), token.encode(), hashlib.sha256).digest()).decode()
    assert signatures.x_crc_response(secret, token) == {"response_token": "sha256=" + expected}


def test_x_delivery_signatures_are_checked_on_the_raw_body() -> None:
    secret, body = "s3cret", b'{"for_user_id": "1", "tweet_create_events": []}'
    good = "sha256=" + base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
    assert signatures.x_signature_ok(secret, body, good)
    assert signatures.x_signature_ok(secret, body, f" {good} ")
    assert not signatures.x_signature_ok(secret, body + b" ", good)  # the same JSON, other bytes
    assert not signatures.x_signature_ok("other", body, good)
    assert not signatures.x_signature_ok(secret, body, None)
    assert not signatures.x_signature_ok(secret, body, good.removeprefix("sha256="))
    assert not signatures.x_signature_ok(secret, body, "sha256=é" + good[8:])  # odd characters: a mismatch


def test_meta_delivery_signatures_accept_either_hex_case() -> None:
    secret, body = "app-secret", b'{"object": "instagram", "entry": []}'
    good = "sha256=" + hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert signatures.meta_signature_ok(secret, body, good)
    assert signatures.meta_signature_ok(secret, body, "sha256=" + good[7:].upper())
    assert not signatures.meta_signature_ok(secret, body.replace(b"instagram", b"page"), good)
    assert not signatures.meta_signature_ok(secret, body, None)
    assert not signatures.meta_signature_ok(secret, body, "sha1=" + good[7:])


@pytest.mark.parametrize(
    ("mode", "token", "ok"),
    [
        ("subscribe", "verify-me", True),
        ("subscribe", "verify-you", False),
        ("unsubscribe", "verify-me", False),
        (None, "verify-me", False),
        ("subscribe", None, False),
        ("subscribe", "", False),
    ],
)
def test_meta_subscription_needs_subscribe_and_the_verify_token(mode: str | None, token: str | None, ok: bool) -> None:
    assert signatures.meta_subscription_ok(mode, token, "verify-me") is ok
