"""Deciding several reviews at once: a selection (by filter from the pending queue, or by task ids), then one
decision per review, each signed on its own under its own request id, sent a few at a time, each waiting for its
own ack. The task workflows authorize, (re-judge an edit,) apply and audit each one as they would a single
decision; a refusal of one never stops the others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import TemporalError

from chimera.access.credentials import UserCredentials
from chimera.control.connection import describe, list_executions, status_name
from chimera.control.errors import ControlError, InvalidRequest, NotFound, Refused
from chimera.control.listing import bounded
from chimera.control.reviews import (
    ReviewRow,
    pending_query,
    queue_order,
    review_decision,
    review_row,
    send_review_decision,
)
from chimera.control.signals import default_actor, signed_in
from schemas.review import ReviewAction
from workflows import search_attributes as sa

BATCH_CONCURRENCY = 8  # decisions in flight at once: each is a signal, an authorization and ack polls
MAX_BATCH = 1000  # one selection at most; a larger queue is decided in several runs
BatchStatus = Literal["accepted", "refused", "failed"]


class ReviewFilter(BaseModel):
    """Which pending reviews a batch decides: every field set must match; the confidence range is inclusive."""

    model_config = ConfigDict(frozen=True)

    tenant: str | None = None
    campaign: str | None = Field(None, description="CAMPAIGN or TENANT/CAMPAIGN")
    platform: str | None = None
    task_type: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None

    def is_empty(self) -> bool:
        return all(v is None or v == "" for v in self.model_dump().values())

    def query(self) -> str:
        """The visibility query; `InvalidRequest` for a value that cannot be one."""
        return pending_query(
            self.tenant,
            self.campaign,
            platform=self.platform,
            task_type=self.task_type,
            min_confidence=self.min_confidence,
            max_confidence=self.max_confidence,
        )

    def describe(self) -> str:
        """'campaign acme/spring, platform twitter, confidence 0.8-0.9', for messages."""
        parts = [
            f"{name} {value}"
            for name, value in (
                ("tenant", self.tenant),
                ("campaign", self.campaign),
                ("platform", self.platform),
                ("task type", self.task_type),
            )
            if value
        ]
        lo, hi = self.min_confidence, self.max_confidence
        if lo is not None or hi is not None:
            parts.append(f"confidence {0.0 if lo is None else lo:g}-{1.0 if hi is None else hi:g}")
        return ", ".join(parts)


class BatchItem(BaseModel):
    """One review's decision: accepted, refused (with the workflow's reason) or failed (not sent or not confirmed)."""

    task_id: str
    status: BatchStatus
    message: str
    request_id: str | None = Field(None, description="the decision's own request id (its ack and its audit)")


class BatchReport(BaseModel):
    """What `review approve|reject` decided (or, with --dry-run, would decide)."""

    action: ReviewAction
    dry_run: bool = False
    selected: list[ReviewRow]
    results: list[BatchItem] = Field(default_factory=list)
    accepted: int = 0
    refused: int = 0
    failed: int = 0

    @classmethod
    def of(cls, action: ReviewAction, selected: list[ReviewRow], results: list[BatchItem]) -> BatchReport:
        counts = {s: sum(1 for r in results if r.status == s) for s in ("accepted", "refused", "failed")}
        return cls(action=action, selected=selected, results=results, **counts)

    @property
    def all_accepted(self) -> bool:
        return self.accepted == len(self.results)


async def select_reviews(
    client: Client, *, task_ids: Sequence[str] = (), where: ReviewFilter | None = None
) -> list[ReviewRow]:
    """The reviews a batch would decide, by ids (in the order given, each described: unknown or no longer
    pending ones are kept, with a note, so the decision reports them) or by filter (the pending queue, lowest
    confidence first). `InvalidRequest` for both or neither, `NotFound` when nothing matches."""
    ids = _unique(task_ids)
    where = where if where is not None and not where.is_empty() else None
    if ids and where:
        raise InvalidRequest("name the reviews by task ids or by filters, not both")
    if where is not None:
        query = where.query()
        rows = sorted((review_row(e) for e in await list_executions(client, query)), key=queue_order)
        if not rows:
            raise NotFound(f"no pending review matches {where.describe()}; nothing was decided")
        if len(rows) > MAX_BATCH:
            raise InvalidRequest(f"{len(rows)} pending reviews match; a batch decides at most {MAX_BATCH}: narrow it")
        return rows
    if not ids:
        raise InvalidRequest(
            "name the reviews: task ids, or at least one filter "
            "(--tenant, --campaign, --platform, --task-type, --min-confidence, --max-confidence)"
        )
    if len(ids) > MAX_BATCH:
        raise InvalidRequest(f"{len(ids)} task ids; a batch decides at most {MAX_BATCH}")
    return await bounded(ids, lambda task_id: _described(client, task_id), BATCH_CONCURRENCY)


async def _described(client: Client, task_id: str) -> ReviewRow:
    desc = await describe(client, task_id)
    if desc is None or desc.workflow_type != "ContentTaskWorkflow":
        blank = dict.fromkeys(("tenant_id", "campaign_id", "agent_id", "platform", "task_type"), "")
        return ReviewRow(task_id=task_id, **blank, note=f"unknown task '{task_id}'")
    row = review_row(desc)
    state = desc.typed_search_attributes.get(sa.REVIEW_STATE)
    if desc.status != WorkflowExecutionStatus.RUNNING:
        note: str | None = f"the task has ended ({status_name(desc.status)}): it takes no decision"
    elif state != "pending":
        note = f"not pending (review {state or 'none'})"
    else:
        note = row.note
    return row.model_copy(update={"note": note})


async def decide_reviews(
    client: Client,
    task_ids: Sequence[str],
    action: ReviewAction,
    reviewer: str | None = None,
    reason: str | None = None,
    *,
    credentials: UserCredentials | None = None,
    ack_timeout: float | None = None,
    concurrency: int = BATCH_CONCURRENCY,
) -> list[BatchItem]:
    """Approve or reject each task, `concurrency` at a time, in the order given. Each decision is validated
    before anything is sent (`InvalidRequest`), then signed and sent on its own and waits for its own ack; a
    refusal or failure of one is its item, never an exception."""
    if action == "edit":
        raise InvalidRequest("edits are not batched: each needs its own text (`chimera review edit TASK --text ...`)")
    ids = _unique(task_ids)
    if not ids:
        raise InvalidRequest("no review to decide")
    creds = credentials or signed_in()  # once, before anything is sent: no credentials is one clear error
    who = reviewer or default_actor()
    decisions = {task_id: review_decision(action, who, reason) for task_id in ids}  # a request id each

    async def one(task_id: str) -> BatchItem:
        decision = decisions[task_id]
        item = BatchItem(task_id=task_id, status="failed", message="", request_id=decision.request_id)
        try:
            ack = await send_review_decision(client, task_id, decision, ack_timeout=ack_timeout, credentials=creds)
        except Refused as exc:  # the task has ended: nothing was sent
            return item.model_copy(update={"status": "refused", "message": str(exc)})
        except (ControlError, TemporalError) as exc:  # unknown task, not confirmed, Temporal refused the call
            return item.model_copy(update={"message": str(exc) or type(exc).__name__})
        return item.model_copy(update={"status": "accepted" if ack.accepted else "refused", "message": ack.message})

    return await bounded(ids, one, concurrency)


def _unique(task_ids: Sequence[str]) -> list[str]:
    """The ids stripped, blanks dropped, each once, in the order given."""
    return list(dict.fromkeys(t.strip() for t in task_ids if t.strip()))
