"""The StateStore behaviours of tests/unit/test_store.py, rerun on PostgreSQL.

Each test gets a fresh schema in the `test` database at 127.0.0.1:5432 (user postgres, trust auth),
dropped afterwards. Without a server the module is skipped, loudly; with CI set it fails instead.
Override the server with CHIMERA_TEST_PG (a libpq conninfo string).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from chimera.db import StateStore
from tests.unit.test_store import *  # noqa: F403  # the shared behaviours, collected again here
from tests.unit.test_store import TENANT, make_spec

CONNINFO = os.environ.get("CHIMERA_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")


def _connect() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(CONNINFO, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="module")
def pg_available() -> None:
    try:
        with _connect() as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL NOT TESTED: no server answers at {CONNINFO!r} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture  # type: ignore[no-redef]
def store_url(pg_available: None) -> Iterator[str]:  # replaces the SQLite fixture of the shared tests
    schema = f"chimera_test_{uuid.uuid4().hex[:12]}"
    with _connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    params = psycopg.conninfo.conninfo_to_dict(CONNINFO)
    url = (
        f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', 5432)}/{params.get('dbname', 'test')}?options={quote(f'-csearch_path={schema}')}"
    )
    try:
        yield url
    finally:
        with _connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_tables_live_in_the_test_schema(store: StateStore, store_url: str) -> None:
    assert store.dialect == "postgresql"
    schema = store_url.rsplit("search_path%3D", 1)[1]
    with _connect() as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
            )
        }
    assert {"tenants", "campaigns", "state_versions", "spend", "reviews", "review_events", "audit_log"} <= tables
    with _connect() as conn:
        not_null = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_schema = %s AND column_name = 'tenant_id' AND is_nullable = 'NO'",
            [schema],
        ).fetchone()
    assert not_null is not None and int(str(not_null[0])) >= 9  # every tenant-owned table


def test_two_stores_share_one_database(store: StateStore, store_url: str) -> None:
    other = StateStore(store_url)
    try:
        other.ensure_campaign(make_spec())  # idempotent across stores too
        other.set_campaign_status(TENANT, "launch", "stopped", actor="ops", reason="kill switch")
        assert store.is_stopped(TENANT, "launch")
        assert store.verify_audit(TENANT).ok
    finally:
        other.close()
