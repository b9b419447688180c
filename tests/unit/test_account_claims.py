"""The durable claims of platform accounts (table platform_accounts) on SQLite; the PostgreSQL module
(tests/integration/test_account_claims_postgres.py) runs the same tests as the application role, under row
security, where another tenant's claim is invisible yet still holds the handle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from chimera.accounts import AccountRefused, AccountTaken, InvalidAccount
from chimera.accounts.directory import AccountDirectory
from chimera.db import StateStore, migrate
from chimera.db.engine import WRITE_OPTION, make_engine
from schemas.campaign import CampaignSpec
from tests.helpers import scripted

MIRA = {"twitter": "@Mira_Threads", "instagram": "mira.threads"}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chimera.db'}"


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    s = StateStore(store_url)
    yield s
    s.close()


@pytest.fixture
def accounts(store: StateStore) -> AccountDirectory:
    return AccountDirectory.of(store)


def held(accounts: AccountDirectory, tenant: str, agent: str | None = None) -> set[tuple[str, str, str]]:
    return {(a.agent_id, a.platform, a.handle) for a in accounts.accounts(tenant, agent)}


def test_a_campaigns_registration_claims_its_personas_handles_once(
    accounts: AccountDirectory, store: StateStore
) -> None:
    claimed = accounts.claim("acme", "mira", MIRA)
    assert {(a.platform, a.handle) for a in claimed} == {("twitter", "mira_threads"), ("instagram", "mira.threads")}
    assert accounts.claim("acme", "mira", MIRA) == claimed  # idempotent: a restarted registration
    assert held(accounts, "acme") == {("mira", "twitter", "mira_threads"), ("mira", "instagram", "mira.threads")}
    audit = [(e.action, e.subject) for e in store.audit_entries("acme") if e.action.startswith("account.")]
    assert sorted(audit) == [
        ("account.claimed", "account/instagram/mira.threads"),
        ("account.claimed", "account/twitter/mira_threads"),
    ]
    assert store.verify_audit("acme").ok


def test_another_tenant_can_never_claim_a_held_handle(accounts: AccountDirectory) -> None:
    accounts.claim("acme", "mira", MIRA)
    with pytest.raises(AccountTaken, match="@mira_threads is already claimed by another tenant"):
        accounts.claim("globex", "ava", {"twitter": "mira_threads", "instagram": "ava.ig"})
    assert held(accounts, "globex") == set()  # all or nothing: ava.ig was not claimed either
    accounts.claim("globex", "ava", {"instagram": "ava.ig"})
    assert held(accounts, "globex") == {("ava", "instagram", "ava.ig")}
    assert held(accounts, "acme", "mira") == {
        ("mira", "twitter", "mira_threads"),
        ("mira", "instagram", "mira.threads"),
    }


def test_another_agent_of_the_tenant_is_refused_too(accounts: AccountDirectory) -> None:
    accounts.claim("acme", "mira", MIRA)
    with pytest.raises(AccountTaken, match="claimed by agent 'mira' of tenant 'acme', not by agent 'nova'"):
        accounts.claim("acme", "nova", {"twitter": "@mira_threads"})


def test_a_changed_handle_moves_the_agents_claim_and_frees_the_old_one(
    accounts: AccountDirectory, store: StateStore
) -> None:
    accounts.claim("acme", "mira", {"twitter": "@mira_threads"})
    accounts.claim("acme", "mira", {"twitter": "@mira_mends"})  # the persona's new handle
    assert held(accounts, "acme") == {("mira", "twitter", "mira_mends")}
    actions = [(e.action, e.subject) for e in store.audit_entries("acme") if e.action.startswith("account.")]
    assert ("account.released", "account/twitter/mira_threads") in actions
    accounts.claim("globex", "ava", {"twitter": "mira_threads"})  # free again
    assert held(accounts, "globex") == {("ava", "twitter", "mira_threads")}


def test_a_handle_that_names_no_account_is_refused(accounts: AccountDirectory) -> None:
    with pytest.raises(InvalidAccount, match="'mira threads' is not a platform account handle"):
        accounts.claim("acme", "mira", {"twitter": "mira threads"})
    assert accounts.claim("acme", "mira", {"twitter": "  "}) == []  # no handle on a platform: nothing to claim


def test_a_call_resolves_to_the_agents_own_account_only(accounts: AccountDirectory) -> None:
    accounts.claim("acme", "mira", MIRA)
    accounts.claim("globex", "ava", {"twitter": "@ava"})
    assert accounts.account_for("acme", "mira", "twitter", None) == "mira_threads"
    assert accounts.account_for("acme", "mira", "twitter", "@Mira_Threads") == "mira_threads"
    assert accounts.account_for("globex", "ava", "twitter", None) == "ava"
    with pytest.raises(AccountRefused, match="@ava is not claimed by agent 'mira' of tenant 'acme'"):
        accounts.account_for("acme", "mira", "twitter", "@ava")
    with pytest.raises(AccountRefused, match="holds no instagram account"):
        accounts.account_for("globex", "ava", "instagram", None)


def test_two_tenants_racing_for_one_handle_leave_exactly_one_holder(store_url: str) -> None:
    outcomes: dict[str, str] = {}
    start = threading.Barrier(4)
    with StateStore(store_url) as first:  # the schema exists before the race: the race is for the handle
        first.ensure_schema()

    def claim(tenant: str) -> None:
        store = StateStore(store_url)
        try:
            start.wait()
            AccountDirectory.of(store).claim(tenant, "agent", {"twitter": "@contested"})
            outcomes[tenant] = "claimed"
        except AccountTaken:
            outcomes[tenant] = "taken"
        finally:
            store.close()

    threads = [threading.Thread(target=claim, args=(t,)) for t in ("t1", "t2", "t3", "t4")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["claimed", "taken", "taken", "taken"]


def spec_of(tenant: str, agent: str, handles: dict[str, str]) -> CampaignSpec:
    persona = scripted.persona().model_copy(update={"id": agent, "handles": handles})
    return scripted.spec(tenant_id=tenant, campaign_id="spring", persona=persona)


def test_the_migration_claims_the_accounts_of_campaigns_registered_before_it(store_url: str) -> None:
    store = StateStore(store_url)
    try:  # registered without claims, as before revision 0011; the oldest campaign first
        store.ensure_campaign(spec_of("acme", "mira", {"twitter": "@mira_threads", "instagram": "not a handle"}))
        store.ensure_campaign(spec_of("globex", "ava", {"twitter": "@Mira_Threads", "instagram": "ava.ig"}))
    finally:
        store.close()
    migration_url = store_url.replace("chimera_app@", "chimera_owner@")  # PostgreSQL: the tables' owner migrates
    engine = make_engine(migration_url)
    try:
        with engine.connect() as conn, conn.execution_options(**{WRITE_OPTION: True}).begin():
            command.downgrade(migrate.alembic_config(conn), "0010")
            command.upgrade(migrate.alembic_config(conn), "head")
    finally:
        engine.dispose()
    store = StateStore(store_url)
    try:
        accounts = AccountDirectory.of(store)
        assert held(accounts, "acme") == {("mira", "twitter", "mira_threads")}
        assert held(accounts, "globex") == {("ava", "instagram", "ava.ig")}  # the contested handle stays acme's
        with pytest.raises(AccountTaken):
            accounts.claim("globex", "ava", {"twitter": "@Mira_Threads"})
    finally:
        store.close()
