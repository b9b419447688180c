"""Anomaly rules: is an agent's spend rate or rejection rate in the last hour far above its normal? (pure, no I/O)

History is cut into one-hour slots ending at `now` (the current window is the last hour; the history the
`history_days` before it). Rules (specs/alerts.md), each with a minimum history before it judges at all:

- spend: normal = the median spend of the agent's active hours (hours with any spend), so an agent that works a
  few hours a day is compared with its working hours, not with its idle ones. The last hour alerts when it is at
  least `factor` x normal, at least normal + `factor` x 1.4826 MAD (an agent whose hours vary a lot needs a larger
  jump), and at least `min_spend_usd_per_hour` (so $0.001 -> $0.004 does not alert). Needs `min_active_hours`.
- rejections: normal = rejected / judged over the whole history (pooled: hourly counts are too small for a
  median). The last hour alerts when it has at least `min_rejections` rejections and its rate is at least
  `factor` x normal, or (for an often-rejected agent, where that exceeds 100%) its acceptance rate fell to
  1/`factor` of normal. Needs `min_judged` judged drafts.
Both need the agent's first activity in the lookback at least `min_history_hours` before the window.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from statistics import median
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.alerts import Alert

if TYPE_CHECKING:
    from chimera.settings import Settings

HOUR = timedelta(hours=1)
MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of normally distributed data
_EPSILON = 1e-9  # "at least 3x" holds at exactly 3x despite float rounding (3 * 0.4 = 1.2000000000000002)

AnomalyKind = Literal["spend_rate", "rejection_rate"]


class AnomalyThresholds(BaseModel):
    model_config = ConfigDict(frozen=True)

    factor: float = Field(3.0, gt=1)
    min_spend_usd_per_hour: float = Field(1.0, ge=0)
    min_rejections: int = Field(3, ge=1)
    history_days: int = Field(7, ge=1, le=90)
    min_history_hours: int = Field(24, ge=1)
    min_active_hours: int = Field(6, ge=1)
    min_judged: int = Field(20, ge=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnomalyThresholds:
        return cls(
            factor=settings.anomaly_factor,
            min_spend_usd_per_hour=settings.anomaly_min_spend_usd_per_hour,
            min_rejections=settings.anomaly_min_rejections,
            history_days=settings.anomaly_history_days,
            min_history_hours=settings.anomaly_min_history_hours,
            min_active_hours=settings.anomaly_min_active_hours,
            min_judged=settings.anomaly_min_judged,
        )


class HourBucket(BaseModel):
    """One hour of an agent's activity: [start, start + 1 h)."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    spend_usd: float = Field(0.0, ge=0)
    judged: int = Field(0, ge=0)
    rejected: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _counts(self) -> HourBucket:
        if self.rejected > self.judged:
            raise ValueError(f"{self.rejected} rejected of {self.judged} judged in the hour from {self.start}")
        return self

    @property
    def active(self) -> bool:
        return self.spend_usd > 0 or self.judged > 0


class AgentHistory(BaseModel):
    """An agent's last hour (`current`) and the hours before it (`history`: only hours with activity)."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    agent_id: str
    window_end: datetime
    current: HourBucket
    history: list[HourBucket]
    first_seen: datetime | None = Field(None, description="the earliest activity in the history, if any")

    @property
    def window_start(self) -> datetime:
        return self.window_end - HOUR

    @property
    def history_hours(self) -> float:
        if self.first_seen is None:
            return 0.0
        return max(0.0, (self.window_start - self.first_seen) / HOUR)


class Anomaly(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: AnomalyKind
    tenant_id: str
    agent_id: str
    window_end: datetime
    current: float  # USD in the last hour, or the rejection rate (0..1)
    normal: float  # USD per active hour, or the pooled rejection rate
    threshold: float  # what `current` had to reach
    ratio: float | None  # current / normal (None when normal is 0)
    sentence: str
    facts: dict[str, str]


def build_history(
    tenant_id: str,
    agent_id: str,
    now: datetime,
    *,
    spend: Iterable[tuple[datetime, float]],
    verdicts: Iterable[tuple[datetime, bool]],
    history_days: int,
) -> AgentHistory:
    """Bucket (time, USD) spend and (time, rejected?) verdict events into the hour slots ending at `now`.

    Events after `now` or before the lookback are ignored."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    slots = history_days * 24
    totals: dict[int, list[float]] = {}  # slot -> [spend, judged, rejected]; slot 0 is the current hour
    first: datetime | None = None

    def slot_of(at: datetime) -> int | None:
        if at > now:
            return None
        k = int((now - at) // HOUR)
        return k if k <= slots else None

    for at, usd in spend:
        k = slot_of(at)
        if k is not None:
            totals.setdefault(k, [0.0, 0, 0])[0] += usd
            first = at if k > 0 and (first is None or at < first) else first
    for at, rejected in verdicts:
        k = slot_of(at)
        if k is not None:
            row = totals.setdefault(k, [0.0, 0, 0])
            row[1] += 1
            row[2] += int(rejected)
            first = at if k > 0 and (first is None or at < first) else first

    def bucket(k: int) -> HourBucket:
        usd, judged, rejected = totals.get(k, [0.0, 0, 0])
        return HourBucket(
            start=now - (k + 1) * HOUR, spend_usd=round(usd, 6), judged=int(judged), rejected=int(rejected)
        )

    history = [bucket(k) for k in sorted((k for k in totals if k > 0), reverse=True)]
    return AgentHistory(
        tenant_id=tenant_id, agent_id=agent_id, window_end=now, current=bucket(0), history=history, first_seen=first
    )


def _usd(value: float) -> str:
    return f"${value:.2f}" if value >= 0.1 else f"${value:.4f}"


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def spend_anomaly(h: AgentHistory, t: AnomalyThresholds) -> Anomaly | None:
    active = [b.spend_usd for b in h.history if b.spend_usd > 0]
    if h.history_hours < t.min_history_hours or len(active) < t.min_active_hours:
        return None
    normal = median(active)
    mad = median(abs(x - normal) for x in active)
    threshold = max(t.factor * normal, normal + t.factor * MAD_SCALE * mad, t.min_spend_usd_per_hour)
    current = h.current.spend_usd
    if current < threshold - _EPSILON:
        return None
    ratio = current / normal
    return Anomaly(
        kind="spend_rate",
        tenant_id=h.tenant_id,
        agent_id=h.agent_id,
        window_end=h.window_end,
        current=current,
        normal=normal,
        threshold=threshold,
        ratio=ratio,
        sentence=f"spend {_usd(current)} in the last hour, {ratio:.1f}x the agent's normal {_usd(normal)}/h",
        facts={
            "last hour": _usd(current),
            "normal": f"{_usd(normal)}/h (median of {len(active)} active hours)",
            "threshold": _usd(threshold),
        },
    )


def rejection_anomaly(h: AgentHistory, t: AnomalyThresholds) -> Anomaly | None:
    judged = sum(b.judged for b in h.history)
    rejected = sum(b.rejected for b in h.history)
    if h.history_hours < t.min_history_hours or judged < t.min_judged:
        return None
    now_judged, now_rejected = h.current.judged, h.current.rejected
    if now_rejected < t.min_rejections:
        return None
    normal = rejected / judged
    threshold = min(t.factor * normal, 1 - (1 - normal) / t.factor)
    rate = now_rejected / now_judged
    if rate < threshold - _EPSILON:
        return None
    ratio = rate / normal if normal > 0 else None
    against = f"{ratio:.1f}x the agent's normal" if ratio is not None else "where the agent's normal is"
    sentence = (
        f"{now_rejected} of {now_judged} drafts rejected in the last hour ({_pct(rate)}), "
        f"{against} {_pct(normal)} ({rejected} of {judged} over {h.history_hours / 24:.1f} days)"
    )
    return Anomaly(
        kind="rejection_rate",
        tenant_id=h.tenant_id,
        agent_id=h.agent_id,
        window_end=h.window_end,
        current=rate,
        normal=normal,
        threshold=threshold,
        ratio=ratio,
        sentence=sentence,
        facts={
            "last hour": f"{now_rejected} of {now_judged} rejected ({_pct(rate)})",
            "normal": f"{_pct(normal)} ({rejected} of {judged})",
            "threshold": _pct(threshold),
        },
    )


def detect(h: AgentHistory, t: AnomalyThresholds) -> list[Anomaly]:
    """Every rule that fires for the agent's last hour."""
    return [a for a in (spend_anomaly(h, t), rejection_anomaly(h, t)) if a is not None]


def anomaly_alert(anomaly: Anomaly, raised_at: str, *, campaign_id: str | None = None) -> Alert:
    """The alert of an anomaly; its id names the clock hour, so checks within one hour alert once."""
    hour = anomaly.window_end.astimezone(UTC).strftime("%Y-%m-%dT%HZ")
    what = "Spend rate" if anomaly.kind == "spend_rate" else "Rejection rate"
    return Alert(
        alert_id=f"anomaly:{anomaly.kind}:{anomaly.tenant_id}:{anomaly.agent_id}:{hour}",
        kind="anomaly",
        severity="warning",
        scope="agent",
        tenant_id=anomaly.tenant_id,
        agent_id=anomaly.agent_id,
        campaign_id=campaign_id,
        title=f"{what} far above normal: agent {anomaly.tenant_id}/{anomaly.agent_id}",
        detail=anomaly.sentence[0].upper() + anomaly.sentence[1:] + ".",
        facts={"rule": anomaly.kind, **anomaly.facts},
        raised_at=raised_at,
    )
