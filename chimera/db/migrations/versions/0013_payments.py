"""Payments: the ledger of every payment an agent makes or receives, the finance team's daily caps, and the
finance_approver role (chimera/db/payments.py, specs/payments.md).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Two tenant tables like `budgets` (tenant policy on PostgreSQL, the usual grants). Amounts are integer USDC base
units (BigInteger: 9e12 USDC fit). `payments` holds one row per payment and direction: an outgoing payment is
written when it is reserved, before anything is signed, and moves through its statuses; an incoming one (from
another agent of the tenant) is written when the outgoing one settles. The users' role check gains
`finance_approver`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chimera.db import roles

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# chimera.db.models' tuples when this revision was written.
STATUSES = (
    "requested",
    "reserved",
    "pending_approval",
    "approved",
    "sent",
    "settled",
    "refused",
    "rejected",
    "expired",
    "cancelled",
    "failed",
)
OLD_ROLES = ("content_reviewer", "campaign_manager", "administrator")
NEW_ROLES = ("content_reviewer", "campaign_manager", "finance_approver", "administrator")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=96), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("counterparty", sa.String(length=255), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.Column("amount_units", sa.BigInteger(), nullable=False),
        sa.Column("asset", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_one_of("status", STATUSES), name="ck_payments_status"),
        sa.CheckConstraint("direction IN ('out', 'in')", name="ck_payments_direction"),
        sa.CheckConstraint("amount_units > 0", name="ck_payments_amount"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "payment_id", "direction"),
    )
    op.create_index("ix_payments_day", "payments", ["tenant_id", "day", "agent_id"], unique=False)
    op.create_index("ix_payments_campaign", "payments", ["tenant_id", "campaign_id"], unique=False)
    op.create_table(
        "payment_limits",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_id", sa.String(length=64), nullable=False),
        sa.Column("daily_units", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.CheckConstraint("scope IN ('tenant', 'agent')", name="ck_payment_limits_scope"),
        sa.CheckConstraint("daily_units >= 0", name="ck_payment_limits_daily"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "scope", "scope_id"),
    )
    _roles(NEW_ROLES)
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        for table in ("payments", "payment_limits"):
            roles.protect(conn, table, "tenant_id")
        roles.grant(conn, {"payments": "tenant_id", "payment_limits": "tenant_id"})


def _roles(allowed: tuple[str, ...]) -> None:
    # SQLite cannot alter a constraint: batch mode copies the table with the new check.
    with op.batch_alter_table("users", recreate="auto") as batch:
        batch.drop_constraint("ck_users_role", type_="check")
        batch.create_check_constraint("ck_users_role", _one_of("role", allowed))


def downgrade() -> None:
    _roles(OLD_ROLES)
    op.drop_table("payment_limits")
    op.drop_index("ix_payments_campaign", table_name="payments")
    op.drop_index("ix_payments_day", table_name="payments")
    op.drop_table("payments")
