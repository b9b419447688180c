"""Human review records and their decision history."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chimera.db import audit
from chimera.db.engine import advisory_lock
from chimera.db.errors import OwnershipConflict
from chimera.db.models import Review, ReviewEventRow
from chimera.db.records import ReviewEvent
from schemas.policy import Verdict
from schemas.review import ReviewRecord

DECIDED = frozenset({"approved", "edited", "rejected", "expired", "cancelled"})
_ACTIONS = {
    "none": "none",
    "pending": "escalate",
    "approved": "approve",
    "edited": "edit",
    "rejected": "reject",
    "expired": "expire",
    "cancelled": "cancel",
}


def _parse_deadline(deadline: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(deadline)
    except ValueError:
        return None  # kept verbatim in `deadline`; only ordering uses the parsed form
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def to_record(row: Review) -> ReviewRecord:
    return ReviewRecord(
        task_id=row.task_id,
        tenant_id=row.tenant_id,
        campaign_id=row.campaign_id,
        agent_id=row.agent_id,
        platform=row.platform,
        task_type=row.task_type,
        text=row.text,
        verdict=Verdict.model_validate(row.verdict),
        state=row.state,  # constrained by ck_reviews_state
        deadline=row.deadline,
        reviewer=row.reviewer,
        reason=row.reason,
        edited_text=row.edited_text,
    )


def _sha(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def _decision(rec: ReviewRecord) -> tuple[str, str | None, str | None, str | None]:
    return (rec.state, rec.reviewer, rec.reason, rec.edited_text)


def record(session: Session, rec: ReviewRecord, now: datetime) -> bool:
    """Upsert by task_id; every change of decision appends a review event. Replays change nothing.
    Returns whether the decision changed."""
    advisory_lock(session, [f"review:{rec.task_id}"])
    row = session.execute(
        select(Review).where(Review.task_id == rec.task_id).with_for_update(key_share=True)
    ).scalar_one_or_none()
    if row is not None and (row.tenant_id, row.campaign_id) != (rec.tenant_id, rec.campaign_id):
        raise OwnershipConflict(
            f"review for task {rec.task_id!r} belongs to tenant {row.tenant_id!r} campaign {row.campaign_id!r}, "
            f"not tenant {rec.tenant_id!r} campaign {rec.campaign_id!r}"
        )
    old_text: str | None = None
    if row is None:
        row = Review(tenant_id=rec.tenant_id, task_id=rec.task_id, created_at=now)
        session.add(row)
        changed = rec.state != "none"
    else:
        if row.state in DECIDED and rec.state in ("none", "pending"):
            return False  # a late retry of the escalation must not reopen a decided review
        changed = _decision(rec) != (row.state, row.reviewer, row.reason, row.edited_text)
        old_text = row.edited_text or row.text

    row.campaign_id = rec.campaign_id
    row.agent_id = rec.agent_id
    row.platform = rec.platform
    row.task_type = rec.task_type
    row.text = rec.text
    row.verdict = rec.verdict.model_dump(mode="json")
    if rec.state in DECIDED and row.state not in DECIDED:
        row.decided_at = now
    row.state = rec.state
    row.deadline = rec.deadline
    row.deadline_at = _parse_deadline(rec.deadline)
    row.reviewer = rec.reviewer
    row.reason = rec.reason
    row.edited_text = rec.edited_text
    row.updated_at = now
    session.flush()

    if changed:
        last = session.execute(
            select(func.coalesce(func.max(ReviewEventRow.seq), 0)).where(
                ReviewEventRow.tenant_id == rec.tenant_id, ReviewEventRow.task_id == rec.task_id
            )
        ).scalar_one()
        session.add(
            ReviewEventRow(
                tenant_id=rec.tenant_id,
                task_id=rec.task_id,
                seq=int(last) + 1,
                at=now,
                actor=rec.reviewer or "system",
                action=_ACTIONS[rec.state],
                state=rec.state,
                reason=rec.reason,
                old_text=old_text,
                new_text=rec.edited_text if rec.state == "edited" else None,
            )
        )
        session.flush()
        # Every decision is audited in the same transaction as the review itself.
        audit.append(
            session,
            tenant_id=rec.tenant_id,
            actor=rec.reviewer or "system",
            action=f"review.{_ACTIONS[rec.state]}",
            subject=f"task/{rec.task_id}",
            detail={
                "campaign_id": rec.campaign_id,
                "agent_id": rec.agent_id,
                "state": rec.state,
                "reason": rec.reason,
                "seq": int(last) + 1,
                "edited_text_sha256": _sha(rec.edited_text) if rec.state == "edited" else None,
                **({"override": True} if rec.override else {}),  # an edit published despite a high-risk flag
            },
            now=now,
        )
    return changed


def get(session: Session, tenant_id: str, task_id: str) -> ReviewRecord | None:
    row = session.get(Review, (tenant_id, task_id))
    return to_record(row) if row is not None else None


def pending(session: Session, tenant_id: str) -> list[ReviewRecord]:
    """Pending reviews, riskiest first, then the earliest deadline."""
    stmt = select(Review).where(Review.state == "pending", Review.tenant_id == tenant_id)
    rows = list(session.execute(stmt).scalars())
    far = datetime.max.replace(tzinfo=UTC)
    records = [(to_record(row), row.deadline_at or far, row.created_at) for row in rows]
    records.sort(key=lambda item: (-item[0].verdict.risk, item[1], item[2], item[0].task_id))
    return [item[0] for item in records]


def events(session: Session, tenant_id: str, task_id: str) -> list[ReviewEvent]:
    rows = session.execute(
        select(ReviewEventRow)
        .where(ReviewEventRow.tenant_id == tenant_id, ReviewEventRow.task_id == task_id)
        .order_by(ReviewEventRow.seq)
    ).scalars()
    return [
        ReviewEvent(
            task_id=row.task_id,
            seq=row.seq,
            at=row.at,
            actor=row.actor,
            action=row.action,
            state=row.state,
            reason=row.reason,
            old_text=row.old_text,
            new_text=row.new_text,
        )
        for row in rows
    ]
