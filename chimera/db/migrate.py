"""Schema migrations: Alembic owns the schema on PostgreSQL and SQLite alike.

`upgrade()` runs as the migration role (CHIMERA_MIGRATION_DATABASE_URL, the table owner on
PostgreSQL); the application role only reads `alembic_version` to check that the schema is at the
head the code expects. SQLite databases are upgraded automatically on first use; a database
created before Alembic (tables but no `alembic_version`) is adopted as the baseline revision.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, inspect, select

from chimera.db import roles
from chimera.db.engine import WRITE_OPTION, lock_key, make_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema `create_all` made before Alembic; older databases are stamped with it


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic's configuration, built in code (no alembic.ini)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The revision this code needs."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:  # pragma: no cover - the versions directory ships with the package
        raise RuntimeError(f"no migration found in {MIGRATIONS_DIR}")
    return revision


def revisions() -> list[tuple[str, str]]:
    """(revision, description) from the first to the head."""
    script = ScriptDirectory.from_config(alembic_config())
    return [(rev.revision, rev.doc or "") for rev in reversed(list(script.walk_revisions()))]


def current_of(conn: Connection) -> str | None:
    """The database's revision (None: never migrated)."""
    return MigrationContext.configure(conn).get_current_revision()


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return current_of(conn)


def upgrade_engine(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade in one transaction (DDL is transactional on both backends); returns (before, after).

    Several processes may start at once: PostgreSQL serializes them on an advisory lock, SQLite on
    its write lock (BEGIN IMMEDIATE); the second finds the work done.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(lock_key("chimera:schema"))))
            before = current_of(conn)
            config = alembic_config(conn)
            if before is None and inspect(conn).has_table("tenants"):
                command.stamp(config, BASELINE)  # a pre-Alembic database: its tables are the baseline
            command.upgrade(config, revision)
            after = current_of(conn)
            if conn.dialect.name == "postgresql" and after is not None:
                # Re-assert the grants (idempotent): roles created after an earlier upgrade get theirs too.
                existing = set(inspect(conn).get_table_names())
                tables = {
                    **roles.TENANT_TABLES,
                    **roles.SHARED_TABLES,
                    **roles.PLATFORM_TABLES,
                    **roles.LATER_PLATFORM_TABLES,
                }
                roles.grant(conn, {t: c for t, c in tables.items() if t in existing})
    return before, after


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    engine = make_engine(url)
    try:
        return upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        return current(engine)
    finally:
        engine.dispose()
