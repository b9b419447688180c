"""Least privilege: the auditor reads the audit chain only, through a row policy of its own, not BYPASSRLS.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

PostgreSQL only (SQLite has one embedded user). Before, `chimera_auditor` had SELECT on every table and
BYPASSRLS. Now it keeps SELECT on `audit_log` and `tenants` (the chain heads `verify` checks against) and
`alembic_version` (the store's schema check), and the policy `auditor_reads_chain` on the first two shows it
every tenant's rows; every other privilege it held on the schema's tables and sequences is revoked.

BYPASSRLS is a role attribute only a superuser may change, so deploy/postgres/bootstrap.sql turns it off; this
migration refuses (RoleNotConfined, nothing applied) when the application or auditor role still has it or is a
superuser, unless it runs as a superuser, which turns both off itself.
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy import text

from chimera.db import roles

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    roles.require_confined(conn)
    roles.confine_auditor(conn)


def downgrade() -> None:
    """Back to 0009's grants: the auditor reads every table again, without its policy. BYPASSRLS is not given
    back (only a superuser can), so until one does, row security shows the auditor no tenant's rows."""
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in roles.AUDIT_CHAIN:
        conn.execute(text(f"DROP POLICY IF EXISTS {roles.AUDITOR_POLICY} ON {table}"))
    if roles.role_exists(conn, roles.AUDITOR_ROLE):
        conn.execute(
            text(
                f"DO $$ BEGIN EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO {roles.AUDITOR_ROLE}', "
                "current_schema()); END $$"
            )
        )
        log.warning(
            "%s reads every table again but has no BYPASSRLS: a superuser must ALTER ROLE %s BYPASSRLS "
            "for `chimera audit verify` across tenants at this revision",
            roles.AUDITOR_ROLE,
            roles.AUDITOR_ROLE,
        )
