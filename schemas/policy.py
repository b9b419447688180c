"""Judge policy: the confidence formula and the decision bands (seed sections 1.2 and 2.2).

Pure functions, so the workflow applies them deterministically and tests pin them down.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.models import Authorship

Decision = Literal["approve", "escalate", "reject"]
Severity = Literal["low", "high"]


class ConfidenceWeights(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_probability: float = Field(0.4, ge=0, le=1)
    persona_similarity: float = Field(0.3, ge=0, le=1)
    safety: float = Field(0.2, ge=0, le=1)
    historical_success: float = Field(0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> ConfidenceWeights:
        total = self.model_probability + self.persona_similarity + self.safety + self.historical_success
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"confidence weights must sum to 1.0, not {total:.4f}")
        return self


class ConfidenceBands(BaseModel):
    model_config = ConfigDict(frozen=True)

    approve_at: float = Field(0.90, gt=0, le=1, description="at or above: auto-approve")
    escalate_at: float = Field(0.70, ge=0, lt=1, description="at or above (below approve_at): human review")

    @model_validator(mode="after")
    def _ordered(self) -> ConfidenceBands:
        if self.escalate_at >= self.approve_at:
            raise ValueError("escalate_at must be below approve_at")
        return self


class JudgePolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    weights: ConfidenceWeights = ConfidenceWeights()
    bands: ConfidenceBands = ConfidenceBands()


class ContentPolicy(BaseModel):
    """What a campaign's posts may contain beyond words: links to these domains (and their subdomains), and,
    only when declared, payment requests, wallet addresses and giveaways. Everything else of the kind is a
    high-risk flag (chimera/safety/checks.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_domains: list[str] = Field(default_factory=list, description="e.g. ['mira.example', 'shop.example']")
    payments: bool = Field(False, description="the campaign asks for payments or names wallets on purpose")
    giveaways: bool = Field(False, description="the campaign runs giveaways on purpose")

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, domains: list[str]) -> list[str]:
        cleaned = [d.strip().lower().removeprefix("www.").strip(".") for d in domains]
        bad = [d for d in cleaned if not d or "/" in d or " " in d or "." not in d]
        if bad:
            raise ValueError(f"allowed_domains must be bare domains like 'example.com', not {bad}")
        return cleaned


class SafetyFlag(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    severity: Severity
    where: Literal["input", "output"]
    detail: str


class ConfidenceComponents(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_probability: float = Field(ge=0, le=1)
    persona_similarity: float = Field(ge=0, le=1)
    safety: float = Field(ge=0, le=1)
    historical_success: float = Field(ge=0, le=1)


# ---- learning feedback: reviewers' decisions calibrate the bands, per agent and task type (specs/judge.md) ----
# Only drafts escalated on confidence alone count: a flagged draft's review speaks of its flag, not of the bands
# (and a high-risk flag rejects whatever the bands say). An edit is half an approval: the reviewer published the
# draft, but not as written.
FEEDBACK_WINDOW = 50  # the most recent human decisions on an agent's task type that count
FEEDBACK_MIN_REVIEWS = 20  # fewer decisions than this move no band
FEEDBACK_EDIT_WEIGHT = 0.5  # how much of an approval an edit is
FEEDBACK_LOWER_AT = 0.90  # agreement at or above this lowers approve_at (up to the bound, at full agreement)
FEEDBACK_RAISE_AT = 0.50  # agreement at or below this raises approve_at (up to the bound, at no agreement)
FEEDBACK_RAISE_ESCALATE_AT = 0.25  # agreement at or below this raises escalate_at too
FEEDBACK_MAX_SHIFT = 0.05  # no band moves further than this from the campaign's
FEEDBACK_STEP = 0.01  # shifts are whole steps, so one more review rarely moves a band (or writes an audit entry)
FEEDBACK_MIN_GAP = 0.05  # a calibrated approve_at stays this far above escalate_at (the campaign's gap if smaller)


class BandCalibration(BaseModel):
    """What reviewers' decisions on one agent's escalated drafts of one task type did to the bands.

    Made by `calibrate` from the counts, kept by the state store, handed to `decide` in JudgeScores. `decide`
    fills in `bands_before` and `bands_after` (the campaign's bands, and the ones it judged by) in the verdict's
    copy."""

    model_config = ConfigDict(frozen=True)

    task_type: str
    approve_shift: float = Field(0.0, ge=-FEEDBACK_MAX_SHIFT, le=FEEDBACK_MAX_SHIFT)
    escalate_shift: float = Field(0.0, ge=0.0, le=FEEDBACK_MAX_SHIFT)
    reviews: int = Field(0, ge=0, description="human decisions counted: approved + edited + rejected")
    approved: int = Field(0, ge=0, description="approved as written")
    edited: int = Field(0, ge=0)
    rejected: int = Field(0, ge=0)
    reason: str = ""
    bands_before: ConfidenceBands | None = Field(None, description="the campaign's bands (set by decide)")
    bands_after: ConfidenceBands | None = Field(None, description="the bands the verdict used (set by decide)")

    @model_validator(mode="after")
    def _counted(self) -> BandCalibration:
        if self.reviews != self.approved + self.edited + self.rejected:
            raise ValueError("reviews must be approved + edited + rejected")
        if self.escalate_shift > max(self.approve_shift, 0.0):
            raise ValueError("escalate_at may rise only as far as approve_at does")
        return self

    @property
    def shifted(self) -> bool:
        return self.approve_shift != 0.0 or self.escalate_shift != 0.0

    @property
    def counts(self) -> str:
        return f"{self.approved} approved, {self.edited} edited, {self.rejected} rejected"


def _steps(fraction: float) -> float:
    """A shift of `fraction` of FEEDBACK_MAX_SHIFT (0..1), in whole FEEDBACK_STEPs, rounded half up."""
    steps = math.floor(min(max(fraction, 0.0), 1.0) * (FEEDBACK_MAX_SHIFT / FEEDBACK_STEP) + 0.5 + 1e-9)
    return round(steps * FEEDBACK_STEP, 4)


def calibrate(task_type: str, approved: int, edited: int, rejected: int) -> BandCalibration:
    """The band shifts that reviewers' recent decisions on confidence-only escalations call for.

    agreement = (approved + FEEDBACK_EDIT_WEIGHT * edited) / reviews. At FEEDBACK_LOWER_AT or above, approve_at
    falls, linearly up to FEEDBACK_MAX_SHIFT at full agreement; at FEEDBACK_RAISE_AT or below it rises, up to the
    bound at none; at FEEDBACK_RAISE_ESCALATE_AT or below escalate_at rises too (never more than approve_at).
    Below FEEDBACK_MIN_REVIEWS decisions nothing moves."""
    reviews = approved + edited + rejected
    fields = {"task_type": task_type, "reviews": reviews, "approved": approved, "edited": edited, "rejected": rejected}
    if reviews < FEEDBACK_MIN_REVIEWS:
        noun = "escalation" if reviews == 1 else "escalations"
        reason = f"{reviews} reviewed {noun}, {FEEDBACK_MIN_REVIEWS} needed before feedback moves the bands"
        return BandCalibration(**fields, reason=reason)
    agreement = (approved + FEEDBACK_EDIT_WEIGHT * edited) / reviews
    of = f"reviewers' agreement {agreement:.2f} over the last {reviews} escalations ({approved} approved, "
    of += f"{edited} edited, {rejected} rejected)"
    approve_shift = escalate_shift = 0.0
    if agreement >= FEEDBACK_LOWER_AT:
        approve_shift = -_steps((agreement - FEEDBACK_LOWER_AT) / (1.0 - FEEDBACK_LOWER_AT)) or 0.0  # not -0.0
    elif agreement <= FEEDBACK_RAISE_AT:
        approve_shift = _steps((FEEDBACK_RAISE_AT - agreement) / FEEDBACK_RAISE_AT)
        if agreement <= FEEDBACK_RAISE_ESCALATE_AT:
            escalate_shift = _steps((FEEDBACK_RAISE_ESCALATE_AT - agreement) / FEEDBACK_RAISE_ESCALATE_AT)
    moves = [f"approve_at {approve_shift:+.2f}"] if approve_shift else []
    moves += [f"escalate_at {escalate_shift:+.2f}"] if escalate_shift else []
    if moves:
        reason = f"{of}: {', '.join(moves)}"
    else:
        limits = f"{FEEDBACK_LOWER_AT:.2f} or more, {FEEDBACK_RAISE_AT:.2f} or less"
        reason = f"{of}: bands unchanged (they move at an agreement of {limits})"
    return BandCalibration(**fields, approve_shift=approve_shift, escalate_shift=escalate_shift, reason=reason)


def calibrated_bands(bands: ConfidenceBands, calibration: BandCalibration) -> ConfidenceBands:
    """The campaign's bands moved by the calibration, within FEEDBACK_MAX_SHIFT, escalate_at below approve_at by
    FEEDBACK_MIN_GAP (or the campaign's own gap when that is smaller), approve_at at most 1."""
    gap = min(FEEDBACK_MIN_GAP, bands.approve_at - bands.escalate_at)
    escalate = bands.escalate_at + calibration.escalate_shift
    approve = min(1.0, max(bands.approve_at + calibration.approve_shift, escalate + gap))
    escalate = min(escalate, approve - gap)
    approve, escalate = round(approve, 4), round(escalate, 4)
    if not bands.escalate_at <= escalate < approve:  # rounding ate a tiny gap: keep the campaign's bands
        return bands
    return ConfidenceBands(approve_at=approve, escalate_at=escalate)


class JudgeScores(BaseModel):
    """What the judge activity measured; the decision is taken from it by `decide`."""

    model_config = ConfigDict(frozen=True)

    components: ConfidenceComponents
    flags: list[SafetyFlag] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    author: Authorship | None = Field(None, description="the model that wrote the draft")
    calibration: BandCalibration | None = Field(
        None, description="reviewers' feedback on the agent's task type (absent: none yet, or judged before it)"
    )


class Verdict(BaseModel):
    decision: Decision
    confidence: float
    components: ConfidenceComponents
    flags: list[SafetyFlag]
    reasons: list[str]
    author: Authorship | None = Field(None, description="the model that wrote the draft (absent: recorded before)")
    calibration: BandCalibration | None = Field(
        None, description="the reviewers' feedback the bands were calibrated with (absent: none, or recorded before)"
    )
    uncalibrated_decision: Decision | None = Field(
        None, description="what the campaign's bands alone would have decided, when the feedback changed it"
    )

    @property
    def risk(self) -> float:
        """Higher is riskier: used to order the review queue."""
        high = sum(1 for f in self.flags if f.severity == "high")
        low = sum(1 for f in self.flags if f.severity == "low")
        return round(2.0 * high + 1.0 * low + (1.0 - self.confidence), 4)


def confidence(components: ConfidenceComponents, weights: ConfidenceWeights) -> float:
    value = (
        weights.model_probability * components.model_probability
        + weights.persona_similarity * components.persona_similarity
        + weights.safety * components.safety
        + weights.historical_success * components.historical_success
    )
    return round(value, 4)


def decide(scores: JudgeScores, policy: JudgePolicy) -> Verdict:
    """Approve, escalate or reject by the bands (calibrated by reviewers' feedback, when the scores carry it);
    a high-risk flag always rejects, a low-risk one never approves. The decision's own reason comes last."""
    score = confidence(scores.components, policy.weights)
    high = [f for f in scores.flags if f.severity == "high"]
    low = [f for f in scores.flags if f.severity == "low"]
    reasons = list(scores.reasons)
    calibration, uncalibrated = scores.calibration, None
    bands = policy.bands
    if calibration is not None:
        bands = calibrated_bands(policy.bands, calibration)
        calibration = calibration.model_copy(update={"bands_before": policy.bands, "bands_after": bands})
        reasons.append(_feedback_reason(calibration, policy.bands, bands))
    decision, why = _by_bands(score, high, low, bands)
    if calibration is not None:
        base, _ = _by_bands(score, high, low, policy.bands)
        if base != decision:
            uncalibrated = base
            reasons.append(f"feedback changed the decision: {base} by the campaign's bands, {decision} calibrated")
    reasons.append(why)
    return Verdict(
        decision=decision,
        confidence=score,
        components=scores.components,
        flags=list(scores.flags),
        reasons=reasons,
        author=scores.author,
        calibration=calibration,
        uncalibrated_decision=uncalibrated,
    )


def _by_bands(
    score: float, high: list[SafetyFlag], low: list[SafetyFlag], bands: ConfidenceBands
) -> tuple[Decision, str]:
    if high:
        return "reject", "high-risk safety flag: " + "; ".join(f"{f.rule} ({f.detail})" for f in high)
    if score < bands.escalate_at:
        return "reject", f"confidence {score:.2f} is below {bands.escalate_at:.2f}"
    if low:
        return "escalate", "low-risk safety flag: " + "; ".join(f"{f.rule} ({f.detail})" for f in low)
    if score < bands.approve_at:
        return "escalate", f"confidence {score:.2f} is between {bands.escalate_at:.2f} and {bands.approve_at:.2f}"
    return "approve", f"confidence {score:.2f} with no safety flag"


def _feedback_reason(calibration: BandCalibration, before: ConfidenceBands, after: ConfidenceBands) -> str:
    """e.g. "feedback: approve_at 0.90 -> 0.87 for reply after 24 reviews (23 approved, 0 edited, 1 rejected)"."""
    moves = [
        f"{name} {old:.2f} -> {new:.2f}"
        for name, old, new in (
            ("approve_at", before.approve_at, after.approve_at),
            ("escalate_at", before.escalate_at, after.escalate_at),
        )
        if old != new
    ]
    if moves:
        return (
            f"feedback: {', '.join(moves)} for {calibration.task_type} after {calibration.reviews} reviews "
            f"({calibration.counts})"
        )
    return f"feedback: bands unchanged for {calibration.task_type}: {calibration.reason}"
