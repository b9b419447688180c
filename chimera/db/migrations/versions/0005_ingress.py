"""Ingress: webhook deliveries seen once (de-duplication) and mention routes (handle -> campaign).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Both tables are platform scope (chimera/db/roles.py PLATFORM_TABLES): the ingress receives a delivery before
it knows any tenant. Routes of the campaigns that exist already are filled in from their specs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from chimera.db import roles

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "event_id"),
    )
    op.create_index("ix_webhook_deliveries_received", "webhook_deliveries", ["received_at"], unique=False)
    routes = op.create_table(
        "mention_routes",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("handle", sa.String(length=255), nullable=False),
        sa.Column("campaign_tenant_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "handle", "campaign_tenant_id", "campaign_id"),
    )
    op.create_index("ix_mention_routes_campaign", "mention_routes", ["campaign_tenant_id", "campaign_id"])
    conn = op.get_bind()
    _backfill_routes(conn, routes)
    if conn.dialect.name == "postgresql":
        for table in roles.PLATFORM_TABLES:
            roles.protect_platform(conn, table)
        roles.grant(conn, roles.PLATFORM_TABLES)


def _backfill_routes(conn: sa.Connection, routes: sa.Table) -> None:
    """Routes for the campaigns registered before this revision (later ones get theirs when registered)."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        # campaigns' row security binds its owner too (FORCE); lift it for this read only, inside the
        # migration's transaction, so the owner sees every tenant's campaigns once.
        conn.execute(sa.text("ALTER TABLE campaigns NO FORCE ROW LEVEL SECURITY"))
    campaigns = sa.table(
        "campaigns",
        sa.column("tenant_id", sa.String()),
        sa.column("id", sa.String()),
        sa.column("spec", sa.JSON()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    rows = conn.execute(sa.select(campaigns)).all()
    if postgres:
        conn.execute(sa.text("ALTER TABLE campaigns FORCE ROW LEVEL SECURITY"))
    values: list[dict[str, Any]] = []
    for tenant_id, campaign_id, spec, created_at in rows:
        handles = (spec.get("persona") or {}).get("handles") or {}
        for platform in spec.get("platforms") or []:
            handle = str(handles.get(platform) or "").strip().lstrip("@").lower()  # = chimera.db.routes.handle_key
            if handle:
                values.append(
                    {
                        "platform": platform,
                        "handle": handle,
                        "campaign_tenant_id": tenant_id,
                        "campaign_id": campaign_id,
                        "campaign_created_at": created_at,
                    }
                )
    if values:
        op.bulk_insert(routes, values)


def downgrade() -> None:
    op.drop_table("mention_routes")
    op.drop_table("webhook_deliveries")
