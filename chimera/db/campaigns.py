"""Tenants, agents and campaigns; every control change is written to the audit chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args

from sqlalchemy.orm import Session

from chimera.db import audit
from chimera.db.engine import advisory_lock
from chimera.db.errors import UnknownAgent, UnknownCampaign
from chimera.db.models import Agent, Campaign
from chimera.db.records import CampaignRecord
from schemas.campaign import CampaignSpec
from schemas.events import CampaignState

CAMPAIGN_STATES: frozenset[str] = frozenset(get_args(CampaignState))


def get(session: Session, tenant_id: str, campaign_id: str, *, lock: bool = False) -> Campaign:
    """The campaign row, or UnknownCampaign. `lock` holds it against other control changes."""
    # NO KEY UPDATE rather than UPDATE: inserts referencing the campaign (KEY SHARE) need not wait.
    row = session.get(Campaign, (tenant_id, campaign_id), with_for_update={"key_share": True} if lock else None)
    if row is None:
        raise UnknownCampaign(tenant_id, campaign_id)
    return row


def require_agent(session: Session, tenant_id: str, agent_id: str) -> None:
    if session.get(Agent, (tenant_id, agent_id)) is None:
        raise UnknownAgent(tenant_id, agent_id)


def to_record(row: Campaign) -> CampaignRecord:
    return CampaignRecord(
        tenant_id=row.tenant_id,
        campaign_id=row.id,
        agent_id=row.agent_id,
        name=row.name,
        status=row.status,  # constrained by ck_campaigns_status
        status_reason=row.status_reason,
        daily_budget_usd=row.daily_budget_usd,
        timezone=row.timezone,
        goals=list(row.goals),
        spec=CampaignSpec.model_validate(row.spec),
        updated_at=row.updated_at,
    )


def ensure(session: Session, spec: CampaignSpec, now: datetime) -> None:
    spec_json = spec.model_dump(mode="json")
    persona_json = spec.persona.model_dump(mode="json")
    tenant_id = spec.tenant_id
    advisory_lock(session, [f"agent:{tenant_id}:{spec.agent_id}", f"campaign:{tenant_id}:{spec.campaign_id}"])
    audit.ensure_tenant(session, tenant_id, now)

    agent = session.get(Agent, (tenant_id, spec.agent_id))
    if agent is None:
        session.add(
            Agent(
                tenant_id=tenant_id,
                id=spec.agent_id,
                name=spec.persona.name,
                persona=persona_json,
                created_at=now,
                updated_at=now,
            )
        )
    elif agent.persona != persona_json or agent.name != spec.persona.name:
        agent.name = spec.persona.name
        agent.persona = persona_json
        agent.updated_at = now
    session.flush()

    campaign = session.get(Campaign, (tenant_id, spec.campaign_id))
    if campaign is None:
        session.add(
            Campaign(
                tenant_id=tenant_id,
                id=spec.campaign_id,
                agent_id=spec.agent_id,
                name=spec.name,
                spec=spec_json,
                status="running",
                status_reason="",
                status_actor=None,
                daily_budget_usd=spec.daily_budget_usd,
                timezone=spec.timezone,
                goals=list(spec.goals),
                created_at=now,
                updated_at=now,
            )
        )
        action = "campaign.created"
    elif campaign.spec != spec_json:
        campaign.agent_id = spec.agent_id
        campaign.name = spec.name
        campaign.spec = spec_json
        campaign.timezone = spec.timezone
        campaign.updated_at = now
        action = "campaign.updated"
    else:
        return  # unchanged: idempotent, no audit entry
    session.flush()
    audit.append(
        session,
        tenant_id=tenant_id,
        actor="system",
        action=action,
        subject=f"campaign/{spec.campaign_id}",
        detail={"agent_id": spec.agent_id, "name": spec.name},
        now=now,
    )


def change(
    session: Session,
    tenant_id: str,
    campaign_id: str,
    *,
    field: str,
    value: Any,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    """Set one live field (status, daily_budget_usd or goals) and audit it as campaign.<name>."""
    row = get(session, tenant_id, campaign_id, lock=True)
    previous = getattr(row, field)
    setattr(row, field, value)
    if field == "status":
        row.status_reason = reason
        row.status_actor = actor
    row.updated_at = now
    session.flush()
    action = {"status": "campaign.status", "daily_budget_usd": "campaign.budget", "goals": "campaign.goals"}[field]
    audit.append(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=action,
        subject=f"campaign/{campaign_id}",
        detail={"from": previous, "to": value, "reason": reason},
        now=now,
    )
