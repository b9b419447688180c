"""Alembic environment, configured programmatically by chimera.db.migrate (there is no alembic.ini).

The connection to migrate is passed in `config.attributes["connection"]`, already inside the
transaction (and, on PostgreSQL, holding the schema advisory lock) that chimera.db.migrate opened.
Offline mode (`--sql`) renders the SQL for `sqlalchemy.url` instead.
"""

from __future__ import annotations

from alembic import context

from chimera.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through chimera.db.migrate (or `chimera db upgrade`), not the alembic CLI")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
