"""Platform accounts: which agent of which tenant holds a persona's handle on a platform (chimera/accounts).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

A tenant table (the tenant policy on PostgreSQL, the usual grants). Its primary key is (platform, handle), so
two tenants can never hold one handle: row security hides another tenant's claim, not the key's uniqueness. One
account per agent and platform (uq_platform_accounts_agent); the agent row need not exist yet when its campaign's
registration claims the handles first, so the foreign key is to the tenant.

Existing campaigns get their personas' claims here (the oldest campaign first wins a contested handle), since a
long-running campaign registers only when it first starts; it runs before row security is forced on the table,
and is not audited (the chain's hashes are the store's to write).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from chimera.accounts.names import InvalidAccount, account_name, platform_name
from chimera.db import roles

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_accounts",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("handle", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("platform", "handle"),
        sa.UniqueConstraint("tenant_id", "agent_id", "platform", name="uq_platform_accounts_agent"),
    )
    conn = op.get_bind()
    _claim_existing(conn)
    if conn.dialect.name == "postgresql":
        roles.protect(conn, "platform_accounts", "tenant_id")
        roles.grant(conn, {"platform_accounts": "tenant_id"})


def downgrade() -> None:
    op.drop_table("platform_accounts")


def _claim_existing(conn: sa.Connection) -> None:
    campaigns = sa.table(
        "campaigns",
        sa.column("tenant_id", sa.String),
        sa.column("agent_id", sa.String),
        sa.column("spec", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    claims = sa.table(
        "platform_accounts",
        *(sa.column(c, sa.String) for c in ("platform", "handle", "tenant_id", "agent_id")),
        sa.column("claimed_at", sa.DateTime(timezone=True)),
    )
    held: set[tuple[str, str]] = set()
    agents: set[tuple[str, str, str]] = set()
    rows: list[dict[str, Any]] = []
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # as chimera.db.models.UTCDateTime stores it there
    query = sa.select(campaigns).order_by(campaigns.c.created_at, campaigns.c.tenant_id)
    for campaign in _every_tenants(conn, query):
        spec = campaign["spec"] if isinstance(campaign["spec"], dict) else {}
        handles = (spec.get("persona") or {}).get("handles") or {}
        for platform, handle in sorted(handles.items()) if isinstance(handles, dict) else []:
            try:
                key = (platform_name(str(platform)), account_name(str(handle)))
            except InvalidAccount:
                continue  # not an account: its registration will say so
            agent = (campaign["tenant_id"], campaign["agent_id"], key[0])
            if not key[1] or key in held or agent in agents:
                continue  # the oldest campaign keeps a contested handle; the later one is refused at registration
            held.add(key)
            agents.add(agent)
            rows.append({"platform": key[0], "handle": key[1], "tenant_id": agent[0], "agent_id": agent[1]})
    if rows:
        conn.execute(sa.insert(claims), [{**row, "claimed_at": now} for row in rows])


def _every_tenants(conn: sa.Connection, query: sa.Select[Any]) -> list[sa.RowMapping]:
    """The query's rows across all tenants. On PostgreSQL `campaigns` forces row security even on its owner
    (the migrating role), so it is lifted for this one read, inside the migration's transaction."""
    forced = conn.dialect.name == "postgresql" and bool(
        conn.execute(sa.text("SELECT relforcerowsecurity FROM pg_class WHERE oid = 'campaigns'::regclass")).scalar()
    )
    if forced:
        conn.execute(sa.text("ALTER TABLE campaigns NO FORCE ROW LEVEL SECURITY"))
    try:
        return list(conn.execute(query).mappings())
    finally:
        if forced:
            conn.execute(sa.text("ALTER TABLE campaigns FORCE ROW LEVEL SECURITY"))
