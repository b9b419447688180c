"""The judge policy: the seed's confidence formula and bands (sections 1.2 and 2.2)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.policy import (
    ConfidenceBands,
    ConfidenceComponents,
    ConfidenceWeights,
    JudgePolicy,
    JudgeScores,
    SafetyFlag,
    Severity,
    confidence,
    decide,
)

POLICY = JudgePolicy()


def scores(mp: float, sim: float, safety: float, hist: float, *flags: SafetyFlag) -> JudgeScores:
    return JudgeScores(
        components=ConfidenceComponents(
            model_probability=mp, persona_similarity=sim, safety=safety, historical_success=hist
        ),
        flags=list(flags),
    )


def flag(severity: Severity) -> SafetyFlag:
    return SafetyFlag(rule=f"{severity}-rule", severity=severity, where="output", detail="matched")


def test_seed_weights_are_the_defaults() -> None:
    c = ConfidenceComponents(model_probability=1.0, persona_similarity=0.0, safety=0.0, historical_success=0.0)
    assert confidence(c, ConfidenceWeights()) == 0.4
    c = ConfidenceComponents(model_probability=0.9, persona_similarity=0.8, safety=1.0, historical_success=0.5)
    assert confidence(c, ConfidenceWeights()) == pytest.approx(0.4 * 0.9 + 0.3 * 0.8 + 0.2 * 1.0 + 0.1 * 0.5)


@pytest.mark.parametrize(
    ("components", "decision"),
    [
        ((1.0, 1.0, 1.0, 1.0), "approve"),
        ((0.9, 0.9, 0.9, 0.9), "approve"),  # exactly 0.90 approves
        ((0.9, 0.85, 1.0, 0.8), "escalate"),  # 0.895
        ((0.7, 0.7, 0.7, 0.7), "escalate"),  # exactly 0.70 escalates
        ((0.69, 0.69, 0.69, 0.69), "reject"),
        ((0.2, 0.9, 1.0, 0.9), "reject"),  # 0.64
    ],
)
def test_bands(components: tuple[float, float, float, float], decision: str) -> None:
    assert decide(scores(*components), POLICY).decision == decision


def test_a_low_risk_flag_escalates_even_a_high_confidence() -> None:
    verdict = decide(scores(1.0, 1.0, 0.75, 1.0, flag("low")), POLICY)
    assert verdict.decision == "escalate"
    assert "low-risk safety flag: low-rule (matched)" in verdict.reasons[-1]


def test_a_high_risk_flag_rejects_whatever_the_confidence() -> None:
    verdict = decide(scores(1.0, 1.0, 1.0, 1.0, flag("high")), POLICY)
    assert verdict.decision == "reject" and verdict.confidence == 1.0
    assert verdict.reasons[-1].startswith("high-risk safety flag")


def test_low_confidence_rejects_before_a_low_flag_escalates() -> None:
    assert decide(scores(0.5, 0.5, 0.75, 0.5, flag("low")), POLICY).decision == "reject"


def test_per_campaign_weights_and_bands_change_the_decision() -> None:
    strict = JudgePolicy(bands=ConfidenceBands(approve_at=0.97, escalate_at=0.8))
    assert decide(scores(0.95, 0.95, 1.0, 0.9), POLICY).decision == "approve"
    assert decide(scores(0.95, 0.95, 1.0, 0.9), strict).decision == "escalate"
    model_only = JudgePolicy(
        weights=ConfidenceWeights(model_probability=1.0, persona_similarity=0, safety=0, historical_success=0)
    )
    assert decide(scores(0.95, 0.0, 0.0, 0.0), model_only).decision == "approve"


def test_verdict_risk_orders_the_review_queue() -> None:
    mild = decide(scores(0.9, 0.85, 1.0, 0.8), POLICY)
    flagged = decide(scores(0.9, 0.85, 0.75, 0.8, flag("low")), POLICY)
    assert flagged.risk > mild.risk


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"sum to 1\.0"):
        ConfidenceWeights(model_probability=0.5, persona_similarity=0.5, safety=0.5, historical_success=0.1)
    with pytest.raises(ValidationError, match="below approve_at"):
        ConfidenceBands(approve_at=0.7, escalate_at=0.8)
