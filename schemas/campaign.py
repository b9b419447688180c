"""A campaign: who speaks, what for, where, with how much money, under which judge policy."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.memory import MemoryPolicy
from schemas.models import TierName, TierSettings
from schemas.news import NewsWatch
from schemas.payment import PaymentPolicy
from schemas.persona import Persona
from schemas.policy import ContentPolicy, JudgePolicy

Platform = Literal["twitter", "instagram"]
SLUG = r"^[a-z0-9][a-z0-9-]{1,62}$"


class CampaignSpec(BaseModel):
    """A validated campaign file with its persona resolved (see specs/campaign-file.md)."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str = Field(pattern=SLUG)
    campaign_id: str = Field(pattern=SLUG)
    name: str = Field(min_length=1)
    persona: Persona
    goals: list[str] = Field(min_length=1)
    platforms: list[Platform] = Field(min_length=1)
    daily_budget_usd: float = Field(gt=0)
    timezone: str = "UTC"
    cycle_interval_seconds: int = Field(3600, ge=1)
    review_deadline_seconds: int = Field(72 * 3600, ge=1)
    max_tasks_per_cycle: int = Field(4, ge=1, le=20)
    max_replans: int = Field(2, ge=0, le=10)
    judge: JudgePolicy = JudgePolicy()
    content: ContentPolicy = ContentPolicy()
    memory: MemoryPolicy = MemoryPolicy()
    news: NewsWatch = NewsWatch()
    payments: PaymentPolicy = PaymentPolicy()
    # Per-tier changes to the process's model tiers (specs/models.md), e.g. {"post": {"temperature": 0.9}}.
    models: dict[TierName, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _known_tier_fields(cls, models: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        # The full check (merged with the process's tiers) happens where the tiers are known; this one
        # names a misspelt field in the campaign file itself.
        fields = set(TierSettings.model_fields)
        for tier, override in models.items():
            unknown = sorted(set(override) - fields)
            if unknown:
                raise ValueError(f"models.{tier}: unknown field(s) {unknown}; known: {sorted(fields)}")
            for side in ("primary", "fallback"):
                choice = override.get(side)
                if isinstance(choice, dict) and set(choice) - {"provider", "model"}:
                    raise ValueError(f"models.{tier}.{side}: only 'provider' and 'model' can be set")
        return models

    def model_overrides(self) -> dict[str, Any]:
        return {tier: dict(override) for tier, override in self.models.items()}

    @field_validator("goals")
    @classmethod
    def _goals_not_blank(cls, goals: list[str]) -> list[str]:
        cleaned = [g.strip() for g in goals]
        if any(not g for g in cleaned):
            raise ValueError("goals must not be blank")
        return cleaned

    @property
    def agent_id(self) -> str:
        return self.persona.id

    @property
    def workflow_id(self) -> str:
        return campaign_workflow_id(self.tenant_id, self.campaign_id)


def campaign_workflow_id(tenant_id: str, campaign_id: str) -> str:
    """One campaign workflow per tenant and campaign: starting it twice is refused by Temporal."""
    return f"campaign-{tenant_id}-{campaign_id}"
