"""The tamper-evident audit log: one hash chain per tenant.

hash = sha256(prev_hash + canonical JSON of {tenant_id, seq, at, actor, action, subject, detail}).
The tenant row keeps the chain's head (last seq and hash), so deleting the newest entries is
detected too. Appends lock the tenant row, so concurrent appenders never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chimera.db.engine import upsert
from chimera.db.models import GENESIS_HASH, AuditLog, Tenant
from chimera.db.records import AuditCheck, AuditEntry


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def normalize_json(value: dict[str, Any], what: str = "audit detail") -> dict[str, Any]:
    """`value` exactly as the database will give it back, so hashes and comparisons are reproducible."""
    try:
        normalized = json.loads(canonical_json(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be plain JSON (str, number, bool, null, list, dict): {exc}") from exc
    if not isinstance(normalized, dict):
        raise ValueError(f"{what} must be a JSON object")
    return normalized


def entry_hash(
    prev_hash: str,
    *,
    tenant_id: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any],
) -> str:
    body = {
        "tenant_id": tenant_id,
        "seq": seq,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": detail,
    }
    return hashlib.sha256((prev_hash + canonical_json(body)).encode()).hexdigest()


def ensure_tenant(session: Session, tenant_id: str, now: datetime) -> None:
    if session.get(Tenant, tenant_id) is None:
        upsert(session, Tenant, {"id": tenant_id, "created_at": now}, ["id"])


def append(
    session: Session,
    *,
    tenant_id: str,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any],
    now: datetime,
) -> AuditEntry:
    """Append inside the caller's transaction; call it last, after every other lock is taken."""
    clean = normalize_json(detail)
    ensure_tenant(session, tenant_id, now)
    # FOR NO KEY UPDATE serializes appenders per tenant on PostgreSQL without conflicting with the
    # KEY SHARE locks that foreign-key checks of concurrent inserts hold on the tenant row (that
    # would deadlock). On SQLite the writer already holds the database lock.
    tenant = session.execute(
        select(Tenant)
        .where(Tenant.id == tenant_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one()
    seq = tenant.audit_seq + 1
    prev_hash = tenant.audit_head
    digest = entry_hash(
        prev_hash, tenant_id=tenant_id, seq=seq, at=now, actor=actor, action=action, subject=subject, detail=clean
    )
    session.add(
        AuditLog(
            tenant_id=tenant_id,
            seq=seq,
            at=now,
            actor=actor,
            action=action,
            subject=subject,
            detail=clean,
            prev_hash=prev_hash,
            hash=digest,
        )
    )
    tenant.audit_seq = seq
    tenant.audit_head = digest
    session.flush()
    return AuditEntry(
        tenant_id=tenant_id,
        seq=seq,
        at=now,
        actor=actor,
        action=action,
        subject=subject,
        detail=clean,
        prev_hash=prev_hash,
        hash=digest,
    )


def _entry(row: AuditLog) -> AuditEntry:
    return AuditEntry(
        tenant_id=row.tenant_id,
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        detail=row.detail,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def entries(session: Session, tenant_id: str, limit: int) -> list[AuditEntry]:
    """The newest `limit` entries, oldest first."""
    rows = session.execute(
        select(AuditLog).where(AuditLog.tenant_id == tenant_id).order_by(AuditLog.seq.desc()).limit(limit)
    ).scalars()
    return [_entry(row) for row in reversed(list(rows))]


def verify(session: Session, tenant_id: str) -> AuditCheck:
    """Walk the chain; call it in a snapshot transaction so the head and the rows agree."""
    tenant = session.get(Tenant, tenant_id)
    head_seq = tenant.audit_seq if tenant else 0
    head_hash = tenant.audit_head if tenant else GENESIS_HASH

    prev_hash = GENESIS_HASH
    expected = 1
    rows = session.execute(
        select(AuditLog).where(AuditLog.tenant_id == tenant_id).order_by(AuditLog.seq).execution_options(yield_per=500)
    ).scalars()
    for row in rows:
        if row.seq != expected:
            return AuditCheck(
                ok=False,
                first_bad_seq=expected,
                problem=f"entry {expected} is missing (the next stored entry is {row.seq})",
                entries=expected - 1,
            )
        if row.prev_hash != prev_hash:
            return AuditCheck(
                ok=False,
                first_bad_seq=row.seq,
                problem=(
                    f"entry {row.seq} does not link to entry {row.seq - 1} "
                    "(prev_hash differs: entries were reordered, replaced or removed)"
                ),
                entries=expected - 1,
            )
        recomputed = entry_hash(
            row.prev_hash,
            tenant_id=row.tenant_id,
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            action=row.action,
            subject=row.subject,
            detail=row.detail,
        )
        if recomputed != row.hash:
            return AuditCheck(
                ok=False,
                first_bad_seq=row.seq,
                problem=f"entry {row.seq} was altered: its content no longer matches its hash",
                entries=expected - 1,
            )
        prev_hash = row.hash
        expected += 1

    last = expected - 1
    if last != head_seq:
        return AuditCheck(
            ok=False,
            first_bad_seq=last + 1,
            problem=f"the chain ends at entry {last} but the tenant's head records {head_seq} entries "
            "(entries were deleted from the end)",
            entries=last,
        )
    if prev_hash != head_hash:
        return AuditCheck(
            ok=False,
            first_bad_seq=last or None,
            problem="the last entry's hash differs from the head recorded for the tenant",
            entries=last,
        )
    return AuditCheck(ok=True, entries=last)
