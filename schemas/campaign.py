"""A campaign: who speaks, what for, where, with how much money, under which judge policy."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.persona import Persona
from schemas.policy import JudgePolicy

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
