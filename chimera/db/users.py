"""Users, their keys and the request ids they used; stops of a whole agent, tenant or the fleet.

Platform-scope rows (migration 0008): callers open PLATFORM_TENANT transactions. The store records; who may do
what is chimera/access's rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from chimera.access.authorize import KeyHolder
from chimera.db.access_tables import RequestNonceRow, ScopeStopRow, UserKeyRow, UserRow
from chimera.db.engine import upsert
from chimera.db.errors import StoreError
from schemas.access import Role


class UserExists(StoreError):
    pass


class UnknownUser(StoreError, LookupError):
    pass


@dataclass(frozen=True)
class UserRecord:
    name: str
    tenant_id: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    key_id: str | None  # the active key; None once revoked


@dataclass(frozen=True)
class ScopeStop:
    request_id: str
    scope: str  # agent | tenant | fleet
    tenant_id: str | None
    agent_id: str | None
    reason: str
    stopped_by: str
    stopped_at: datetime

    def describe(self) -> str:
        where = {"fleet": "the fleet", "tenant": f"tenant {self.tenant_id}"}.get(
            self.scope, f"agent {self.tenant_id}/{self.agent_id}"
        )
        return f"{where} was stopped by {self.stopped_by}: {self.reason}"


def add_user(
    s: Session, name: str, tenant_id: str, role: Role, key_id: str, public_key: str, by: str, now: datetime
) -> None:
    if s.get(UserRow, name) is not None:
        raise UserExists(f"user {name} exists already: `chimera user rotate {name}` gives a new key")
    s.add(UserRow(name=name, tenant_id=tenant_id, role=role, created_at=now, created_by=by))
    s.flush()
    s.add(UserKeyRow(key_id=key_id, user_name=name, public_key=public_key, created_at=now))


def list_users(s: Session, tenant_id: str | None) -> list[UserRecord]:
    query = select(UserRow).order_by(UserRow.tenant_id, UserRow.name)
    if tenant_id is not None:
        query = query.where(UserRow.tenant_id == tenant_id)
    active = {
        k.user_name: k.key_id for k in s.execute(select(UserKeyRow).where(UserKeyRow.revoked_at.is_(None))).scalars()
    }
    return [_record(u, active.get(u.name)) for u in s.execute(query).scalars()]


def get_user(s: Session, name: str) -> UserRecord:
    row = s.get(UserRow, name)
    if row is None:
        raise UnknownUser(f"unknown user {name}: `chimera user list` shows them")
    key = s.execute(
        select(UserKeyRow.key_id).where(UserKeyRow.user_name == name, UserKeyRow.revoked_at.is_(None))
    ).scalar_one_or_none()
    return _record(row, key)


def revoke_user(s: Session, name: str, by: str, now: datetime) -> None:
    row = s.get(UserRow, name)
    if row is None:
        raise UnknownUser(f"unknown user {name}: `chimera user list` shows them")
    if row.revoked_at is None:
        row.revoked_at, row.revoked_by = now, by
    _revoke_keys(s, name, now)


def rotate_key(s: Session, name: str, key_id: str, public_key: str, now: datetime) -> None:
    """A new active key; the old one stops working at once (a request signed with it is refused as revoked)."""
    user = get_user(s, name)
    if user.revoked_at is not None:
        raise UnknownUser(f"user {name} is revoked: add a new user instead")
    _revoke_keys(s, name, now)
    s.add(UserKeyRow(key_id=key_id, user_name=name, public_key=public_key, created_at=now))


def key_holder(s: Session, key_id: str) -> KeyHolder | None:
    row = s.execute(
        select(UserKeyRow, UserRow)
        .join(UserRow, UserRow.name == UserKeyRow.user_name)
        .where(UserKeyRow.key_id == key_id)
    ).first()
    if row is None:
        return None
    key, user = row
    return KeyHolder(
        user=user.name,
        tenant_id=user.tenant_id,
        role=user.role,  # type: ignore[arg-type]  # the CHECK constraint keeps it a Role
        public_key=key.public_key,
        key_revoked_at=key.revoked_at,
        key_expires_at=key.expires_at,
        user_revoked_at=user.revoked_at,
    )


NONCES_KEPT = timedelta(days=1)  # far past a request's validity (minutes): an older id can no longer be replayed


def use_nonce(s: Session, request_id: str, recipient: str, attempt_key: str, user: str, at: datetime) -> bool:
    s.execute(delete(RequestNonceRow).where(RequestNonceRow.used_at < at - NONCES_KEPT))
    values = {"request_id": request_id, "recipient": recipient, "attempt_key": attempt_key, "user_name": user}
    upsert(s, RequestNonceRow, {**values, "used_at": at}, keys=("request_id", "recipient"))
    first = s.get(RequestNonceRow, (request_id, recipient), populate_existing=True)
    return first is not None and first.attempt_key == attempt_key


def record_stop(s: Session, stop: ScopeStop) -> ScopeStop:
    """Idempotent by the request id: a retried stop returns the stop first recorded."""
    upsert(
        s,
        ScopeStopRow,
        {
            "request_id": stop.request_id,
            "scope": stop.scope,
            "tenant_id": stop.tenant_id,
            "agent_id": stop.agent_id,
            "reason": stop.reason,
            "stopped_by": stop.stopped_by,
            "stopped_at": stop.stopped_at,
        },
        keys=("request_id",),
    )
    row = s.get(ScopeStopRow, stop.request_id, populate_existing=True)
    assert row is not None
    return _stop(row)


def lift_stops(
    s: Session, scope: str, tenant_id: str | None, agent_id: str | None, by: str, reason: str, now: datetime
) -> int:
    """Lift the active stops of exactly this scope; how many were lifted."""
    query = update(ScopeStopRow).where(
        ScopeStopRow.lifted_at.is_(None),
        ScopeStopRow.scope == scope,
        ScopeStopRow.tenant_id.is_(None) if tenant_id is None else ScopeStopRow.tenant_id == tenant_id,
        ScopeStopRow.agent_id.is_(None) if agent_id is None else ScopeStopRow.agent_id == agent_id,
    )
    result = s.execute(query.values(lifted_at=now, lifted_by=by, lift_reason=reason))
    return int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of an UPDATE


def active_stops(s: Session, tenant_id: str | None = None, agent_id: str | None = None) -> list[ScopeStop]:
    """The stops in force over an agent (its own, its tenant's, the fleet's); every one when tenant is None."""
    query = select(ScopeStopRow).where(ScopeStopRow.lifted_at.is_(None)).order_by(ScopeStopRow.stopped_at)
    if tenant_id is not None:
        covers = [
            ScopeStopRow.scope == "fleet",
            (ScopeStopRow.scope == "tenant") & (ScopeStopRow.tenant_id == tenant_id),
        ]
        if agent_id is not None:
            covers.append(
                (ScopeStopRow.scope == "agent")
                & (ScopeStopRow.tenant_id == tenant_id)
                & (ScopeStopRow.agent_id == agent_id)
            )
        query = query.where(or_(*covers))
    return [_stop(r) for r in s.execute(query).scalars()]


def _revoke_keys(s: Session, name: str, now: datetime) -> None:
    s.execute(
        update(UserKeyRow).where(UserKeyRow.user_name == name, UserKeyRow.revoked_at.is_(None)).values(revoked_at=now)
    )


def _record(row: UserRow, key_id: str | None) -> UserRecord:
    return UserRecord(
        name=row.name,
        tenant_id=row.tenant_id,
        role=row.role,  # type: ignore[arg-type]
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        key_id=key_id,
    )


def _stop(row: ScopeStopRow) -> ScopeStop:
    return ScopeStop(
        request_id=row.request_id,
        scope=row.scope,
        tenant_id=row.tenant_id,
        agent_id=row.agent_id,
        reason=row.reason,
        stopped_by=row.stopped_by,
        stopped_at=row.stopped_at,
    )
