"""The call ledger (model_calls) on SQLite: idempotent recording, owner cost, charge binding the budgets, usage
summaries, settle_budget settling from the ledger, and the CLI showing it. tests/integration/test_costs_postgres.py
reruns these on PostgreSQL (as the application role, under row-level security)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.budget import BudgetActivities
from chimera.db import OwnershipConflict, StateStore, UnknownCampaign
from schemas.events import CampaignStatus
from schemas.models import CostLine, TokenUsage
from schemas.task import SettleRequest
from tests.unit.test_store import (  # noqa: F401  # fixtures, used by name
    AGENT,
    CAMPAIGN,
    TENANT,
    FakeClock,
    make_spec,
    make_store,
    ref,
    store_url,
)

NOON = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)  # 13:00 in New York, 2026-03-09 there


def line(key: str, cost: float = 0.001, tier: str = "post", **changes: Any) -> CostLine:
    fields: dict[str, Any] = {
        "key": key,
        "tier": tier,
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "tokens": TokenUsage(input_tokens=100, output_tokens=40, cached_input_tokens=10, cache_write_tokens=5),
        "cost_usd": cost,
        "price_date": date(2026, 1, 1),
        **changes,
    }
    return CostLine.model_validate(fields)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOON)


@pytest.fixture
def store(make_store: Callable[..., StateStore], clock: FakeClock) -> StateStore:  # noqa: F811
    s = make_store(clock)
    s.ensure_campaign(make_spec(daily_budget_usd=0.10))
    return s


# ---- recording -----------------------------------------------------------------------------------


def test_recording_is_idempotent_by_key(store: StateStore) -> None:
    lines = [line("t1:a1:c1", 0.0012), line("t1:a1:c2", 0.0008)]
    store.record_costs(ref("t1"), "t1", lines, "UTC")
    store.record_costs(ref("t1"), "t1", lines, "UTC")  # a retried activity: nothing new
    store.record_costs(ref("t1"), "t1", [lines[1], line("t1:a2:c1", 0.0005)], "UTC")  # attempt 2 adds its own call
    assert store.owner_cost(TENANT, "t1") == pytest.approx(0.0025)
    summary = store.usage_summary(TENANT, CAMPAIGN, NOON.date(), NOON.date())
    assert summary.calls == 3 and summary.spent_usd == pytest.approx(0.0025)
    # A key recorded again with other figures keeps its first figures: the ledger is never rewritten.
    store.record_costs(ref("t1"), "t1", [line("t1:a1:c1", 0.9)], "UTC")
    assert store.owner_cost(TENANT, "t1") == pytest.approx(0.0025)


def test_owner_cost_is_decimal_exact_and_per_owner(store: StateStore) -> None:
    store.record_costs(ref("t1"), "t1", [line(f"t1:a1:c{i}", 0.1) for i in range(10)], "UTC")
    store.record_costs(ref("t2"), "t2", [line("t2:a1:c1", 0.0000004)], "UTC")  # below a micro-dollar: rounds to 0
    assert store.owner_cost(TENANT, "t1") == 1.0
    assert store.owner_cost(TENANT, "t2") == 0.0
    assert store.owner_cost(TENANT, "nobody") == 0.0
    assert store.owner_cost("other-tenant", "t1") == 0.0


def test_recording_refuses_what_the_ledger_cannot_keep(store: StateStore) -> None:
    with pytest.raises(ValueError, match="longer than 400"):
        store.record_costs(ref("t1"), "t1", [line("k" * 401)], "UTC")
    with pytest.raises(ValueError, match="owner id"):
        store.record_costs(ref("t1"), "", [line("k")], "UTC")
    with pytest.raises(UnknownCampaign):
        store.record_costs(ref("t1", campaign="ghost"), "t1", [line("k")], "UTC")
    store.record_costs(ref("t1"), "t1", [], "UTC")  # nothing to record is fine
    assert store.owner_cost(TENANT, "t1") == 0.0


# ---- charge: spend without a reservation binds the budgets ----------------------------------------


def test_charge_settles_the_owner_cost_and_binds_the_daily_budget(store: StateStore) -> None:
    plan = ref("plan-c1")
    assert store.charge(plan, [line("plan-c1:a1:c1", 0.05, tier="planning")], "UTC") == pytest.approx(0.05)
    assert store.charge(plan, [line("plan-c1:a1:c1", 0.05, tier="planning")], "UTC") == pytest.approx(0.05)  # retry
    # A re-plan of the same owner adds its call; the spend row holds the owner's whole cost, never a double count.
    assert store.charge(plan, [line("plan-c1:a2:c1", 0.03, tier="planning")], "UTC") == pytest.approx(0.08)
    spend = store.spend_today(TENANT, CAMPAIGN, "UTC")
    assert spend.spent_usd == pytest.approx(0.08) and spend.reserved_usd == 0.0

    # The key property: charged (ledgered) spend fills the budget, so another task's reservation is refused.
    refused = store.reserve(ref("t1"), 0.03, 0.10, "UTC")
    assert not refused.ok and "$0.080000 already spent or reserved" in refused.reason
    assert store.reserve(ref("t1"), 0.02, 0.10, "UTC").ok  # exactly fills it
    assert not store.reserve(ref("t2"), 0.000001, 0.10, "UTC").ok


def test_charge_settles_an_existing_reservation(store: StateStore) -> None:
    assert store.reserve(ref("t1"), 0.05, 0.10, "UTC").ok
    store.charge(ref("t1"), [line("t1:a1:c1", 0.01)], "UTC")
    spend = store.spend_today(TENANT, CAMPAIGN, "UTC")
    assert spend.spent_usd == pytest.approx(0.01) and spend.reserved_usd == 0.0
    again = store.reserve(ref("t1"), 0.05, 0.10, "UTC")  # settled: a retried reservation changes nothing
    assert again.ok and "already settled" in again.reason
    with pytest.raises(OwnershipConflict):  # the spend row belongs to another campaign: nothing is recorded
        store.ensure_campaign(make_spec(campaign="second"))
        store.charge(ref("t1", campaign="second"), [line("t1:x", 0.02)], "UTC")
    assert store.owner_cost(TENANT, "t1") == pytest.approx(0.01)


def test_charged_spend_binds_the_agent_and_tenant_levels(store: StateStore) -> None:
    store.ensure_campaign(make_spec(campaign="second", daily_budget_usd=1.0))
    store.set_budget(TENANT, "tenant", TENANT, 0.05, actor="ops")
    store.charge(ref("plan-1"), [line("plan-1:a1:c1", 0.04, tier="planning")], "UTC")
    refused = store.reserve(ref("t9", campaign="second"), 0.02, 1.0, "UTC")
    assert not refused.ok and refused.reason.startswith(f"tenant {TENANT!r} daily budget")


# ---- settle_budget: settled at no less than the ledger ----------------------------------------------


def test_settle_budget_settles_at_least_the_ledgered_cost(store: StateStore) -> None:
    activities = BudgetActivities(store, {"post": 0.002}, 0.01)
    env = ActivityEnvironment()
    task = ref("t1")
    assert store.reserve(task, 0.02, 0.10, "UTC").ok
    # Two attempts made calls; the second reports only its own cost.
    store.record_costs(task, task.task_id, [line("t1:a1:c1", 0.004), line("t1:a1:c2", 0.001)], "UTC")
    store.record_costs(task, task.task_id, [line("t1:a2:c1", 0.003)], "UTC")
    settled = env.run(activities.settle_budget, SettleRequest(ref=task, actual_usd=0.003, timezone="UTC"))
    assert settled.ok and settled.amount_usd == pytest.approx(0.008) and settled.day == "2026-03-09"
    again = env.run(activities.settle_budget, SettleRequest(ref=task, actual_usd=0.003, timezone="UTC"))
    assert again.amount_usd == settled.amount_usd  # idempotent
    assert store.spend_today(TENANT, CAMPAIGN, "UTC").spent_usd == pytest.approx(0.008)
    # An actual cost above the ledger (calls not ledgered) still wins.
    higher = env.run(activities.settle_budget, SettleRequest(ref=task, actual_usd=0.02, timezone="UTC"))
    assert higher.amount_usd == pytest.approx(0.02) and higher.spent_today_usd == pytest.approx(0.02)


# ---- usage summaries --------------------------------------------------------------------------------


def test_usage_summary_by_tier_with_estimates_and_cost_per_post(store: StateStore, clock: FakeClock) -> None:
    tz = "America/New_York"
    store.ensure_campaign(make_spec(daily_budget_usd=0.10, timezone=tz))  # the campaign's days are New York's
    store.ensure_campaign(make_spec(campaign="second", timezone=tz))
    store.charge(ref("plan-1"), [line("plan-1:a1:c1", 0.01, tier="planning")], tz)
    store.record_costs(ref("t1"), "t1", [line("t1:a1:c1", 0.002), line("t1:a1:c2", 0.001, estimated=True)], tz)
    store.record_costs(ref("t2"), "t2", [line("t2:a1:c1", 0.003, model="gemini-2.5-flash", provider="gemini")], tz)
    store.record_costs(
        ref("t2"),
        "t2",
        [line("t2:a1:img", 0.04, tier="images.generate_image", kind="tool", provider="images", model="ideogram")],
        tz,
    )
    store.record_costs(ref("o1", campaign="second"), "o1", [line("o1:a1:c1", 0.5)], tz)  # another campaign
    store.record_task(ref("t1"), "t1", "post", "twitter", "published", 1, 0.9)
    store.record_task(ref("t2"), "t2", "post", "twitter", "rejected", 1, 0.2)
    store.record_task(ref("o1", campaign="second"), "o1", "post", "twitter", "published", 1, 0.9)
    # A later day, in New York: 01:00 UTC on the 10th is still the 9th there; 05:00 UTC is the 10th.
    clock.now = datetime(2026, 3, 10, 1, 0, tzinfo=UTC)
    store.record_costs(ref("t3"), "t3", [line("t3:a1:c1", 0.002)], tz)
    store.record_task(ref("t3"), "t3", "post", "twitter", "published", 1, 0.9)
    clock.now = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    store.record_costs(ref("t4"), "t4", [line("t4:a1:c1", 0.007)], tz)
    store.record_task(ref("t4"), "t4", "post", "twitter", "published", 1, 0.9)

    day = date(2026, 3, 9)
    summary = store.usage_summary(TENANT, CAMPAIGN, day, day)
    by = {(r.tier, r.provider, r.model): r for r in summary.rows}
    assert list(by) == [
        ("images.generate_image", "images", "ideogram"),
        ("planning", "anthropic", "claude-sonnet-4-5"),
        ("post", "anthropic", "claude-sonnet-4-5"),
        ("post", "gemini", "gemini-2.5-flash"),
    ]
    post = by[("post", "anthropic", "claude-sonnet-4-5")]
    assert (post.calls, post.input_tokens, post.output_tokens, post.cached_input_tokens, post.cache_write_tokens) == (
        3,
        300,
        120,
        30,
        15,
    )
    assert post.cost_usd == pytest.approx(0.005) and post.estimated_usd == pytest.approx(0.001)
    assert post.estimated_calls == 1 and by[("planning", "anthropic", "claude-sonnet-4-5")].estimated_calls == 0
    assert by[("images.generate_image", "images", "ideogram")].kind == "tool"
    assert summary.spent_usd == pytest.approx(0.058) and summary.estimated_usd == pytest.approx(0.001)
    assert summary.calls == 6
    assert summary.published_posts == 2  # t1, and t3 (published on the 9th in New York)
    assert summary.cost_per_published_usd == pytest.approx(0.029)
    # tokens per task: each line has 155 tokens; post: t1 (2 lines), t2, t3 -> 4 lines over 3 owners.
    assert summary.tokens_per_task == {"images.generate_image": 155.0, "planning": 155.0, "post": round(620 / 3, 1)}

    later = store.usage_summary(TENANT, CAMPAIGN, date(2026, 3, 10), date(2026, 3, 10))
    assert (later.spent_usd, later.published_posts, later.cost_per_published_usd) == (0.007, 1, 0.007)
    whole = store.usage_summary(TENANT, None, day, date(2026, 3, 10))
    assert whole.spent_usd == pytest.approx(0.565) and whole.published_posts == 4 and whole.campaign_id is None
    empty = store.usage_summary(TENANT, CAMPAIGN, date(2026, 1, 1), date(2026, 1, 2))
    assert (empty.rows, empty.spent_usd, empty.published_posts, empty.cost_per_published_usd) == ([], 0.0, 0, None)
    assert empty.tokens_per_task == {}
    with pytest.raises(ValueError, match="after"):
        store.usage_summary(TENANT, CAMPAIGN, day, day - timedelta(days=1))

    today = store.usage_today(TENANT, CAMPAIGN)  # 01:00 on the 10th in New York
    assert today.day_from == date(2026, 3, 10) and today.spent_usd == pytest.approx(0.007)
    with pytest.raises(UnknownCampaign):
        store.usage_today(TENANT, "ghost")


# ---- the CLI ----------------------------------------------------------------------------------------


def _cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    from typer.testing import CliRunner

    from chimera.cli.app import app

    monkeypatch.setenv("CHIMERA_STATE_DIR", str(tmp_path / "state"))
    for name in ("CHIMERA_DATABASE_URL", "CHIMERA_MIGRATION_DATABASE_URL", "CHIMERA_AUDIT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "160")
    return CliRunner().invoke(app, list(args))


def _seed_cli_store(tmp_path: Path) -> None:
    from chimera.settings import Settings

    store = StateStore.from_settings(Settings(state_dir=tmp_path / "state"))
    try:
        store.ensure_campaign(make_spec())
        store.charge(ref("plan-1"), [line("plan-1:a1:c1", 0.01, tier="planning")], "UTC")
        store.record_costs(ref("t1"), "t1", [line("t1:a1:c1", 0.002), line("t1:a1:c2", 0.001, estimated=True)], "UTC")
        store.record_task(ref("t1"), "t1", "post", "twitter", "published", 1, 0.9)
    finally:
        store.close()


def test_budget_show_reports_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _seed_cli_store(tmp_path)
    shown = _cli(tmp_path, monkeypatch, "budget", "show", "--tenant", TENANT, "--json")
    assert shown.exit_code == 0, shown.output
    lines = {line["level"]: line for line in json.loads(shown.stdout)}
    assert lines["agent"]["usage"] is None and lines["tenant"]["usage"] is None
    ledger = lines["campaign"]["usage"]
    assert lines["campaign"]["spent_usd"] == pytest.approx(0.01)  # the charged plan (t1 is not settled yet)
    assert ledger["spent_usd"] == pytest.approx(0.013) and ledger["estimated_usd"] == pytest.approx(0.001)
    assert ledger["published_posts"] == 1 and ledger["cost_per_published_usd"] == pytest.approx(0.013)
    assert {r["tier"] for r in ledger["rows"]} == {"planning", "post"} and ledger["tokens_per_task"]["post"] == 310.0

    table = _cli(tmp_path, monkeypatch, "budget", "show", "--tenant", TENANT)
    assert table.exit_code == 0, table.output
    assert f"{TENANT}/{CAMPAIGN}: Calls: 3 costing $0.013 ($0.001 estimated)" in table.stdout
    assert "per published post $0.013 (1 published)" in table.stdout and "calls today by tier" in table.stdout
    assert "~ estimated" in table.stdout and "claude-sonnet-4-5" in table.stdout


def test_campaign_status_adds_the_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = CampaignStatus(
        campaign_id=CAMPAIGN,
        tenant_id=TENANT,
        agent_id=AGENT,
        state="running",
        cycle=1,
        goals=["grow"],
        daily_budget_usd=5.0,
        spend_today_usd=0.01,
        tasks_by_state={"published": 1},
        pending_reviews=[],
        tasks=[],
    )
    monkeypatch.setattr("chimera.cli.render.run", lambda operation, loaded=None: status)  # no Temporal here

    missing = _cli(tmp_path, monkeypatch, "campaign", "status", f"{TENANT}/{CAMPAIGN}", "--json")
    assert missing.exit_code == 0, missing.output
    data = json.loads(missing.stdout)
    assert data["usage"] is None and "no state database" in data["usage_error"]
    assert not (tmp_path / "state" / "chimera.db").exists()  # a status read creates no database

    _seed_cli_store(tmp_path)
    shown = _cli(tmp_path, monkeypatch, "campaign", "status", f"{TENANT}/{CAMPAIGN}", "--json")
    data = json.loads(shown.stdout)
    assert CampaignStatus.model_validate(data) == status and data["usage_error"] is None
    assert data["usage"]["spent_usd"] == pytest.approx(0.013) and data["usage"]["published_posts"] == 1
    text = _cli(tmp_path, monkeypatch, "campaign", "status", f"{TENANT}/{CAMPAIGN}")
    assert text.exit_code == 0, text.output
    assert "Calls: 3 costing $0.013 ($0.001 estimated)" in text.stdout and "calls today by tier" in text.stdout
    assert "Tokens per task: planning 155, post 310" in text.stdout
