"""Which model does what (tiers), what a call costs (prices), and what a call reported (cost lines).

A tier is a kind of work with its own model choice: planning, post writing, reply writing, safety
judging, vision. Each tier names a primary model and a fallback on the other vendor; a campaign file
may override any field of any tier. Prices carry the date they take effect, so a price change
never re-prices past spend. See specs/models.md.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TierName = Literal["planning", "post", "reply", "judging", "vision"]
TIER_NAMES: tuple[TierName, ...] = ("planning", "post", "reply", "judging", "vision")
ProviderName = Literal["anthropic", "gemini"]
Effort = Literal["low", "medium", "high"]
# Where a draft's model_probability came from (the verdict names it).
ProbabilitySource = Literal["logprobs", "self_assessment", "offline_template"]


class ModelChoice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: ProviderName
    model: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


class TierSettings(BaseModel):
    """One tier: its models, its limits, and how long a call may take."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary: ModelChoice
    fallback: ModelChoice | None = Field(None, description="runs when the primary is unavailable after its attempts")
    max_tokens: int = Field(1024, ge=16, le=65536)
    temperature: float | None = Field(None, ge=0, le=2, description="unset: the model's default")
    effort: Effort | None = Field(None, description="Anthropic output_config.effort / Gemini thinking_level")
    logprobs: bool = Field(False, description="ask for token log-probabilities (Gemini models that offer them)")
    timeout_seconds: float = Field(60.0, gt=0, le=600)
    primary_attempts: int = Field(
        2, ge=1, description="activity attempts on the primary before the fallback takes over (when unavailable)"
    )

    @model_validator(mode="after")
    def _fallback_elsewhere(self) -> TierSettings:
        if self.fallback is not None and self.fallback.provider == self.primary.provider:
            raise ValueError(f"the fallback must be on the other provider than {self.primary.provider}")
        return self


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class ModelTiers(BaseModel):
    """Every tier's settings. Partial overrides (from the environment or a campaign file) merge field by field
    into the defaults, so `post.primary.model` alone changes only that."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    planning: TierSettings
    post: TierSettings
    reply: TierSettings
    judging: TierSettings
    vision: TierSettings

    def tier(self, name: TierName) -> TierSettings:
        tier: TierSettings = getattr(self, name)
        return tier

    def merged(self, overrides: dict[str, Any]) -> ModelTiers:
        """These tiers with `overrides` (tier -> partial settings) merged in; raises ValueError naming the field."""
        unknown = sorted(set(overrides) - set(TIER_NAMES))
        if unknown:
            raise ValueError(f"unknown model tier(s) {unknown}: the tiers are {list(TIER_NAMES)}")
        return ModelTiers.model_validate(_merge(self.model_dump(), overrides))


class ModelPrice(BaseModel):
    """A model's list price per million tokens, from `effective_from` until a later entry replaces it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: ProviderName
    model: str
    effective_from: date
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0, description="cache reads; default: input price")
    cache_write_per_mtok: float | None = Field(None, ge=0, description="cache writes; default: input price")
    source: str = Field("", description="where the figure comes from (the vendor's pricing page)")


class TokenUsage(BaseModel):
    """What one model call used, as the provider reported it. Cached and cache-write tokens are counted
    apart from (not inside) `input_tokens`, so each is priced once."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0, description="including thinking tokens: they are billed as output")
    cached_input_tokens: int = Field(0, ge=0)
    cache_write_tokens: int = Field(0, ge=0)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


PriceBasis = Literal["price_table", "seed_estimate", "tool_reported"]


class CostLine(BaseModel):
    """One priced call: a model call, or a paid tool call. The spend ledger keeps each once, by its key."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(min_length=1, description="unique per call: task or plan id, attempt and call number")
    kind: Literal["model", "tool"] = "model"
    tier: str = Field(description="the model tier, or server.tool for a paid tool")
    provider: str
    model: str
    tokens: TokenUsage = TokenUsage()
    cost_usd: float = Field(0.0, ge=0)
    estimated: bool = Field(False, description="a list price for a call no live service billed (offline, sandbox)")
    basis: PriceBasis = "price_table"
    price_date: date | None = Field(None, description="effective date of the price applied")
    transcript_ref: str | None = Field(None, description="the kept prompt and response, by key")


class Authorship(BaseModel):
    """Which model wrote a draft, and where its model_probability came from."""

    model_config = ConfigDict(frozen=True)

    tier: str
    provider: str
    model: str
    fallback: bool = Field(False, description="the tier's fallback wrote it: the primary was unavailable")
    probability_source: ProbabilitySource = "offline_template"

    def describe(self) -> str:
        via = " (fallback)" if self.fallback else ""
        return f"{self.provider}:{self.model}{via}"
