"""Learning feedback: band calibrations per agent and task type, and the reviews index they are counted by.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27

A tenant table like budgets (its FK to the agent, the tenant policy on PostgreSQL, the usual grants). Its rows
are recomputed from `reviews` with each human decision (chimera/db/calibration.py); none exists before one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chimera.db import roles

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "band_calibrations",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("task_type", sa.String(length=64), nullable=False),
        sa.Column("approve_shift", sa.Float(), nullable=False),
        sa.Column("escalate_shift", sa.Float(), nullable=False),
        sa.Column("reviews", sa.Integer(), nullable=False),
        sa.Column("approved", sa.Integer(), nullable=False),
        sa.Column("edited", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.CheckConstraint(
            "approve_shift >= -0.05 AND approve_shift <= 0.05 AND escalate_shift >= 0 AND escalate_shift <= 0.05",
            name="ck_band_calibrations_bounds",
        ),
        sa.CheckConstraint(
            "approved >= 0 AND edited >= 0 AND rejected >= 0 AND reviews = approved + edited + rejected",
            name="ck_band_calibrations_counts",
        ),
        sa.ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "agent_id", "task_type"),
    )
    op.create_index(
        "ix_reviews_feedback", "reviews", ["tenant_id", "agent_id", "task_type", "decided_at"], unique=False
    )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        roles.protect(conn, "band_calibrations", "tenant_id")
        roles.grant(conn, {"band_calibrations": "tenant_id"})


def downgrade() -> None:
    op.drop_index("ix_reviews_feedback", table_name="reviews")
    op.drop_table("band_calibrations")
