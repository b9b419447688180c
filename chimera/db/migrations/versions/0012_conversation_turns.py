"""Short-term memory: the recent exchanges of each agent with each author (chimera/db/conversations.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03

A tenant table like band_calibrations (its FK to the agent, the tenant policy on PostgreSQL, the usual grants).
Keyed by the mention the author wrote; `at` is a timestamptz, so turns compare as times, and the two indexes
serve the reads: one author's turns newest first, and the agent's turns older than a cutoff (for archiving).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from chimera.db import roles

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TEXT_MAX = 10_000  # chimera.db.models.CONVERSATION_TEXT_MAX when this revision was written


def upgrade() -> None:
    op.create_table(
        "conversation_turns",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("mention_id", sa.String(length=255), nullable=False),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("author_key", sa.String(length=255), nullable=False),
        sa.Column("said", sa.Text(), nullable=False),
        sa.Column("replied", sa.Text(), nullable=False),
        sa.Column("reply_post_id", sa.String(length=255), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            f"length(said) <= {TEXT_MAX} AND length(replied) <= {TEXT_MAX}", name="ck_conversation_turns_text"
        ),
        sa.ForeignKeyConstraint(["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "agent_id", "platform", "mention_id"),
    )
    op.create_index(
        "ix_conversation_turns_author",
        "conversation_turns",
        ["tenant_id", "agent_id", "platform", "author_key", "at"],
        unique=False,
    )
    op.create_index("ix_conversation_turns_at", "conversation_turns", ["tenant_id", "agent_id", "at"], unique=False)
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        roles.protect(conn, "conversation_turns", "tenant_id")
        roles.grant(conn, {"conversation_turns": "tenant_id"})


def downgrade() -> None:
    op.drop_index("ix_conversation_turns_at", table_name="conversation_turns")
    op.drop_index("ix_conversation_turns_author", table_name="conversation_turns")
    op.drop_table("conversation_turns")
