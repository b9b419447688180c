"""The store's side of the ingress on SQLite: delivery claims and mention routes (PostgreSQL: test_ingress.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from chimera.db import StateStore, migrate, roles
from chimera.db.mcp import PLATFORM_TENANT
from tests.unit.test_store import FakeClock, make_spec


def test_a_claim_is_taken_once_released_on_failure_and_forgotten_after_a_week(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 5, 1, tzinfo=UTC))
    store = StateStore(f"sqlite:///{tmp_path / 'c.db'}", clock=clock)
    try:
        assert store.claim_delivery("twitter", "1", "acct")
        assert not store.claim_delivery("twitter", "1", "acct")
        assert store.claim_delivery("instagram", "1", "acct")  # event ids are per platform
        store.release_delivery("twitter", "1")
        assert store.claim_delivery("twitter", "1", "acct")
        clock.now += timedelta(days=8)
        assert store.claim_delivery("twitter", "2", "acct")
        assert store.forget_deliveries(clock.now - timedelta(days=7)) == 2
        assert not store.claim_delivery("twitter", "2", "acct")  # the recent one is still remembered
    finally:
        store.close()


def test_routes_follow_the_campaign_spec(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        store.ensure_campaign(make_spec())
        [route] = store.mention_routes("twitter", " @AVA ")
        assert (route.tenant_id, route.campaign_id, route.handle) == ("acme", "launch", "ava")
        persona = make_spec().persona.model_copy(update={"handles": {"twitter": "@ava_new", "instagram": "ava.ig"}})
        store.ensure_campaign(make_spec(persona=persona, platforms=["twitter", "instagram"]))
        assert store.mention_routes("twitter", "@ava") == []
        assert [r.campaign_id for r in store.mention_routes("twitter", "ava_new")] == ["launch"]
        assert store.routed_handles("instagram") == ["ava.ig"]
        assert store.mention_routes("instagram", "ava.ig")[0].created_at == route.created_at  # the campaign's age
        store.ensure_campaign(make_spec(persona=persona, platforms=["twitter"]))  # no longer on instagram
        assert store.routed_handles("instagram") == []
    finally:
        store.close()


def test_the_migration_routes_campaigns_registered_before_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0004")
    spec = make_spec(campaign="early")
    engine = create_engine(url)
    with engine.begin() as conn:  # the rows as the code before revision 0005 left them: no route
        at = "2026-01-01 00:00:00"
        conn.execute(text("INSERT INTO tenants VALUES ('acme', :at, 0, :h)"), {"at": at, "h": "0" * 64})
        conn.execute(
            text("INSERT INTO agents VALUES ('acme', 'ava', 'Ava', :p, :at, :at)"),
            {"p": spec.persona.model_dump_json(), "at": at},
        )
        conn.execute(
            text(
                "INSERT INTO campaigns (tenant_id, id, agent_id, name, spec, status, status_reason, daily_budget_usd,"
                " timezone, goals, created_at, updated_at) VALUES ('acme', 'early', 'ava', 'Early', :spec,"
                " 'running', '', 5, 'UTC', '[]', :at, :at)"
            ),
            {"spec": spec.model_dump_json(), "at": at},
        )
    engine.dispose()
    migrate.upgrade(url)
    store = StateStore(url)
    try:
        [route] = store.mention_routes("twitter", "ava")
        assert (route.campaign_id, route.created_at) == ("early", datetime(2026, 1, 1, tzinfo=UTC))
    finally:
        store.close()


def test_the_platform_scope_is_the_reserved_tenant_name() -> None:
    assert roles.PLATFORM_TENANT == PLATFORM_TENANT
    assert set(roles.PLATFORM_TABLES).isdisjoint(roles.TENANT_TABLES)
