"""Row-level security on the real PostgreSQL: the isolation matrix, the role audit, pool leakage.

Fixtures (a fresh migrated schema per test, the roles' URLs) come from test_store_postgres.py.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from chimera.accounts.directory import AccountDirectory
from chimera.db import SchemaNotReady, StateStore, roles
from schemas.memory import ConversationTurn
from schemas.models import CostLine, TokenUsage
from schemas.task import StateRead
from tests.integration.test_store_postgres import (  # noqa: F401  # fixtures, used by name
    APP,
    AUDITOR,
    PgDatabase,
    pg,
    pg_available,
    super_connect,
)
from tests.unit.test_payment_ledger import DEFAULTS, payment, prepared
from tests.unit.test_store import make_spec, ref, review

A, B = "tenant-a", "tenant-b"
NONE = "none"  # no tenant set in a fresh session
EMPTY = "empty"  # no tenant set, after an earlier SET LOCAL on the same connection: current_setting gives ''

# How to make a new row from an existing one without breaking its foreign keys: the key column(s) to vary, one
# per unique constraint.
VARY: dict[str, str | tuple[str, ...]] = {
    "tenants": "id",
    "agents": "id",
    "campaigns": "id",
    "tasks": "task_id",
    "state_versions": "key",
    "spend": "task_id",
    "reviews": "task_id",
    "review_events": "seq",
    "audit_log": "seq",
    "outcomes": "task_id",
    "budgets": "scope_id",
    "tool_results": "key",
    "model_calls": "key",
    "band_calibrations": "task_type",
    "platform_accounts": ("handle", "agent_id"),  # the key (platform, handle), one account per agent and platform
    "conversation_turns": "mention_id",
    "payments": "payment_id",
    "payment_limits": "scope_id",
}


def cost_line(key: str, cost: float) -> CostLine:
    return CostLine(
        key=key, tier="post", provider="anthropic", model="m", tokens=TokenUsage(input_tokens=10), cost_usd=cost
    )


def seed(url: str) -> None:
    """The same data for both tenants, through the store (so as the app role, under RLS)."""
    store = StateStore(url)
    try:
        for tenant in (A, B):
            store.ensure_campaign(make_spec(tenant=tenant))
            r = ref(f"{tenant}.launch.t1", tenant=tenant)
            store.commit(r, [StateRead(key="k", version=0)], ["k"], {"v": tenant}, "worker")
            store.reserve(r, 0.01, 1.0, "UTC")
            store.record_task(r, "k", "post", "twitter", "published", 1, 0.9)
            store.record_outcome(r, "post", "published", human_decided=False)
            store.record_review(review(f"{tenant}.launch.t1", tenant_id=tenant))
            # A human decision on another draft: the agent's band calibration (learning feedback).
            store.record_review(review(f"{tenant}.launch.t2", tenant_id=tenant, state="approved", reviewer="rita"))
            store.set_budget(tenant, "agent", "ava", 2.0, actor="ops")
            store.keep_result(tenant, "news", "headlines", {"articles": [tenant]})
            store.charge(r, [cost_line(f"{tenant}.launch.t1:a1:c1", 0.01)], "UTC")
            AccountDirectory.of(store).claim(tenant, "ava", {"twitter": f"ava_{tenant[-1]}"})
            said = ConversationTurn(
                platform="twitter", author="ana", mention_id="m1", said="hi", at="2026-03-09T12:00:00Z"
            )
            store.record_exchange(tenant, "ava", said)  # short-term memory (conversation_turns)
            pay = payment(1).model_copy(update={"tenant_id": tenant})
            store.reserve_payment(pay, prepared(), DEFAULTS)  # the payment ledger
            store.set_payment_limit(tenant, "agent", "ava", 5_000_000, "finance")
    finally:
        store.close()


@pytest.fixture
def seeded(pg: PgDatabase) -> PgDatabase:  # noqa: F811
    seed(pg.app_url)
    return pg


@pytest.fixture
def app_engine(seeded: PgDatabase) -> Iterator[Engine]:
    engine = create_engine(seeded.app_url, pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def tenant_tables(db: PgDatabase) -> dict[str, str]:
    with super_connect() as conn:
        names = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE'",
                [db.schema],
            )
        }
    return {t: c for t, c in roles.TENANT_TABLES.items() if t in names}


def begin_as(conn: Connection, who: str) -> None:
    if who in (A, B):
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": who})


def sample_row(db: PgDatabase, table: str, column: str, tenant: str) -> dict[str, Any]:
    engine = db.super_engine()
    try:
        with engine.connect() as conn:
            row = (
                conn.execute(text(f"SELECT * FROM {table} WHERE {column} = :t LIMIT 1"), {"t": tenant}).mappings().one()
            )
            return dict(row)
    finally:
        engine.dispose()


def attempt(engine: Engine, who: str, statement: str, params: dict[str, Any]) -> tuple[str, Any]:
    """Run one statement as the app role in its own transaction (rolled back); ('ok', result) or ('denied', error)."""
    with engine.connect() as conn:
        if who == EMPTY:  # leave '' behind on this connection first, as a pooled connection would have
            with conn.begin():
                conn.execute(text("SELECT set_config('app.tenant_id', 'someone', true)"))
        trans = conn.begin()
        try:
            begin_as(conn, who)
            result = conn.execute(text(statement), params)
            value = result.fetchall() if result.returns_rows else result.rowcount
            return "ok", value
        except DBAPIError as exc:
            return "denied", str(exc.orig)
        finally:
            trans.rollback()


@pytest.mark.parametrize("who", [A, B, NONE, EMPTY])
def test_isolation_matrix(seeded: PgDatabase, app_engine: Engine, who: str) -> None:
    tables = tenant_tables(seeded)
    assert set(tables) >= set(roles.TENANT_TABLES) - {"budgets"}
    for table, column in tables.items():
        own = who if who in (A, B) else None

        # SELECT: only the tenant's own rows; none without a tenant.
        status, rows = attempt(app_engine, who, f"SELECT {column} FROM {table}", {})
        assert status == "ok", (table, who, rows)
        seen = {r[0] for r in rows}
        assert seen == ({own} if own else set()), (table, who, seen)

        # INSERT: a copy of a row, for each tenant; only the tenant's own passes WITH CHECK.
        for target in (A, B):
            row = sample_row(seeded, table, column, target)
            varied = VARY[table]
            for vary in (varied,) if isinstance(varied, str) else varied:
                row[vary] = row[vary] + 1000 if isinstance(row[vary], int) else f"{row[vary]}-copy"
            if table == "tenants":
                row["id"] = target  # a tenant row is its own id: insert it again (conflict) or not at all
            cols = ", ".join(row)
            values = ", ".join(f"CAST(:{c} AS {_pg_type(seeded, table, c)})" for c in row)
            statement = f"INSERT INTO {table} ({cols}) VALUES ({values})"
            if table == "tenants":
                statement += " ON CONFLICT (id) DO NOTHING"
            status, detail = attempt(app_engine, who, statement, {k: _jsonable(v) for k, v in row.items()})
            if target == own:
                assert status == "ok", (table, who, target, detail)
            else:
                assert status == "denied" and "row-level security" in detail, (table, who, target, detail)

        # UPDATE and DELETE: touch only the tenant's own rows (audit_log: refused to everyone).
        for verb in ("UPDATE", "DELETE"):
            statement = (
                f"UPDATE {table} SET {column} = {column} WHERE {column} = :t"
                if verb == "UPDATE"
                else f"DELETE FROM {table} WHERE {column} = :t"
            )
            for target in (A, B):
                status, detail = attempt(app_engine, who, statement, {"t": target})
                if table in roles.INSERT_ONLY:  # audit_log, model_calls: the app role may only add rows
                    assert status == "denied" and "permission denied" in detail, (table, verb, who, detail)
                elif target == own:  # its own rows: changed, or protected by a foreign key (so visible)
                    assert (status == "ok" and detail >= 1) or (status == "denied" and "foreign key" in detail), (
                        table,
                        verb,
                        who,
                        detail,
                    )
                else:  # another tenant's rows, or no tenant at all: nothing matches
                    assert (status, detail) == ("ok", 0), (table, verb, who, target, detail)


_TYPES: dict[tuple[str, str, str], str] = {}


def _pg_type(db: PgDatabase, table: str, column: str) -> str:
    key = (db.schema, table, column)
    if key not in _TYPES:
        with super_connect() as conn:
            for name, typ in conn.execute(
                "SELECT column_name, format_type(a.atttypid, a.atttypmod) FROM information_schema.columns c "
                "JOIN pg_attribute a ON a.attname = c.column_name "
                "AND a.attrelid = format('%%I.%%I', c.table_schema, c.table_name)::regclass "
                "WHERE c.table_schema = %s AND c.table_name = %s",
                [db.schema, table],
            ):
                _TYPES[(db.schema, table, name)] = typ
    return _TYPES[key]


def _jsonable(value: Any) -> Any:
    import json

    return json.dumps(value) if isinstance(value, dict | list) else value


def test_model_calls_are_isolated_between_tenants(seeded: PgDatabase, app_engine: Engine) -> None:
    """The call ledger: each tenant sees, sums and charges only its own lines; the app role cannot rewrite one."""
    from datetime import date, timedelta

    store = StateStore(seeded.app_url)
    try:
        today = date.today()
        for tenant, other in ((A, B), (B, A)):
            assert store.owner_cost(tenant, f"{tenant}.launch.t1") == pytest.approx(0.01)
            assert store.owner_cost(tenant, f"{other}.launch.t1") == 0.0  # another tenant's owner: nothing
            # The same key in both tenants is two lines (the key is per tenant); recording it again adds nothing.
            r = ref(f"{tenant}.launch.t1", tenant=tenant)
            store.record_costs(r, r.task_id, [cost_line("shared-key", 0.002)], "UTC")
            store.record_costs(r, r.task_id, [cost_line("shared-key", 0.002)], "UTC")
        for tenant in (A, B):
            summary = store.usage_summary(tenant, None, today - timedelta(days=1), today + timedelta(days=1))
            assert (summary.calls, summary.published_posts) == (2, 1) and summary.spent_usd == pytest.approx(0.012)
            assert store.owner_cost(tenant, f"{tenant}.launch.t1") == pytest.approx(0.012)
    finally:
        store.close()
    for verb in ("UPDATE model_calls SET cost_usd = 0", "DELETE FROM model_calls"):
        status, detail = attempt(app_engine, A, verb, {})
        assert status == "denied" and "permission denied" in detail, (verb, detail)
    status, rows = attempt(app_engine, A, "SELECT DISTINCT tenant_id FROM model_calls", {})
    assert (status, rows) == ("ok", [(A,)])


def test_role_audit(pg: PgDatabase) -> None:  # noqa: F811
    with super_connect() as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s", [APP]
        ).fetchone()
        assert role == (False, False, False, False), f"{APP} must be an ordinary role: {role}"
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)", [APP]
        ).fetchone()
        assert owned == (0,), f"{APP} owns {owned} relations"
        owned_ns = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = %s)", [APP]
        ).fetchone()
        assert owned_ns == (0,)
        unprotected = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname IN ('tenant_id') AND NOT a.attisdropped "
            "WHERE n.nspname = %s AND c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
            [pg.schema],
        ).fetchall()
        assert unprotected == [], f"tables with tenant_id but no forced row security: {unprotected}"
        with_tenant = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.columns "
                "WHERE table_schema = %s AND column_name = 'tenant_id'",
                [pg.schema],
            )
        }
        platform_only = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_policies WHERE schemaname = %s AND policyname = %s",
                [pg.schema, roles.PLATFORM_POLICY],
            )
        }
        # Every table with a tenant column is isolated per tenant, or shown to the platform scope only.
        unlisted = (with_tenant | {"tenants"}) - platform_only - set(tenant_tables(pg))
        assert unlisted == set(), f"not in chimera.db.roles.TENANT_TABLES, so the isolation matrix misses: {unlisted}"
        assert set(tenant_tables(pg)) <= with_tenant | {"tenants"}
        tenants_rls = conn.execute(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
            [f"{pg.schema}.tenants"],
        ).fetchone()
        assert tenants_rls == (True, True)
        policies = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "SELECT tablename, qual, with_check FROM pg_policies WHERE schemaname = %s AND policyname = %s",
                [pg.schema, roles.POLICY],
            )
        }
        for table, column in tenant_tables(pg).items():
            qual, check = policies[table]
            for expr in (qual, check):
                assert expr is not None and column in expr and "NULLIF" in expr and "app.tenant_id" in expr, (
                    table,
                    expr,
                )
        grants = {
            (r[0], r[1])
            for r in conn.execute(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = %s AND table_schema = %s",
                [APP, pg.schema],
            )
        }
        assert ("audit_log", "INSERT") in grants and ("audit_log", "SELECT") in grants
        assert ("audit_log", "UPDATE") not in grants and ("audit_log", "DELETE") not in grants
        assert ("audit_log", "TRUNCATE") not in grants
        owners = {r[0] for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = %s", [pg.schema])}
        assert owners == {"chimera_owner"}
        # The auditor: SELECT on the audit chain and the schema revision, nothing else; its own read policy.
        auditor_grants = {
            (r[0], r[1])
            for r in conn.execute(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = %s AND table_schema = %s",
                [AUDITOR, pg.schema],
            )
        }
        assert auditor_grants == {(t, "SELECT") for t in (*roles.AUDIT_CHAIN, "alembic_version")}
        auditor_policies = {
            r[0]: (r[1], r[2], r[3], r[4])
            for r in conn.execute(
                "SELECT tablename, cmd, roles, qual, with_check FROM pg_policies "
                "WHERE schemaname = %s AND policyname = %s",
                [pg.schema, roles.AUDITOR_POLICY],
            )
        }
        assert auditor_policies == {t: ("SELECT", [AUDITOR], "true", None) for t in roles.AUDIT_CHAIN}


def test_audit_log_refuses_update_and_delete_even_to_its_owner(pg: PgDatabase) -> None:  # noqa: F811
    seed(pg.app_url)
    engine = create_engine(pg.owner_url)
    try:
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with engine.connect() as conn, conn.begin():
                conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": A})
                with pytest.raises(DBAPIError, match="append-only"):
                    conn.execute(text(statement))
    finally:
        engine.dispose()


def test_store_refuses_an_unmigrated_schema(pg: PgDatabase) -> None:  # noqa: F811
    with super_connect() as conn:
        conn.execute(f'DELETE FROM "{pg.schema}".alembic_version')
    store = StateStore(pg.app_url)
    try:
        with pytest.raises(SchemaNotReady, match="chimera db upgrade"):
            store.get_campaign(A, "launch")
    finally:
        store.close()


def test_pool_does_not_leak_tenants(seeded: PgDatabase) -> None:
    """Thousands of interleaved transactions of both tenants on two pooled connections, plus the
    no-transaction path on the same pool, never show a row of another tenant."""
    store = StateStore(seeded.app_url, pool_size=2)
    leaks: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        rng = random.Random(n)
        for i in range(250):
            tenant = rng.choice((A, B))
            other = B if tenant == A else A
            op = rng.randrange(5)
            if op == 0:
                value = store.get_state(tenant, "k")
                bad = value is None or value.value != {"v": tenant}
            elif op == 1:
                bad = [r.tenant_id for r in store.pending_reviews(tenant)] != [tenant]
            elif op == 2:
                bad = store.get_review(tenant, f"{other}.launch.t1") is not None
                bad = bad or store.read_versions(tenant, ["k"]) != [StateRead(key="k", version=1)]
            elif op == 3:
                bad = any(e.tenant_id != tenant for e in store.audit_entries(tenant, limit=5))
            else:
                # The no-transaction path: autocommit, no tenant set, on a connection the pool just used.
                with store._db.engine.connect() as conn:
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                    seen = conn.execute(text("SELECT count(*) FROM state_versions")).scalar_one()
                    seen += conn.execute(text("SELECT count(*) FROM tenants")).scalar_one()
                    setting = conn.execute(text("SELECT current_setting('app.tenant_id', true)")).scalar_one()
                bad = seen != 0 or setting not in (None, "")
            if bad:
                with lock:
                    leaks.append(f"worker {n} op {op} iteration {i} tenant {tenant}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool_size = store._db.engine.pool.size()  # type: ignore[attr-defined]
    store.close()
    assert pool_size == 2
    assert leaks == []


def test_only_the_auditor_sees_every_tenant(seeded: PgDatabase) -> None:
    app_store, auditor_store = StateStore(seeded.app_url), StateStore(seeded.auditor_url)
    try:
        assert app_store.tenants() == []  # no tenant set: row security shows nothing
        assert auditor_store.tenants() == [A, B]
        assert auditor_store.verify_audit(A).ok and auditor_store.verify_audit(B).ok
        with pytest.raises(DBAPIError, match="permission denied"):
            auditor_store.append_audit(A, "auditor", "note", "x", {})  # read-only
    finally:
        app_store.close()
        auditor_store.close()


def test_db_commands_migrate_as_the_owner_and_check_as_the_app(pg_available: None, monkeypatch) -> None:  # noqa: F811
    import json
    import uuid

    from psycopg import sql as pgsql
    from typer.testing import CliRunner

    from chimera.cli.app import app
    from chimera.db import migrate
    from tests.integration.test_store_postgres import OWNER

    db = PgDatabase(f"chimera_test_{uuid.uuid4().hex[:12]}")
    with super_connect() as conn:
        conn.execute(
            pgsql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(pgsql.Identifier(db.schema), pgsql.Identifier(OWNER))
        )
    try:
        monkeypatch.setenv("CHIMERA_DATABASE_URL", db.app_url)
        monkeypatch.setenv("CHIMERA_MIGRATION_DATABASE_URL", db.owner_url)
        runner = CliRunner()
        before = runner.invoke(app, ["db", "current", "--json"])
        assert before.exit_code == 1 and json.loads(before.stdout)["current"] is None
        monkeypatch.setenv("CHIMERA_MIGRATION_DATABASE_URL", db.app_url)
        refused = runner.invoke(app, ["db", "upgrade"])  # the app role may not create tables
        assert refused.exit_code == 1 and "database error" in refused.output, refused.output
        monkeypatch.setenv("CHIMERA_MIGRATION_DATABASE_URL", db.owner_url)
        store = StateStore(db.app_url)
        with pytest.raises(SchemaNotReady, match="chimera db upgrade"):
            store.get_campaign(A, "launch")
        up = runner.invoke(app, ["db", "upgrade"])
        assert up.exit_code == 0, up.output
        after = runner.invoke(app, ["db", "current", "--json"])
        assert after.exit_code == 0 and json.loads(after.stdout)["current"] == migrate.head()
        store.close()
        store = StateStore(db.app_url)
        store.ensure_campaign(make_spec(tenant=A))  # the app role works once the owner has migrated
        assert store.campaign_status(A, "launch") == "running"
        store.close()
    finally:
        with super_connect() as conn:
            conn.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(db.schema)))
