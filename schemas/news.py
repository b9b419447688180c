"""Breaking news: which campaigns a headline concerns (seed 1.2: external context changes re-plan)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from schemas.plan import Headline

MAX_SEEN = 200  # headline ids a campaign remembers having seen (the feed's newest are far fewer)


class NewsWatch(BaseModel):
    """A campaign's news watch (campaign file `news:`): what it follows, and how often it looks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topics: list[str] = Field(default_factory=list, description="subjects the campaign follows")
    check_every_seconds: int = Field(300, ge=0, description="how often to look for breaking news (0: only per cycle)")
    # An x402-priced news service the campaign buys headlines from each cycle, paying through PaymentWorkflow under
    # its payments policy (specs/payments.md): the service must be on the policy's allowlist.
    premium_url: str | None = Field(None, pattern=r"^https?://", max_length=500)
    premium_max_usdc: Decimal = Field(Decimal("0.10"), gt=0, description="the most one purchase may cost")

    def enabled(self) -> bool:
        return self.check_every_seconds > 0


class BreakingNews(BaseModel):
    """A new headline that names one of the campaign's topics, or one of its persona's banned topics."""

    model_config = ConfigDict(frozen=True)

    headline: Headline
    matched: str = Field(description="the campaign topic or banned topic it names")
    banned: bool = Field(description="it touches a banned topic: stay clear of it, do not react to it")


class NewsCheck(BaseModel):
    tenant_id: str
    campaign_id: str
    agent_id: str
    topics: list[str]
    banned_topics: list[str]
    seen: list[str] = Field(default_factory=list, description="headline ids already seen")


class NewsFound(BaseModel):
    breaking: list[BreakingNews] = Field(default_factory=list, description="new and matching, newest first")
    seen: list[str] = Field(default_factory=list, description="every headline id now seen (at most MAX_SEEN)")
    errors: list[str] = Field(default_factory=list)
