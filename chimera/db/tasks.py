"""Task rows: each planned task's latest status, attempt and confidence, as the workflow records them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from chimera.db.engine import upsert
from chimera.db.models import Task
from chimera.db.records import TaskRecord
from schemas.task import TaskRef, TaskStatus

TASK_STATUSES: frozenset[str] = frozenset(get_args(TaskStatus))


def check_status(status: str) -> None:
    if status not in TASK_STATUSES:
        raise ValueError(f"unknown task status {status!r}; expected one of {sorted(TASK_STATUSES)}")


# What the workflow records of a task; a later record may change all of it (created_at stays the first one's).
RECORDED = ("key", "task_type", "platform", "status", "confidence", "attempt")


def record(session: Session, ref: TaskRef, recorded: dict[str, Any], now: datetime) -> None:
    """Insert the task with the RECORDED columns in `recorded`, or update them."""
    values: dict[str, Any] = {
        "tenant_id": ref.tenant_id,
        "task_id": ref.task_id,
        "campaign_id": ref.campaign_id,
        "agent_id": ref.agent_id,
        **{column: recorded[column] for column in RECORDED},
        "created_at": now,
        "updated_at": now,
    }
    upsert(session, Task, values, ["tenant_id", "task_id"], [*RECORDED, "updated_at"])


def get(session: Session, tenant_id: str, task_id: str) -> TaskRecord | None:
    row = session.get(Task, (tenant_id, task_id))
    return to_record(row) if row is not None else None


def of_campaign(session: Session, tenant_id: str, campaign_id: str) -> list[TaskRecord]:
    """The campaign's tasks in the order they were first recorded."""
    rows = session.execute(
        select(Task)
        .where(Task.tenant_id == tenant_id, Task.campaign_id == campaign_id)
        .order_by(Task.created_at, Task.task_id)
    ).scalars()
    return [to_record(row) for row in rows]


def to_record(row: Task) -> TaskRecord:
    return TaskRecord(
        tenant_id=row.tenant_id,
        task_id=row.task_id,
        campaign_id=row.campaign_id,
        agent_id=row.agent_id,
        key=row.key,
        task_type=row.task_type,
        platform=row.platform,
        status=row.status,
        attempt=row.attempt,
        confidence=row.confidence,
        updated_at=row.updated_at,
    )
