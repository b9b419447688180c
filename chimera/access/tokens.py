"""Short-lived bearer tokens for operators, signed with their key: how the codec server knows who asks.

token = base64url(JSON {"kid", "exp"}) "." base64url(Ed25519 signature of TOKEN_PREFIX + that JSON)

Only the fleet's operators (tenant '*') may see decrypted payloads: a workflow history holds every tenant's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from chimera.access.authorize import Directory
from chimera.access.credentials import UserCredentials
from chimera.access.signing import TOKEN_PREFIX, BadKey, b64, sign_bytes, unb64, verify_bytes
from schemas.access import FLEET_SCOPE

MAX_TTL = timedelta(hours=12)


def issue(creds: UserCredentials, ttl: timedelta, *, now: datetime | None = None) -> str:
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ValueError(f"a token lives between 1 second and {MAX_TTL}")
    expires = int(((now or datetime.now(UTC)) + ttl).timestamp())
    claims = json.dumps({"kid": creds.key_id, "exp": expires}, separators=(",", ":")).encode()
    signature = sign_bytes(creds.private_key.get_secret_value(), TOKEN_PREFIX.encode() + claims)
    return f"{b64(claims)}.{signature}"


def operator(token: str, directory: Directory, *, now: datetime | None = None) -> str | None:
    """The operator a valid, unexpired token of an active fleet-scope key belongs to; None otherwise."""
    claims_b64, dot, signature = token.strip().partition(".")
    if not dot:
        return None
    try:
        raw = unb64(claims_b64)
        claims = json.loads(raw)
        key_id, expires = str(claims["kid"]), int(claims["exp"])
    except (BadKey, ValueError, KeyError, TypeError):
        return None
    holder = directory.key_holder(key_id)
    if holder is None or holder.key_revoked_at is not None or holder.user_revoked_at is not None:
        return None
    if holder.tenant_id != FLEET_SCOPE or expires <= (now or datetime.now(UTC)).timestamp():
        return None
    if not verify_bytes(holder.public_key, signature, TOKEN_PREFIX.encode() + raw):
        return None
    return holder.user


def directory_authenticator(directory: Directory) -> Callable[[str], Awaitable[str | None]]:
    """The codec server's `authenticate`: a token's operator, checked against the user directory (in a thread:
    the directory is the database)."""

    async def authenticate(token: str) -> str | None:
        return await asyncio.to_thread(operator, token, directory)

    return authenticate
