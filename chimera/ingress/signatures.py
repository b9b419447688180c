"""The two platforms' webhook signatures, computed and checked exactly as they document them.

X (Account Activity API): `sha256=` + base64(HMAC-SHA256(consumer secret, message)); the message is the
`crc_token` for the challenge-response check, and the raw request body for a delivery
(header `x-twitter-webhooks-signature`).
Meta: `sha256=` + lowercase hex(HMAC-SHA256(app secret, raw request body)) in `X-Hub-Signature-256`; the
subscription check echoes `hub.challenge` when `hub.mode` is `subscribe` and `hub.verify_token` matches.

Every comparison is `hmac.compare_digest`, on bytes, so neither a wrong length nor odd characters leak timing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

X_SIGNATURE_HEADER = "x-twitter-webhooks-signature"
META_SIGNATURE_HEADER = "x-hub-signature-256"
PREFIX = "sha256="


def _mac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def x_signature(consumer_secret: str, message: bytes) -> str:
    return PREFIX + base64.b64encode(_mac(consumer_secret, message)).decode("ascii")


def x_crc_response(consumer_secret: str, crc_token: str) -> dict[str, str]:
    """The JSON body that answers X's challenge-response check."""
    return {"response_token": x_signature(consumer_secret, crc_token.encode())}


def meta_signature(app_secret: str, body: bytes) -> str:
    return PREFIX + _mac(app_secret, body).hex()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def x_signature_ok(consumer_secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and _same(x_signature(consumer_secret, body), header.strip())


def meta_signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    # Hex is case-insensitive; Meta sends lowercase, a proxy might not.
    return header is not None and _same(meta_signature(app_secret, body), header.strip().lower())


def meta_subscription_ok(mode: str | None, verify_token: str | None, expected_token: str) -> bool:
    """Whether a `hub.mode` / `hub.verify_token` pair is Meta subscribing with our token."""
    return mode == "subscribe" and verify_token is not None and _same(expected_token, verify_token)
