"""StateStore: Chimera's durable state behind a small synchronous API.

Every method is its own transaction and is safe to call from many threads and processes at once
(see chimera/db/engine.py for how SQLite and PostgreSQL are serialized). Every method names its
tenant (an argument, or the tenant of the TaskRef, CampaignSpec or ReviewRecord it is given), and
its transaction sets that tenant for PostgreSQL's row-level security (specs/database.md). Nothing
returned is an ORM object. Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chimera.access.authorize import KeyHolder
from chimera.db import (
    audit,
    budget,
    calibration,
    campaigns,
    conversations,
    costs,
    deliveries,
    mcp,
    outcomes,
    payments,
    reviews,
    routes,
    state,
    stop_gate,
    tasks,
    users,
)
from chimera.db.engine import TENANT_SETTING, Database
from chimera.db.errors import CampaignHalted, UnknownCampaign
from chimera.db.models import Campaign, Tenant
from chimera.db.records import (
    AuditCheck,
    AuditEntry,
    BudgetLine,
    CampaignRecord,
    MentionRoute,
    ReviewEvent,
    SpendSummary,
    StateValue,
    SuccessRate,
    TaskRecord,
    UsageSummary,
)
from chimera.settings import Settings
from schemas.access import Role
from schemas.campaign import CampaignSpec
from schemas.memory import ConversationTurn
from schemas.models import CostLine
from schemas.payment import PaymentInput, PaymentReservation, PaymentStatus, Prepared
from schemas.policy import BandCalibration, Verdict
from schemas.review import ReviewRecord
from schemas.task import Reservation, StateRead, TaskRef

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StateStore:
    """Tenants, campaigns, versioned state, budgets, reviews, tasks, outcomes and the audit chain."""

    def __init__(self, url: str, *, clock: Clock | None = None, pool_size: int | None = None) -> None:
        """`url`: a SQLAlchemy URL (file SQLite or postgresql+psycopg). `clock` returns aware UTC "now" (tests).

        `pool_size` caps the PostgreSQL connection pool (no overflow); default SQLAlchemy's.
        """
        self._db = Database(url, pool_size=pool_size)
        self._clock = clock or _utcnow

    @classmethod
    def from_settings(cls, settings: Settings) -> StateStore:
        return cls(settings.resolved_database_url)

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def database(self) -> Database:
        """The engine and its transactions, for stores of other concerns (alert deliveries, rates)."""
        return self._db

    def close(self) -> None:
        self._db.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def ensure_schema(self) -> None:
        """Now rather than on first use: upgrade SQLite to the head; check PostgreSQL is at it (SchemaNotReady)."""
        self._db.ensure_schema()

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the store's clock returned a naive datetime; it must be timezone-aware")
        return now.astimezone(UTC)

    # ---- campaigns -------------------------------------------------------------------------

    def ensure_campaign(self, spec: CampaignSpec) -> None:
        """Upsert tenant, agent and campaign. Idempotent.

        A new campaign starts `running` with the spec's budget and goals. For an existing one the
        spec, name, time zone and persona are refreshed, but status, daily budget and goals are
        kept: they are changed by audited control actions (set_*), which a restart must not undo.
        The campaign's mention routes (platform scope, see mention_routes) follow its spec.
        """
        with self._db.transaction(spec.tenant_id, write=True) as s:
            campaigns.ensure(s, spec, self._now())
            created_at = campaigns.get(s, spec.tenant_id, spec.campaign_id).created_at
        # A second transaction: routes are platform scope, which a tenant's transaction cannot write. Both
        # steps are idempotent, so a retry after a failure in between completes the work.
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            routes.replace(s, spec, created_at)

    def get_campaign(self, tenant_id: str, campaign_id: str) -> CampaignRecord | None:
        with self._db.transaction(tenant_id, write=False) as s:
            row = s.get(Campaign, (tenant_id, campaign_id))
            return campaigns.to_record(row) if row is not None else None

    def campaigns_of_agent(self, tenant_id: str, agent_id: str) -> list[str]:
        """The ids of the agent's campaigns that are not stopped, running ones first, then by id."""
        with self._db.transaction(tenant_id, write=False) as s:
            rows = s.execute(
                select(Campaign.id, Campaign.status).where(
                    Campaign.tenant_id == tenant_id, Campaign.agent_id == agent_id, Campaign.status != "stopped"
                )
            ).all()
            return [cid for cid, _ in sorted(rows, key=lambda r: (r[1] != "running", r[0]))]

    def campaign_status(self, tenant_id: str, campaign_id: str) -> str | None:
        with self._db.transaction(tenant_id, write=False) as s:
            return s.execute(
                select(Campaign.status).where(Campaign.tenant_id == tenant_id, Campaign.id == campaign_id)
            ).scalar_one_or_none()

    def is_stopped(self, tenant_id: str, campaign_id: str) -> bool:
        """True only for an emergency-stopped campaign (an unknown campaign is not stopped)."""
        return self.campaign_status(tenant_id, campaign_id) == "stopped"

    def set_campaign_status(self, tenant_id: str, campaign_id: str, status: str, actor: str, reason: str) -> None:
        if status not in campaigns.CAMPAIGN_STATES:
            raise ValueError(f"unknown campaign status {status!r}; expected one of {sorted(campaigns.CAMPAIGN_STATES)}")
        # A stop waits for the campaign's sends in flight (the stop gate): nothing is sent after it is recorded.
        gate = stop_gate.held_exclusive(self._db) if status == "stopped" else contextlib.nullcontext(None)
        with gate as lock, self._db.transaction(tenant_id, write=True) as s:
            if lock is not None:
                lock(s)
            campaigns.change(
                s, tenant_id, campaign_id, field="status", value=status, actor=actor, reason=reason, now=self._now()
            )

    def halted(self, ref: TaskRef) -> str | None:
        """Why nothing more may be spent, committed or sent for `ref`: its campaign, agent, tenant or the fleet
        was stopped; None while it may run."""
        if self.is_stopped(ref.tenant_id, ref.campaign_id):
            return f"campaign {ref.tenant_id}/{ref.campaign_id} was stopped"
        stops = self.active_stops(ref.tenant_id, ref.agent_id)
        return stops[0].describe() if stops else None

    def set_daily_budget(
        self, tenant_id: str, campaign_id: str, daily_budget_usd: float, actor: str, reason: str = ""
    ) -> None:
        if not daily_budget_usd > 0:
            raise ValueError(f"the daily budget must be positive, not {daily_budget_usd}")
        with self._db.transaction(tenant_id, write=True) as s:
            campaigns.change(
                s,
                tenant_id,
                campaign_id,
                field="daily_budget_usd",
                value=float(daily_budget_usd),
                actor=actor,
                reason=reason,
                now=self._now(),
            )

    def set_goals(self, tenant_id: str, campaign_id: str, goals: list[str], actor: str, reason: str = "") -> None:
        cleaned = [g.strip() for g in goals]
        if not cleaned or any(not g for g in cleaned):
            raise ValueError("goals must be a non-empty list of non-blank strings")
        with self._db.transaction(tenant_id, write=True) as s:
            campaigns.change(
                s, tenant_id, campaign_id, field="goals", value=cleaned, actor=actor, reason=reason, now=self._now()
            )

    # ---- versioned state (optimistic concurrency) -------------------------------------------

    def read_versions(self, tenant_id: str, keys: list[str]) -> list[StateRead]:
        """Current versions in the order asked; an absent key is version 0."""
        with self._db.transaction(tenant_id, write=False) as s:
            return state.read_versions(s, tenant_id, keys)

    def get_state(self, tenant_id: str, key: str) -> StateValue | None:
        with self._db.transaction(tenant_id, write=False) as s:
            return state.get(s, tenant_id, key)

    def commit(
        self, ref: TaskRef, read_set: list[StateRead], write_keys: list[str], value: dict[str, Any], actor: str
    ) -> list[StateRead]:
        """Validate the read set and bump every write key by one, atomically; returns the new versions.

        Raises StateConflict (and writes nothing) if any read key moved. A retry of a commit that
        already succeeded (same task, same value) returns the versions it produced instead of conflicting.
        """
        with self._db.transaction(ref.tenant_id, write=True) as s:
            campaigns.get(s, ref.tenant_id, ref.campaign_id)
            return state.commit(s, ref, read_set, write_keys, value, actor, self._now())

    # ---- budget ------------------------------------------------------------------------------

    def reserve(self, ref: TaskRef, amount_usd: float, daily_budget_usd: float, timezone: str) -> Reservation:
        """Reserve against today's budget (today in `timezone`); never exceeds it; idempotent per task_id."""
        with self._db.transaction(ref.tenant_id, write=True) as s:
            campaigns.get(s, ref.tenant_id, ref.campaign_id)
            return budget.reserve(s, ref, amount_usd, daily_budget_usd, timezone, self._now())

    def settle(self, ref: TaskRef, actual_usd: float, timezone: str) -> None:
        with self._db.transaction(ref.tenant_id, write=True) as s:
            campaigns.get(s, ref.tenant_id, ref.campaign_id)
            budget.settle(s, ref, actual_usd, timezone, self._now())

    def release(self, ref: TaskRef) -> None:
        with self._db.transaction(ref.tenant_id, write=True) as s:
            budget.release(s, ref, self._now())

    def set_budget(
        self, tenant_id: str, scope: str, scope_id: str, daily_usd: float | None, actor: str, reason: str = ""
    ) -> None:
        """Set the daily limit of the tenant (scope "tenant", scope_id = tenant_id) or of one of its agents
        (scope "agent"); None removes it. Audited as budget.set."""
        if scope == "tenant" and scope_id != tenant_id:
            raise ValueError(f"a tenant budget's scope id is the tenant itself ({tenant_id!r}), not {scope_id!r}")
        with self._db.transaction(tenant_id, write=True) as s:
            now = self._now()
            audit.ensure_tenant(s, tenant_id, now)
            if scope == "agent":
                campaigns.require_agent(s, tenant_id, scope_id)
            before, after = budget.set_limit(s, tenant_id, scope, scope_id, daily_usd, actor, now)
            audit.append(
                s,
                tenant_id=tenant_id,
                actor=actor,
                action="budget.set",
                subject=f"{scope}/{scope_id}",
                detail={"from": before, "to": after, "reason": reason},
                now=now,
            )

    def budget_limits(self, tenant_id: str) -> list[tuple[str, str, float]]:
        """(scope, scope_id, daily_usd) of the tenant's own and its agents' limits."""
        with self._db.transaction(tenant_id, write=False) as s:
            return budget.limits(s, tenant_id)

    def budget_report(self, tenant_id: str, campaign_id: str | None = None) -> list[BudgetLine]:
        """For each campaign of the tenant (or one): campaign, agent and tenant levels on the campaign's day."""
        with self._db.transaction(tenant_id, write=False) as s:
            stmt = select(Campaign).where(Campaign.tenant_id == tenant_id).order_by(Campaign.id)
            if campaign_id is not None:
                stmt = stmt.where(Campaign.id == campaign_id)
            rows = list(s.execute(stmt).scalars())
            if campaign_id is not None and not rows:
                raise UnknownCampaign(tenant_id, campaign_id)
            now = self._now()
            return [
                line
                for row in rows
                for line in budget.report(s, tenant_id, row.id, row.agent_id, row.timezone, row.daily_budget_usd, now)
            ]

    def tenants(self) -> list[str]:
        """Tenant ids visible to this connection: all on SQLite or as the auditor, none as the app role."""
        with self._db.transaction(None, write=False) as s:
            return list(s.execute(select(Tenant.id).order_by(Tenant.id)).scalars())

    def spend_today(self, tenant_id: str, campaign_id: str, timezone: str) -> SpendSummary:
        day = budget.local_day(self._now(), timezone)
        with self._db.transaction(tenant_id, write=False) as s:
            return budget.spend_on(s, tenant_id, campaign_id, day)

    # ---- the call ledger (model_calls) ---------------------------------------------------------

    def record_costs(self, ref: TaskRef, owner_id: str, lines: Sequence[CostLine], timezone: str) -> None:
        """Keep each cost line once by (tenant, key), under `owner_id` (the task or plan id the calls were for),
        on today's day in `timezone`. Idempotent: a retried activity recording the same keys adds nothing."""
        with self._db.transaction(ref.tenant_id, write=True) as s:
            campaigns.get(s, ref.tenant_id, ref.campaign_id)
            costs.record(s, ref, owner_id, lines, timezone, self._now())

    def owner_cost(self, tenant_id: str, owner_id: str) -> float:
        """What every recorded line of the owner (a task or plan id) cost, across all its attempts."""
        with self._db.transaction(tenant_id, write=False) as s:
            return float(costs.owner_cost(s, tenant_id, owner_id))

    def charge(self, ref: TaskRef, lines: Sequence[CostLine], timezone: str) -> float:
        """Spend with no reservation of its own (planning calls): record the lines under ref.task_id and settle
        its spend row at the owner's whole cost (inserted settled, or an existing row settled); returns that
        cost. Idempotent; takes the budget locks, as reserve and settle do."""
        with self._db.transaction(ref.tenant_id, write=True) as s:
            campaigns.get(s, ref.tenant_id, ref.campaign_id)
            return float(costs.charge(s, ref, lines, timezone, self._now()))

    def usage_summary(self, tenant_id: str, campaign_id: str | None, day_from: date, day_to: date) -> UsageSummary:
        """The ledger by tier, provider and model, from day_from to day_to (the campaigns' local days, inclusive),
        with the cost per published post; campaign_id None covers the tenant."""
        with self._db.transaction(tenant_id, write=False, snapshot=True) as s:
            return costs.usage_summary(s, tenant_id, campaign_id, day_from, day_to)

    def usage_today(self, tenant_id: str, campaign_id: str) -> UsageSummary:
        """usage_summary of the campaign for today, in its time zone. Raises UnknownCampaign."""
        with self._db.transaction(tenant_id, write=False, snapshot=True) as s:
            row = campaigns.get(s, tenant_id, campaign_id)
            day = budget.local_day(self._now(), row.timezone)
            return costs.usage_summary(s, tenant_id, campaign_id, day, day)

    # ---- reviews -----------------------------------------------------------------------------

    def record_verdict(self, ref: TaskRef, task_type: str, verdict: Verdict) -> None:
        """Audit the verdict the workflow applied to a task (judge.verdict), exactly as it was decided."""
        with self._db.transaction(ref.tenant_id, write=True) as s:
            campaigns.get(s, ref.tenant_id, ref.campaign_id)
            audit.append(
                s,
                tenant_id=ref.tenant_id,
                actor="judge",
                action="judge.verdict",
                subject=f"task/{ref.task_id}",
                detail={
                    "campaign_id": ref.campaign_id,
                    "agent_id": ref.agent_id,
                    "task_type": task_type,
                    "decision": verdict.decision,
                    "confidence": round(verdict.confidence, 6),
                    "components": verdict.components.model_dump(mode="json"),
                    "flags": [f"{f.rule}:{f.severity}" for f in verdict.flags],
                    **_feedback_detail(verdict),
                },
                now=self._now(),
            )

    def record_review(self, rec: ReviewRecord) -> None:
        """Upsert the review; every change of decision is kept (review_events) and audited (review.<action>).

        A human decision (approved, edited, rejected) on a draft escalated on confidence alone recomputes the
        agent's band calibration for the task type in the same transaction (see band_calibration); a change of
        its shifts is audited as judge.calibration."""
        with self._db.transaction(rec.tenant_id, write=True) as s:
            now = self._now()
            campaigns.get(s, rec.tenant_id, rec.campaign_id)
            campaigns.require_agent(s, rec.tenant_id, rec.agent_id)
            decided = reviews.record(s, rec, now) and rec.state in calibration.HUMAN_DECISIONS
            if decided and calibration.counts_for_feedback(rec.verdict.model_dump(mode="json")):
                calibration.recompute(s, rec, now)

    def band_calibration(self, tenant_id: str, agent_id: str, task_type: str) -> BandCalibration | None:
        """Learning feedback for the judge: the band shifts reviewers' recent decisions on the agent's escalated
        drafts of the task type call for (schemas.policy.calibrate), with the counts and the reason. None until a
        human has decided one; shifts stay 0 below FEEDBACK_MIN_REVIEWS decisions."""
        with self._db.transaction(tenant_id, write=False) as s:
            return calibration.get(s, tenant_id, agent_id, task_type)

    def get_review(self, tenant_id: str, task_id: str) -> ReviewRecord | None:
        with self._db.transaction(tenant_id, write=False) as s:
            return reviews.get(s, tenant_id, task_id)

    def pending_reviews(self, tenant_id: str) -> list[ReviewRecord]:
        """The tenant's pending reviews, riskiest first, then the earliest deadline."""
        with self._db.transaction(tenant_id, write=False) as s:
            return reviews.pending(s, tenant_id)

    def review_events(self, tenant_id: str, task_id: str) -> list[ReviewEvent]:
        """Every decision on the task's review, oldest first: who, when, and what an edit changed."""
        with self._db.transaction(tenant_id, write=False) as s:
            return reviews.events(s, tenant_id, task_id)

    # ---- tasks -------------------------------------------------------------------------------

    def record_task(
        self,
        ref: TaskRef,
        key: str,
        task_type: str,
        platform: str,
        status: str,
        attempt: int,
        confidence: float | None,
    ) -> None:
        tasks.check_status(status)
        with self._db.transaction(ref.tenant_id, write=True) as s:
            now = self._now()
            campaigns.get(s, ref.tenant_id, ref.campaign_id)
            recorded = {
                "key": key,
                "task_type": task_type,
                "platform": platform,
                "status": status,
                "confidence": confidence,
                "attempt": attempt,
            }
            tasks.record(s, ref, recorded, now)

    def get_task(self, tenant_id: str, task_id: str) -> TaskRecord | None:
        with self._db.transaction(tenant_id, write=False) as s:
            return tasks.get(s, tenant_id, task_id)

    def list_tasks(self, tenant_id: str, campaign_id: str) -> list[TaskRecord]:
        with self._db.transaction(tenant_id, write=False) as s:
            return tasks.of_campaign(s, tenant_id, campaign_id)

    # ---- audit -------------------------------------------------------------------------------

    def append_audit(self, tenant_id: str, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        """Append to the tenant's chain (the tenant row is created if missing: audit never refuses)."""
        with self._db.transaction(tenant_id, write=True) as s:
            audit.append(
                s, tenant_id=tenant_id, actor=actor, action=action, subject=subject, detail=detail, now=self._now()
            )

    def audit_entries(self, tenant_id: str, limit: int = 100) -> list[AuditEntry]:
        """The newest `limit` entries, oldest first."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self._db.transaction(tenant_id, write=False) as s:
            return audit.entries(s, tenant_id, limit)

    def verify_audit(self, tenant_id: str) -> AuditCheck:
        with self._db.transaction(tenant_id, write=False, snapshot=True) as s:
            return audit.verify(s, tenant_id)

    # ---- MCP: pinned tool definitions, kept results -----------------------------------------

    def mcp_pin(self, server: str) -> mcp.PinRecord | None:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=False) as s:
            return mcp.get_pin(s, server)

    def mcp_pins(self) -> list[mcp.PinRecord]:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=False) as s:
            return mcp.list_pins(s)

    def approve_mcp_server(self, server: str, digest: str, tools: list[dict[str, Any]], actor: str) -> mcp.PinRecord:
        """Pin `tools` (hash `digest`) as the server's approved definitions; audited on the platform chain."""
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            return mcp.approve(s, server, digest, tools, actor, self._now())

    def quarantine_mcp_server(
        self, server: str, digest: str, tools: list[dict[str, Any]], changes: dict[str, Any]
    ) -> mcp.PinRecord | None:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            return mcp.quarantine(s, server, digest, tools, changes, self._now())

    def keep_result(self, tenant_id: str, server: str, tool: str, body: dict[str, Any]) -> tuple[str, int]:
        """Keep a large tool result outside workflow history; returns (key, size in bytes)."""
        with self._db.transaction(tenant_id, write=True) as s:
            return mcp.keep_result(s, tenant_id, server, tool, body, self._now())

    def kept_result(self, tenant_id: str, key: str) -> dict[str, Any] | None:
        with self._db.transaction(tenant_id, write=False) as s:
            return mcp.get_result(s, tenant_id, key)

    # ---- ingress: webhook deliveries and mention routes (platform scope) ----------------------

    def claim_delivery(self, platform: str, event_id: str, account_id: str) -> bool:
        """Record a platform event as received; False when it was received before (a replay)."""
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            return deliveries.claim(s, platform, event_id, account_id, self._now())

    def release_delivery(self, platform: str, event_id: str) -> None:
        """Undo a claim whose handling failed, so the platform's retry is handled rather than refused."""
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            deliveries.release(s, platform, event_id)

    def forget_deliveries(self, before: datetime) -> int:
        """Drop delivery claims received before `before`; returns how many."""
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            return deliveries.forget_before(s, before)

    def mention_routes(self, platform: str, handle: str) -> list[MentionRoute]:
        """The campaigns whose persona has `handle` on `platform` (any status), oldest first."""
        with self._db.transaction(mcp.PLATFORM_TENANT, write=False) as s:
            return routes.of_handle(s, platform, handle)

    def routed_handles(self, platform: str) -> list[str]:
        """Every handle some campaign has on `platform` (normalized: lowercase, no @)."""
        with self._db.transaction(mcp.PLATFORM_TENANT, write=False) as s:
            return routes.handles_on(s, platform)

    # ---- outcomes ----------------------------------------------------------------------------

    def record_outcome(self, ref: TaskRef, task_type: str, status: str, human_decided: bool) -> None:
        """Idempotent per (task_id, status)."""
        tasks.check_status(status)
        with self._db.transaction(ref.tenant_id, write=True) as s:
            campaigns.get(s, ref.tenant_id, ref.campaign_id)
            campaigns.require_agent(s, ref.tenant_id, ref.agent_id)
            outcomes.record(s, ref, task_type, status, human_decided, self._now())

    def success_rate(self, tenant_id: str, agent_id: str, task_type: str) -> SuccessRate:
        """Posterior mean of a Beta(8, 2) prior updated with published (success) and rejected (failure)."""
        with self._db.transaction(tenant_id, write=False) as s:
            return outcomes.success_rate(s, tenant_id, agent_id, task_type)

    # ---- people and stops (platform scope: chimera/db/users.py) -------------------------------

    def add_user(self, name: str, tenant_id: str, role: Role, key_id: str, public_key: str, by: str) -> None:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            users.add_user(s, name, tenant_id, role, key_id, public_key, by, self._now())
            audit.append(
                s,
                tenant_id=mcp.PLATFORM_TENANT,
                actor=by,
                action="user_add",
                subject=name,
                detail={"tenant_id": tenant_id, "role": role, "key_id": key_id},
                now=self._now(),
            )

    def list_users(self, tenant_id: str | None = None) -> list[users.UserRecord]:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=False) as s:
            return users.list_users(s, tenant_id)

    def get_user(self, name: str) -> users.UserRecord:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=False) as s:
            return users.get_user(s, name)

    def revoke_user(self, name: str, by: str) -> None:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            users.revoke_user(s, name, by, self._now())
            audit.append(
                s,
                tenant_id=mcp.PLATFORM_TENANT,
                actor=by,
                action="user_revoke",
                subject=name,
                detail={},
                now=self._now(),
            )

    def rotate_key(self, name: str, key_id: str, public_key: str, by: str) -> None:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            users.rotate_key(s, name, key_id, public_key, self._now())
            audit.append(
                s,
                tenant_id=mcp.PLATFORM_TENANT,
                actor=by,
                action="user_rotate",
                subject=name,
                detail={"key_id": key_id},
                now=self._now(),
            )

    def key_holder(self, key_id: str) -> KeyHolder | None:
        """chimera.access.authorize.Directory"""
        with self._db.transaction(mcp.PLATFORM_TENANT, write=False) as s:
            return users.key_holder(s, key_id)

    def use(self, request_id: str, recipient: str, attempt_key: str, user: str, at: datetime) -> bool:
        """chimera.access.authorize.Nonces"""
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            return users.use_nonce(s, request_id, recipient, attempt_key, user, at)

    def record_scope_stop(self, stop: users.ScopeStop) -> tuple[users.ScopeStop, bool]:
        """Record a stop once waiting for sends in flight (the stop gate); (the stop, whether they all finished)."""
        with stop_gate.held_exclusive(self._db) as lock, self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            quiet = lock(s)
            # Stamped once the sends in flight are done: everything sent is before this moment, nothing after.
            recorded = users.record_stop(s, dataclasses.replace(stop, stopped_at=self._now()))
            audit.append(
                s,
                tenant_id=mcp.PLATFORM_TENANT,
                actor=stop.stopped_by,
                action=f"{stop.scope}_stop",
                subject=_scope_name(stop.scope, stop.tenant_id, stop.agent_id),
                detail={"reason": stop.reason, "request_id": stop.request_id, "in_flight_finished": quiet},
                now=self._now(),
            )
            return recorded, quiet

    def lift_scope_stop(self, scope: str, tenant_id: str | None, agent_id: str | None, by: str, reason: str) -> int:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=True) as s:
            lifted = users.lift_stops(s, scope, tenant_id, agent_id, by, reason, self._now())
            audit.append(
                s,
                tenant_id=mcp.PLATFORM_TENANT,
                actor=by,
                action=f"{scope}_stop_lifted",
                subject=_scope_name(scope, tenant_id, agent_id),
                detail={"reason": reason, "lifted": lifted},
                now=self._now(),
            )
            return lifted

    def active_stops(self, tenant_id: str | None = None, agent_id: str | None = None) -> list[users.ScopeStop]:
        with self._db.transaction(mcp.PLATFORM_TENANT, write=False) as s:
            return users.active_stops(s, tenant_id, agent_id)

    def sending(self, ref: TaskRef) -> AbstractAsyncContextManager[None]:
        """Hold the stop gate while a post or payment goes out; raises CampaignHalted if a stop covers `ref`: its
        agent's, its tenant's, the fleet's, or its own campaign's emergency stop."""

        def check(s: Session) -> None:
            stops = users.active_stops(s, ref.tenant_id, ref.agent_id)
            if stops:
                raise CampaignHalted(stops[0].describe())
            # The same transaction reads the campaign's own status, as its tenant (one connection a send: a busy
            # worker must not need two pooled connections for each post in flight).
            if self._db.dialect == "postgresql":
                s.execute(select(func.set_config(TENANT_SETTING, ref.tenant_id, True)))
            status = s.execute(
                select(Campaign.status).where(Campaign.tenant_id == ref.tenant_id, Campaign.id == ref.campaign_id)
            ).scalar_one_or_none()
            if status == "stopped":
                raise CampaignHalted(f"campaign {ref.tenant_id}/{ref.campaign_id} was stopped")

        return stop_gate.held_shared(self._db, check)

    # ---- conversations: short-term memory (chimera/db/conversations.py) ----------------------

    def record_exchange(self, tenant_id: str, agent_id: str, turn: ConversationTurn) -> bool:
        """Keep one exchange with an author, once per (agent, platform, mention id); True when it is new.

        Recording the same mention again fills in `replied` / `reply_post_id` only where they are still empty
        (a retry after publishing) and returns False. ValueError for an `at` that is not ISO 8601 with an offset,
        a `said` or `replied` over 10,000 characters, or a blank id; UnknownAgent for an agent not in the store."""
        with self._db.transaction(tenant_id, write=True) as s:
            campaigns.require_agent(s, tenant_id, agent_id)
            return conversations.record(s, tenant_id, agent_id, turn, self._now())

    def conversation(
        self, tenant_id: str, agent_id: str, platform: str, author: str, limit: int = 10
    ) -> list[ConversationTurn]:
        """The newest `limit` turns of the agent with `author` (case-blind, with or without '@') on `platform`,
        oldest first (by time, then mention id)."""
        with self._db.transaction(tenant_id, write=False) as s:
            return conversations.with_author(s, tenant_id, agent_id, platform, author, limit)

    def turns_before(self, tenant_id: str, agent_id: str, before: datetime, limit: int = 200) -> list[ConversationTurn]:
        """The agent's turns written strictly before `before` (timezone-aware), oldest first: those due to move to
        semantic memory."""
        with self._db.transaction(tenant_id, write=False) as s:
            return conversations.before(s, tenant_id, agent_id, before, limit)

    def forget_turns(self, tenant_id: str, agent_id: str, platform: str, mention_ids: Sequence[str]) -> int:
        """Delete the agent's turns of those mentions on `platform` (once archived); returns how many were deleted."""
        with self._db.transaction(tenant_id, write=True) as s:
            return conversations.forget(s, tenant_id, agent_id, platform, mention_ids)

    # ---- payments (chimera/db/payments.py) ---------------------------------------------------

    def reserve_payment(self, inp: PaymentInput, prepared: Prepared, defaults: payments.Caps) -> PaymentReservation:
        """Count a payment against its agent's and tenant's daily caps (the campaign's local day), or refuse it."""
        with self._db.transaction(inp.tenant_id, write=True) as s:
            campaigns.get(s, inp.tenant_id, inp.campaign_id)
            now = self._now()
            day = budget.local_day(now, prepared.timezone)
            return payments.reserve(s, inp, prepared, day, defaults, now)

    def move_payment(
        self,
        inp: PaymentInput,
        status: PaymentStatus,
        actor: str,
        reason: str,
        *,
        tx_hash: str | None = None,
        block_number: int | None = None,
        decided_by: str | None = None,
        detail: dict[str, object] | None = None,
        credit: Prepared | None = None,
    ) -> payments.PaymentLine:
        """Move a payment to `status` and audit it; with `credit`, also credit the payee agent's campaign."""
        with self._db.transaction(inp.tenant_id, write=True) as s:
            now = self._now()
            line = payments.move(
                s,
                inp,
                status,
                actor,
                reason,
                now,
                tx_hash=tx_hash,
                block_number=block_number,
                decided_by=decided_by,
                detail=detail,
            )
            if credit is not None and tx_hash is not None:
                payments.credit(s, inp, credit, tx_hash, block_number, now)
            return line

    def payment_history(self, tenant_id: str, agent_id: str, to_address: str) -> payments.History:
        with self._db.transaction(tenant_id, write=False) as s:
            return payments.history(s, tenant_id, agent_id, to_address)

    def payment(self, tenant_id: str, payment_id: str, direction: str = "out") -> payments.PaymentLine | None:
        with self._db.transaction(tenant_id, write=False) as s:
            return payments.get(s, tenant_id, payment_id, direction)

    def list_payments(
        self, tenant_id: str, campaign_id: str | None = None, limit: int = 100
    ) -> list[payments.PaymentLine]:
        with self._db.transaction(tenant_id, write=False) as s:
            return payments.lines(s, tenant_id, campaign_id, limit)

    def campaign_money(self, tenant_id: str, campaign_id: str) -> payments.CampaignMoney:
        with self._db.transaction(tenant_id, write=False) as s:
            return payments.campaign_money(s, tenant_id, campaign_id)

    def set_payment_limit(
        self, tenant_id: str, scope: str, scope_id: str, daily_units: int | None, actor: str
    ) -> tuple[int | None, int | None]:
        if scope == "tenant" and scope_id != tenant_id:
            raise ValueError(f"a tenant cap's scope id is the tenant itself ({tenant_id!r}), not {scope_id!r}")
        with self._db.transaction(tenant_id, write=True) as s:
            if scope == "agent":
                campaigns.require_agent(s, tenant_id, scope_id)
            return payments.set_limit(s, tenant_id, scope, scope_id, daily_units, actor, self._now())

    def payment_caps(self, tenant_id: str, agent_id: str, defaults: payments.Caps) -> payments.Caps:
        with self._db.transaction(tenant_id, write=False) as s:
            return payments.caps(s, tenant_id, agent_id, defaults)


def _scope_name(scope: str, tenant_id: str | None, agent_id: str | None) -> str:
    return {"fleet": "fleet", "tenant": f"tenant:{tenant_id}"}.get(scope, f"agent:{tenant_id}/{agent_id}")


def _feedback_detail(verdict: Verdict) -> dict[str, Any]:
    """What learning feedback did to a verdict, for its audit entry (nothing for a verdict without it)."""
    cal = verdict.calibration
    if cal is None:
        return {}
    bands = cal.bands_after.model_dump(mode="json") if cal.bands_after else None
    detail: dict[str, Any] = {"approve_shift": cal.approve_shift, "escalate_shift": cal.escalate_shift}
    detail |= {"reviews": cal.reviews, "bands": bands, "uncalibrated_decision": verdict.uncalibrated_decision}
    return {"feedback": detail}


__all__ = ["StateStore"]
