"""Engines, transactions and locks for SQLite and PostgreSQL.

Concurrency model:
- SQLite (WAL, busy timeout): write transactions start with BEGIN IMMEDIATE, so writers across
  threads and processes are serialized by SQLite's write lock and a transaction's reads are never
  stale; read-only transactions use a deferred BEGIN and see one consistent snapshot.
- PostgreSQL (READ COMMITTED): writers that read-then-write take transaction-scoped advisory
  locks on named resources (always in sorted order, and the audit chain last) before reading.

Tenancy: every transaction of a tenant first runs `SELECT set_config('app.tenant_id', :t, true)`
(transaction-local, so a pooled connection never carries a tenant into the next transaction).
Row-level security (chimera/db/roles.py) shows and accepts only that tenant's rows; a statement
outside such a transaction sees none.

Schema: Alembic owns it (chimera/db/migrate.py). SQLite is upgraded to the head on first use;
PostgreSQL must already be at the head (`chimera db upgrade`), otherwise SchemaNotReady.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from chimera.db.errors import SchemaNotReady, TenantRequired, UnsupportedDatabase
from chimera.db.models import Base

WRITE_OPTION = "chimera_write"  # connection execution option read by the SQLite "begin" hook
SQLITE_BUSY_MS = 30_000
TENANT_SETTING = "app.tenant_id"  # read by the row-security policies (chimera/db/roles.py)


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # Take BEGIN away from the sqlite3 module so the "begin" hook can choose IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")  # first, so the pragmas below wait too
    cursor.execute("PRAGMA journal_mode = WAL")  # readers never block the writer, across processes
    cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = bool(conn.get_execution_options().get(WRITE_OPTION, False))
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def make_engine(url: str, *, pool_size: int | None = None) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
            raise UnsupportedDatabase(
                f"in-memory SQLite ({url!r}) cannot be shared between connections or processes; "
                "use a file URL such as sqlite:////abs/path/chimera.db"
            )
        if not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":  # psycopg 3 is the installed driver, not SQLAlchemy's default
            parsed = parsed.set(drivername="postgresql+psycopg")
        sizing: dict[str, Any] = {} if pool_size is None else {"pool_size": pool_size, "max_overflow": 0}
        return create_engine(parsed, pool_pre_ping=True, **sizing)
    raise UnsupportedDatabase(f"unsupported database backend {backend!r} in {url!r}: use sqlite or postgresql+psycopg")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock; collisions only over-serialize."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def advisory_lock(session: Session, names: Iterable[str]) -> None:
    """Lock named resources until the transaction ends (PostgreSQL; SQLite writers already hold the DB lock)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({lock_key(name) for name in names}):  # one global order: no deadlocks
        session.execute(select(func.pg_advisory_xact_lock(key)))


class Database:
    """An engine, the schema check (or SQLite auto-upgrade) and a per-tenant transaction helper."""

    def __init__(self, url: str, *, pool_size: int | None = None) -> None:
        self.engine = make_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        self._schema_ready = False
        self._schema_lock = threading.Lock()

    def ensure_schema(self) -> None:
        """SQLite: upgrade to the head now. PostgreSQL: check the revision (SchemaNotReady otherwise)."""
        if self._schema_ready:
            return
        from chimera.db import migrate  # alembic is imported only when a store is first used

        with self._schema_lock:
            if self._schema_ready:
                return
            head = migrate.head()
            if self.dialect == "sqlite":
                migrate.upgrade_engine(self.engine)
            else:
                current = migrate.current(self.engine)
                if current != head:
                    raise SchemaNotReady(current, head)
            self._schema_ready = True

    @contextmanager
    def transaction(self, tenant_id: str | None, *, write: bool, snapshot: bool = False) -> Iterator[Session]:
        """One transaction of one tenant: committed when the block ends, rolled back if it raises.

        `tenant_id` is set for this transaction only; None (an operator reading across tenants)
        sets nothing, so the application role sees no row and the auditor role sees them all.
        `snapshot`: every statement sees the same data (REPEATABLE READ on PostgreSQL; a SQLite
        transaction is always one snapshot).
        """
        if tenant_id is not None and not tenant_id:
            raise TenantRequired("a tenant id is required (got an empty string)")
        self.ensure_schema()
        options: dict[str, Any] = {WRITE_OPTION: write}
        if snapshot and self.dialect == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        with Session(self.engine, expire_on_commit=False, autoflush=True) as session, session.begin():
            session.connection(execution_options=options)
            if tenant_id is not None and self.dialect == "postgresql":
                session.execute(select(func.set_config(TENANT_SETTING, tenant_id, True)))
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def upsert(
    session: Session,
    model: type[Base],
    values: dict[str, Any],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET update (or DO NOTHING when update is empty)."""
    stmt: postgresql.Insert | sqlite.Insert
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(model).values(**values)
        stmt = (
            pg.on_conflict_do_update(index_elements=list(keys), set_={c: pg.excluded[c] for c in update})
            if update
            else pg.on_conflict_do_nothing(index_elements=list(keys))
        )
    else:
        lite = sqlite.insert(model).values(**values)
        stmt = (
            lite.on_conflict_do_update(index_elements=list(keys), set_={c: lite.excluded[c] for c in update})
            if update
            else lite.on_conflict_do_nothing(index_elements=list(keys))
        )
    session.execute(stmt)
