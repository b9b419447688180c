"""MCP: pinned tool definitions per server, and tool results kept outside workflow history.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chimera.db import roles

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mcp_pins",
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("pinned_hash", sa.String(length=64), nullable=False),
        sa.Column("pinned_tools", sa.JSON(), nullable=False),
        sa.Column("approved_by", sa.String(length=255), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observed_hash", sa.String(length=64), nullable=True),
        sa.Column("observed_tools", sa.JSON(), nullable=True),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('approved', 'quarantined')", name="ck_mcp_pins_state"),
        sa.PrimaryKeyConstraint("server"),
    )
    op.create_table(
        "tool_results",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("server", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=128), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
    )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        roles.protect(conn, "tool_results", "tenant_id")
        # mcp_pins is deployment-wide (no tenant column): plain grants, no row policy.
        roles.grant(conn, {"tool_results": "tenant_id", **roles.SHARED_TABLES})


def downgrade() -> None:
    op.drop_table("tool_results")
    op.drop_table("mcp_pins")
