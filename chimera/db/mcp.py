"""MCP bookkeeping in the state store: pinned tool definitions per server, and kept (large) tool results.

Pins are deployment-wide, so their audit entries go to the reserved PLATFORM_TENANT's chain, a name no real
tenant can take (tenant ids are slugs that start with a letter or digit).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from chimera.db import audit
from chimera.db.audit import canonical_json, normalize_json
from chimera.db.engine import upsert
from chimera.db.models import KeptResult, McpPin

PLATFORM_TENANT = "_platform"


class PinRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    server: str
    state: str  # approved | quarantined
    pinned_hash: str
    pinned_tools: list[dict[str, Any]]
    approved_by: str
    approved_at: datetime
    observed_hash: str | None = None
    observed_tools: list[dict[str, Any]] | None = None
    quarantined_at: datetime | None = None


def _record(row: McpPin) -> PinRecord:
    return PinRecord(
        server=row.server,
        state=row.state,
        pinned_hash=row.pinned_hash,
        pinned_tools=row.pinned_tools,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        observed_hash=row.observed_hash,
        observed_tools=row.observed_tools,
        quarantined_at=row.quarantined_at,
    )


def get_pin(session: Session, server: str) -> PinRecord | None:
    row = session.get(McpPin, server)
    return None if row is None else _record(row)


def list_pins(session: Session) -> list[PinRecord]:
    return [_record(row) for row in session.execute(select(McpPin).order_by(McpPin.server)).scalars()]


def approve(
    session: Session, server: str, digest: str, tools: list[dict[str, Any]], actor: str, now: datetime
) -> PinRecord:
    row = session.get(McpPin, server, with_for_update=True)
    previous = None if row is None else (row.state, row.pinned_hash)
    if row is None:
        row = McpPin(server=server)
        session.add(row)  # a concurrent first approval of the same server fails on the primary key: retry
    row.state = "approved"
    row.pinned_hash = digest
    row.pinned_tools = tools
    row.approved_by = actor
    row.approved_at = now
    row.observed_hash = None
    row.observed_tools = None
    row.quarantined_at = None
    detail = {
        "server": server,
        "hash": digest,
        "tools": sorted(str(t.get("name")) for t in tools),
        "previous_state": previous[0] if previous else None,
        "previous_hash": previous[1] if previous else None,
    }
    audit.append(
        session, tenant_id=PLATFORM_TENANT, actor=actor, action="mcp_approve", subject=server, detail=detail, now=now
    )
    session.flush()
    return _record(row)


def quarantine(
    session: Session, server: str, digest: str, tools: list[dict[str, Any]], changes: dict[str, Any], now: datetime
) -> PinRecord | None:
    """Quarantine an approved server that now offers other definitions; audited once per change."""
    row = session.get(McpPin, server, with_for_update=True)
    if row is None or (row.state == "quarantined" and row.observed_hash == digest):
        return None if row is None else _record(row)
    row.state = "quarantined"
    row.observed_hash = digest
    row.observed_tools = tools
    row.quarantined_at = now
    detail = {"server": server, "pinned_hash": row.pinned_hash, "offered_hash": digest, **changes}
    audit.append(
        session,
        tenant_id=PLATFORM_TENANT,
        actor="mcp-host",
        action="mcp_quarantine",
        subject=server,
        detail=detail,
        now=now,
    )
    session.flush()
    return _record(row)


def result_key(body: dict[str, Any]) -> str:
    return "result-" + hashlib.sha256(canonical_json(body).encode()).hexdigest()


def keep_result(
    session: Session, tenant_id: str, server: str, tool: str, body: dict[str, Any], now: datetime
) -> tuple[str, int]:
    clean = normalize_json(body, "tool result")
    key = result_key(clean)
    size = len(canonical_json(clean).encode())
    audit.ensure_tenant(session, tenant_id, now)
    # Content-addressed: keeping the same result twice (even at once, from two workers) stores one row.
    values = {"tenant_id": tenant_id, "key": key, "server": server, "tool": tool, "size_bytes": size, "body": clean}
    upsert(session, KeptResult, {**values, "created_at": now}, ["tenant_id", "key"])
    return key, size


def get_result(session: Session, tenant_id: str, key: str) -> dict[str, Any] | None:
    row = session.get(KeptResult, (tenant_id, key))
    return None if row is None else row.body
