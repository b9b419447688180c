"""PostgreSQL roles and row-level security, as the migrations apply them (see specs/database.md).

- `chimera_owner` runs the migrations and owns every table.
- `chimera_app` is what the application connects as: not superuser, no BYPASSRLS, owns nothing;
  SELECT/INSERT/UPDATE/DELETE on tenant tables, only SELECT/INSERT on audit_log and model_calls.
- `chimera_auditor` reads everything (SELECT only, BYPASSRLS) for `chimera audit verify`.

Every tenant-owned table has ENABLE + FORCE ROW LEVEL SECURITY and one policy whose USING and
WITH CHECK compare the tenant column with the per-transaction setting `app.tenant_id`; NULLIF
turns the empty string a reset setting shows into NULL, so a missing tenant matches no row.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

APP_ROLE = "chimera_app"
AUDITOR_ROLE = "chimera_auditor"
OWNER_ROLE = "chimera_owner"
TENANT_SETTING = "app.tenant_id"
POLICY = "tenant_isolation"
CURRENT_TENANT = f"NULLIF(current_setting('{TENANT_SETTING}', true), '')"

# Tables whose rows belong to one tenant, and the column naming it.
TENANT_TABLES: dict[str, str] = {
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
    "budgets": "tenant_id",
    "tool_results": "tenant_id",
    "model_calls": "tenant_id",
    "band_calibrations": "tenant_id",
}
# Deployment-wide tables (no tenant column, so no row policy): the MCP servers' pinned definitions.
SHARED_TABLES: dict[str, str] = {"mcp_pins": ""}
# Platform-scope tables: rows no tenant owns (webhook deliveries arrive before any tenant is known; routes map
# a public handle to the campaign answering it). Row security shows them only to transactions of the reserved
# PLATFORM_TENANT, so a tenant's transaction can neither read nor forge them.
PLATFORM_TABLES: dict[str, str] = {"webhook_deliveries": "", "mention_routes": ""}
PLATFORM_TENANT = "_platform"  # the same reserved name as chimera.db.mcp.PLATFORM_TENANT (no tenant slug can be it)
PLATFORM_POLICY = "platform_only"
APPEND_ONLY = ("audit_log",)  # refused UPDATE, DELETE and TRUNCATE by a trigger, for everyone
# The application role may only read and add rows of these (SELECT, INSERT): the audit chain and the call ledger.
INSERT_ONLY = (*APPEND_ONLY, "model_calls")


def protect(conn: Connection, table: str, column: str) -> None:
    """ENABLE + FORCE row security and the tenant policy (USING and WITH CHECK) on one table."""
    conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
    conn.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
    conn.execute(text(f"DROP POLICY IF EXISTS {POLICY} ON {table}"))
    conn.execute(
        text(
            f"CREATE POLICY {POLICY} ON {table} AS PERMISSIVE FOR ALL "
            f"USING ({column} = {CURRENT_TENANT}) WITH CHECK ({column} = {CURRENT_TENANT})"
        )
    )


def protect_platform(conn: Connection, table: str) -> None:
    """ENABLE + FORCE row security with one policy: only transactions of the platform scope see or write rows."""
    conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
    conn.execute(text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
    conn.execute(text(f"DROP POLICY IF EXISTS {PLATFORM_POLICY} ON {table}"))
    scope = f"{CURRENT_TENANT} = '{PLATFORM_TENANT}'"
    conn.execute(
        text(f"CREATE POLICY {PLATFORM_POLICY} ON {table} AS PERMISSIVE FOR ALL USING ({scope}) WITH CHECK ({scope})")
    )


def unprotect(conn: Connection, table: str) -> None:
    conn.execute(text(f"DROP POLICY IF EXISTS {POLICY} ON {table}"))
    conn.execute(text(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"))
    conn.execute(text(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"))


def role_exists(conn: Connection, role: str) -> bool:
    return bool(conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first())


def grant(conn: Connection, tables: dict[str, str]) -> None:
    """Grants for the application and auditor roles, when they exist (deploy/postgres/bootstrap.sql)."""
    if role_exists(conn, APP_ROLE):
        conn.execute(
            text(f"DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', current_schema()); END $$")
        )
        conn.execute(text(f"GRANT SELECT ON alembic_version TO {APP_ROLE}"))
        for table in tables:
            privileges = "SELECT, INSERT" if table in INSERT_ONLY else "SELECT, INSERT, UPDATE, DELETE"
            conn.execute(text(f"GRANT {privileges} ON {table} TO {APP_ROLE}"))
    if role_exists(conn, AUDITOR_ROLE):
        conn.execute(
            text(f"DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {AUDITOR_ROLE}', current_schema()); END $$")
        )
        conn.execute(text(f"GRANT SELECT ON alembic_version TO {AUDITOR_ROLE}"))
        for table in tables:
            conn.execute(text(f"GRANT SELECT ON {table} TO {AUDITOR_ROLE}"))
