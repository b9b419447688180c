"""Alerts: what an operator is told when something needs attention (specs/alerts.md).

Pure contracts (pydantic and stdlib only), so workflows can build alerts deterministically: the caller passes
`raised_at` (a workflow uses workflow.now()). `alert_id` is a business key (e.g. "stop:fleet:<request id>"):
notifiers deliver each alert at most once per id, so the id of a retried event must not change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

AlertKind = Literal["stop", "budget_exhausted", "mcp_quarantined", "review_expired", "anomaly", "stop_lifted"]
Severity = Literal["info", "warning", "critical"]
AlertScope = Literal["campaign", "agent", "tenant", "fleet", "platform"]

ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
SEVERITY_RANK: dict[Severity, int] = {"info": 0, "warning": 1, "critical": 2}
ALERT_ID_MAX = 255  # the alert_deliveries key column


class Alert(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_id: str = Field(min_length=1, max_length=ALERT_ID_MAX, description="business key: one delivery per id")
    kind: AlertKind
    severity: Severity
    scope: AlertScope
    tenant_id: str | None = None
    agent_id: str | None = None
    campaign_id: str | None = None
    title: str = Field(min_length=1)
    detail: str = ""
    facts: dict[str, str] = Field(default_factory=dict)
    actor: str | None = None
    raised_at: str = Field(description="ISO 8601, with a UTC offset")

    @field_validator("raised_at")
    @classmethod
    def _iso(cls, value: str) -> str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"raised_at {value!r} is not an ISO 8601 timestamp") from exc
        if parsed.tzinfo is None:
            raise ValueError(f"raised_at {value!r} has no UTC offset")
        return value


def severity_at_least(severity: Severity, minimum: Severity) -> bool:
    return SEVERITY_RANK[severity] >= SEVERITY_RANK[minimum]


def _ids(tenant_id: str | None, agent_id: str | None, campaign_id: str | None) -> dict[str, str | None]:
    return {"tenant_id": tenant_id, "agent_id": agent_id, "campaign_id": campaign_id}


def _subject(scope: AlertScope, tenant_id: str | None, agent_id: str | None, campaign_id: str | None) -> str:
    """The stopped thing as a path: "fleet", "tenant acme", "agent acme/mira", "campaign acme/launch"."""
    if scope in ("fleet", "platform"):
        return scope
    name = {"tenant": tenant_id, "agent": agent_id, "campaign": campaign_id}[scope]
    return f"{scope} {tenant_id}/{name}" if scope != "tenant" else f"tenant {tenant_id}"


def stop_alert(
    *,
    scope: AlertScope,
    request_id: str,
    actor: str,
    reason: str,
    raised_at: str,
    tenant_id: str | None = None,
    agent_id: str | None = None,
    campaign_id: str | None = None,
    lifted: bool = False,
) -> Alert:
    """An emergency stop (critical) or its lifting (info); one alert per stop request."""
    subject = _subject(scope, tenant_id, agent_id, campaign_id)
    kind: AlertKind = "stop_lifted" if lifted else "stop"
    return Alert(
        alert_id=f"{kind}:{scope}:{request_id}",
        kind=kind,
        severity="info" if lifted else "critical",
        scope=scope,
        **_ids(tenant_id, agent_id, campaign_id),
        title=f"Emergency stop lifted: {subject}" if lifted else f"Emergency stop: {subject}",
        detail=reason,
        facts={"scope": scope, "request": request_id, "by": actor},
        actor=actor,
        raised_at=raised_at,
    )


def budget_exhausted_alert(
    *,
    tenant_id: str,
    campaign_id: str,
    agent_id: str,
    level: str,
    day: str,
    reason: str,
    raised_at: str,
) -> Alert:
    """A daily budget refused a reservation: once per campaign, level and day."""
    return Alert(
        alert_id=f"budget_exhausted:{tenant_id}:{campaign_id}:{level}:{day}",
        kind="budget_exhausted",
        severity="warning",
        scope="campaign",
        **_ids(tenant_id, agent_id, campaign_id),
        title=f"Budget exhausted: campaign {tenant_id}/{campaign_id} ({level} limit)",
        detail=reason,
        facts={"level": level, "day": day},
        raised_at=raised_at,
    )


def mcp_quarantined_alert(*, server: str, offered_hash: str, pinned_hash: str, raised_at: str) -> Alert:
    """An MCP server now offers tool definitions other than the approved ones: once per offered definition."""
    return Alert(
        alert_id=f"mcp_quarantined:{server}:{offered_hash}",
        kind="mcp_quarantined",
        severity="critical",
        scope="platform",
        title=f"MCP server quarantined: {server}",
        detail=f"{server} changed its tool definitions; its tools are unavailable until an operator approves them.",
        facts={"server": server, "pinned hash": pinned_hash, "offered hash": offered_hash},
        raised_at=raised_at,
    )


def review_expired_alert(
    *, tenant_id: str, campaign_id: str, agent_id: str, task_id: str, deadline: str, raised_at: str
) -> Alert:
    """An escalated draft no reviewer decided before its deadline (the task was rejected)."""
    return Alert(
        alert_id=f"review_expired:{tenant_id}:{task_id}",
        kind="review_expired",
        severity="warning",
        scope="campaign",
        **_ids(tenant_id, agent_id, campaign_id),
        title=f"Review expired: task {task_id}",
        detail=f"No reviewer decided before {deadline}; the draft was not published.",
        facts={"task": task_id, "deadline": deadline},
        raised_at=raised_at,
    )
