"""Learning feedback, the pure part: `calibrate` (counts -> band shifts), `calibrated_bands` and `decide` with a
calibration (schemas/policy.py; specs/judge.md "Learning feedback")."""

from __future__ import annotations

import itertools
import json

import pytest
from pydantic import ValidationError

from schemas.policy import (
    FEEDBACK_MAX_SHIFT,
    FEEDBACK_MIN_GAP,
    FEEDBACK_MIN_REVIEWS,
    BandCalibration,
    ConfidenceBands,
    ConfidenceComponents,
    JudgePolicy,
    JudgeScores,
    SafetyFlag,
    Severity,
    Verdict,
    calibrate,
    calibrated_bands,
    decide,
)


def scores(value: float, *flags: SafetyFlag, calibration: BandCalibration | None = None) -> JudgeScores:
    """Scores whose confidence is `value` under the default weights (every component the same)."""
    c = ConfidenceComponents(model_probability=value, persona_similarity=value, safety=value, historical_success=value)
    return JudgeScores(components=c, flags=list(flags), reasons=["measured"], calibration=calibration)


def flag(severity: Severity) -> SafetyFlag:
    return SafetyFlag(rule=f"{severity}-rule", severity=severity, where="output", detail="x")


# ---- calibrate: counts -> shifts ---------------------------------------------------------------------------


def test_below_the_minimum_nothing_moves_however_one_sided() -> None:
    for n in range(FEEDBACK_MIN_REVIEWS):
        for cal in (calibrate("reply", n, 0, 0), calibrate("reply", 0, 0, n)):
            assert (cal.approve_shift, cal.escalate_shift) == (0.0, 0.0), n
            assert not cal.shifted and "20 needed" in cal.reason
    assert calibrate("reply", FEEDBACK_MIN_REVIEWS, 0, 0).approve_shift < 0  # at the minimum it does


def test_approvals_lower_approve_at_by_a_bounded_step() -> None:
    cal = calibrate("reply", 23, 0, 1)  # agreement 0.958
    assert (cal.approve_shift, cal.escalate_shift) == (-0.03, 0.0)
    assert (cal.reviews, cal.approved, cal.edited, cal.rejected) == (24, 23, 0, 1)
    assert "approve_at -0.03" in cal.reason and "23 approved" in cal.reason
    assert calibrate("reply", 50, 0, 0).approve_shift == -FEEDBACK_MAX_SHIFT  # full agreement: the bound, no more
    assert calibrate("reply", 18, 0, 2).approve_shift == 0.0  # agreement 0.90 exactly: the edge, zero steps


def test_rejections_raise_approve_at_then_escalate_at_never_more_than_approve_at() -> None:
    some = calibrate("post", 8, 0, 12)  # agreement 0.40
    assert (some.approve_shift, some.escalate_shift) == (0.01, 0.0)
    most = calibrate("post", 2, 0, 18)  # agreement 0.10
    assert most.approve_shift == 0.04 and most.escalate_shift == 0.03
    every = calibrate("post", 0, 0, 30)
    assert (every.approve_shift, every.escalate_shift) == (FEEDBACK_MAX_SHIFT, FEEDBACK_MAX_SHIFT)


def test_edits_are_partial_disagreement() -> None:
    assert calibrate("reply", 20, 0, 0).approve_shift == -0.05
    assert calibrate("reply", 0, 20, 0).approve_shift == 0.0  # agreement 0.5: neither lowered nor raised
    assert calibrate("reply", 18, 2, 0).approve_shift == -0.03  # agreement 0.95: less than 20 approvals
    assert calibrate("reply", 16, 4, 0).approve_shift == 0.0  # 0.90: 4 edits are 2 disagreements
    assert calibrate("reply", 10, 10, 0).approve_shift == 0.0  # 0.75: in the dead zone
    assert calibrate("reply", 0, 10, 10).approve_shift == 0.03  # 0.25: raised, less than 10 rejections of 20 alone


def test_the_middle_moves_nothing() -> None:
    cal = calibrate("reply", 15, 3, 6)
    assert not cal.shifted and "bands unchanged" in cal.reason


def test_every_count_stays_within_the_bounds() -> None:
    for a, e, r in itertools.product(range(0, 31, 3), range(0, 31, 5), range(0, 31, 3)):
        cal = calibrate("reply", a, e, r)
        assert -FEEDBACK_MAX_SHIFT <= cal.approve_shift <= FEEDBACK_MAX_SHIFT
        assert 0.0 <= cal.escalate_shift <= max(cal.approve_shift, 0.0)
        assert round(cal.approve_shift * 100, 6).is_integer() and round(cal.escalate_shift * 100, 6).is_integer()


def test_a_calibration_out_of_bounds_is_refused() -> None:
    with pytest.raises(ValidationError):
        BandCalibration(task_type="reply", approve_shift=-0.2, reviews=0)
    with pytest.raises(ValidationError):
        BandCalibration(task_type="reply", approve_shift=0.01, escalate_shift=0.03)  # escalate past approve
    with pytest.raises(ValidationError):
        BandCalibration(task_type="reply", reviews=3, approved=1)  # counts that do not add up


# ---- calibrated_bands: floors and the gap --------------------------------------------------------------------


def test_bands_move_by_the_shifts_and_keep_their_order() -> None:
    default = ConfidenceBands()
    assert calibrated_bands(default, calibrate("reply", 23, 0, 1)) == ConfidenceBands(approve_at=0.87, escalate_at=0.7)
    assert calibrated_bands(default, calibrate("reply", 0, 0, 30)) == ConfidenceBands(approve_at=0.95, escalate_at=0.75)
    for approve, escalate in [(0.9, 0.7), (0.78, 0.75), (0.72, 0.7), (1.0, 0.97), (0.99, 0.0), (0.5, 0.49)]:
        bands = ConfidenceBands(approve_at=approve, escalate_at=escalate)
        gap = min(FEEDBACK_MIN_GAP, approve - escalate)
        for a, e, r in [(30, 0, 0), (0, 0, 30), (2, 0, 18), (23, 0, 1), (10, 0, 10)]:
            moved = calibrated_bands(bands, calibrate("reply", a, e, r))
            assert moved.escalate_at < moved.approve_at <= 1.0
            assert moved.approve_at - moved.escalate_at >= gap - 1e-9, (bands, moved)
            assert approve - FEEDBACK_MAX_SHIFT - 1e-9 <= moved.approve_at <= approve + FEEDBACK_MAX_SHIFT + 1e-9
            assert escalate <= moved.escalate_at <= escalate + FEEDBACK_MAX_SHIFT + 1e-9


def test_a_narrow_campaign_band_is_not_inverted() -> None:
    narrow = ConfidenceBands(approve_at=0.78, escalate_at=0.75)
    assert calibrated_bands(narrow, calibrate("reply", 30, 0, 0)) == narrow  # no room below: unchanged


# ---- decide with a calibration ---------------------------------------------------------------------------------


def test_lowered_approve_at_approves_and_says_so() -> None:
    cal = calibrate("reply", 23, 0, 1)
    plain = decide(scores(0.88), JudgePolicy())
    fed = decide(scores(0.88, calibration=cal), JudgePolicy())
    assert plain.decision == "escalate" and fed.decision == "approve"
    assert fed.uncalibrated_decision == "escalate"
    assert "feedback: approve_at 0.90 -> 0.87 for reply after 24 reviews (23 approved, 0 edited, 1 rejected)" in (
        fed.reasons
    )
    assert any("feedback changed the decision: escalate" in r for r in fed.reasons)
    assert fed.reasons[-1] == "confidence 0.88 with no safety flag"  # the decision's own reason stays last
    assert fed.calibration is not None
    assert fed.calibration.bands_before == ConfidenceBands()
    assert fed.calibration.bands_after == ConfidenceBands(approve_at=0.87, escalate_at=0.7)


def test_a_calibration_that_does_not_change_the_decision_says_only_what_it_moved() -> None:
    fed = decide(scores(0.95, calibration=calibrate("reply", 23, 0, 1)), JudgePolicy())
    assert fed.decision == "approve" and fed.uncalibrated_decision is None
    assert not any("changed the decision" in r for r in fed.reasons)
    quiet = decide(scores(0.8, calibration=calibrate("reply", 3, 0, 0)), JudgePolicy())
    assert quiet.decision == "escalate"
    assert any(r.startswith("feedback: bands unchanged for reply") for r in quiet.reasons)


def test_raised_bands_escalate_and_reject_more() -> None:
    cal = calibrate("post", 0, 0, 30)  # 0.95 / 0.75
    assert decide(scores(0.92, calibration=cal), JudgePolicy()).decision == "escalate"
    rejected = decide(scores(0.72, calibration=cal), JudgePolicy())
    assert rejected.decision == "reject" and rejected.uncalibrated_decision == "escalate"
    assert rejected.reasons[-1] == "confidence 0.72 is below 0.75"  # what the planner re-plans with


def test_feedback_never_overrides_a_safety_flag() -> None:
    lowered = calibrate("reply", 50, 0, 0)
    for value in (0.86, 0.9, 1.0):
        high = decide(scores(value, flag("high"), calibration=lowered), JudgePolicy())
        assert high.decision == "reject" and high.uncalibrated_decision is None
        assert high.reasons[-1].startswith("high-risk safety flag")
        assert decide(scores(value, flag("low"), calibration=lowered), JudgePolicy()).decision == "escalate"


def test_without_a_calibration_the_verdict_is_what_it_always_was() -> None:
    """Recorded workflow histories replay decide on scores without a calibration: nothing may differ."""
    for value in (0.5, 0.7, 0.85, 0.9, 1.0):
        verdict = decide(scores(value), JudgePolicy())
        assert verdict.calibration is None and verdict.uncalibrated_decision is None
        assert not any("feedback" in r for r in verdict.reasons)
    # Payloads recorded before the fields existed still load, with the fields absent.
    old = {"components": scores(0.8).components.model_dump(), "flags": [], "reasons": ["r"], "author": None}
    assert JudgeScores.model_validate_json(json.dumps(old)).calibration is None
    recorded = {**old, "decision": "escalate", "confidence": 0.8}
    assert Verdict.model_validate(recorded).calibration is None
