"""PostgreSQL roles and row-level security, as the migrations apply them (see specs/database.md).

- `chimera_owner` runs the migrations and owns every table.
- `chimera_app` is what the application connects as: not superuser, no BYPASSRLS, owns nothing;
  SELECT/INSERT/UPDATE/DELETE on tenant tables, only SELECT/INSERT on audit_log and model_calls.
- `chimera_auditor` reads the audit chain and nothing else: SELECT on audit_log and tenants (the chain
  heads) and alembic_version (the store's schema check), no BYPASSRLS. Its own row policy on those two
  tables shows it every tenant's rows, for `chimera audit verify` across tenants.

Every tenant-owned table has ENABLE + FORCE ROW LEVEL SECURITY and one policy whose USING and
WITH CHECK compare the tenant column with the per-transaction setting `app.tenant_id`; NULLIF
turns the empty string a reset setting shows into NULL, so a missing tenant matches no row.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

from chimera.db.errors import StoreError

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
    "platform_accounts": "tenant_id",
    "conversation_turns": "tenant_id",
    "payments": "tenant_id",
    "payment_limits": "tenant_id",
}
# Deployment-wide tables (no tenant column, so no row policy): the MCP servers' pinned definitions.
SHARED_TABLES: dict[str, str] = {"mcp_pins": ""}
# Platform-scope tables: rows no tenant owns (webhook deliveries arrive before any tenant is known; routes map
# a public handle to the campaign answering it). Row security shows them only to transactions of the reserved
# PLATFORM_TENANT, so a tenant's transaction can neither read nor forge them.
PLATFORM_TABLES: dict[str, str] = {"webhook_deliveries": "", "mention_routes": ""}
# Platform-scope tables of later revisions (0008 people and stops, 0009 alert deliveries): protected by their own
# migrations, listed here so every upgrade re-grants them (PLATFORM_TABLES is what revision 0005 protects).
LATER_PLATFORM_TABLES: dict[str, str] = {
    "users": "",
    "user_keys": "",
    "request_nonces": "",
    "scope_stops": "",
    "alert_deliveries": "",
}
PLATFORM_TENANT = "_platform"  # the same reserved name as chimera.db.mcp.PLATFORM_TENANT (no tenant slug can be it)
PLATFORM_POLICY = "platform_only"
APPEND_ONLY = ("audit_log",)  # refused UPDATE, DELETE and TRUNCATE by a trigger, for everyone
# The application role may only read and add rows of these (SELECT, INSERT): the audit chain and the call ledger.
INSERT_ONLY = (*APPEND_ONLY, "model_calls")
# All the auditor may read: the hash chains and their heads (the tenant rows `verify` checks the chain against).
# A table added later grants the auditor nothing; reading one more table is a decision made here.
AUDIT_CHAIN = ("audit_log", "tenants")
AUDITOR_POLICY = "auditor_reads_chain"
# The roles that read tenant data: row security must confine them, so neither may be superuser or BYPASSRLS.
CONFINED_ROLES = (APP_ROLE, AUDITOR_ROLE)


class RoleNotConfined(StoreError):
    """A role that reads tenant data could bypass row security, and the migration role may not fix it."""


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
    """Grants for the roles that exist (deploy/postgres/bootstrap.sql): the application role on every table
    given; the auditor only on the audit chain's tables among them (with its row policy), and nothing on the
    others (whatever it holds there is revoked). Refuses, first, an application or auditor role that could
    bypass row security (`require_confined`)."""
    require_confined(conn)
    if role_exists(conn, APP_ROLE):
        _grant_schema_usage(conn, APP_ROLE)
        conn.execute(text(f"GRANT SELECT ON alembic_version TO {APP_ROLE}"))
        for table in tables:
            privileges = "SELECT, INSERT" if table in INSERT_ONLY else "SELECT, INSERT, UPDATE, DELETE"
            conn.execute(text(f"GRANT {privileges} ON {table} TO {APP_ROLE}"))
    if role_exists(conn, AUDITOR_ROLE):
        _grant_auditor(conn, tables)


def _grant_auditor(conn: Connection, tables: Iterable[str]) -> None:
    _grant_schema_usage(conn, AUDITOR_ROLE)
    conn.execute(text(f"GRANT SELECT ON alembic_version TO {AUDITOR_ROLE}"))
    for table in tables:
        if table in AUDIT_CHAIN:
            conn.execute(text(f"GRANT SELECT ON {table} TO {AUDITOR_ROLE}"))
            ensure_auditor_policy(conn, table)
        else:
            conn.execute(text(f"REVOKE ALL ON {table} FROM {AUDITOR_ROLE}"))


def _grant_schema_usage(conn: Connection, role: str) -> None:
    conn.execute(text(f"DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO {role}', current_schema()); END $$"))


def ensure_auditor_policy(conn: Connection, table: str) -> None:
    """The auditor's row policy on one audit-chain table: it reads every tenant's rows (and writes none: it has
    SELECT only). Created when missing, never replaced, so a re-run takes no lock on a busy table."""
    exists = conn.execute(
        text("SELECT 1 FROM pg_policies WHERE schemaname = current_schema() AND tablename = :t AND policyname = :p"),
        {"t": table, "p": AUDITOR_POLICY},
    ).first()
    if not exists:
        conn.execute(
            text(f"CREATE POLICY {AUDITOR_POLICY} ON {table} AS PERMISSIVE FOR SELECT TO {AUDITOR_ROLE} USING (true)")
        )


def confine_auditor(conn: Connection) -> None:
    """Take from the auditor every privilege on the schema's tables and sequences, then give back SELECT on the
    audit chain and alembic_version, with its row policy. Covers tables no list here names."""
    if not role_exists(conn, AUDITOR_ROLE):
        return
    for kind in ("TABLES", "SEQUENCES"):
        conn.execute(
            text(
                f"DO $$ BEGIN EXECUTE format('REVOKE ALL ON ALL {kind} IN SCHEMA %I FROM {AUDITOR_ROLE}', "
                "current_schema()); END $$"
            )
        )
    _grant_auditor(conn, AUDIT_CHAIN)


def role_problems(conn: Connection, names: Iterable[str] = CONFINED_ROLES) -> list[str]:
    """How each existing role of `names` would escape row security ("chimera_auditor has BYPASSRLS"); empty when
    none would."""
    rows = conn.execute(
        text("SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = ANY(:names) ORDER BY rolname"),
        {"names": list(names)},
    )
    return [
        f"{name} has {' and '.join(a for a, on in (('SUPERUSER', sup), ('BYPASSRLS', bypass)) if on)}"
        for name, sup, bypass in rows
        if sup or bypass
    ]


def require_confined(conn: Connection, names: Iterable[str] = CONFINED_ROLES) -> None:
    """Make sure row security confines every existing role of `names`. A superuser migrating turns SUPERUSER and
    BYPASSRLS off; any other migration role (the owner may not alter other roles) gets RoleNotConfined, and the
    transaction it raises in rolls back."""
    names = list(names)
    problems = role_problems(conn, names)
    if not problems:
        return
    current, is_super = conn.execute(text("SELECT rolname, rolsuper FROM pg_roles WHERE rolname = current_user")).one()
    if is_super:
        for name in names:
            if role_exists(conn, name):
                conn.execute(text(f'ALTER ROLE "{name}" NOSUPERUSER NOBYPASSRLS'))
        return
    bad = ", ".join(p.split(" ", 1)[0] for p in problems)
    raise RoleNotConfined(
        f"the roles that read tenant data must be NOSUPERUSER NOBYPASSRLS, but {'; '.join(problems)}. "
        f"The migration role {current} may not alter other roles: a superuser must run "
        f"deploy/postgres/bootstrap.sql again (it sets both off) or ALTER ROLE ... NOSUPERUSER NOBYPASSRLS for {bad}, "
        "then run `chimera db upgrade` again"
    )
