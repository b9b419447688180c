"""Task outcomes, and the success rate they give an agent for a task type (the Judge's historical_success)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chimera.db.engine import upsert
from chimera.db.models import Outcome
from chimera.db.records import SuccessRate
from schemas.task import TaskRef

# Beta prior for success_rate: 8 successes in 10 pseudo-observations, so a new agent starts at 0.8.
PRIOR_SUCCESSES = 8
PRIOR_OBSERVATIONS = 10
SUCCESS_STATUSES = ("published",)
FAILURE_STATUSES = ("rejected",)  # by the judge or a human; cancelled, failed and budget say nothing of quality


def record(session: Session, ref: TaskRef, task_type: str, status: str, human_decided: bool, now: datetime) -> None:
    """Idempotent per (task_id, status)."""
    values: dict[str, Any] = {
        "tenant_id": ref.tenant_id,
        "task_id": ref.task_id,
        "status": status,
        "campaign_id": ref.campaign_id,
        "agent_id": ref.agent_id,
        "task_type": task_type,
        "human_decided": human_decided,
        "at": now,
    }
    upsert(session, Outcome, values, ["tenant_id", "task_id", "status"])


def success_rate(session: Session, tenant_id: str, agent_id: str, task_type: str) -> SuccessRate:
    """Posterior mean of a Beta(8, 2) prior updated with published (success) and rejected (failure)."""
    counts: dict[str, int] = dict(
        session.execute(
            select(Outcome.status, func.count())
            .where(
                Outcome.tenant_id == tenant_id,
                Outcome.agent_id == agent_id,
                Outcome.task_type == task_type,
                Outcome.status.in_(SUCCESS_STATUSES + FAILURE_STATUSES),
            )
            .group_by(Outcome.status)
        ).all()
    )
    successes = sum(int(counts.get(st, 0)) for st in SUCCESS_STATUSES)
    failures = sum(int(counts.get(st, 0)) for st in FAILURE_STATUSES)
    rate = (PRIOR_SUCCESSES + successes) / (PRIOR_OBSERVATIONS + successes + failures)
    return SuccessRate(rate=rate, samples=successes + failures, successes=successes, failures=failures)
