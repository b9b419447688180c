"""PostgreSQL: row-level security per tenant, grants to the application roles, append-only audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Nothing to do on SQLite (one embedded user, no roles).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from chimera.db import roles

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The tenant tables of this revision (later revisions protect the tables they add).
TABLES = {
    "tenants": "id",
    "agents": "tenant_id",
    "campaigns": "tenant_id",
    "tasks": "tenant_id",
    "state_versions": "tenant_id",
    "spend": "tenant_id",
    "reviews": "tenant_id",
    "review_events": "tenant_id",
    "audit_log": "tenant_id",
    "outcomes": "tenant_id",
}

APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION chimera_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table, column in TABLES.items():
        roles.protect(conn, table, column)
    conn.execute(text(APPEND_ONLY_FUNCTION))
    for table in roles.APPEND_ONLY:
        conn.execute(
            text(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION chimera_append_only()"
            )
        )
        conn.execute(
            text(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION chimera_append_only()"
            )
        )
    roles.grant(conn, TABLES)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in roles.APPEND_ONLY:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}"))
    conn.execute(text("DROP FUNCTION IF EXISTS chimera_append_only()"))
    for table in TABLES:
        roles.unprotect(conn, table)
