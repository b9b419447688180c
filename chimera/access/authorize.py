"""Deciding one signed request: who sent it, may they, and is it fresh and used once.

The checks run in an order that never lets a bad request consume anything: the signature and the key
first, then the time, the scope and the role, and the request id last (a forged or unauthorized request
with someone's id cannot "use up" that id). Every refusal names its reason; the activity audits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from chimera.access.signing import verify
from schemas.access import FLEET_SCOPE, Authorization, AuthorizeRequest, Role, allowed, least_role

VALIDITY = timedelta(minutes=5)  # a signed request must reach its workflow within this long
CLOCK_SKEW = timedelta(seconds=60)  # a sender's clock may run this far ahead of the workflow's
UNAUTHENTICATED = "unauthenticated"


@dataclass(frozen=True)
class KeyHolder:
    """A key and the user who holds it, as the directory knows them now."""

    user: str
    tenant_id: str
    role: Role
    public_key: str
    key_revoked_at: datetime | None
    key_expires_at: datetime | None
    user_revoked_at: datetime | None


class Directory(Protocol):
    def key_holder(self, key_id: str) -> KeyHolder | None: ...


class Nonces(Protocol):
    def use(self, request_id: str, recipient: str, attempt_key: str, user: str, at: datetime) -> bool:
        """Record the first use of (request_id, recipient); True if new or the same attempt (a retry)."""
        ...


def authorize(
    req: AuthorizeRequest, directory: Directory, nonces: Nonces, *, attempt_key: str, now: datetime
) -> Authorization:
    sig = req.signature
    if sig is None:
        return _refused(UNAUTHENTICATED, "unauthenticated: the request is not signed (sign in with `chimera user`)")
    holder = directory.key_holder(sig.key_id)
    if holder is None:
        return _refused(UNAUTHENTICATED, f"unauthenticated: unknown key {sig.key_id}")
    if not verify(holder.public_key, sig, req.action, req.target, req.body):
        return _refused(UNAUTHENTICATED, f"forged: the signature of key {sig.key_id} does not match this request")
    user = holder.user
    if holder.user_revoked_at is not None:
        return _refused(user, f"user {user} was revoked on {holder.user_revoked_at:%Y-%m-%d %H:%M} UTC", holder.role)
    if holder.key_revoked_at is not None:
        return _refused(user, f"key {sig.key_id} of {user} was revoked (rotated or withdrawn)", holder.role)
    received = _when(req.received_at)
    issued = _when(sig.issued_at)
    if received is None or issued is None:
        return _refused(user, "malformed time in the request", holder.role)
    # Workflow time is the moment of receipt; a test server that skips time runs ahead of the clock, never behind.
    received = min(received, now)
    if holder.key_expires_at is not None and issued >= holder.key_expires_at:
        return _refused(user, f"key {sig.key_id} of {user} expired at {holder.key_expires_at:%Y-%m-%d %H:%M} UTC")
    if issued > received + CLOCK_SKEW:
        return _refused(user, f"signed in the future ({sig.issued_at}, received {req.received_at}): check the clock")
    if received - issued > VALIDITY:
        age = int((received - issued).total_seconds())
        return _refused(
            user, f"expired: signed {age}s before it was received (valid {int(VALIDITY.total_seconds())}s)", holder.role
        )
    scope = _scope_refusal(holder, req)
    if scope:
        return _refused(user, scope, holder.role)
    if not allowed(holder.role, req.action):
        need = least_role(req.action)
        article = "an" if need[0] in "aeiou" else "a"
        return _refused(user, f"{user} is a {holder.role}: {req.action} needs {article} {need} or above", holder.role)
    if not nonces.use(req.request_id, req.recipient, attempt_key, user, now):
        return _refused(user, f"replayed: request {req.request_id} was already used at {req.recipient}", holder.role)
    return Authorization(allowed=True, actor=user, role=holder.role)


def _scope_refusal(holder: KeyHolder, req: AuthorizeRequest) -> str:
    if holder.tenant_id == FLEET_SCOPE:
        return ""
    if req.tenant_id is None:
        return f"{holder.user} acts for tenant {holder.tenant_id}: only the fleet's operators act on the whole fleet"
    if req.tenant_id != holder.tenant_id:
        return f"{holder.user} acts for tenant {holder.tenant_id}, not {req.tenant_id}"
    return ""


def _refused(actor: str, reason: str, role: Role | None = None) -> Authorization:
    return Authorization(allowed=False, actor=actor, role=role, reason=reason)


def _when(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
