"""Ed25519 request signatures: what is signed, how a client signs it, how the verifier checks it.

The signed message is canonical JSON (sorted keys, no spaces) of the action, the target, the key id, the
time of signing and the request's own fields, so a signature made for one change, one workflow or one
moment cannot be moved to another. Keys are raw 32-byte Ed25519 keys, written base64url without padding.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from schemas.access import Action, Signature

VERSION = 1
TOKEN_PREFIX = "chimera-token:"  # bearer tokens sign a different message kind than requests


class BadKey(ValueError):
    """A key that is not a base64url raw Ed25519 key."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadKey("not base64url") from exc


def new_key_id() -> str:
    return "k_" + secrets.token_hex(8)


def new_private_key() -> str:
    key = Ed25519PrivateKey.generate()
    return b64(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))


def public_key_of(private_key: str) -> str:
    return b64(_private(private_key).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def canonical(action: Action, target: str, key_id: str, issued_at: str, body: dict[str, Any]) -> bytes:
    message = {"v": VERSION, "action": action, "target": target, "key_id": key_id, "issued_at": issued_at, "body": body}
    return json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(private_key: str, key_id: str, issued_at: str, action: Action, target: str, body: dict[str, Any]) -> Signature:
    message = canonical(action, target, key_id, issued_at, body)
    return Signature(key_id=key_id, issued_at=issued_at, value=b64(_private(private_key).sign(message)))


def verify(public_key: str, signature: Signature, action: Action, target: str, body: dict[str, Any]) -> bool:
    message = canonical(action, target, signature.key_id, signature.issued_at, body)
    return verify_bytes(public_key, signature.value, message)


def verify_bytes(public_key: str, value: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(unb64(public_key)).verify(unb64(value), message)
    except (InvalidSignature, BadKey, ValueError):
        return False
    return True


def sign_bytes(private_key: str, message: bytes) -> str:
    return b64(_private(private_key).sign(message))


def _private(private_key: str) -> Ed25519PrivateKey:
    raw = unb64(private_key)
    if len(raw) != 32:
        raise BadKey("an Ed25519 private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)
