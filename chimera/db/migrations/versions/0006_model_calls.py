"""The call ledger: one row per priced model call or paid tool call, kept once by its key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

A tenant table like spend (its FKs to the campaign and agent, the tenant policy on PostgreSQL). The application
role may only read and add rows (SELECT, INSERT: roles.INSERT_ONLY), so what a call cost is never rewritten.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chimera.db import roles

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_calls",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_write_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=14, scale=6, asdecimal=False), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("price_date", sa.Date(), nullable=True),
        sa.Column("transcript_ref", sa.String(length=400), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('model', 'tool')", name="ck_model_calls_kind"),
        sa.CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND cached_input_tokens >= 0 AND cache_write_tokens >= 0"
            " AND cost_usd >= 0",
            name="ck_model_calls_amounts",
        ),
        sa.ForeignKeyConstraint(["tenant_id", "campaign_id"], ["campaigns.tenant_id", "campaigns.id"]),
        sa.ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "key"),
    )
    op.create_index("ix_model_calls_owner", "model_calls", ["tenant_id", "owner_id"], unique=False)
    op.create_index("ix_model_calls_campaign_day", "model_calls", ["tenant_id", "campaign_id", "day"], unique=False)
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        roles.protect(conn, "model_calls", "tenant_id")
        roles.grant(conn, {"model_calls": "tenant_id"})


def downgrade() -> None:
    op.drop_index("ix_model_calls_campaign_day", table_name="model_calls")
    op.drop_index("ix_model_calls_owner", table_name="model_calls")
    op.drop_table("model_calls")
