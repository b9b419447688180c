"""StateStore behaviours on SQLite. tests/integration/test_store_postgres.py reruns them on PostgreSQL
by overriding the `store_url` fixture, so every test here must hold on both backends."""

from __future__ import annotations

import itertools
import pickle
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, bindparam, create_engine, text

from chimera.db import (
    InvalidTimezone,
    OwnershipConflict,
    StateConflict,
    StateStore,
    UnknownCampaign,
    UnsupportedDatabase,
)
from chimera.settings import Settings
from schemas.campaign import CampaignSpec
from schemas.persona import Persona
from schemas.policy import ConfidenceComponents, SafetyFlag, Verdict
from schemas.review import ReviewRecord
from schemas.task import StateRead, TaskRef

TENANT = "acme"
CAMPAIGN = "launch"
AGENT = "ava"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_spec(tenant: str = TENANT, campaign: str = CAMPAIGN, agent: str = AGENT, **changes: object) -> CampaignSpec:
    persona = Persona(
        id=agent, name="Ava", handles={"twitter": "@ava"}, voice="warm", boundaries=["no politics"], examples=["hi"]
    )
    fields: dict[str, object] = {
        "tenant_id": tenant,
        "campaign_id": campaign,
        "name": "Launch",
        "persona": persona,
        "goals": ["grow"],
        "platforms": ["twitter"],
        "daily_budget_usd": 5.0,
        **changes,
    }
    return CampaignSpec.model_validate(fields)


def ref(task_id: str, tenant: str = TENANT, campaign: str = CAMPAIGN, agent: str = AGENT) -> TaskRef:
    return TaskRef(task_id=task_id, tenant_id=tenant, campaign_id=campaign, agent_id=agent, campaign_workflow_id="wf")


def verdict(confidence: float = 0.8, flags: list[SafetyFlag] | None = None) -> Verdict:
    parts = ConfidenceComponents(model_probability=0.8, persona_similarity=0.8, safety=0.8, historical_success=0.8)
    return Verdict(decision="escalate", confidence=confidence, components=parts, flags=flags or [], reasons=["mid"])


def review(task_id: str = "t-review", state: str = "pending", **changes: object) -> ReviewRecord:
    fields: dict[str, object] = {
        "task_id": task_id,
        "tenant_id": TENANT,
        "campaign_id": CAMPAIGN,
        "agent_id": AGENT,
        "platform": "twitter",
        "task_type": "post",
        "text": "draft text",
        "verdict": verdict(),
        "state": state,
        "deadline": "2030-01-01T00:00:00+00:00",
        **changes,
    }
    return ReviewRecord.model_validate(fields)


# ---- fixtures (the PostgreSQL module overrides store_url) ------------------------------------


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chimera.db'}"


@pytest.fixture
def make_store(store_url: str) -> Iterator[Callable[..., StateStore]]:
    stores: list[StateStore] = []

    def factory(clock: Callable[[], datetime] | None = None) -> StateStore:
        store = StateStore(store_url, clock=clock)
        stores.append(store)
        return store

    yield factory
    for store in stores:
        store.close()


@pytest.fixture
def tamper(store_url: str) -> Callable[..., int]:
    """Change the database behind the store's back, as an attacker with full access would; returns the rowcount.
    (The PostgreSQL module overrides it: a superuser, with the append-only triggers skipped.)"""
    return lambda sql, **params: raw_execute(store_url, sql, **params)


@pytest.fixture
def store(make_store: Callable[..., StateStore]) -> StateStore:
    s = make_store()
    s.ensure_campaign(make_spec())
    return s


def raw_execute(url: str, sql: str, **params: object) -> int:
    """Tamper with the database behind the store's back; returns the rowcount."""
    engine = create_engine(url)
    try:
        stmt = text(sql)
        if "detail" in params:
            stmt = stmt.bindparams(bindparam("detail", type_=JSON))
        with engine.begin() as conn:
            return conn.execute(stmt, params).rowcount
    finally:
        engine.dispose()


def run_threads(n: int, fn: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(n)

    def start(i: int) -> object:
        barrier.wait()  # release every thread at once to maximize contention
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(start, range(n)))


def increment(store: StateStore, key: str, task_id: str) -> int:
    """Read-modify-write one counter through OCC, retrying on conflict; returns the number of conflicts."""
    conflicts = 0
    while True:
        current = store.get_state(TENANT, key)
        version = current.version if current else 0
        count = int(current.value["n"]) if current else 0
        try:
            store.commit(ref(task_id), [StateRead(key=key, version=version)], [key], {"n": count + 1}, "worker")
            return conflicts
        except StateConflict:
            conflicts += 1


def _process_increments(url: str, worker: int, times: int) -> int:
    store = StateStore(url)
    try:
        return sum(increment(store, "shared", f"p{worker}-{i}") for i in range(times))
    finally:
        store.close()


# ---- configuration ------------------------------------------------------------------------------


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(UnsupportedDatabase, match="in-memory"):
        StateStore("sqlite://")


def test_from_settings_creates_the_state_dir(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "nested" / "state", database_url=None)
    store = StateStore.from_settings(settings)
    try:
        store.ensure_campaign(make_spec())
        assert (tmp_path / "nested" / "state" / "chimera.db").exists()
        assert store.campaign_status(TENANT, CAMPAIGN) == "running"
    finally:
        store.close()


# ---- campaigns -----------------------------------------------------------------------------------


def test_ensure_campaign_is_idempotent_and_keeps_live_values(store: StateStore) -> None:
    store.ensure_campaign(make_spec())
    assert [e.action for e in store.audit_entries(TENANT)] == ["campaign.created"]

    store.set_daily_budget(TENANT, CAMPAIGN, 9.5, actor="ops", reason="more reach")
    store.set_goals(TENANT, CAMPAIGN, [" sell ", "grow"], actor="ops")
    store.set_campaign_status(TENANT, CAMPAIGN, "paused", actor="ops", reason="review backlog")
    store.ensure_campaign(make_spec(name="Launch v2"))  # a restart with an edited file

    record = store.get_campaign(TENANT, CAMPAIGN)
    assert record is not None
    assert record.name == "Launch v2"
    assert record.spec.name == "Launch v2"
    assert record.daily_budget_usd == 9.5
    assert record.goals == ["sell", "grow"]
    assert record.status == "paused"
    assert record.updated_at.tzinfo is not None
    actions = [e.action for e in store.audit_entries(TENANT)]
    assert actions == ["campaign.created", "campaign.budget", "campaign.goals", "campaign.status", "campaign.updated"]


def test_campaign_status_controls_and_audit(store: StateStore) -> None:
    assert store.campaign_status(TENANT, CAMPAIGN) == "running"
    assert not store.is_stopped(TENANT, CAMPAIGN)
    store.set_campaign_status(TENANT, CAMPAIGN, "stopped", actor="alice", reason="emergency")
    assert store.campaign_status(TENANT, CAMPAIGN) == "stopped"
    assert store.is_stopped(TENANT, CAMPAIGN)
    last = store.audit_entries(TENANT, limit=1)[0]
    assert (last.actor, last.action, last.subject) == ("alice", "campaign.status", f"campaign/{CAMPAIGN}")
    assert last.detail == {"from": "running", "to": "stopped", "reason": "emergency"}

    assert store.campaign_status(TENANT, "nope") is None
    assert not store.is_stopped(TENANT, "nope")
    with pytest.raises(UnknownCampaign, match="ensure_campaign"):
        store.set_campaign_status(TENANT, "nope", "paused", actor="alice", reason="")
    with pytest.raises(ValueError, match="unknown campaign status"):
        store.set_campaign_status(TENANT, CAMPAIGN, "exploded", actor="alice", reason="")
    with pytest.raises(ValueError, match="positive"):
        store.set_daily_budget(TENANT, CAMPAIGN, 0, actor="alice")
    with pytest.raises(ValueError, match="non-blank"):
        store.set_goals(TENANT, CAMPAIGN, ["  "], actor="alice")


# ---- versioned state ---------------------------------------------------------------------------


def test_read_versions_absent_is_zero(store: StateStore) -> None:
    store.commit(ref("t1"), [], ["a"], {"v": 1}, "worker")
    assert store.read_versions(TENANT, ["b", "a"]) == [StateRead(key="b", version=0), StateRead(key="a", version=1)]
    assert store.read_versions("other-tenant", ["a"]) == [StateRead(key="a", version=0)]


def test_commit_bumps_write_keys_and_conflict_writes_nothing(store: StateStore) -> None:
    first = store.commit(ref("t1"), [StateRead(key="a", version=0)], ["a", "b"], {"v": 1}, "worker")
    assert first == [StateRead(key="a", version=1), StateRead(key="b", version=1)]
    audit_before = len(store.audit_entries(TENANT))

    with pytest.raises(StateConflict) as caught:
        store.commit(ref("t2"), [StateRead(key="a", version=0)], ["b", "c"], {"v": 2}, "worker")
    assert (caught.value.key, caught.value.expected, caught.value.actual) == ("a", 0, 1)
    assert "read version 0" in str(caught.value)

    b = store.get_state(TENANT, "b")
    assert b is not None and (b.version, b.value, b.updated_by) == (1, {"v": 1}, "t1")
    assert store.get_state(TENANT, "c") is None
    assert len(store.audit_entries(TENANT)) == audit_before

    second = store.commit(ref("t3"), [StateRead(key="a", version=1)], ["b"], {"v": 3}, "worker")
    assert second == [StateRead(key="b", version=2)]
    entry = store.audit_entries(TENANT, limit=1)[0]
    assert entry.action == "state.commit" and entry.detail["read"] == {"a": 1} and entry.detail["wrote"] == {"b": 2}


def test_read_only_key_that_moved_is_a_conflict(store: StateStore) -> None:
    store.commit(ref("t1"), [], ["thread"], {"v": 1}, "worker")
    with pytest.raises(StateConflict) as caught:
        store.commit(ref("t2"), [StateRead(key="thread", version=0)], ["reply"], {"v": 1}, "worker")
    assert caught.value.actual == 1
    assert store.read_versions(TENANT, ["reply"]) == [StateRead(key="reply", version=0)]


def test_retried_commit_returns_the_same_versions(store: StateStore) -> None:
    read = [StateRead(key="a", version=0)]
    first = store.commit(ref("t1"), read, ["a"], {"v": 1}, "worker")
    again = store.commit(ref("t1"), read, ["a"], {"v": 1}, "worker")  # the activity was retried
    assert again == first == [StateRead(key="a", version=1)]
    with pytest.raises(StateConflict):  # another task with the same stale read still conflicts
        store.commit(ref("t2"), read, ["a"], {"v": 1}, "worker")


def test_commit_for_unknown_campaign_is_refused(store: StateStore) -> None:
    with pytest.raises(UnknownCampaign):
        store.commit(ref("t1", campaign="ghost"), [], ["a"], {"v": 1}, "worker")


def test_concurrent_committers_lose_no_update(store: StateStore) -> None:
    threads, per_thread = 8, 25
    conflicts = run_threads(threads, lambda t: [increment(store, "counter", f"t{t}-{i}") for i in range(per_thread)])
    final = store.get_state(TENANT, "counter")
    assert final is not None
    assert final.version == threads * per_thread
    assert final.value == {"n": threads * per_thread}  # every increment survived
    assert sum(sum(c) for c in conflicts if isinstance(c, list)) > 0, "the test produced no contention"
    check = store.verify_audit(TENANT)
    assert check.ok, check.problem
    assert check.entries == 1 + threads * per_thread  # campaign.created + one per successful commit


def test_concurrent_commits_of_new_keys_and_controls(store: StateStore) -> None:
    """Inserts referencing the tenant and campaign, mixed with audited control changes, must not deadlock."""

    def work(t: int) -> None:
        for i in range(10):
            store.commit(ref(f"n{t}-{i}"), [], [f"key-{t}-{i}"], {"t": t}, "worker")
            store.record_task(ref(f"n{t}-{i}"), f"k{t}-{i}", "post", "twitter", "running", 1, None)
            if t % 4 == 0:
                store.set_goals(TENANT, CAMPAIGN, [f"goal {t}-{i}"], actor=f"ops{t}")

    run_threads(8, work)
    assert store.read_versions(TENANT, ["key-7-9"]) == [StateRead(key="key-7-9", version=1)]
    assert len(store.list_tasks(TENANT, CAMPAIGN)) == 80
    check = store.verify_audit(TENANT)
    assert check.ok and check.entries == 1 + 80 + 20, check.problem


def test_concurrent_processes_lose_no_update(store: StateStore, store_url: str) -> None:
    workers, per_worker = 4, 25
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(_process_increments, [store_url] * workers, range(workers), [per_worker] * workers))
    final = store.get_state(TENANT, "shared")
    assert final is not None and final.version == workers * per_worker and final.value == {"n": workers * per_worker}
    assert store.verify_audit(TENANT).ok


# ---- budget ------------------------------------------------------------------------------------


def test_budget_race_never_overspends(store: StateStore) -> None:
    results = run_threads(50, lambda i: store.reserve(ref(f"b{i}"), 0.01, 0.10, "UTC"))
    granted = [r for r in results if getattr(r, "ok", False)]
    assert len(granted) == 10
    refused = [r for r in results if not getattr(r, "ok", True)]
    assert len(refused) == 40 and all("would be exceeded" in getattr(r, "reason", "") for r in refused)
    summary = store.spend_today(TENANT, CAMPAIGN, "UTC")
    assert summary.reserved_usd == pytest.approx(0.10) and summary.spent_usd == 0.0
    assert summary.committed_usd <= 0.10


def test_reservation_is_idempotent_per_task(store: StateStore) -> None:
    first = store.reserve(ref("t1"), 0.04, 0.10, "UTC")
    again = store.reserve(ref("t1"), 0.04, 0.10, "UTC")
    assert first.ok and again.ok and again.amount_usd == 0.04 and "already reserved" in again.reason
    assert store.spend_today(TENANT, CAMPAIGN, "UTC").reserved_usd == pytest.approx(0.04)
    assert first.spent_today_usd == pytest.approx(0.04) and first.day


def test_settle_and_release(store: StateStore) -> None:
    assert store.reserve(ref("t1"), 0.05, 0.10, "UTC").ok
    assert store.reserve(ref("t2"), 0.05, 0.10, "UTC").ok
    assert not store.reserve(ref("t3"), 0.01, 0.10, "UTC").ok

    store.settle(ref("t1"), 0.03, "UTC")
    store.settle(ref("t1"), 0.03, "UTC")  # idempotent
    store.release(ref("t2"))
    store.release(ref("t2"))  # idempotent
    store.release(ref("t1"))  # settled money stays spent
    summary = store.spend_today(TENANT, CAMPAIGN, "UTC")
    assert summary.spent_usd == pytest.approx(0.03) and summary.reserved_usd == 0.0

    assert store.reserve(ref("t3"), 0.07, 0.10, "UTC").ok
    assert not store.reserve(ref("t4"), 0.000001, 0.10, "UTC").ok
    assert store.reserve(ref("t2"), 0.0, 0.10, "UTC").ok  # a released task may reserve again


def test_budget_day_follows_the_campaign_time_zone(make_store: Callable[..., StateStore]) -> None:
    # 04:30 UTC on 10 March 2024 is 23:30 on 9 March in New York; 05:30 UTC is past local midnight.
    clock = FakeClock(datetime(2024, 3, 10, 4, 30, tzinfo=UTC))
    store = make_store(clock)
    store.ensure_campaign(make_spec())
    tz = "America/New_York"

    late = store.reserve(ref("t1"), 0.08, 0.10, tz)
    assert late.ok and late.day == "2024-03-09"
    assert not store.reserve(ref("t2"), 0.08, 0.10, tz).ok

    clock.now = datetime(2024, 3, 10, 5, 30, tzinfo=UTC)
    early = store.reserve(ref("t2"), 0.08, 0.10, tz)
    assert early.ok and early.day == "2024-03-10"
    assert store.spend_today(TENANT, CAMPAIGN, tz).reserved_usd == pytest.approx(0.08)
    clock.now = datetime(2024, 3, 10, 4, 59, tzinfo=UTC)  # still 9 March in New York
    assert store.spend_today(TENANT, CAMPAIGN, tz).reserved_usd == pytest.approx(0.08)
    assert store.spend_today(TENANT, CAMPAIGN, tz).day.isoformat() == "2024-03-09"
    with pytest.raises(InvalidTimezone, match="Mars/Olympus"):
        store.reserve(ref("t3"), 0.01, 0.10, "Mars/Olympus")


def test_spend_of_another_campaign_is_refused(store: StateStore) -> None:
    store.ensure_campaign(make_spec(campaign="other"))
    assert store.reserve(ref("t1"), 0.01, 1.0, "UTC").ok
    with pytest.raises(OwnershipConflict):
        store.reserve(ref("t1", campaign="other"), 0.01, 1.0, "UTC")
    with pytest.raises(UnknownCampaign):
        store.reserve(ref("t9", campaign="ghost"), 0.01, 1.0, "UTC")


# ---- audit ---------------------------------------------------------------------------------------


def test_audit_chain_links_and_is_ordered(store: StateStore) -> None:
    for i in range(3):
        store.append_audit(TENANT, "alice", "note", f"thing/{i}", {"i": i, "nested": {"b": [1, 2.5], "a": None}})
    entries = store.audit_entries(TENANT)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert all(e.at.tzinfo is not None and e.at.utcoffset() == UTC.utcoffset(None) for e in entries)
    assert [e.seq for e in store.audit_entries(TENANT, limit=2)] == [3, 4]
    check = store.verify_audit(TENANT)
    assert check.ok and check.entries == 4 and check.first_bad_seq is None
    assert store.verify_audit("nobody").ok
    with pytest.raises(ValueError, match="plain JSON"):
        store.append_audit(TENANT, "alice", "note", "x", {"when": datetime.now(UTC)})


def test_audit_detects_an_altered_entry(store: StateStore, tamper: Callable[..., int]) -> None:
    for i in range(4):
        store.append_audit(TENANT, "alice", "note", "x", {"i": i})
    changed = tamper(
        "UPDATE audit_log SET detail = :detail WHERE tenant_id = :t AND seq = 3",
        detail={"i": 999},
        t=TENANT,
    )
    assert changed == 1
    check = store.verify_audit(TENANT)
    assert not check.ok and check.first_bad_seq == 3 and "altered" in (check.problem or "")


def test_audit_detects_deleted_entries(store: StateStore, tamper: Callable[..., int]) -> None:
    for i in range(4):
        store.append_audit(TENANT, "alice", "note", "x", {"i": i})
    tamper("DELETE FROM audit_log WHERE tenant_id = :t AND seq = 2", t=TENANT)
    check = store.verify_audit(TENANT)
    assert not check.ok and check.first_bad_seq == 2 and "missing" in (check.problem or "")


def test_audit_detects_truncation_of_the_newest_entries(store: StateStore, tamper: Callable[..., int]) -> None:
    for i in range(4):
        store.append_audit(TENANT, "alice", "note", "x", {"i": i})
    tamper("DELETE FROM audit_log WHERE tenant_id = :t AND seq >= 4", t=TENANT)
    check = store.verify_audit(TENANT)
    assert not check.ok and check.first_bad_seq == 4 and "deleted from the end" in (check.problem or "")


def test_audit_detects_reordered_entries(store: StateStore, tamper: Callable[..., int]) -> None:
    for i in range(4):
        store.append_audit(TENANT, "alice", "note", "x", {"i": i})
    for statement in (
        "UPDATE audit_log SET seq = 1000 WHERE tenant_id = :t AND seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE tenant_id = :t AND seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE tenant_id = :t AND seq = 1000",
    ):
        assert tamper(statement, t=TENANT) == 1
    check = store.verify_audit(TENANT)
    assert not check.ok and check.first_bad_seq == 2 and "reordered" in (check.problem or "")


def test_concurrent_appends_leave_one_chain_per_tenant(store: StateStore) -> None:
    tenants = [TENANT, "beta"]

    def appender(t: int) -> None:
        for i in range(20):
            store.append_audit(tenants[t % 2], f"w{t}", "note", "x", {"t": t, "i": i})

    run_threads(8, appender)
    for tenant, expected in ((TENANT, 1 + 80), ("beta", 80)):
        entries = store.audit_entries(tenant, limit=1000)
        assert [e.seq for e in entries] == list(range(1, expected + 1))
        assert len({e.prev_hash for e in entries}) == expected  # no two entries share a parent: no fork
        check = store.verify_audit(tenant)
        assert check.ok and check.entries == expected, check.problem


# ---- outcomes ----------------------------------------------------------------------------------


def test_success_rate_prior_and_learning(store: StateStore) -> None:
    prior = store.success_rate(TENANT, AGENT, "post")
    assert prior.rate == pytest.approx(0.8) and prior.samples == 0

    store.record_outcome(ref("p1"), "post", "published", human_decided=False)
    store.record_outcome(ref("p1"), "post", "published", human_decided=False)  # idempotent
    store.record_outcome(ref("p2"), "post", "published", human_decided=True)
    for i, status in enumerate(["cancelled", "failed", "budget_exhausted"]):
        store.record_outcome(ref(f"x{i}"), "post", status, human_decided=False)  # say nothing about quality
    store.record_outcome(ref("r1"), "reply", "rejected", human_decided=True)  # another task type
    after = store.success_rate(TENANT, AGENT, "post")
    assert after.samples == 2 and after.rate == pytest.approx(10 / 12)

    for i in range(5):
        store.record_outcome(ref(f"q{i}"), "post", "rejected", human_decided=i % 2 == 0)
    learned = store.success_rate(TENANT, AGENT, "post")
    assert (learned.successes, learned.failures) == (2, 5) and learned.rate == pytest.approx(10 / 17)
    assert store.success_rate(TENANT, AGENT, "reply").rate == pytest.approx(8 / 11)
    assert store.success_rate("beta", AGENT, "post").rate == pytest.approx(0.8)
    with pytest.raises(ValueError, match="unknown task status"):
        store.record_outcome(ref("z"), "post", "great", human_decided=False)


# ---- tasks ---------------------------------------------------------------------------------------


def test_record_task_upserts(store: StateStore) -> None:
    store.record_task(ref("t1"), "k1", "post", "twitter", "planned", 1, None)
    store.record_task(ref("t1"), "k1", "post", "twitter", "pending_review", 2, 0.82)
    task = store.get_task(TENANT, "t1")
    assert task is not None
    assert (task.status, task.attempt, task.confidence) == ("pending_review", 2, 0.82)
    assert [t.task_id for t in store.list_tasks(TENANT, CAMPAIGN)] == ["t1"]
    with pytest.raises(ValueError, match="unknown task status"):
        store.record_task(ref("t1"), "k1", "post", "twitter", "done", 1, None)
    with pytest.raises(UnknownCampaign):
        store.record_task(ref("t2", campaign="ghost"), "k", "post", "twitter", "planned", 1, None)


# ---- reviews -------------------------------------------------------------------------------------


def test_review_upsert_and_decision_history(store: StateStore) -> None:
    pending = review()
    store.record_review(pending)
    store.record_review(pending)  # a retried activity adds nothing
    assert store.get_review(TENANT, "t-review") == pending
    assert [r.task_id for r in store.pending_reviews(TENANT)] == ["t-review"]
    assert store.pending_reviews("beta") == []

    edited = review(state="edited", reviewer="bob", reason="tone", edited_text="better text")
    store.record_review(edited)
    assert store.get_review(TENANT, "t-review") == edited
    assert store.pending_reviews(TENANT) == []

    store.record_review(pending)  # a late escalation retry must not reopen the decision
    assert store.get_review(TENANT, "t-review") == edited

    rejected = review(state="rejected", reviewer="carol", reason="off-brand", edited_text="better text")
    store.record_review(rejected)
    events = store.review_events(TENANT, "t-review")
    assert [(e.seq, e.action, e.actor) for e in events] == [
        (1, "escalate", "system"),
        (2, "edit", "bob"),
        (3, "reject", "carol"),
    ]
    assert (events[1].old_text, events[1].new_text, events[1].reason) == ("draft text", "better text", "tone")
    assert events[2].old_text == "better text" and events[2].new_text is None
    assert all(e.at.tzinfo is not None for e in events)
    assert store.get_review(TENANT, "nope") is None


def test_pending_reviews_riskiest_first(store: StateStore) -> None:
    flag = SafetyFlag(rule="claims", severity="low", where="output", detail="health claim")
    store.record_review(review("calm", verdict=verdict(0.85)))
    store.record_review(review("risky", verdict=verdict(0.75, [flag])))
    store.record_review(review("unsure", verdict=verdict(0.72)))
    assert [r.task_id for r in store.pending_reviews(TENANT)] == ["risky", "unsure", "calm"]


def test_review_of_another_campaign_is_refused(store: StateStore) -> None:
    store.ensure_campaign(make_spec(campaign="other"))
    store.record_review(review("t1"))
    with pytest.raises(OwnershipConflict, match="belongs to"):
        store.record_review(review("t1", campaign_id="other"))
    with pytest.raises(UnknownCampaign):
        store.record_review(review("t2", campaign_id="ghost"))


def test_state_conflict_pickles() -> None:
    err = pickle.loads(pickle.dumps(StateConflict("k", 1, 2)))
    assert (err.key, err.expected, err.actual) == ("k", 1, 2)
    assert str(err) == str(StateConflict("k", 1, 2))


# ---- budget levels -------------------------------------------------------------------------------


def test_agent_and_tenant_limits_refuse_and_name_the_level(store: StateStore) -> None:
    store.ensure_campaign(make_spec(campaign="second"))  # same agent, same tenant
    store.ensure_campaign(make_spec(campaign="third", agent="bo"))
    store.set_budget(TENANT, "agent", AGENT, 0.05, actor="ops", reason="cap ava")
    store.set_budget(TENANT, "tenant", TENANT, 0.08, actor="ops")

    assert store.reserve(ref("a1"), 0.03, 1.0, "UTC").ok
    agent_refusal = store.reserve(ref("a2", campaign="second"), 0.03, 1.0, "UTC")
    assert not agent_refusal.ok and f"agent '{AGENT}' daily budget $0.050000" in agent_refusal.reason
    assert store.reserve(ref("a3", campaign="second"), 0.02, 1.0, "UTC").ok  # exactly fills the agent's $0.05
    assert store.reserve(ref("b1", campaign="third", agent="bo"), 0.03, 1.0, "UTC").ok  # tenant: 0.08 used
    tenant_refusal = store.reserve(ref("b2", campaign="third", agent="bo"), 0.000001, 1.0, "UTC")
    assert not tenant_refusal.ok and f"tenant '{TENANT}' daily budget" in tenant_refusal.reason
    campaign_refusal = store.reserve(ref("c1", campaign="third", agent="bo"), 0.01, 0.03, "UTC")
    assert not campaign_refusal.ok and "campaign 'third' daily budget" in campaign_refusal.reason

    store.release(ref("a1"))  # a failed task gives its reservation back to every level
    assert store.reserve(ref("b2", campaign="third", agent="bo"), 0.03, 1.0, "UTC").ok
    lines = {(line.campaign_id, line.level): line for line in store.budget_report(TENANT)}
    assert lines[("launch", "agent")].limit_usd == pytest.approx(0.05)
    assert lines[("launch", "agent")].reserved_usd == pytest.approx(0.02)
    assert lines[("third", "tenant")].reserved_usd == pytest.approx(0.08)
    assert lines[("third", "tenant")].left_usd == pytest.approx(0.0)
    assert lines[("third", "agent")].limit_usd is None
    assert sorted(store.budget_limits(TENANT)) == [("agent", AGENT, 0.05), ("tenant", TENANT, 0.08)]

    audited = [e for e in store.audit_entries(TENANT) if e.action == "budget.set"]
    assert [(e.subject, e.detail["to"], e.actor) for e in audited] == [
        (f"agent/{AGENT}", 0.05, "ops"),
        (f"tenant/{TENANT}", 0.08, "ops"),
    ]
    store.set_budget(TENANT, "tenant", TENANT, None, actor="ops")  # removed: no tenant limit any more
    assert store.reserve(ref("b3", campaign="third", agent="bo"), 0.5, 1.0, "UTC").ok
    with pytest.raises(ValueError, match="scope id is the tenant"):
        store.set_budget(TENANT, "tenant", "beta", 1.0, actor="ops")


def test_tenant_limit_race_never_overspends(store: StateStore) -> None:
    """50 parallel reservations over five campaigns against a tenant limit that admits 10."""
    for c in range(5):
        store.ensure_campaign(make_spec(campaign=f"c{c}"))
    store.set_budget(TENANT, "tenant", TENANT, 0.10, actor="ops")
    results = run_threads(50, lambda i: store.reserve(ref(f"r{i}", campaign=f"c{i % 5}"), 0.01, 1.0, "UTC"))
    granted = [r for r in results if getattr(r, "ok", False)]
    assert len(granted) == 10
    total = sum(line.reserved_usd for line in store.budget_report(TENANT) if line.level == "campaign")
    assert total == pytest.approx(0.10) and total <= 0.10 + 1e-9


# ---- migrations and the operator commands (SQLite; the PostgreSQL modules cover their side) --------


def test_sqlite_is_migrated_to_the_head_on_first_use(tmp_path: Path) -> None:
    from chimera.db import migrate

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert migrate.current_revision(url) is None
    store = StateStore(url)
    try:
        store.ensure_campaign(make_spec())
    finally:
        store.close()
    assert migrate.current_revision(url) == migrate.head()
    assert [rev for rev, _ in migrate.revisions()][-1] == migrate.head()


def test_a_database_from_before_alembic_is_adopted(tmp_path: Path) -> None:
    """Tables made by the old create_all, no alembic_version: stamped as the baseline, then upgraded."""
    from chimera.db import migrate

    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, migrate.BASELINE)
    raw_execute(url, "DROP TABLE alembic_version")
    raw_execute(
        url,
        "INSERT INTO tenants (id, created_at, audit_seq, audit_head) VALUES ('old', '2024-01-01 00:00:00', 0, :h)",
        h="0" * 64,
    )
    assert migrate.current_revision(url) is None
    store = StateStore(url)
    try:
        store.ensure_campaign(make_spec(tenant="old"))
        store.set_budget("old", "tenant", "old", 1.0, actor="ops")  # the table added after the baseline
        assert store.tenants() == ["old"]
    finally:
        store.close()
    assert migrate.current_revision(url) == migrate.head()


def _cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    from typer.testing import CliRunner

    from chimera.cli.app import app

    monkeypatch.setenv("CHIMERA_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CHIMERA_DATABASE_URL", raising=False)
    monkeypatch.delenv("CHIMERA_MIGRATION_DATABASE_URL", raising=False)
    monkeypatch.delenv("CHIMERA_AUDIT_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.delenv("CHIMERA_USER_KEY", raising=False)
    if args[:2] == ("budget", "set"):
        _signed_in_locally(tmp_path / "state")  # an administrator's, signed like every change
    return CliRunner().invoke(app, list(args))


def _signed_in_locally(state_dir: Path) -> None:
    from chimera.access.users import ensure_local_admin
    from chimera.settings import Settings

    settings = Settings(state_dir=state_dir)
    settings.ensure_dirs()
    with StateStore(settings.resolved_database_url) as store:
        ensure_local_admin(settings, store)


def test_db_current_and_upgrade_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from chimera.db import migrate

    before = _cli(tmp_path, monkeypatch, "db", "current", "--json")
    assert before.exit_code == 1
    assert json.loads(before.stdout)["current"] is None and json.loads(before.stdout)["head"] == migrate.head()
    up = _cli(tmp_path, monkeypatch, "db", "upgrade")
    assert up.exit_code == 0 and f"to revision {migrate.head()}" in up.stdout
    again = _cli(tmp_path, monkeypatch, "db", "upgrade")
    assert again.exit_code == 0 and "already at revision" in again.stdout
    after = _cli(tmp_path, monkeypatch, "db", "current")
    assert after.exit_code == 0 and f"current:  {migrate.head()}" in after.stdout


def test_budget_and_audit_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    settings = Settings(state_dir=tmp_path / "state")
    store = StateStore.from_settings(settings)
    try:
        store.ensure_campaign(make_spec(timezone="America/New_York"))
        assert store.reserve(ref("t1"), 0.03, 5.0, "America/New_York").ok
        store.settle(ref("t1"), 0.02, "America/New_York")
        assert store.reserve(ref("t2"), 0.01, 5.0, "America/New_York").ok
    finally:
        store.close()

    assert _cli(tmp_path, monkeypatch, "budget", "set", "--tenant", TENANT, "1.5").exit_code == 0
    agent = _cli(tmp_path, monkeypatch, "budget", "set", "--tenant", TENANT, "--agent", AGENT, "0.5")
    assert agent.exit_code == 0 and "daily limit $0.5" in agent.stdout
    unknown = _cli(tmp_path, monkeypatch, "budget", "set", "--tenant", TENANT, "--agent", "ghost", "1")
    assert unknown.exit_code == 1 and "ghost" in unknown.output

    shown = _cli(tmp_path, monkeypatch, "budget", "show", "--tenant", TENANT, "--json")
    assert shown.exit_code == 0, shown.output
    lines = {line["level"]: line for line in json.loads(shown.stdout)}
    assert set(lines) == {"campaign", "agent", "tenant"}
    assert lines["campaign"]["limit_usd"] == 5.0 and lines["campaign"]["timezone"] == "America/New_York"
    assert (lines["agent"]["spent_usd"], lines["agent"]["reserved_usd"]) == (0.02, 0.01)
    assert lines["agent"]["left_usd"] == pytest.approx(0.47) and lines["tenant"]["left_usd"] == pytest.approx(1.47)
    table = _cli(tmp_path, monkeypatch, "budget", "show")
    assert table.exit_code == 0 and "agent ava" in table.stdout and "$0.47" in table.stdout
    assert _cli(tmp_path, monkeypatch, "budget", "show", "--campaign", CAMPAIGN).exit_code == 2

    tail = _cli(tmp_path, monkeypatch, "audit", "tail", "-n", "2", "--json")
    assert tail.exit_code == 0, tail.output
    last = [e for e in json.loads(tail.stdout) if e["tenant_id"] == TENANT]  # not the platform's chain
    assert [(e["action"], e["actor"], e["subject"]) for e in last] == [
        ("budget.set", "local-admin", f"tenant/{TENANT}"),
        ("budget.set", "local-admin", f"agent/{AGENT}"),  # the verified identity, whatever the shell says
    ]
    ok = _cli(tmp_path, monkeypatch, "audit", "verify")
    assert ok.exit_code == 0 and f"tenant {TENANT}: 3 entries" in ok.stdout

    url = settings.resolved_database_url
    raw_execute(url, "UPDATE audit_log SET actor = 'mallory' WHERE tenant_id = :t AND seq = 2", t=TENANT)
    bad = _cli(tmp_path, monkeypatch, "audit", "verify", "--json")
    assert bad.exit_code == 1
    assert [c for c in json.loads(bad.stdout) if c["tenant_id"] == TENANT] == [
        {
            "tenant_id": TENANT,
            "ok": False,
            "entries": 1,
            "first_bad_seq": 2,
            "problem": "entry 2 was altered: its content no longer matches its hash",
        }
    ]


def test_verdicts_and_review_decisions_are_audited(store: StateStore) -> None:
    from schemas.policy import ConfidenceBands, JudgePolicy, JudgeScores, decide

    parts = ConfidenceComponents(model_probability=0.95, persona_similarity=0.95, safety=1.0, historical_success=0.9)
    scores = JudgeScores(components=parts, flags=[], reasons=["fine"])
    # A campaign with a stricter band escalates what the default policy would approve: the audit must keep
    # the verdict the workflow applied, not one the store derives again.
    strict = JudgePolicy(bands=ConfidenceBands(approve_at=0.99, escalate_at=0.5))
    applied = decide(scores, strict)
    assert applied.decision == "escalate" and decide(scores, JudgePolicy()).decision == "approve"
    store.record_verdict(ref("v1"), "post", applied)
    entry = store.audit_entries(TENANT, limit=1)[0]
    assert (entry.actor, entry.action, entry.subject) == ("judge", "judge.verdict", "task/v1")
    assert entry.detail["decision"] == "escalate" and entry.detail["confidence"] == pytest.approx(applied.confidence)

    store.record_review(review("r1"))
    store.record_review(review("r1"))  # a replay: no new decision, no new entry
    store.record_review(review("r1", state="edited", reviewer="bob", reason="tone", edited_text="better"))
    decisions = [
        (e.actor, e.action, e.detail["state"]) for e in store.audit_entries(TENANT) if e.action.startswith("review.")
    ]
    assert decisions == [("system", "review.escalate", "pending"), ("bob", "review.edit", "edited")]
    assert store.verify_audit(TENANT).ok


def test_an_empty_tenant_is_refused(store: StateStore) -> None:
    from chimera.db import TenantRequired

    with pytest.raises(TenantRequired):
        store.get_campaign("", CAMPAIGN)
    with pytest.raises(TenantRequired):
        store.append_audit("", "alice", "note", "x", {})
