"""Least privilege on the real PostgreSQL: the roles Chimera and its compose file connect as.

- No role the application or compose uses is superuser or BYPASSRLS, and none inherits another role.
- The auditor reads every tenant's audit chain (its own row policy) and nothing else: permission denied on
  every other table of a migrated schema; `chimera audit verify` across tenants works as the auditor.
- Migration 0010 refuses roles row security would not confine, and its downgrade gives the old grants back.
- deploy/postgres/initdb.sh (the compose init script), on a private PostgreSQL cluster with password
  authentication: it creates the roles with the passwords from the environment, and the compose flow
  (migrate as the owner, run as the app, verify as the auditor) works with them.

Fixtures (a fresh migrated schema per test, the roles' URLs) come from test_store_postgres.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
import yaml
from alembic import command
from psycopg import sql
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from chimera.cli.app import app
from chimera.db import StateStore, migrate, roles
from tests.integration.test_rls_postgres import A, B, seed, seeded  # noqa: F401  # seeded: a fixture
from tests.integration.test_store_postgres import (  # noqa: F401  # fixtures, used by name
    APP,
    AUDITOR,
    OWNER,
    PgDatabase,
    pg,
    pg_available,
    super_connect,
    super_execute,
)
from tests.unit.test_deploy_manifests import COMPOSE_FILE, INIT_SCRIPT, compose_database_users

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "deploy" / "postgres" / "bootstrap.sql"
READABLE_BY_AUDITOR = {*roles.AUDIT_CHAIN, "alembic_version"}


def compose_roles() -> set[str]:
    """The database users deploy/docker-compose.yml connects as, from its services' URLs as written."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return {user for users in compose_database_users(services).values() for user in users}


def used_roles() -> list[str]:
    found = compose_roles()
    # The compose file must name the same three roles the code and the tests use, and only those.
    assert found == {roles.OWNER_ROLE, roles.APP_ROLE, roles.AUDITOR_ROLE}, found
    return sorted(found | {OWNER, APP, AUDITOR})


def test_no_role_chimera_uses_can_bypass_row_security(pg_available: None) -> None:  # noqa: F811
    with super_connect() as conn:
        for name in used_roles():
            row = conn.execute(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolcanlogin "
                "FROM pg_roles WHERE rolname = %s",
                [name],
            ).fetchone()
            assert row is not None, f"role {name} does not exist: run deploy/postgres/bootstrap.sql"
            assert row == (False, False, False, False, False, True), f"{name}: super, bypassrls, ... = {row}"
            member_of = conn.execute(
                "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                "WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = %s)",
                [name],
            ).fetchall()
            assert member_of == [], f"{name} inherits {member_of}"
        for name in (APP, AUDITOR):  # they own nothing: no table, schema, function, type or database
            owned = conn.execute(
                "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
                " + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)"
                " + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)"
                " + (SELECT count(*) FROM pg_type WHERE typowner = r.oid)"
                " + (SELECT count(*) FROM pg_database WHERE datdba = r.oid) FROM pg_roles r WHERE r.rolname = %s",
                [name],
            ).fetchone()
            assert owned == (0,), f"{name} owns {owned} objects"


def schema_tables(db: PgDatabase) -> list[str]:
    with super_connect() as conn:
        return [
            r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [db.schema])
        ]


def run_one(engine: Engine, statement: str) -> list[tuple[object, ...]] | str:
    """Rows, or the error's first line; in its own transaction, rolled back."""
    with engine.connect() as conn:
        try:
            return [tuple(r) for r in conn.execute(text(statement))]
        except DBAPIError as exc:
            return str(exc.orig).splitlines()[0]
        finally:
            conn.rollback()


@pytest.fixture
def auditor_engine(seeded: PgDatabase) -> Iterator[Engine]:  # noqa: F811
    engine = create_engine(seeded.auditor_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def test_the_auditor_reads_every_chain_and_nothing_else(seeded: PgDatabase, auditor_engine: Engine) -> None:  # noqa: F811
    # Every tenant's chain and head, with no tenant set: the auditor's own policy.
    assert run_one(auditor_engine, "SELECT DISTINCT tenant_id FROM audit_log ORDER BY 1") == [(A,), (B,)]
    assert run_one(auditor_engine, "SELECT id FROM tenants WHERE audit_seq > 0 ORDER BY 1") == [(A,), (B,)]
    assert run_one(auditor_engine, "SELECT version_num FROM alembic_version") == [(migrate.head(),)]
    # The policy is the auditor's alone: the application role still sees no row without a tenant.
    app_engine = create_engine(seeded.app_url)
    try:
        assert run_one(app_engine, "SELECT count(*) FROM audit_log") == [(0,)]
        assert run_one(app_engine, "SELECT count(*) FROM tenants") == [(0,)]
    finally:
        app_engine.dispose()

    tables = schema_tables(seeded)
    others = [t for t in tables if t not in READABLE_BY_AUDITOR]
    assert set(roles.TENANT_TABLES) - set(roles.AUDIT_CHAIN) <= set(others)  # the loop below covers them all
    for table in others:
        outcome = run_one(auditor_engine, f"SELECT * FROM {table} LIMIT 1")
        assert outcome == f"permission denied for table {table}", (table, outcome)
    # Read-only even on the chain.
    for statement in (
        "INSERT INTO tenants (id, created_at, audit_seq, audit_head) VALUES ('x', now(), 0, '')",
        "UPDATE tenants SET audit_seq = 0",
        "DELETE FROM audit_log",
    ):
        outcome = run_one(auditor_engine, statement)
        assert isinstance(outcome, str) and outcome.startswith("permission denied"), (statement, outcome)


def test_audit_verify_runs_as_the_auditor_across_tenants(seeded: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("CHIMERA_DATABASE_URL", seeded.app_url)
    monkeypatch.setenv("CHIMERA_AUDIT_DATABASE_URL", seeded.auditor_url)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    checks = {c["tenant_id"]: (c["ok"], c["entries"]) for c in json.loads(ok.stdout)}
    assert set(checks) == {A, B} and all(good and entries > 0 for good, entries in checks.values()), checks
    tail = runner.invoke(app, ["audit", "tail", "-n", "1", "--json"])
    assert tail.exit_code == 0 and {e["tenant_id"] for e in json.loads(tail.stdout)} == {A, B}, tail.output

    # A tampered entry: the auditor reads enough to tell.
    super_execute(seeded, "UPDATE audit_log SET actor = 'mallory' WHERE tenant_id = :t AND seq = 1", t=B)
    bad = runner.invoke(app, ["audit", "verify", "--json"])
    assert bad.exit_code == 1
    result = {c["tenant_id"]: c for c in json.loads(bad.stdout)}
    assert result[A]["ok"] and not result[B]["ok"] and result[B]["first_bad_seq"] == 1, result


@pytest.fixture
def throwaway_role(pg_available: None) -> Iterator[str]:  # noqa: F811
    """A role of its own, so the shared roles of this server are never altered."""
    name = f"chimera_test_role_{uuid.uuid4().hex[:8]}"
    with super_connect() as conn:
        conn.execute(sql.SQL("CREATE ROLE {} BYPASSRLS").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with super_connect() as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_the_owner_cannot_migrate_past_an_unconfined_role(pg: PgDatabase, throwaway_role: str) -> None:  # noqa: F811
    owner = create_engine(pg.owner_url)
    try:
        with owner.connect() as conn:
            assert roles.role_problems(conn, [throwaway_role]) == [f"{throwaway_role} has BYPASSRLS"]
            with pytest.raises(roles.RoleNotConfined) as raised:
                roles.require_confined(conn, [throwaway_role])
            message = str(raised.value)
            assert f"{throwaway_role} has BYPASSRLS" in message and "bootstrap.sql" in message
            assert f"The migration role {OWNER} may not alter other roles" in message
            conn.rollback()
    finally:
        owner.dispose()
    superuser = pg.super_engine()
    try:
        with superuser.begin() as conn:  # a superuser migrating turns the attribute off itself
            roles.require_confined(conn, [throwaway_role])
            assert roles.role_problems(conn, [throwaway_role]) == []
    finally:
        superuser.dispose()


def _auditor_privileges(db: PgDatabase) -> tuple[set[str], set[str]]:
    with super_connect() as conn:
        readable = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.role_table_grants "
                "WHERE grantee = %s AND table_schema = %s AND privilege_type = 'SELECT'",
                [AUDITOR, db.schema],
            )
        }
        policies = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_policies WHERE schemaname = %s AND policyname = %s",
                [db.schema, roles.AUDITOR_POLICY],
            )
        }
    return readable, policies


def test_0010_downgrades_to_the_old_grants_and_upgrades_again(pg: PgDatabase) -> None:  # noqa: F811
    assert _auditor_privileges(pg) == (READABLE_BY_AUDITOR, set(roles.AUDIT_CHAIN))
    owner = create_engine(pg.owner_url)
    try:
        with owner.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0009")
    finally:
        owner.dispose()
    readable, policies = _auditor_privileges(pg)
    assert readable == set(schema_tables(pg)) and policies == set()
    migrate.upgrade(pg.owner_url)
    assert _auditor_privileges(pg) == (READABLE_BY_AUDITOR, set(roles.AUDIT_CHAIN))


# --- the compose init script on a private cluster ---------------------------------------------------------


def _pg_bindir() -> Path | None:
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{command[-6:]}: {done.stdout}{done.stderr}"


@pytest.fixture
def private_cluster() -> Iterator[Path]:
    """A throwaway PostgreSQL cluster listening on a Unix socket only (no port), like the image's during init:
    the superuser `postgres` by trust, every other role by SCRAM password. Yields the socket directory."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot start a private cluster")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    # Not under pytest's tmp_path: that is private to the user running the tests, and the server may be another.
    base = Path(tempfile.mkdtemp(prefix="chimera-pg-"))
    try:
        if as_postgres:
            shutil.chown(base, "postgres")
        data, log = base / "data", base / "log"
        _run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        (data / "pg_hba.conf").write_text("local all postgres trust\nlocal all all scram-sha-256\n")
        options = f"-c listen_addresses='' -k {base}"
        _run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"])
        try:
            yield base
        finally:
            subprocess.run(
                [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                check=False,
                capture_output=True,
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


PASSWORDS = {  # deliberately awkward: quotes, @, :, / and % survive \getenv and PGPASSWORD unescaped
    "CHIMERA_OWNER_PASSWORD": "own'er@:/%pw",
    "CHIMERA_APP_PASSWORD": 'app"pw with spaces',
    "CHIMERA_AUDITOR_PASSWORD": "aud\\itor-pw",
}


def _connect(socket_dir: Path, user: str, password: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host=str(socket_dir), dbname="chimera", user=user, password=password, connect_timeout=3)


def _url(socket_dir: Path, user: str) -> str:
    return f"postgresql+psycopg://{user}@/chimera?host={quote(str(socket_dir))}"


def test_the_compose_init_script_creates_the_roles_with_their_passwords(
    private_cluster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = _pg_bindir()
    assert bindir is not None
    env = {
        "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}",  # psql 15+: the script uses \getenv
        "PGHOST": str(private_cluster),
        "POSTGRES_USER": "postgres",
        "CHIMERA_BOOTSTRAP_SQL": str(BOOTSTRAP),
        **PASSWORDS,
    }
    missing = {k: v for k, v in env.items() if k != "CHIMERA_AUDITOR_PASSWORD"}
    refused = subprocess.run(["bash", str(INIT_SCRIPT)], env=missing, capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "CHIMERA_AUDITOR_PASSWORD is empty" in refused.stderr, refused.stderr
    done = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert not any(p in done.stdout + done.stderr for p in PASSWORDS.values())  # never echoed

    for role, var in (
        (roles.OWNER_ROLE, "CHIMERA_OWNER_PASSWORD"),
        (roles.APP_ROLE, "CHIMERA_APP_PASSWORD"),
        (roles.AUDITOR_ROLE, "CHIMERA_AUDITOR_PASSWORD"),
    ):
        with _connect(private_cluster, role, PASSWORDS[var]) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (role,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            _connect(private_cluster, role, "wrong")
    with psycopg.connect(host=str(private_cluster), dbname="chimera", user="postgres") as conn:
        privileges = conn.execute(
            "SELECT r, has_database_privilege(r, 'chimera', 'CONNECT'), has_database_privilege(r, 'chimera', 'TEMP')"
            " FROM unnest(%s::text[]) AS r ORDER BY r",
            [[roles.APP_ROLE, roles.AUDITOR_ROLE]],
        ).fetchall()
        assert privileges == [(roles.APP_ROLE, True, True), (roles.AUDITOR_ROLE, True, False)]
        assert conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'chimera'").fetchone() == (
            roles.OWNER_ROLE,
        )

    # The compose flow: `migrate` as the owner, the services as the app, `audit` as the auditor; each service
    # holds one role's password as PGPASSWORD, and the URLs carry none.
    monkeypatch.setenv("PGPASSWORD", PASSWORDS["CHIMERA_OWNER_PASSWORD"])
    before, after = migrate.upgrade(_url(private_cluster, roles.OWNER_ROLE))
    assert (before, after) == (None, migrate.head())
    monkeypatch.setenv("PGPASSWORD", PASSWORDS["CHIMERA_APP_PASSWORD"])
    seed(_url(private_cluster, roles.APP_ROLE))
    monkeypatch.setenv("PGPASSWORD", PASSWORDS["CHIMERA_AUDITOR_PASSWORD"])
    auditor = StateStore(_url(private_cluster, roles.AUDITOR_ROLE))
    try:
        assert auditor.tenants() == [A, B]
        assert all(auditor.verify_audit(t).ok and auditor.verify_audit(t).entries > 0 for t in (A, B))
    finally:
        auditor.close()
