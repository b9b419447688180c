"""Concurrency and tamper evidence on the real PostgreSQL, as the application role under row security:
commit pairs (OCC), the budget race at every level, the audit chain under attack and under load.

Fixtures (a fresh migrated schema per test, the roles' URLs) come from test_store_postgres.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from chimera.cli.app import app
from chimera.db import StateConflict, StateStore
from schemas.task import Reservation, StateRead
from tests.integration.test_store_postgres import (  # noqa: F401  # fixtures, used by name
    PgDatabase,
    pg,
    pg_available,
    super_execute,
)
from tests.unit.test_store import AGENT, TENANT, make_spec, ref, run_threads


@pytest.fixture
def store(pg: PgDatabase) -> Any:  # noqa: F811
    s = StateStore(pg.app_url, pool_size=60)
    s.ensure_campaign(make_spec())
    yield s
    s.close()


# ---- optimistic concurrency: pairs of simultaneous commits -------------------------------------------


def test_concurrent_commit_pairs_one_wins_the_other_replans(store: StateStore) -> None:
    pairs = 40
    key = "topic:launch:twitter:spring"
    wins_per_pair: list[int] = []
    for p in range(pairs):
        current = store.get_state(TENANT, key)
        version = current.version if current else 0
        n = int(current.value["n"]) if current else 0
        barrier = threading.Barrier(2)

        def attempt(
            side: int, p: int = p, version: int = version, n: int = n, barrier: threading.Barrier = barrier
        ) -> str:
            task = f"pair{p}-{side}"
            barrier.wait()
            try:
                store.commit(
                    ref(task), [StateRead(key=key, version=version)], [key], {"n": n + 1, "by": task}, "worker"
                )
                return "won"
            except StateConflict as exc:
                assert (exc.key, exc.expected, exc.actual) == (key, version, version + 1)
                # The campaign re-plans the loser: it reads again and commits on the new version.
                fresh = store.get_state(TENANT, key)
                assert fresh is not None and fresh.version == version + 1
                store.commit(
                    ref(f"{task}-replan"),
                    [StateRead(key=key, version=fresh.version)],
                    [key],
                    {"n": int(fresh.value["n"]) + 1, "by": f"{task}-replan"},
                    "worker",
                )
                return "replanned"

        outcomes = run_threads(2, attempt)
        wins_per_pair.append(outcomes.count("won"))
        assert sorted(str(o) for o in outcomes) == ["replanned", "won"], (p, outcomes)

    assert wins_per_pair == [1] * pairs
    final = store.get_state(TENANT, key)
    assert final is not None
    # A serial history of 2 commits per pair: versions rose by exactly one each time, no update lost.
    assert final.version == 2 * pairs and final.value["n"] == 2 * pairs
    commits = [e for e in store.audit_entries(TENANT, limit=10_000) if e.action == "state.commit"]
    assert [e.detail["wrote"][key] for e in commits] == list(range(1, 2 * pairs + 1))
    assert all(e.detail["read"][key] == e.detail["wrote"][key] - 1 for e in commits)
    assert store.verify_audit(TENANT).ok


# ---- budget race --------------------------------------------------------------------------------------


def _race(store: StateStore, make: Callable[[int], Reservation]) -> list[Reservation]:
    return [r for r in run_threads(50, make) if isinstance(r, Reservation)]


@pytest.mark.parametrize("level", ["campaign", "agent", "tenant"])
def test_budget_race_admits_exactly_ten(store: StateStore, level: str) -> None:
    """50 parallel reservations of $0.01 against a $0.10 limit at one level: 10 succeed, never more."""
    for c in range(5):
        store.ensure_campaign(make_spec(campaign=f"c{c}"))
    if level == "agent":
        store.set_budget(TENANT, "agent", AGENT, 0.10, actor="ops")
    if level == "tenant":
        store.set_budget(TENANT, "tenant", TENANT, 0.10, actor="ops")
    campaign_limit = 0.10 if level == "campaign" else 100.0

    def reserve(i: int) -> Reservation:
        campaign = "launch" if level == "campaign" else f"c{i % 5}"
        return store.reserve(ref(f"race-{i}", campaign=campaign), 0.01, campaign_limit, "UTC")

    results = _race(store, reserve)
    assert len(results) == 50
    granted = [r for r in results if r.ok]
    assert len(granted) == 10
    assert all(f"{level} " in r.reason and "would be exceeded" in r.reason for r in results if not r.ok)
    lines = [line for line in store.budget_report(TENANT) if line.level == level]
    assert lines and all((line.spent_usd + line.reserved_usd) <= 0.10 + 1e-9 for line in lines)
    total = sum(line.reserved_usd for line in store.budget_report(TENANT) if line.level == "campaign")
    assert total == pytest.approx(0.10)
    # A failed task releases its reservation: exactly that much is free again, at every level.
    first = next(i for i, r in enumerate(results) if r.ok)
    campaign_of = "launch" if level == "campaign" else f"c{first % 5}"
    store.release(ref(f"race-{first}", campaign=campaign_of))
    assert store.reserve(ref("late-1", campaign=campaign_of), 0.01, campaign_limit, "UTC").ok
    assert not store.reserve(ref("late-2", campaign=campaign_of), 0.01, campaign_limit, "UTC").ok


# ---- audit: tampering and concurrent writers -----------------------------------------------------------


def _entries(store: StateStore, n: int) -> None:
    for i in range(n):
        store.append_audit(TENANT, "alice", "note", f"thing/{i}", {"i": i})


def test_audit_detects_a_tampered_entry(store: StateStore, pg: PgDatabase) -> None:  # noqa: F811
    _entries(store, 5)
    changed = super_execute(pg, "UPDATE audit_log SET actor = 'mallory' WHERE tenant_id = :t AND seq = 4", t=TENANT)
    assert changed == 1
    check = store.verify_audit(TENANT)
    assert not check.ok and check.first_bad_seq == 4 and "altered" in (check.problem or "")


def test_audit_detects_a_deleted_entry(store: StateStore, pg: PgDatabase) -> None:  # noqa: F811
    _entries(store, 5)
    assert super_execute(pg, "DELETE FROM audit_log WHERE tenant_id = :t AND seq = 3", t=TENANT) == 1
    check = store.verify_audit(TENANT)
    assert not check.ok and check.first_bad_seq == 3 and "missing" in (check.problem or "")


def test_audit_detects_reordered_entries(store: StateStore, pg: PgDatabase) -> None:  # noqa: F811
    _entries(store, 5)
    # Swap entries 3 and 4 wholesale (each keeps its own hash), through a free seq.
    for statement in (
        "UPDATE audit_log SET seq = 1000 WHERE tenant_id = :t AND seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE tenant_id = :t AND seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE tenant_id = :t AND seq = 1000",
    ):
        assert super_execute(pg, statement, t=TENANT) == 1
    check = store.verify_audit(TENANT)
    assert not check.ok and check.first_bad_seq == 3 and "reordered" in (check.problem or ""), check


def test_audit_cli_names_the_first_bad_entry_across_tenants(store: StateStore, pg: PgDatabase, monkeypatch) -> None:  # noqa: F811
    store.ensure_campaign(make_spec(tenant="beta"))
    _entries(store, 3)
    monkeypatch.setenv("CHIMERA_DATABASE_URL", pg.app_url)
    monkeypatch.setenv("CHIMERA_AUDIT_DATABASE_URL", pg.auditor_url)
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--json"])
    assert ok.exit_code == 0, ok.output
    assert {c["tenant_id"]: c["ok"] for c in json.loads(ok.stdout)} == {TENANT: True, "beta": True}

    super_execute(
        pg, "UPDATE audit_log SET detail = :detail WHERE tenant_id = :t AND seq = 2", detail={"i": 7}, t=TENANT
    )
    bad = runner.invoke(app, ["audit", "verify"])
    assert bad.exit_code == 1
    assert f"tenant {TENANT}: first bad entry #2" in bad.output
    one = runner.invoke(app, ["audit", "verify", "--tenant", "beta", "--json"])  # the app role, one tenant
    monkeypatch.delenv("CHIMERA_AUDIT_DATABASE_URL")
    assert one.exit_code == 0 and json.loads(one.stdout)[0]["ok"] is True
    tail = runner.invoke(app, ["audit", "tail", "--tenant", TENANT, "-n", "2", "--json"])
    assert tail.exit_code == 0, tail.output
    assert [e["seq"] for e in json.loads(tail.stdout)] == [3, 4]
    no_auditor = runner.invoke(app, ["audit", "verify"])  # the app role sees no tenant without --tenant
    assert no_auditor.exit_code == 2 and "CHIMERA_AUDIT_DATABASE_URL" in no_auditor.output


def test_twenty_concurrent_writers_leave_one_unbroken_chain(pg: PgDatabase) -> None:  # noqa: F811
    """20 writers, each with its own store (own connections), mixing commits, reviews-free audit notes,
    reservations and control changes: one chain, no fork, no gap."""
    stores = [StateStore(pg.app_url, pool_size=2) for _ in range(20)]
    try:
        stores[0].ensure_campaign(make_spec())

        def writer(w: int) -> None:
            s = stores[w]
            for i in range(10):
                s.append_audit(TENANT, f"w{w}", "note", f"w{w}/{i}", {"w": w, "i": i})
                if i % 3 == 0:
                    s.commit(ref(f"w{w}-{i}"), [], [f"key-{w}-{i}"], {"w": w}, "worker")
                if i % 5 == 0:
                    s.set_goals(TENANT, "launch", [f"goal {w}-{i}"], actor=f"w{w}")

        run_threads(20, writer)
        entries = stores[0].audit_entries(TENANT, limit=10_000)
        expected = 1 + 20 * (10 + 4 + 2)
        assert [e.seq for e in entries] == list(range(1, expected + 1))
        assert len({e.prev_hash for e in entries}) == expected  # no two entries share a parent: no fork
        check = stores[0].verify_audit(TENANT)
        assert check.ok and check.entries == expected, check.problem
    finally:
        for s in stores:
            s.close()
