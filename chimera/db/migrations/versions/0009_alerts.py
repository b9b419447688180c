"""Alerts: deliveries recorded once per (alert, notifier), and the index the anomaly check reads spend by.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

alert_deliveries is deployment-wide (a fleet stop names no tenant): platform scope, like webhook_deliveries
(chimera/db/roles.py), so a tenant's transaction can neither read nor forge a delivery record.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chimera.db import roles

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLE = "alert_deliveries"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("alert_id", sa.String(length=255), nullable=False),
        sa.Column("notifier", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("alert_tenant_id", sa.String(length=64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "notifier"),
    )
    op.create_index("ix_alert_deliveries_sent", TABLE, ["sent_at"], unique=False)
    op.create_index("ix_model_calls_agent_time", "model_calls", ["tenant_id", "agent_id", "created_at"], unique=False)
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        roles.protect_platform(conn, TABLE)
        roles.grant(conn, {TABLE: ""})


def downgrade() -> None:
    op.drop_index("ix_model_calls_agent_time", table_name="model_calls")
    op.drop_index("ix_alert_deliveries_sent", table_name=TABLE)
    op.drop_table(TABLE)
