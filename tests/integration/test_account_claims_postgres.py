"""The claims of tests/unit/test_account_claims.py again on PostgreSQL, as the application role under row
security (fixtures from test_store_postgres.py), plus what only row security shows: another tenant's claim is
invisible to a tenant, and still no tenant can take its handle."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from chimera.accounts import AccountTaken
from chimera.accounts.directory import AccountDirectory
from chimera.db import StateStore
from tests.integration.test_store_postgres import (  # noqa: F401  # fixtures, used by name
    PgDatabase,
    pg,
    pg_available,
)
from tests.unit.test_account_claims import *  # noqa: F403  # the shared behaviours, collected again here


@pytest.fixture  # type: ignore[no-redef]
def store_url(pg: PgDatabase) -> str:  # noqa: F811  # replaces the SQLite fixture: the app role
    return pg.app_url


def test_another_tenants_claim_is_invisible_yet_holds_the_handle(store: StateStore, pg: PgDatabase) -> None:  # noqa: F811
    assert store.dialect == "postgresql"
    accounts = AccountDirectory.of(store)
    accounts.claim("acme", "mira", {"twitter": "@mira_threads"})
    assert accounts.accounts("globex") == []
    with pytest.raises(AccountTaken, match="another tenant"):
        accounts.claim("globex", "ava", {"twitter": "mira_threads"})
    engine = create_engine(pg.app_url)
    try:
        with engine.begin() as conn:  # the app role, as tenant globex: neither sees nor writes acme's row
            conn.execute(text("SELECT set_config('app.tenant_id', 'globex', true)"))
            assert conn.execute(text("SELECT count(*) FROM platform_accounts")).scalar_one() == 0
            assert conn.execute(text("UPDATE platform_accounts SET tenant_id = 'globex'")).rowcount == 0
            assert conn.execute(text("DELETE FROM platform_accounts")).rowcount == 0
        with engine.begin() as conn, pytest.raises(Exception, match="row-level security"):
            conn.execute(text("SELECT set_config('app.tenant_id', 'globex', true)"))
            conn.execute(text("INSERT INTO platform_accounts VALUES ('twitter', 'x', 'acme', 'mira', now())"))
    finally:
        engine.dispose()
    assert accounts.account_for("acme", "mira", "twitter", None) == "mira_threads"
