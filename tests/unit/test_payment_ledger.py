"""The payment ledger on SQLite: reservations against the daily caps, status moves, credits, history, revenue.
The same functions race on PostgreSQL in tests/integration/test_payments_postgres.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from chimera.db import StateStore
from chimera.db.payments import Caps, PaymentStateError
from schemas.payment import PaymentInput, PaymentPolicy, Prepared
from tests.unit.test_store import AGENT, CAMPAIGN, TENANT, FakeClock, make_spec

PAYEE_ADDRESS = "0x" + "ab" * 20
DEFAULTS = Caps(agent_units=10_000_000, tenant_units=15_000_000)  # 10 and 15 USDC a day


def payment(n: int | str, amount: int = 1_000_000, agent: str = AGENT, campaign: str = CAMPAIGN) -> PaymentInput:
    return PaymentInput(
        payment_id=f"p{n}",
        tenant_id=TENANT,
        campaign_id=campaign,
        agent_id=agent,
        kind="address",
        to=PAYEE_ADDRESS,
        amount_units=amount,
        purpose="premium launch coverage",
        requested_by="ops",
    )


def prepared(amount: int = 1_000_000, payee_agent: str | None = None, payee_campaign: str | None = None) -> Prepared:
    return Prepared(
        amount_units=amount,
        to_address=PAYEE_ADDRESS,
        counterparty="newswire",
        pinned=True,
        allowlisted=True,
        policy=PaymentPolicy(),
        goals=["launch"],
        timezone="UTC",
        payee_agent_id=payee_agent,
        payee_campaign_id=payee_campaign,
    )


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore(f"sqlite:///{tmp_path / 'ledger.db'}", clock=FakeClock(datetime(2026, 12, 2, 12, tzinfo=UTC)))
    s.ensure_campaign(make_spec())
    s.ensure_campaign(make_spec(campaign="collab", agent="bea"))
    return s


def test_reservations_stop_at_the_agent_cap_and_a_retry_gets_the_first_answer(store: StateStore) -> None:
    answers = [store.reserve_payment(payment(i), prepared(), DEFAULTS) for i in range(12)]
    assert [a.ok for a in answers] == [True] * 10 + [False] * 2
    assert answers[10].level == "agent" and "10.00 USDC" in answers[10].reason
    again = store.reserve_payment(payment(3), prepared(), DEFAULTS)
    assert again.ok and again.reason == "already reserved"
    refused_again = store.reserve_payment(payment(11), prepared(), DEFAULTS)
    assert not refused_again.ok and refused_again.reason == answers[11].reason
    assert store.payment(TENANT, "p11") is not None and store.payment(TENANT, "p11").status == "refused"  # type: ignore[union-attr]


def test_the_tenant_cap_spans_agents_and_a_released_payment_frees_its_share(store: StateStore) -> None:
    for i in range(10):
        assert store.reserve_payment(payment(f"a{i}"), prepared(), DEFAULTS).ok
    for i in range(5):
        assert store.reserve_payment(payment(f"b{i}", agent="bea", campaign="collab"), prepared(), DEFAULTS).ok
    over = store.reserve_payment(payment("b5", agent="bea", campaign="collab"), prepared(), DEFAULTS)
    assert not over.ok and over.level == "tenant"
    store.move_payment(payment("a0"), "rejected", "cfo", "not on the allowlist")
    assert store.reserve_payment(payment("b6", agent="bea", campaign="collab"), prepared(), DEFAULTS).ok


def test_a_set_limit_overrides_the_default_and_is_audited(store: StateStore) -> None:
    store.set_payment_limit(TENANT, "agent", AGENT, 2_000_000, "finance")
    assert [store.reserve_payment(payment(i), prepared(), DEFAULTS).ok for i in range(3)] == [True, True, False]
    assert any(e.action == "payment_limit" for e in store.audit_entries(TENANT))
    with pytest.raises(ValueError, match="scope id is the tenant itself"):
        store.set_payment_limit(TENANT, "tenant", "other", 1, "finance")


def test_status_moves_follow_the_lifecycle_and_are_audited(store: StateStore) -> None:
    p = payment(1)
    store.reserve_payment(p, prepared(), DEFAULTS)
    store.move_payment(p, "approved", "cfo", "within policy")
    store.move_payment(p, "approved", "cfo", "within policy")  # a retried activity: no second entry
    store.move_payment(p, "sent", "cfo", "broadcast", tx_hash="0x" + "11" * 32)
    with pytest.raises(PaymentStateError, match="is sent: it cannot become rejected"):
        store.move_payment(p, "rejected", "cfo", "too late")
    store.move_payment(p, "settled", "cfo", "confirmed", block_number=7)
    line = store.payment(TENANT, "p1")
    assert line is not None and line.status == "settled" and line.tx_hash == "0x" + "11" * 32
    actions = [e.action for e in store.audit_entries(TENANT) if e.subject == "p1"]
    assert sorted(actions) == sorted(["payment_reserved", "payment_approved", "payment_sent", "payment_settled"])
    with pytest.raises(PaymentStateError, match="not in the ledger"):
        store.move_payment(payment("nope"), "approved", "cfo", "")
    assert store.verify_audit(TENANT).ok


def test_a_payment_to_another_agent_is_credited_to_its_campaign(store: StateStore) -> None:
    p = payment(1, amount=2_500_000)
    to_bea = prepared(2_500_000, payee_agent="bea", payee_campaign="collab")
    store.reserve_payment(p, to_bea, DEFAULTS)
    store.move_payment(p, "approved", "cfo", "ok")
    store.move_payment(p, "sent", "cfo", "broadcast", tx_hash="0x" + "22" * 32)
    store.move_payment(p, "settled", "cfo", "confirmed", tx_hash="0x" + "22" * 32, credit=to_bea)
    store.move_payment(p, "settled", "cfo", "confirmed", tx_hash="0x" + "22" * 32, credit=to_bea)  # retried
    assert store.campaign_money(TENANT, "collab").received_units == 2_500_000
    assert store.campaign_money(TENANT, CAMPAIGN).spent_units == 2_500_000
    incoming = store.payment(TENANT, "p1", "in")
    assert incoming is not None and incoming.agent_id == "bea" and incoming.counterparty == f"agent:{AGENT}"


def test_history_counts_settled_payments_only(store: StateStore) -> None:
    for i, amount in enumerate([1_000_000, 3_000_000, 2_000_000]):
        p = payment(i, amount)
        store.reserve_payment(p, prepared(amount), DEFAULTS)
        store.move_payment(p, "approved", "cfo", "ok")
        store.move_payment(p, "sent", "cfo", "b", tx_hash=f"0x{i:064x}")
        store.move_payment(p, "settled", "cfo", "c")
    store.reserve_payment(payment(9), prepared(), DEFAULTS)  # reserved, never paid
    seen = store.payment_history(TENANT, AGENT, PAYEE_ADDRESS.upper().replace("0X", "0x"))
    assert (seen.count, seen.median_units, seen.paid_before) == (3, 2_000_000, True)
    assert not store.payment_history(TENANT, AGENT, "0x" + "cd" * 20).paid_before


def test_campaign_status_and_payment_list_show_the_money(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from chimera.settings import Settings
    from schemas.events import CampaignStatus
    from tests.unit.test_costs_store import _cli

    store = StateStore.from_settings(Settings(state_dir=tmp_path / "state"))
    store.ensure_campaign(make_spec())
    store.ensure_campaign(make_spec(campaign="collab", agent="bea"))
    fee, to_bea = payment(1, amount=3_000_000), prepared(3_000_000, payee_agent="bea", payee_campaign="collab")
    store.reserve_payment(fee, to_bea, DEFAULTS)
    store.move_payment(fee, "approved", "fran", "approved by fran")
    store.move_payment(fee, "sent", "cfo", "broadcast", tx_hash="0x" + "33" * 32)
    store.move_payment(fee, "settled", "cfo", "confirmed", tx_hash="0x" + "33" * 32, credit=to_bea)
    store.reserve_payment(payment(2), prepared(), DEFAULTS)  # under way
    store.close()
    status = CampaignStatus(
        campaign_id="collab", tenant_id=TENANT, agent_id="bea", state="running", cycle=1, goals=["grow"],
        daily_budget_usd=5.0, spend_today_usd=0.0, tasks_by_state={}, pending_reviews=[], tasks=[],
    )  # fmt: skip
    monkeypatch.setattr("chimera.cli.render.run", lambda operation, loaded=None: status)  # no Temporal here
    shown = _cli(tmp_path, monkeypatch, "campaign", "status", f"{TENANT}/collab")
    assert shown.exit_code == 0, shown.output
    assert "Payments: revenue 3.00 USDC · paid 0.00 USDC" in shown.stdout
    data = json.loads(_cli(tmp_path, monkeypatch, "campaign", "status", f"{TENANT}/collab", "--json").stdout)
    assert data["payments"] == {"spent_units": 0, "received_units": 3_000_000, "open_units": 0}

    listed = _cli(tmp_path, monkeypatch, "payment", "list", "--tenant", TENANT)
    assert listed.exit_code == 0, listed.output
    assert "p1" in listed.stdout and "settled" in listed.stdout and "reserved" in listed.stdout
    rows = json.loads(_cli(tmp_path, monkeypatch, "payment", "list", "--tenant", TENANT, "--json").stdout)
    assert {(r["payment_id"], r["direction"], r["status"]) for r in rows} == {
        ("p1", "out", "settled"),
        ("p1", "in", "settled"),
        ("p2", "out", "reserved"),
    }
