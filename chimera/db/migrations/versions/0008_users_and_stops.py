"""People and stops: users with a role, their signing keys, used request ids, and stops of a whole scope.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

All four are platform scope (like mention_routes): a signed request names only a key id, so the key is
found before any tenant is known, and a fleet stop belongs to no tenant. Row security shows them only to
transactions of the platform tenant; the `authorize` activity and the stop gate open such transactions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chimera.db import roles

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("users", "user_keys", "request_nonces", "scope_stops")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint("role IN ('content_reviewer', 'campaign_manager', 'administrator')", name="ck_users_role"),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_users_tenant", "users", ["tenant_id"])
    op.create_table(
        "user_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_name"], ["users.name"]),
        sa.PrimaryKeyConstraint("key_id"),
    )
    op.create_index("ix_user_keys_user", "user_keys", ["user_name"])
    op.create_table(
        "request_nonces",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("attempt_key", sa.String(length=255), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("request_id", "recipient"),
    )
    op.create_index("ix_request_nonces_used", "request_nonces", ["used_at"])
    op.create_table(
        "scope_stops",
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("stopped_by", sa.String(length=64), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=64), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("scope IN ('agent', 'tenant', 'fleet')", name="ck_scope_stops_scope"),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index("ix_scope_stops_active", "scope_stops", ["lifted_at", "tenant_id"])
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for table in TABLES:
            roles.protect_platform(conn, table)
        roles.grant(conn, dict.fromkeys(TABLES, ""))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
