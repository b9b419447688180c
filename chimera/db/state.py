"""Versioned state keys with optimistic concurrency control.

A task records the version of every key it read (its read set). Its commit validates, in one
transaction, that none of them moved, then bumps each key it writes by exactly one. Writers of
the same keys are serialized (advisory locks on PostgreSQL, BEGIN IMMEDIATE on SQLite) and each
UPDATE is still conditional on the version seen.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from chimera.db import audit
from chimera.db.engine import advisory_lock
from chimera.db.errors import StateConflict
from chimera.db.models import StateVersion
from chimera.db.records import StateValue
from schemas.task import StateRead, TaskRef


def read_versions(session: Session, tenant_id: str, keys: list[str]) -> list[StateRead]:
    """Current versions in the order asked; an absent key is version 0."""
    if not keys:
        return []
    found: dict[str, int] = dict(
        session.execute(
            select(StateVersion.key, StateVersion.version).where(
                StateVersion.tenant_id == tenant_id, StateVersion.key.in_(set(keys))
            )
        ).all()
    )
    return [StateRead(key=k, version=found.get(k, 0)) for k in keys]


def get(session: Session, tenant_id: str, key: str) -> StateValue | None:
    row = session.get(StateVersion, (tenant_id, key))
    if row is None:
        return None
    return StateValue(
        key=row.key, version=row.version, value=row.value, updated_at=row.updated_at, updated_by=row.updated_by
    )


def commit(
    session: Session,
    ref: TaskRef,
    read_set: list[StateRead],
    write_keys: list[str],
    value: dict[str, Any],
    actor: str,
    now: datetime,
) -> list[StateRead]:
    writes = list(dict.fromkeys(write_keys))
    payload = audit.normalize_json(value, "the committed value")
    keys = {r.key for r in read_set} | set(writes)
    advisory_lock(session, [f"state:{ref.tenant_id}:{k}" for k in keys])
    current = {
        row.key: row
        for row in session.execute(
            select(StateVersion.key, StateVersion.version, StateVersion.value, StateVersion.updated_by).where(
                StateVersion.tenant_id == ref.tenant_id, StateVersion.key.in_(keys)
            )
        )
    }

    # A retried activity whose first commit succeeded finds its own writes: answer as before.
    if (
        writes
        and all(k in current and current[k].updated_by == ref.task_id and current[k].value == payload for k in writes)
        and all(current[r.key].version == r.version + 1 for r in read_set if r.key in writes)
    ):
        return [StateRead(key=k, version=current[k].version) for k in writes]

    for read in read_set:
        actual = current[read.key].version if read.key in current else 0
        if actual != read.version:
            raise StateConflict(read.key, read.version, actual)

    versions: list[StateRead] = []
    for key in writes:
        row = current.get(key)
        if row is None:
            session.execute(
                insert(StateVersion).values(
                    tenant_id=ref.tenant_id, key=key, version=1, value=payload, updated_at=now, updated_by=ref.task_id
                )
            )
            versions.append(StateRead(key=key, version=1))
            continue
        # Conditional on the version seen: a belt to the lock's braces.
        result = session.connection().execute(
            update(StateVersion)
            .where(
                StateVersion.tenant_id == ref.tenant_id, StateVersion.key == key, StateVersion.version == row.version
            )
            .values(version=row.version + 1, value=payload, updated_at=now, updated_by=ref.task_id)
        )
        if result.rowcount != 1:
            latest = session.execute(
                select(StateVersion.version).where(StateVersion.tenant_id == ref.tenant_id, StateVersion.key == key)
            ).scalar_one_or_none()
            raise StateConflict(key, row.version, latest or 0)
        versions.append(StateRead(key=key, version=row.version + 1))

    audit.append(
        session,
        tenant_id=ref.tenant_id,
        actor=actor,
        action="state.commit",
        subject=f"task/{ref.task_id}",
        detail={
            "campaign_id": ref.campaign_id,
            "agent_id": ref.agent_id,
            "read": {r.key: r.version for r in read_set},
            "wrote": {v.key: v.version for v in versions},
            "value_sha256": hashlib.sha256(audit.canonical_json(payload).encode()).hexdigest(),
        },
        now=now,
    )
    return versions
