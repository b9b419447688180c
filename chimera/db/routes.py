"""Mention routes: which campaigns have a handle on a platform, from their specs (specs/ingress.md).

The store only records the facts (handle, campaign, when the campaign was created); which campaign answers a
mention is the ingress's rule (chimera/ingress/routing.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from chimera.db.engine import upsert
from chimera.db.models import MentionRoute as RouteRow
from chimera.db.records import MentionRoute
from schemas.campaign import CampaignSpec


def handle_key(handle: str) -> str:
    """How handles compare: `@Mira_Threads`, `mira_threads` and ` mira_threads ` are one account."""
    return handle.strip().lstrip("@").strip().lower()


def wanted(spec: CampaignSpec) -> dict[str, str]:
    """platform -> handle key, for the campaign's platforms that have a handle in its persona."""
    keys = {p: handle_key(spec.persona.handles.get(p, "")) for p in spec.platforms}
    return {p: k for p, k in keys.items() if k}


def replace(session: Session, spec: CampaignSpec, created_at: datetime) -> None:
    """Make the campaign's routes those of its current spec (idempotent; safe to run twice at once)."""
    tenant, campaign = spec.tenant_id, spec.campaign_id
    keep = wanted(spec)
    stale = session.execute(
        select(RouteRow).where(RouteRow.campaign_tenant_id == tenant, RouteRow.campaign_id == campaign)
    ).scalars()
    for row in list(stale):
        if keep.get(row.platform) != row.handle:
            session.execute(
                delete(RouteRow).where(
                    RouteRow.platform == row.platform,
                    RouteRow.handle == row.handle,
                    RouteRow.campaign_tenant_id == tenant,
                    RouteRow.campaign_id == campaign,
                )
            )
    for platform, handle in keep.items():
        values = {
            "platform": platform,
            "handle": handle,
            "campaign_tenant_id": tenant,
            "campaign_id": campaign,
            "campaign_created_at": created_at,
        }
        upsert(session, RouteRow, values, ["platform", "handle", "campaign_tenant_id", "campaign_id"])


def of_handle(session: Session, platform: str, handle: str) -> list[MentionRoute]:
    """The campaigns with `handle` on `platform`, oldest first."""
    rows = session.execute(
        select(RouteRow)
        .where(RouteRow.platform == platform, RouteRow.handle == handle_key(handle))
        .order_by(RouteRow.campaign_created_at, RouteRow.campaign_tenant_id, RouteRow.campaign_id)
    ).scalars()
    return [
        MentionRoute(
            platform=r.platform,
            handle=r.handle,
            tenant_id=r.campaign_tenant_id,
            campaign_id=r.campaign_id,
            created_at=r.campaign_created_at,
        )
        for r in rows
    ]


def handles_on(session: Session, platform: str) -> list[str]:
    rows = session.execute(
        select(RouteRow.handle).where(RouteRow.platform == platform).distinct().order_by(RouteRow.handle)
    )
    return list(rows.scalars())
