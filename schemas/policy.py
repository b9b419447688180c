"""Judge policy: the confidence formula and the decision bands (seed sections 1.2 and 2.2).

Pure functions, so the workflow applies them deterministically and tests pin them down.
"""

from __future__ import annotations

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


class JudgeScores(BaseModel):
    """What the judge activity measured; the decision is taken from it by `decide`."""

    model_config = ConfigDict(frozen=True)

    components: ConfidenceComponents
    flags: list[SafetyFlag] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    author: Authorship | None = Field(None, description="the model that wrote the draft")


class Verdict(BaseModel):
    decision: Decision
    confidence: float
    components: ConfidenceComponents
    flags: list[SafetyFlag]
    reasons: list[str]
    author: Authorship | None = Field(None, description="the model that wrote the draft (absent: recorded before)")

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
    """Approve, escalate or reject by the bands; a high-risk flag always rejects."""
    score = confidence(scores.components, policy.weights)
    high = [f for f in scores.flags if f.severity == "high"]
    low = [f for f in scores.flags if f.severity == "low"]
    reasons = list(scores.reasons)
    decision: Decision
    if high:
        decision = "reject"
        reasons.append("high-risk safety flag: " + "; ".join(f"{f.rule} ({f.detail})" for f in high))
    elif score < policy.bands.escalate_at:
        decision = "reject"
        reasons.append(f"confidence {score:.2f} is below {policy.bands.escalate_at:.2f}")
    elif low:
        decision = "escalate"
        reasons.append("low-risk safety flag: " + "; ".join(f"{f.rule} ({f.detail})" for f in low))
    elif score < policy.bands.approve_at:
        decision = "escalate"
        reasons.append(
            f"confidence {score:.2f} is between {policy.bands.escalate_at:.2f} and {policy.bands.approve_at:.2f}"
        )
    else:
        decision = "approve"
        reasons.append(f"confidence {score:.2f} with no safety flag")
    return Verdict(
        decision=decision,
        confidence=score,
        components=scores.components,
        flags=list(scores.flags),
        reasons=reasons,
        author=scores.author,
    )
