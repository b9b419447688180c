"""Tenants, agents and campaigns; every control change is written to the audit chain.

Also the agents' platform account claims (`claim_accounts`, `accounts_of`; chimera/accounts, specs/accounts.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from chimera.accounts.claims import AccountTaken, PlatformAccount
from chimera.accounts.names import account_name, platform_name
from chimera.db import audit
from chimera.db.engine import advisory_lock, upsert
from chimera.db.errors import UnknownAgent, UnknownCampaign
from chimera.db.models import Agent, Campaign, PlatformAccountClaim
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


# ---- platform accounts -------------------------------------------------------------------------


def _account(row: PlatformAccountClaim) -> PlatformAccount:
    return PlatformAccount(
        tenant_id=row.tenant_id,
        agent_id=row.agent_id,
        platform=row.platform,
        handle=row.handle,
        claimed_at=row.claimed_at,
    )


def accounts_of(session: Session, tenant_id: str, agent_id: str | None = None) -> list[PlatformAccount]:
    """The tenant's claims (an agent's only, when given), by platform and handle."""
    query = select(PlatformAccountClaim).where(PlatformAccountClaim.tenant_id == tenant_id)
    if agent_id is not None:
        query = query.where(PlatformAccountClaim.agent_id == agent_id)
    rows = session.execute(query.order_by(PlatformAccountClaim.platform, PlatformAccountClaim.handle)).scalars()
    return [_account(row) for row in rows]


def claim_accounts(
    session: Session, tenant_id: str, agent_id: str, handles: Mapping[str, str], now: datetime
) -> list[PlatformAccount]:
    """Give the agent the accounts its persona names (platform -> handle), or raise AccountTaken and claim none.

    Idempotent. A handle another tenant, or another agent of this tenant, holds is refused. An agent holds one
    account per platform, so a persona whose handle changed gives up its old account (audited as released)."""
    wanted = {platform_name(p): account_name(h) for p, h in sorted(handles.items()) if h.strip()}
    advisory_lock(session, [f"account:{p}:{h}" for p, h in wanted.items()])
    audit.ensure_tenant(session, tenant_id, now)
    claimed: list[PlatformAccount] = []
    changes: list[tuple[str, PlatformAccount]] = []
    for platform, handle in wanted.items():
        row = _holder(session, platform, handle)
        if row is None:
            for old in session.execute(
                select(PlatformAccountClaim).where(
                    PlatformAccountClaim.tenant_id == tenant_id,
                    PlatformAccountClaim.agent_id == agent_id,
                    PlatformAccountClaim.platform == platform,
                )
            ).scalars():
                changes.append(("account.released", _account(old)))
                session.delete(old)
            session.flush()
            values = {"platform": platform, "handle": handle, "tenant_id": tenant_id, "agent_id": agent_id}
            # DO NOTHING on a conflict: under row security another tenant's row is invisible, not unwritable.
            upsert(session, PlatformAccountClaim, {**values, "claimed_at": now}, ["platform", "handle"])
            row = _holder(session, platform, handle)
            if row is not None and row.tenant_id == tenant_id and row.agent_id == agent_id:
                changes.append(("account.claimed", _account(row)))
        _check_holder(row, tenant_id, agent_id, platform, handle)
        assert row is not None
        claimed.append(_account(row))
    for action, account in changes:  # last: the audit chain's lock comes after every other
        audit.append(
            session,
            tenant_id=tenant_id,
            actor="system",
            action=action,
            subject=f"account/{account.platform}/{account.handle}",
            detail={"agent_id": account.agent_id},
            now=now,
        )
    return claimed


def _holder(session: Session, platform: str, handle: str) -> PlatformAccountClaim | None:
    # populate_existing: the row as the database has it now, not as this session last saw it.
    return session.get(PlatformAccountClaim, (platform, handle), populate_existing=True)


def _check_holder(row: PlatformAccountClaim | None, tenant_id: str, agent_id: str, platform: str, handle: str) -> None:
    if row is None or row.tenant_id != tenant_id:  # invisible (row security) or, on SQLite, another tenant's
        raise AccountTaken(
            f"{platform} account @{handle} is already claimed by another tenant: a handle belongs to one agent of "
            "one tenant, so this campaign cannot be registered with it"
        )
    if row.agent_id != agent_id:
        raise AccountTaken(
            f"{platform} account @{handle} is already claimed by agent '{row.agent_id}' of tenant '{tenant_id}', "
            f"not by agent '{agent_id}': give this persona its own handle"
        )
