"""The StateStore behaviours of tests/unit/test_store.py, rerun on PostgreSQL, as production runs it.

Each test gets a fresh schema (owned by `chimera_owner`) in the test database, migrated by
Alembic as the owner; the store connects as `chimera_app`, under row-level security. The schema
is dropped afterwards. The PostgreSQL modules (test_rls_postgres.py, test_concurrency_postgres.py)
import their fixtures from here.

Environment (see specs/database.md):
- CHIMERA_TEST_PG: libpq conninfo of a superuser, to create/drop schemas and tamper with data
  (default `host=127.0.0.1 port=5432 user=postgres dbname=test`).
- CHIMERA_TEST_PG_OWNER / _APP / _AUDITOR: the role names (default chimera_owner, chimera_app,
  chimera_auditor), created by deploy/postgres/bootstrap.sql (.ci/run runs it; so does this
  module when they are missing and psql is installed). Passwords, if any, come from libpq
  (PGPASSWORD, ~/.pgpass).
Without a server the module is skipped, loudly; with CI set it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import JSON, Engine, bindparam, create_engine, text

from chimera.db import StateStore, migrate
from tests.unit.test_store import *  # noqa: F403  # the shared behaviours, collected again here
from tests.unit.test_store import TENANT, make_spec

CONNINFO = os.environ.get("CHIMERA_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")
OWNER = os.environ.get("CHIMERA_TEST_PG_OWNER", "chimera_owner")
APP = os.environ.get("CHIMERA_TEST_PG_APP", "chimera_app")
AUDITOR = os.environ.get("CHIMERA_TEST_PG_AUDITOR", "chimera_auditor")
BOOTSTRAP = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "bootstrap.sql"


def super_connect() -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(CONNINFO, autocommit=True, connect_timeout=3)


def _missing_roles() -> list[str]:
    with super_connect() as conn:
        found = {
            r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [[OWNER, APP, AUDITOR]])
        }
    return [r for r in (OWNER, APP, AUDITOR) if r not in found]


@pytest.fixture(scope="session")
def pg_available() -> None:
    """A server answers and the roles exist (bootstrapping them if need be), or skip/fail loudly."""
    try:
        missing = _missing_roles()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL NOT TESTED: no server answers at {CONNINFO!r} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if missing and shutil.which("psql"):
        params = psycopg.conninfo.conninfo_to_dict(CONNINFO)
        params["dbname"] = "postgres"
        subprocess.run(
            [
                "psql",
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                psycopg.conninfo.make_conninfo("", **params),
                "-f",
                str(BOOTSTRAP),
            ],
            check=True,
            capture_output=True,
        )
        missing = _missing_roles()
    if missing:
        pytest.fail(f"PostgreSQL roles {missing} are missing: run deploy/postgres/bootstrap.sql as a superuser")


@dataclass(frozen=True)
class PgDatabase:
    """One migrated schema and the URLs of each role, confined to it by search_path."""

    schema: str

    def url(self, role: str) -> str:
        params = psycopg.conninfo.conninfo_to_dict(CONNINFO)
        return (
            f"postgresql+psycopg://{role}@{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/"
            f"{params.get('dbname', 'test')}?options={quote(f'-csearch_path={self.schema}')}"
        )

    @property
    def owner_url(self) -> str:
        return self.url(OWNER)

    @property
    def app_url(self) -> str:
        return self.url(APP)

    @property
    def auditor_url(self) -> str:
        return self.url(AUDITOR)

    @property
    def super_url(self) -> str:
        return self.url(str(psycopg.conninfo.conninfo_to_dict(CONNINFO).get("user", "postgres")))

    def super_engine(self) -> Engine:
        return create_engine(self.super_url)


@pytest.fixture
def pg(pg_available: None) -> Iterator[PgDatabase]:
    schema = f"chimera_test_{uuid.uuid4().hex[:12]}"
    with super_connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(schema), sql.Identifier(OWNER)))
    db = PgDatabase(schema)
    try:
        migrate.upgrade(db.owner_url)
        yield db
    finally:
        with super_connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture  # type: ignore[no-redef]
def store_url(pg: PgDatabase) -> str:  # replaces the SQLite fixture of the shared tests: the app role
    return pg.app_url


def super_execute(db: PgDatabase, statement: str, **params: object) -> int:
    """As the superuser, with the append-only triggers skipped (session_replication_role): an attacker."""
    engine = db.super_engine()
    try:
        stmt = text(statement)
        if "detail" in params:
            stmt = stmt.bindparams(bindparam("detail", type_=JSON))
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            return conn.execute(stmt, params).rowcount
    finally:
        engine.dispose()


@pytest.fixture  # type: ignore[no-redef]
def tamper(pg: PgDatabase) -> Callable[..., int]:
    return lambda statement, **params: super_execute(pg, statement, **params)


def test_tables_live_in_the_test_schema_at_the_head_revision(store: StateStore, pg: PgDatabase) -> None:
    assert store.dialect == "postgresql"
    with super_connect() as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [pg.schema]
            )
        }
        not_null = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_schema = %s AND column_name = 'tenant_id' AND is_nullable = 'NO'",
            [pg.schema],
        ).fetchone()
        version = conn.execute(
            sql.SQL("SELECT version_num FROM {}.alembic_version").format(sql.Identifier(pg.schema))
        ).fetchone()
    assert {"tenants", "campaigns", "state_versions", "spend", "reviews", "review_events", "audit_log"} <= tables
    assert not_null is not None and int(not_null[0]) >= 9  # every tenant-owned table
    assert version is not None and version[0] == migrate.head()


def test_two_stores_share_one_database(store: StateStore, store_url: str) -> None:
    other = StateStore(store_url)
    try:
        other.ensure_campaign(make_spec())  # idempotent across stores too
        other.set_campaign_status(TENANT, "launch", "stopped", actor="ops", reason="kill switch")
        assert store.is_stopped(TENANT, "launch")
        assert store.verify_audit(TENANT).ok
    finally:
        other.close()
