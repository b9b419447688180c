"""The conversation store of tests/unit/test_conversation_store.py again on PostgreSQL, as the application role
under row security (fixtures from test_store_postgres.py: a fresh migrated schema per test), plus what only
PostgreSQL shows: a tenant's session neither reads, changes nor deletes another tenant's turns, even naming
them by mention id, and revision 0012 arrives on a database at 0011 with its policy and grants."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic import command
from psycopg import sql
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from chimera.db import StateStore, migrate, roles
from tests.integration.test_store_postgres import (  # noqa: F401  # fixtures, used by name
    APP,
    AUDITOR,
    OWNER,
    PgDatabase,
    pg,
    pg_available,
    super_connect,
)
from tests.unit.test_conversation_store import *  # noqa: F403  # the shared behaviours, collected again here
from tests.unit.test_conversation_store import NOW, OTHER_TENANT, ids, turn
from tests.unit.test_store import AGENT, TENANT, FakeClock, make_spec

A, B = TENANT, OTHER_TENANT


@pytest.fixture
def store_url(pg: PgDatabase) -> str:  # noqa: F811  # replaces the SQLite fixture: the app role
    return pg.app_url


@pytest.fixture
def app_engine(pg: PgDatabase) -> Iterator[Engine]:  # noqa: F811
    engine = create_engine(pg.app_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def as_tenant(engine: Engine, tenant: str | None, statement: str, **params: object) -> object:
    """One statement as the app role in a transaction of `tenant` (None: no tenant set), rolled back: its rows
    or rowcount."""
    with engine.connect() as conn, conn.begin() as trans:
        try:
            if tenant is not None:
                conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
            result = conn.execute(text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else result.rowcount
        finally:
            trans.rollback()


def test_a_tenant_cannot_read_change_or_delete_another_tenants_turns(store: StateStore, app_engine: Engine) -> None:
    assert store.dialect == "postgresql"
    store.record_exchange(A, AGENT, turn("m-a", NOW, said="A's customer"))
    store.record_exchange(B, AGENT, turn("m-b", NOW, said="B's customer"))

    # Through the store: B's turn is not A's, even by its mention id.
    assert ids(store.conversation(A, AGENT, "twitter", "ana")) == ["m-a"]
    assert store.forget_turns(A, AGENT, "twitter", ["m-b"]) == 0
    assert ids(store.conversation(B, AGENT, "twitter", "ana")) == ["m-b"]

    # Row security itself, with no tenant filter in the statement.
    everything = "SELECT tenant_id, mention_id FROM conversation_turns ORDER BY 1"
    assert as_tenant(app_engine, A, everything) == [(A, "m-a")]
    assert as_tenant(app_engine, B, everything) == [(B, "m-b")]
    assert as_tenant(app_engine, None, everything) == []  # no tenant: no row
    assert as_tenant(app_engine, A, "DELETE FROM conversation_turns WHERE mention_id = 'm-b'") == 0
    assert as_tenant(app_engine, A, "UPDATE conversation_turns SET said = 'x' WHERE mention_id = 'm-b'") == 0
    with pytest.raises(DBAPIError, match="row-level security"):  # moving its own row to B is refused
        as_tenant(app_engine, A, "UPDATE conversation_turns SET tenant_id = :b WHERE mention_id = 'm-a'", b=B)
    with pytest.raises(DBAPIError, match="row-level security"):  # so is writing a row as B
        as_tenant(
            app_engine,
            A,
            "INSERT INTO conversation_turns (tenant_id, agent_id, platform, mention_id, author, author_key, said, "
            "replied, at, recorded_at) VALUES (:b, :agent, 'twitter', 'm-forged', 'ana', 'ana', 'x', '', now(), now())",
            b=B,
            agent=AGENT,
        )
    assert ids(store.conversation(B, AGENT, "twitter", "ana")) == ["m-b"]
    assert store.conversation(B, AGENT, "twitter", "ana")[0].said == "B's customer"


def test_the_auditor_reads_no_turn(store: StateStore, pg: PgDatabase) -> None:  # noqa: F811
    store.record_exchange(A, AGENT, turn("m-a", NOW))
    engine = create_engine(pg.auditor_url)
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError, match="permission denied"):
            conn.execute(text("SELECT * FROM conversation_turns"))
    finally:
        engine.dispose()


def test_the_table_arrives_on_a_database_at_0011(pg_available: None) -> None:  # type: ignore[no-redef]  # noqa: F811
    """Replaces the SQLite test of the same name: upgrade 0011 -> 0012 with data in place, as the owner; the
    policy, the grants, the timestamptz column; the app role then uses it; down to 0011 and up again."""
    db = PgDatabase(f"chimera_test_{uuid.uuid4().hex[:12]}")
    with super_connect() as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(sql.Identifier(db.schema), sql.Identifier(OWNER))
        )
    try:
        migrate.upgrade(db.owner_url, "0011")
        # A tenant and its agent already there (as SQL: the store refuses a schema behind its head).
        owner = create_engine(db.owner_url)
        try:
            with owner.begin() as conn:
                conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": A})
                conn.execute(
                    text("INSERT INTO tenants (id, created_at, audit_seq, audit_head) VALUES (:t, now(), 0, :h)"),
                    {"t": A, "h": "0" * 64},
                )
                conn.execute(
                    text(
                        "INSERT INTO agents (tenant_id, id, name, persona, created_at, updated_at) "
                        "VALUES (:t, :a, 'Ava', '{}', now(), now())"
                    ),
                    {"t": A, "a": AGENT},
                )
        finally:
            owner.dispose()
        assert migrate.current_revision(db.owner_url) == "0011"

        before, after = migrate.upgrade(db.owner_url)
        assert (before, after) == ("0011", migrate.head())
        with super_connect() as conn:
            rls = conn.execute(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
                [f"{db.schema}.conversation_turns"],
            ).fetchone()
            assert rls == (True, True)
            policy = conn.execute(
                "SELECT qual, with_check FROM pg_policies WHERE schemaname = %s AND tablename = 'conversation_turns' "
                "AND policyname = %s",
                [db.schema, roles.POLICY],
            ).fetchone()
            assert policy is not None and all("app.tenant_id" in p and "NULLIF" in p for p in policy), policy
            grants = {
                (r[0], r[1])
                for r in conn.execute(
                    "SELECT grantee, privilege_type FROM information_schema.role_table_grants "
                    "WHERE table_schema = %s AND table_name = 'conversation_turns'",
                    [db.schema],
                )
            }
            assert {p for g, p in grants if g == APP} == {"SELECT", "INSERT", "UPDATE", "DELETE"}
            assert not any(g == AUDITOR for g, _ in grants)
            at_type = conn.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'conversation_turns' AND column_name = 'at'",
                [db.schema],
            ).fetchone()
            assert at_type == ("timestamp with time zone",)

        store = StateStore(db.app_url, clock=FakeClock(NOW))
        try:
            assert store.record_exchange(A, AGENT, turn("m1", NOW - timedelta(days=40)))
            assert ids(store.turns_before(A, AGENT, NOW - timedelta(days=30))) == ["m1"]
        finally:
            store.close()

        owner = create_engine(db.owner_url)
        try:
            with owner.begin() as conn:
                command.downgrade(migrate.alembic_config(conn), "0011")
        finally:
            owner.dispose()
        with super_connect() as conn:
            gone = conn.execute("SELECT to_regclass(%s)", [f"{db.schema}.conversation_turns"]).fetchone()
            assert gone == (None,)
        migrate.upgrade(db.owner_url)
        store = StateStore(db.app_url, clock=FakeClock(NOW))
        try:
            store.ensure_campaign(make_spec())
            assert store.record_exchange(A, AGENT, turn("m1", NOW))  # a new table: the turn is new again
        finally:
            store.close()
    finally:
        with super_connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(db.schema)))
