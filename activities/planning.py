"""Planner-side activities: observe the platforms, plan the task DAG, record campaign changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError
from temporalio import activity

from activities.alerting import AlertSender
from activities.errors import failure, model_failure
from activities.registry import implements
from activities.spend import CallLedger
from chimera.accounts import AccountTaken, InvalidAccount
from chimera.accounts.directory import AccountDirectory
from chimera.db import StateStore
from chimera.mcp import CallContext, McpError, McpHost
from chimera.mcp.host import arguments_hash
from chimera.mcp.shared_reads import SharedReads
from chimera.memory.context import AgentMemory
from chimera.models.base import ModelError, ModelProvider
from chimera.models.structured import plan_problems
from chimera.safety.rules import SafetyRules
from schemas.activity_table import Activities, Failure
from schemas.alerts import stop_alert
from schemas.campaign import CampaignSpec
from schemas.campaign_run import ObserveRequest
from schemas.events import ControlAudit
from schemas.news import MAX_SEEN, BreakingNews, NewsCheck, NewsFound
from schemas.plan import Headline, Mention, Observation, TaskPlan, Trend
from schemas.task import PlanRequest, TaskRef

# Where each platform's server publishes what the planner reads, per account: `{account}` is the campaign's own.
MENTION_RESOURCES = {
    "twitter": "twitter://accounts/{account}/mentions/unreplied",
    "instagram": "instagram://accounts/{account}/comments/unreplied",
}
TREND_RESOURCES = {
    "twitter": "twitter://accounts/{account}/trends/current",
    "instagram": "instagram://accounts/{account}/trends/current",
}
# News trends feed every campaign (Instagram has no trends API of its own): server, tool, arguments.
NEWS_TRENDS = ("news", "trending_topics", {"limit": 5})
# The newest headlines: what a cycle sees, and what the news watch compares with what it saw before.
NEWS_HEADLINES = ("news", "headlines", {"limit": 20})


class PlannerActivities:
    def __init__(
        self,
        store: StateStore,
        mcp: McpHost,
        model: ModelProvider,
        reads: SharedReads | None = None,
        plan_estimate_usd: float = 0.015,
        accounts: AccountDirectory | None = None,
        alerts: AlertSender | None = None,
        memory: AgentMemory | None = None,
        rules: SafetyRules | None = None,
    ) -> None:
        self._memory = memory  # None: plan without memory (some tests)
        self._rules = rules or SafetyRules.default()  # recognises topics in headlines as the judge does
        self._store = store
        self._alerts = alerts or AlertSender(None, store)
        self._accounts = accounts or AccountDirectory.of(store)
        self._mcp = mcp
        self._model = model
        # Campaigns of one tenant observing within seconds of each other share the platform reads.
        self._reads = reads or SharedReads()
        self._ledger = CallLedger(store)
        self._plan_estimate = plan_estimate_usd

    @implements(Activities.observe)
    async def observe(self, req: ObserveRequest) -> Observation:
        """Read the campaign's own accounts' mentions and trends; a source that fails is reported, the others
        still count. The host binds each read to the account the campaign's agent holds (specs/accounts.md)."""
        obs = Observation()
        record = await asyncio.to_thread(self._store.get_campaign, req.tenant_id, req.campaign_id)
        context = CallContext(
            tenant_id=req.tenant_id,
            actor="planner",
            task_id=req.campaign_id,
            agent_id=record.agent_id if record is not None else None,
            handles=dict(req.handles),
        )
        for platform in req.platforms:
            account = await self._account(platform, context, obs.errors)
            if account is None:
                continue
            mentions = await self._read(platform, MENTION_RESOURCES.get(platform), account, obs.errors, context)
            obs.mentions.extend(_parse_items(mentions, Mention, platform, "mention", obs.errors))
            trends = await self._read(platform, TREND_RESOURCES.get(platform), account, obs.errors, context)
            obs.trends.extend(_parse_items(trends, Trend, platform, "trend", obs.errors))
        obs.trends.extend(await self._news_trends(context, obs.errors))
        obs.headlines = await self._headlines(context, obs.errors)
        return obs

    async def _headlines(self, context: CallContext, errors: list[str], purpose: str = "observe") -> list[Headline]:
        """The newest headlines. Reads are shared per purpose: a news watch never takes the cycle's read (seconds
        old) for a fresh look, but the watches of a tenant's campaigns share theirs."""
        server, tool, args = NEWS_HEADLINES
        if server not in self._mcp.server_names:
            return []
        try:
            result = await self._reads.get(
                (context.tenant_id, server, tool, arguments_hash(args), purpose),
                lambda: self._mcp.call_tool(server, tool, dict(args), context),
            )
        except McpError as exc:
            activity.logger.warning("news headlines failed: %s", exc)
            errors.append(f"{server}.{tool}: {exc}")
            return []
        return _parse_items(result.data.get("articles"), Headline, server, "headline", errors)

    @implements(Activities.watch_news)
    async def watch_news(self, req: NewsCheck) -> NewsFound:
        """Headlines new since the last look that name one of the campaign's topics or banned topics (seed 1.2:
        breaking news re-plans mid-cycle). The first look only takes note of what is there."""
        errors: list[str] = []
        context = CallContext(tenant_id=req.tenant_id, actor="planner", task_id=req.campaign_id, agent_id=req.agent_id)
        headlines = await self._headlines(context, errors, purpose="watch")
        seen = set(req.seen)
        breaking: list[BreakingNews] = []
        for h in headlines if req.seen else []:
            if h.id in seen:
                continue
            text = " ".join(p for p in [h.title, h.summary, h.topic or ""] if p)
            banned = self._rules.named_topic(text, req.banned_topics)
            matched = banned or self._rules.named_topic(text, req.topics)
            if matched is not None:
                breaking.append(BreakingNews(headline=h, matched=matched, banned=banned is not None))
        ids = [*req.seen, *(h.id for h in reversed(headlines) if h.id not in seen)]
        return NewsFound(breaking=breaking, seen=ids[-MAX_SEEN:], errors=errors)

    async def _account(self, server: str, context: CallContext, errors: list[str]) -> str | None:
        try:
            account = await self._mcp.account(server, context)
        except McpError as exc:
            activity.logger.warning("observe %s: %s", server, exc)
            errors.append(str(exc))
            return None
        if account is None:
            errors.append(f"{server}: its allowlist entry binds no account, so it has no per-account resources")
        return account

    async def _read(
        self, server: str, template: str | None, account: str, errors: list[str], context: CallContext
    ) -> Any:
        if template is None:
            errors.append(f"{server}: no known resource to read")
            return []
        # The key names the account: campaigns of one tenant share a read of one account, never of another's.
        uri = template.replace("{account}", account)
        try:
            return await self._reads.get(
                (context.tenant_id, server, uri), lambda: self._mcp.read_resource(server, uri, context)
            )
        except McpError as exc:
            activity.logger.warning("observe %s failed: %s", uri, exc)
            errors.append(f"{uri}: {exc}")
            return []

    async def _news_trends(self, context: CallContext, errors: list[str]) -> list[Trend]:
        server, tool, args = NEWS_TRENDS
        if server not in self._mcp.server_names:
            return []  # news is optional: a deployment may leave it off the allowlist
        try:
            result = await self._reads.get(
                (context.tenant_id, server, tool, arguments_hash(args)),
                lambda: self._mcp.call_tool(server, tool, dict(args), context),
            )
        except McpError as exc:
            activity.logger.warning("observe news failed: %s", exc)
            errors.append(f"{server}.{tool}: {exc}")
            return []
        topics = result.data.get("topics")
        items = [{"topic": t.get("topic"), "volume": t.get("count", 0)} for t in topics or [] if isinstance(t, dict)]
        return _parse_items(items, Trend, server, "trend", errors)

    @implements(Activities.plan)
    async def plan(self, req: PlanRequest) -> TaskPlan:
        """Plan on the planning tier. Planning spends the campaign's budget like a task: it reserves first
        (no budget left, no planning call), and settles at what its calls cost, failed attempts included."""
        ref = plan_ref(req)
        if req.daily_budget_usd is not None:  # absent only in inputs recorded before planning was budgeted
            reservation = await asyncio.to_thread(
                self._store.reserve, ref, self._plan_estimate, req.daily_budget_usd, req.timezone
            )
            if not reservation.ok:
                raise failure(Failure.BUDGET_EXHAUSTED, f"no budget left to plan: {reservation.reason}")
        req = await self._with_memory(req)
        try:
            planned = await self._model.plan(req, attempt=activity.info().attempt)
        except ModelError as exc:
            await self._ledger.keep(ref, exc.calls, req.timezone, settle=True)
            raise model_failure(exc, Failure.INVALID_PLAN) from exc
        await self._ledger.keep(ref, planned.calls, req.timezone, settle=True)
        problems = plan_problems(planned.plan, req)
        if problems:
            raise failure(Failure.INVALID_PLAN, "the planner's plan is invalid: " + "; ".join(problems))
        return planned.plan

    async def _with_memory(self, req: PlanRequest) -> PlanRequest:
        """The request with the agent's recent memories and the campaign's learnings (a failing memory backend
        costs them, not the plan)."""
        if self._memory is None:
            return req
        try:
            memories, learnings = await asyncio.to_thread(self._memory.for_planning, req.tenant_id, req.persona.id)
        except Exception as exc:  # any backend's failure: plan without memory
            activity.logger.warning("plan %s: without memory: %s", req.campaign_id, exc)
            return req
        return req.model_copy(update={"memories": memories, "learnings": learnings})

    @implements(Activities.register_campaign)
    def register_campaign(self, spec: CampaignSpec) -> None:
        """Claim the persona's platform accounts for its agent, then upsert the campaign. A handle another tenant
        or agent holds refuses the registration (nothing is registered, so no mention is routed to it)."""
        try:
            self._accounts.claim(spec.tenant_id, spec.agent_id, spec.persona.handles)
        except (AccountTaken, InvalidAccount) as exc:
            kind = Failure.ACCOUNT_TAKEN if isinstance(exc, AccountTaken) else Failure.INVALID_ACCOUNT
            self._store.append_audit(
                spec.tenant_id, "system", "account.refused", f"campaign/{spec.campaign_id}", {"reason": str(exc)}
            )
            raise failure(kind, f"campaign not registered: {exc}") from exc
        self._store.ensure_campaign(spec)
        self._index_persona(spec)

    def _index_persona(self, spec: CampaignSpec) -> None:
        """SOUL.md and the voice examples into semantic memory (tier 1), once per content."""
        if self._memory is None:
            return
        try:
            added = self._memory.index_persona(spec.tenant_id, spec.agent_id, spec.persona)
        except Exception as exc:  # any backend's failure: the campaign runs; the next registration retries
            activity.logger.warning("campaign %s: persona not indexed: %s", spec.campaign_id, exc)
            return
        if added:
            activity.logger.info("campaign %s: %d persona memories indexed", spec.campaign_id, added)

    @implements(Activities.record_control)
    def record_control(self, entry: ControlAudit) -> None:
        """Persist a control change; the store audits each one (status, budget, goals)."""
        reason = str(entry.detail.get("reason", ""))
        if entry.campaign_status is not None:
            self._store.set_campaign_status(
                entry.tenant_id, entry.campaign_id, entry.campaign_status, entry.actor, reason
            )
            if entry.action == "emergency_stop":
                self._alert_stop(entry, reason)
        elif entry.action == "budget":
            to_usd = entry.detail.get("to_usd")
            assert isinstance(to_usd, float | int)
            self._store.set_daily_budget(entry.tenant_id, entry.campaign_id, float(to_usd), entry.actor)
        elif entry.action == "goals":
            goals = entry.detail.get("goals")
            assert isinstance(goals, list)
            self._store.set_goals(entry.tenant_id, entry.campaign_id, goals, entry.actor)
        else:
            self._store.append_audit(entry.tenant_id, entry.actor, entry.action, entry.campaign_id, entry.detail)

    def _alert_stop(self, entry: ControlAudit, reason: str) -> None:
        """A campaign's own emergency stop alerts; one that a scope stop caused is in that stop's alert already."""
        request_id = str(entry.detail.get("request_id", ""))
        if request_id and any(
            s.request_id == request_id for s in self._store.active_stops(entry.tenant_id, entry.agent_id)
        ):
            return
        alert = stop_alert(
            scope="campaign",
            request_id=request_id or f"{entry.campaign_id}-{datetime.now(UTC):%Y%m%dT%H%M%S}",
            actor=entry.actor,
            reason=reason,
            raised_at=datetime.now(UTC).isoformat(),
            tenant_id=entry.tenant_id,
            agent_id=entry.agent_id,
            campaign_id=entry.campaign_id,
        )
        self._alerts.send(alert)


Item = TypeVar("Item", Mention, Trend, Headline)


def _parse_items(raw: Any, model: type[Item], platform: str, what: str, errors: list[str]) -> list[Item]:
    """Untrusted tool output: keep the items that validate, report the rest."""
    if not isinstance(raw, list):
        errors.append(f"{platform}: {what}s are not a list")
        return []
    items: list[Item] = []
    for i, item in enumerate(raw):
        try:
            data = dict(item) if isinstance(item, dict) else item
            if isinstance(data, dict):
                data.setdefault("platform", platform)
            items.append(model.model_validate(data))
        except (ValidationError, TypeError, ValueError) as exc:
            errors.append(f"{platform}: {what} #{i} ignored: {str(exc).splitlines()[0]}")
    return items


def plan_ref(req: PlanRequest) -> TaskRef:
    """Planning's spend is booked like a task's, under one id per plan (the key prefix is unique per plan)."""
    return TaskRef(
        task_id=f"plan:{req.campaign_id}:{req.key_prefix}",
        tenant_id=req.tenant_id,
        campaign_id=req.campaign_id,
        agent_id=req.persona.id,
        campaign_workflow_id="",
    )
