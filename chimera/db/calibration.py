"""Learning feedback: reviewers' decisions calibrate the Judge's bands per (tenant, agent, task type).

The calibration itself is pure policy (`schemas.policy.calibrate`). This module counts the decisions it is made
from, keeps what it gives, and audits every change of the shifts (`judge.calibration`), in the transaction of
the review decision that caused it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chimera.db import audit
from chimera.db.engine import upsert
from chimera.db.models import BandCalibrationRow, Review, Tenant
from schemas.policy import FEEDBACK_MAX_SHIFT, FEEDBACK_MIN_REVIEWS, FEEDBACK_WINDOW, BandCalibration, calibrate
from schemas.review import ReviewRecord

HUMAN_DECISIONS = ("approved", "edited", "rejected")  # expired and cancelled say nothing of the draft
_KEY = ("tenant_id", "agent_id", "task_type")
_UNMOVED = {"approve_shift": 0.0, "escalate_shift": 0.0}
_PAGE = 200


def counts_for_feedback(verdict: dict[str, Any]) -> bool:
    """A draft escalated on confidence alone: a flagged one's review speaks of its flag, not of the bands."""
    return verdict.get("decision") == "escalate" and not verdict.get("flags")


def decisions(session: Session, tenant_id: str, agent_id: str, task_type: str) -> Counter[str]:
    """The states of the FEEDBACK_WINDOW most recent human decisions on the agent's drafts of the task type
    that were escalated on confidence alone."""
    found: Counter[str] = Counter()
    stmt = (
        select(Review.state, Review.verdict)
        .where(
            Review.tenant_id == tenant_id,
            Review.agent_id == agent_id,
            Review.task_type == task_type,
            Review.state.in_(HUMAN_DECISIONS),
            Review.decided_at.is_not(None),
        )
        .order_by(Review.decided_at.desc(), Review.task_id.desc())
    )
    offset = 0
    while found.total() < FEEDBACK_WINDOW:
        rows = session.execute(stmt.limit(_PAGE).offset(offset)).all()
        for state, verdict in rows:
            if counts_for_feedback(verdict):
                found[state] += 1
                if found.total() == FEEDBACK_WINDOW:
                    break
        if len(rows) < _PAGE:
            break
        offset += _PAGE
    return found


def to_model(row: BandCalibrationRow) -> BandCalibration:
    return BandCalibration(
        task_type=row.task_type,
        approve_shift=row.approve_shift,
        escalate_shift=row.escalate_shift,
        reviews=row.reviews,
        approved=row.approved,
        edited=row.edited,
        rejected=row.rejected,
        reason=row.reason,
    )


def get(session: Session, tenant_id: str, agent_id: str, task_type: str) -> BandCalibration | None:
    row = session.get(BandCalibrationRow, (tenant_id, agent_id, task_type))
    return to_model(row) if row is not None else None


def recompute(session: Session, rec: ReviewRecord, now: datetime) -> BandCalibration | None:
    """Count again after the human decision `rec`, keep the calibration, and audit it when its shifts changed.

    Serialized per tenant by the tenant row lock (the one audit appends take; held already when the review's
    own entry was written), so concurrent decisions each count the ones committed before them."""
    session.execute(select(Tenant.id).where(Tenant.id == rec.tenant_id).with_for_update(key_share=True))
    found = decisions(session, rec.tenant_id, rec.agent_id, rec.task_type)
    row = session.get(BandCalibrationRow, (rec.tenant_id, rec.agent_id, rec.task_type), populate_existing=True)
    if row is None and found.total() == 0:
        return None
    new = calibrate(rec.task_type, found["approved"], found["edited"], found["rejected"])
    before = {"approve_shift": row.approve_shift, "escalate_shift": row.escalate_shift} if row else _UNMOVED
    after = {"approve_shift": new.approve_shift, "escalate_shift": new.escalate_shift}
    values: dict[str, Any] = {
        "tenant_id": rec.tenant_id,
        "agent_id": rec.agent_id,
        "task_type": rec.task_type,
        **after,
        "reviews": new.reviews,
        "approved": new.approved,
        "edited": new.edited,
        "rejected": new.rejected,
        "reason": new.reason,
        "updated_at": now,
        "updated_by": rec.task_id,
    }
    upsert(session, BandCalibrationRow, values, _KEY, [c for c in values if c not in _KEY])
    if after != before:
        audit.append(
            session,
            tenant_id=rec.tenant_id,
            actor="judge",
            action="judge.calibration",
            subject=f"agent/{rec.agent_id}/{rec.task_type}",
            detail={
                "agent_id": rec.agent_id,
                "task_type": rec.task_type,
                "from": before,
                "to": after,
                "reviews": new.reviews,
                "approved": new.approved,
                "edited": new.edited,
                "rejected": new.rejected,
                "reason": new.reason,
                "after_review": f"task/{rec.task_id}",
                "reviewer": rec.reviewer,
                "window": FEEDBACK_WINDOW,
                "min_reviews": FEEDBACK_MIN_REVIEWS,
                "max_shift": FEEDBACK_MAX_SHIFT,
            },
            now=now,
        )
    return new
