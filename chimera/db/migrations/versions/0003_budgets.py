"""Budget levels: daily limits per tenant and per agent, beside each campaign's own.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chimera.db import roles

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("daily_usd", sa.Numeric(precision=14, scale=6, asdecimal=False), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.CheckConstraint("scope IN ('tenant', 'agent', 'campaign')", name="ck_budgets_scope"),
        sa.CheckConstraint("daily_usd >= 0", name="ck_budgets_daily"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "scope", "scope_id"),
    )
    op.create_index("ix_spend_tenant_day", "spend", ["tenant_id", "day", "status"], unique=False)
    op.create_index("ix_spend_agent_day", "spend", ["tenant_id", "agent_id", "day", "status"], unique=False)
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        roles.protect(conn, "budgets", "tenant_id")
        roles.grant(conn, {"budgets": "tenant_id"})


def downgrade() -> None:
    op.drop_index("ix_spend_agent_day", table_name="spend")
    op.drop_index("ix_spend_tenant_day", table_name="spend")
    op.drop_table("budgets")
