"""The payment caps under a race on the real PostgreSQL, as the application role under row security: 50
payments at once against a cap that admits 10 reserve exactly 10, and the ledger is confined to its tenant.

Fixtures (a fresh migrated schema per test, the roles' URLs) come from test_store_postgres.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from chimera.db import StateStore
from tests.integration.test_store_postgres import (  # noqa: F401  # fixtures, used by name
    PgDatabase,
    pg,
    pg_available,
)
from tests.unit.test_payment_ledger import DEFAULTS, payment, prepared
from tests.unit.test_store import AGENT, TENANT, make_spec, run_threads


@pytest.fixture
def store(pg: PgDatabase) -> Any:  # noqa: F811
    s = StateStore(pg.app_url, pool_size=60)
    s.ensure_campaign(make_spec())
    s.ensure_campaign(make_spec(campaign="collab", agent="bea"))
    s.ensure_campaign(make_spec(tenant="globex", campaign="rival", agent="gus"))
    yield s
    s.close()


def test_fifty_parallel_payments_against_a_cap_of_ten_reserve_exactly_ten(store: StateStore) -> None:
    answers = run_threads(50, lambda i: store.reserve_payment(payment(i), prepared(), DEFAULTS))
    admitted = [a for a in answers if a.ok]  # type: ignore[attr-defined]
    assert len(admitted) == 10
    lines = store.list_payments(TENANT)
    assert sum(1 for line in lines if line.status == "reserved") == 10
    assert sum(1 for line in lines if line.status == "refused") == 40
    reserved_units = sum(line.amount_units for line in lines if line.status == "reserved")
    assert reserved_units == DEFAULTS.agent_units


def test_two_agents_racing_for_the_tenant_cap_never_pass_it(store: StateStore) -> None:
    def one(i: int) -> bool:
        agent, campaign = (AGENT, "launch") if i % 2 else ("bea", "collab")
        return bool(store.reserve_payment(payment(i, agent=agent, campaign=campaign), prepared(), DEFAULTS).ok)

    admitted = sum(bool(ok) for ok in run_threads(40, one))
    assert admitted == 15  # the tenant's 15 USDC; neither agent's 10 binds first for both
    assert sum(line.amount_units for line in store.list_payments(TENANT) if line.status == "reserved") == 15_000_000


def test_the_ledger_is_confined_to_its_tenant(store: StateStore) -> None:
    assert store.reserve_payment(payment(1), prepared(), DEFAULTS).ok
    assert store.list_payments("globex") == []
    assert store.payment("globex", "p1") is None
