"""Learning feedback in the state store (band_calibrations): recomputed with each human decision, audited when its
shifts change, per tenant, agent and task type. tests/integration/test_calibration_postgres.py reruns these on
PostgreSQL (as the application role, under row-level security)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import ActivityEnvironment

from activities.judging import JudgeActivities
from chimera.db import StateStore
from chimera.persona_similarity import EmbeddingPersonaSimilarity
from chimera.safety.rules import SafetyRules
from schemas.plan import Mention, PlannedTask, Usage
from schemas.policy import (
    FEEDBACK_MIN_REVIEWS,
    FEEDBACK_WINDOW,
    ConfidenceComponents,
    JudgePolicy,
    JudgeScores,
    SafetyFlag,
    decide,
)
from schemas.task import JudgeInput, TaskResult
from tests.unit.test_store import (  # noqa: F401  # fixtures, used by name
    AGENT,
    TENANT,
    FakeClock,
    make_spec,
    make_store,
    ref,
    review,
    store_url,
    verdict,
)

START = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
SIMILARITY = EmbeddingPersonaSimilarity.default()
MENTION = Mention(id="m-9", platform="twitter", author="@ana", text="love the patches!", created_at="")


class TickingClock(FakeClock):
    """Each reading a second later, so decisions have distinct decided_at and the window is well ordered."""

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def store(make_store: Callable[..., StateStore]) -> StateStore:  # noqa: F811
    s = make_store(TickingClock(START))
    s.ensure_campaign(make_spec())
    s.ensure_campaign(make_spec(tenant="other"))
    return s


def decide_reviews(
    store: StateStore, states: list[str], *, prefix: str = "t", task_type: str = "reply", tenant: str = TENANT, **extra
) -> None:
    """Escalate, then decide, one review per state (oldest first)."""
    for n, state in enumerate(states):
        task = f"{tenant}.{prefix}{n}"
        store.record_review(review(task, tenant_id=tenant, task_type=task_type, **extra))
        decided = {"reviewer": "rita", "reason": "no" if state == "rejected" else None}
        if state == "edited":
            decided["edited_text"] = "better"
        store.record_review(review(task, tenant_id=tenant, task_type=task_type, state=state, **decided, **extra))


def calibrations(store: StateStore, tenant: str = TENANT) -> list[dict[str, object]]:
    return [e.detail for e in store.audit_entries(tenant, limit=1000) if e.action == "judge.calibration"]


def test_nothing_until_a_human_decides(store: StateStore) -> None:
    assert store.band_calibration(TENANT, AGENT, "reply") is None
    store.record_review(review("t-pending", task_type="reply"))
    assert store.band_calibration(TENANT, AGENT, "reply") is None
    store.record_review(review("t-pending", task_type="reply", state="expired"))  # no human: says nothing
    assert store.band_calibration(TENANT, AGENT, "reply") is None


def test_below_the_minimum_counts_are_kept_and_nothing_moves(store: StateStore) -> None:
    decide_reviews(store, ["approved"] * (FEEDBACK_MIN_REVIEWS - 1))
    cal = store.band_calibration(TENANT, AGENT, "reply")
    assert cal is not None and (cal.reviews, cal.approved) == (FEEDBACK_MIN_REVIEWS - 1, FEEDBACK_MIN_REVIEWS - 1)
    assert not cal.shifted and "20 needed" in cal.reason
    assert calibrations(store) == []  # nothing changed: nothing audited


def test_approvals_lower_approve_at_audited_once_per_change(store: StateStore) -> None:
    decide_reviews(store, ["rejected"] + ["approved"] * 23)  # 24 decisions, 23 approved
    cal = store.band_calibration(TENANT, AGENT, "reply")
    assert cal is not None and (cal.approve_shift, cal.escalate_shift) == (-0.03, 0.0)
    assert (cal.reviews, cal.approved, cal.edited, cal.rejected) == (24, 23, 0, 1)
    entries = calibrations(store)
    # 20 decisions (19 approved): -0.03 (0.95); 21: -0.03 (0.952); ... ; 24: -0.03. One change, one entry, then
    # the agreement rises past 0.97 only with more approvals.
    assert [(e["from"], e["to"]) for e in entries] == [
        ({"approve_shift": 0.0, "escalate_shift": 0.0}, {"approve_shift": -0.03, "escalate_shift": 0.0})
    ]
    first = entries[0]
    assert (first["agent_id"], first["task_type"], first["reviews"], first["approved"]) == (AGENT, "reply", 20, 19)
    assert first["reviewer"] == "rita" and str(first["after_review"]).startswith("task/")
    # 50 decisions, 49 approved: 0.98 is 4 steps (-0.04, from the 34th); the 51st pushes the rejection out of the
    # window: 50 of 50, the bound.
    decide_reviews(store, ["approved"] * 27, prefix="u")
    last = store.band_calibration(TENANT, AGENT, "reply")
    assert last is not None and last.approve_shift == -0.05
    assert (last.reviews, last.rejected) == (FEEDBACK_WINDOW, 0)
    assert [e["to"]["approve_shift"] for e in calibrations(store)] == [-0.03, -0.04, -0.05]  # type: ignore[index]
    assert store.verify_audit(TENANT).ok


def test_the_store_feeds_decide(store: StateStore) -> None:
    """What the judge activity hands to decide: the stored calibration in the scores."""
    decide_reviews(store, ["rejected"] + ["approved"] * 23)
    parts = ConfidenceComponents(model_probability=0.88, persona_similarity=0.88, safety=0.88, historical_success=0.88)
    cal = store.band_calibration(TENANT, AGENT, "reply")
    fed = decide(JudgeScores(components=parts, calibration=cal), JudgePolicy())
    assert fed.decision == "approve" and fed.uncalibrated_decision == "escalate"
    store.record_verdict(ref("v1"), "reply", fed)
    entry = store.audit_entries(TENANT, limit=1)[0]
    assert entry.action == "judge.verdict"
    assert entry.detail["feedback"] == {
        "approve_shift": -0.03,
        "escalate_shift": 0.0,
        "reviews": 24,
        "bands": {"approve_at": 0.87, "escalate_at": 0.7},
        "uncalibrated_decision": "escalate",
    }
    assert store.verify_audit(TENANT).ok


def test_rejections_and_edits_raise_the_bands(store: StateStore) -> None:
    decide_reviews(store, ["rejected"] * 16 + ["edited"] * 4)  # agreement 0.1
    cal = store.band_calibration(TENANT, AGENT, "reply")
    assert cal is not None and (cal.approve_shift, cal.escalate_shift) == (0.04, 0.03)
    assert (cal.edited, cal.rejected) == (4, 16)


def test_only_the_recent_window_counts(store: StateStore) -> None:
    decide_reviews(store, ["rejected"] * FEEDBACK_WINDOW, prefix="old")
    raised = store.band_calibration(TENANT, AGENT, "reply")
    assert raised is not None and raised.approve_shift == 0.05
    decide_reviews(store, ["approved"] * FEEDBACK_WINDOW, prefix="new")  # the old rejections leave the window
    cal = store.band_calibration(TENANT, AGENT, "reply")
    assert cal is not None and (cal.reviews, cal.approved) == (FEEDBACK_WINDOW, FEEDBACK_WINDOW)
    assert cal.approve_shift == -0.05


def test_flagged_drafts_and_replays_do_not_count(store: StateStore) -> None:
    low = SafetyFlag(rule="reply-to-hostile", severity="low", where="input", detail="hostile mention")
    decide_reviews(store, ["approved"] * 30, prefix="flagged", verdict=verdict(flags=[low]))
    assert store.band_calibration(TENANT, AGENT, "reply") is None  # a flag's review says nothing of the bands
    decide_reviews(store, ["approved"] * 5)
    decide_reviews(store, ["approved"] * 5)  # the same decisions again (a retried activity): counted once
    cal = store.band_calibration(TENANT, AGENT, "reply")
    assert cal is not None and cal.reviews == 5


def test_per_agent_task_type_and_tenant(store: StateStore) -> None:
    decide_reviews(store, ["approved"] * 20, task_type="reply")
    assert store.band_calibration(TENANT, AGENT, "post") is None
    assert store.band_calibration(TENANT, "someone-else", "reply") is None
    assert store.band_calibration("other", AGENT, "reply") is None  # the same agent id in another tenant
    decide_reviews(store, ["rejected"] * 20, task_type="reply", tenant="other")
    mine, theirs = store.band_calibration(TENANT, AGENT, "reply"), store.band_calibration("other", AGENT, "reply")
    assert mine is not None and theirs is not None
    assert (mine.approve_shift, theirs.approve_shift) == (-0.05, 0.05)
    assert [e["to"] for e in calibrations(store, "other")] == [{"approve_shift": 0.05, "escalate_shift": 0.05}]
    assert store.verify_audit(TENANT).ok and store.verify_audit("other").ok


def test_concurrent_decisions_are_all_counted(store: StateStore) -> None:
    """Reviewers deciding at once: each recompute counts the decisions committed before it, so the last one
    counts them all, and the chain stays whole."""
    from concurrent.futures import ThreadPoolExecutor

    tasks = [f"{TENANT}.c{n}" for n in range(24)]
    for task in tasks:
        store.record_review(review(task, task_type="reply"))

    def decide_one(task: str) -> None:
        state = "rejected" if task.endswith(".c0") else "approved"
        store.record_review(review(task, task_type="reply", state=state, reviewer="rita", reason="r"))

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(decide_one, tasks))
    cal = store.band_calibration(TENANT, AGENT, "reply")
    assert cal is not None and (cal.reviews, cal.approved, cal.rejected) == (24, 23, 1)
    assert cal.approve_shift == -0.03
    # How many changes there were depends on the order the decisions landed in; the last one is the answer.
    assert calibrations(store)[-1]["to"] == {"approve_shift": -0.03, "escalate_shift": 0.0}
    assert store.verify_audit(TENANT).ok


async def test_the_judge_activity_hands_the_calibration_to_decide(store: StateStore) -> None:
    decide_reviews(store, ["rejected"] + ["approved"] * 23)
    spec = make_spec()
    task = PlannedTask(key="r-9", task_type="reply", platform="twitter", brief="Thank her", mention=MENTION)
    result = TaskResult(text="Thank you, that means a lot!", platform="twitter", usage=Usage(model="offline"),
                        model_probability=0.9)  # fmt: skip
    judged = JudgeInput(
        ref=ref("r-9"), task=task, persona=spec.persona, result=result, verdict_audited_by_workflow=True
    )
    judge = JudgeActivities(store, SafetyRules.default(), SIMILARITY)
    scores = await ActivityEnvironment().run(judge.judge_result, judged)
    assert scores.calibration is not None and scores.calibration.approve_shift == -0.03
    applied = decide(scores, spec.judge).calibration
    assert applied is not None and applied.bands_after is not None and applied.bands_after.approve_at == 0.87
