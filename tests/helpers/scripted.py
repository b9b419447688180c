"""Scripted stand-ins for Chimera's activities, registered under the activity table's names.

Workflow tests check orchestration (ordering, signals, timers, re-plans), so each test scripts
what the planner, judge and budget say; the real activities have their own tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from chimera.access.authorize import authorize as check_request
from schemas.access import Authorization, AuthorizeRequest
from schemas.activity_table import Activities, Failure
from schemas.campaign import CampaignSpec
from schemas.campaign_run import ObserveRequest
from schemas.events import ControlAudit, ScopeMembers, ScopeStop, StopRecord, StopRecorded
from schemas.memory import Reflection, ReflectRequest
from schemas.news import BreakingNews, NewsCheck, NewsFound
from schemas.payment import (
    AssessRequest,
    PaymentAssessment,
    PaymentConfirmation,
    PaymentEvent,
    PaymentInput,
    PaymentPolicy,
    PaymentReservation,
    PaymentSettle,
    Prepared,
    ReserveRequest,
    SendRequest,
    WalletSent,
)
from schemas.persona import Persona
from schemas.plan import Headline, Mention, Observation, PlannedTask, TaskPlan, Usage
from schemas.policy import ConfidenceComponents, JudgeScores, SafetyFlag
from schemas.review import ReviewRecord
from schemas.task import (
    BudgetRequest,
    CommitInput,
    CommitResult,
    ContentTaskInput,
    JudgeInput,
    OutcomeRecord,
    PlanRequest,
    PublishInput,
    PublishResult,
    Reservation,
    SettleRequest,
    StateRead,
    TaskResult,
    VerdictRecord,
)
from tests.helpers.identity import DIRECTORY

USAGE = Usage(model="scripted")
HIGH = JudgeScores(
    components=ConfidenceComponents(model_probability=0.97, persona_similarity=0.95, safety=1.0, historical_success=0.8)
)
MEDIUM = JudgeScores(
    components=ConfidenceComponents(model_probability=0.85, persona_similarity=0.8, safety=1.0, historical_success=0.8)
)


def banned(detail: str) -> JudgeScores:
    return JudgeScores(
        components=HIGH.components,
        flags=[SafetyFlag(rule="banned_topic", severity="high", where="output", detail=detail)],
    )


def persona() -> Persona:
    return Persona(
        id="mira-okafor",
        name="Mira Okafor",
        handles={"twitter": "@mira_threads"},
        voice="warm, witty, thrift-obsessed",
        boundaries=["no politics"],
        banned_topics=["crypto"],
        examples=["Thrifted this blazer for $6 and I will not be taking questions #thriftflip"],
    )


def spec(**overrides: object) -> CampaignSpec:
    base: dict[str, object] = {
        "tenant_id": "acme",
        "campaign_id": "spring",
        "name": "Spring thrift",
        "persona": persona(),
        "goals": ["Promote the thrift-flip challenge"],
        "platforms": ["twitter"],
        "daily_budget_usd": 5.0,
        "cycle_interval_seconds": 3600,
        "review_deadline_seconds": 72 * 3600,
    }
    base.update(overrides)
    return CampaignSpec.model_validate(base)


def post(key: str, *, depends_on: list[str] | None = None, topic: str | None = None) -> PlannedTask:
    return PlannedTask(
        key=key,
        task_type="post",
        platform="twitter",
        brief=f"post {key}",
        topic=topic,
        depends_on=depends_on or [],
    )


def reply(key: str, mention_id: str = "m1") -> PlannedTask:
    mention = Mention(id=mention_id, platform="twitter", author="ana", text="hi!", created_at="2026-01-01T00:00:00Z")
    return PlannedTask(key=key, task_type="reply", platform="twitter", brief="answer", mention=mention)


PAYEE = "0x000000000000000000000000000000000000bEEF"


@dataclass
class Script:
    """What the scripted activities answer, and what they saw."""

    plans: list[list[PlannedTask]] = field(default_factory=list)  # one per cycle; last repeats
    scores: dict[str, JudgeScores] = field(default_factory=dict)  # by task key prefix-free suffix
    default_scores: JudgeScores = HIGH
    edit_scores: dict[str, JudgeScores] = field(default_factory=dict)  # a reviewer's edit, by its text; else HIGH
    budget_ok: bool = True
    execute_gate: asyncio.Event | None = None  # when set, execute waits for it (to stop mid-activity)
    conflict_keys: set[str] = field(default_factory=set)
    answered_keys: set[str] = field(default_factory=set)  # replies another task committed first
    observe_failures: int = 0  # the first n observe calls fail for good
    plan_failures: int = 0  # the first n plan calls fail with InvalidPlan
    replan_failures: int = 0  # the first n re-plans fail for good
    published: list[PublishInput] = field(default_factory=list)
    plan_requests: list[PlanRequest] = field(default_factory=list)
    audits: list[ControlAudit] = field(default_factory=list)
    reviews: list[ReviewRecord] = field(default_factory=list)
    judged: list[JudgeInput] = field(default_factory=list)
    verdicts: list[VerdictRecord] = field(default_factory=list)
    outcomes: list[OutcomeRecord] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    on_execute: Callable[[ContentTaskInput], None] | None = None
    authorizations: list[tuple[AuthorizeRequest, Authorization]] = field(default_factory=list)
    authorize_down: bool = False  # the directory cannot be read: authorize fails for good
    scope_members: ScopeMembers = field(default_factory=ScopeMembers)  # what find_in_scope finds
    stops: list[StopRecord] = field(default_factory=list)
    headlines: list[Headline] = field(default_factory=list)  # what every observe sees
    news: list[list[BreakingNews]] = field(default_factory=list)  # what each news watch finds, in turn
    news_checks: list[NewsCheck] = field(default_factory=list)
    reflections: list[ReflectRequest] = field(default_factory=list)
    # Payments (PaymentWorkflow's activities): what the CFO Judge is told, what the wallet sells, what was recorded.
    payment_facts: dict[str, object] = field(default_factory=dict)  # PaymentAssessment fields to change
    premium_headlines: list[Headline] = field(default_factory=list)  # what a premium news purchase buys
    payment_events: list[PaymentEvent] = field(default_factory=list)
    settled_payments: list[PaymentSettle] = field(default_factory=list)

    def scores_for(self, key: str) -> JudgeScores:
        for suffix, scores in self.scores.items():
            if key.endswith(suffix):
                return scores
        return self.default_scores

    def activities(self) -> list[Callable[..., object]]:
        script = self

        @activity.defn(name=Activities.observe.name)
        async def observe(req: ObserveRequest) -> Observation:
            if script.observe_failures > 0:
                script.observe_failures -= 1
                raise ApplicationError("the platform is down", type="Unavailable", non_retryable=True)
            return Observation(headlines=list(script.headlines))

        @activity.defn(name=Activities.watch_news.name)
        async def watch_news(check: NewsCheck) -> NewsFound:
            script.news_checks.append(check)
            found = script.news.pop(0) if script.news else []
            return NewsFound(breaking=found, seen=[*check.seen, *(b.headline.id for b in found)])

        @activity.defn(name=Activities.reflect.name)
        async def reflect(req: ReflectRequest) -> Reflection:
            script.reflections.append(req)
            return Reflection(measured=[p.task_id for p in req.due], lessons=len(req.due))

        @activity.defn(name=Activities.plan.name)
        async def plan(req: PlanRequest) -> TaskPlan:
            script.plan_requests.append(req)
            if script.plan_failures > 0:
                script.plan_failures -= 1
                raise ApplicationError("the planner's plan is invalid", type=Failure.INVALID_PLAN.value)
            if req.replan_of is not None:
                if script.replan_failures > 0:
                    script.replan_failures -= 1
                    raise ApplicationError("the planner is down", type="Unavailable", non_retryable=True)
                old = req.replan_of
                new = old.model_copy(update={"key": f"{req.key_prefix}{old.key.split('-', 1)[-1]}", "topic": None})
                return TaskPlan(tasks=[new], rationale="replacement", usage=USAGE)
            if req.breaking:  # breaking news: one post reacting to it
                news = req.breaking[0]
                reacting = post(f"{req.key_prefix}news-twitter", topic=None if news.banned else news.matched)
                return TaskPlan(tasks=[reacting], rationale=f"news {news.headline.id}", usage=USAGE)
            if req.replies_only:  # pushed mentions: one reply each
                replies = [reply(f"{req.key_prefix}reply-{m.id}", m.id) for m in req.observation.mentions]
                return TaskPlan(tasks=replies, rationale="replies", usage=USAGE)
            tasks = script.plans[min(req.cycle - 1, len(script.plans) - 1)] if script.plans else []
            prefixed = [
                t.model_copy(
                    update={
                        "key": f"{req.key_prefix}{t.key}",
                        "depends_on": [f"{req.key_prefix}{d}" for d in t.depends_on],
                    }
                )
                for t in tasks
            ]
            return TaskPlan(tasks=prefixed, rationale="scripted", usage=USAGE)

        @activity.defn(name=Activities.register_campaign.name)
        async def register_campaign(spec: CampaignSpec) -> None:
            return None

        @activity.defn(name=Activities.record_control.name)
        async def record_control(entry: ControlAudit) -> None:
            script.audits.append(entry)

        @activity.defn(name=Activities.reserve_budget.name)
        async def reserve_budget(req: BudgetRequest) -> Reservation:
            if not script.budget_ok:
                return Reservation(ok=False, reason="daily budget of $0.01 is spent", day="2026-01-01")
            return Reservation(ok=True, amount_usd=0.002, day="2026-01-01", spent_today_usd=0.002)

        @activity.defn(name=Activities.settle_budget.name)
        async def settle_budget(req: SettleRequest) -> Reservation:
            return Reservation(ok=True, amount_usd=req.actual_usd, day="2026-01-01", spent_today_usd=0.002)

        @activity.defn(name=Activities.execute_task.name)
        async def execute_task(inp: ContentTaskInput) -> TaskResult:
            script.executed.append(inp.task.key)
            if script.execute_gate is not None:
                while not script.execute_gate.is_set():
                    activity.heartbeat()
                    await asyncio.sleep(0.1)
            return TaskResult(
                text=f"draft for {inp.task.key}",
                platform=inp.task.platform,
                usage=USAGE,
                model_probability=0.9,
                read_set=[StateRead(key=f"topic:{inp.task.key}", version=0)],
                write_keys=[f"topic:{inp.task.key}"],
            )

        @activity.defn(name=Activities.judge_result.name)
        async def judge_result(inp: JudgeInput) -> JudgeScores:
            script.judged.append(inp)
            if inp.result.text != f"draft for {inp.task.key}":  # a reviewer's edit is judged too
                return script.edit_scores.get(inp.result.text, HIGH)
            return script.scores_for(inp.task.key)

        @activity.defn(name=Activities.record_verdict.name)
        async def record_verdict(rec: VerdictRecord) -> None:
            script.verdicts.append(rec)

        @activity.defn(name=Activities.record_review.name)
        async def record_review(rec: ReviewRecord) -> None:
            script.reviews.append(rec)

        @activity.defn(name=Activities.commit_result.name)
        async def commit_result(inp: CommitInput) -> CommitResult:
            if any(inp.task_key.endswith(k) for k in script.answered_keys):
                raise ApplicationError("the mention already has a reply", type=Failure.ALREADY_DONE.value)
            if any(inp.task_key.endswith(k) for k in script.conflict_keys):
                raise ApplicationError("topic key changed since the task read it", type=Failure.STATE_CONFLICT.value)
            return CommitResult(versions=[StateRead(key=k, version=1) for k in inp.write_keys])

        @activity.defn(name=Activities.publish.name)
        async def publish(inp: PublishInput) -> PublishResult:
            script.published.append(inp)
            return PublishResult(post_id=f"p-{len(script.published)}", url="sandbox://p")

        @activity.defn(name=Activities.record_outcome.name)
        async def record_outcome(rec: OutcomeRecord) -> None:
            script.outcomes.append(rec)

        @activity.defn(name=Activities.authorize.name)
        async def authorize(req: AuthorizeRequest) -> Authorization:
            if script.authorize_down:
                raise ApplicationError("the user directory is unreachable", non_retryable=True)
            info = activity.info()
            attempt = f"{info.workflow_run_id}:{info.activity_id}"
            decision = check_request(req, DIRECTORY, DIRECTORY, attempt_key=attempt, now=datetime.now(UTC))
            script.authorizations.append((req, decision))
            return decision

        @activity.defn(name=Activities.record_scope_stop.name)
        async def record_scope_stop(rec: StopRecord) -> StopRecorded:
            script.stops.append(rec)
            return StopRecorded(lifted=1 if rec.stop.lift else 0)

        @activity.defn(name=Activities.find_in_scope.name)
        async def find_in_scope(stop: ScopeStop) -> ScopeMembers:
            return script.scope_members

        return [
            *self._payment_activities(),
            authorize,
            record_scope_stop,
            find_in_scope,
            watch_news,
            reflect,
            observe,
            plan,
            register_campaign,
            record_control,
            reserve_budget,
            settle_budget,
            execute_task,
            judge_result,
            record_verdict,
            record_review,
            commit_result,
            publish,
            record_outcome,
        ]

    def _payment_activities(self) -> list[Callable[..., object]]:
        script = self

        @activity.defn(name=Activities.prepare_payment.name)
        async def prepare_payment(inp: PaymentInput) -> Prepared:
            return Prepared(
                amount_units=inp.amount_units or 50_000,
                to_address=PAYEE,
                counterparty="premium-news" if inp.kind == "x402" else PAYEE,
                pinned=True,
                allowlisted=True,
                policy=PaymentPolicy(approval_deadline_seconds=3600),
                goals=["Promote the thrift-flip challenge"],
                timezone="UTC",
            )

        @activity.defn(name=Activities.reserve_payment.name)
        async def reserve_payment(req: ReserveRequest) -> PaymentReservation:
            return PaymentReservation(ok=True, day="2026-12-02")

        @activity.defn(name=Activities.assess_payment.name)
        async def assess_payment(req: AssessRequest) -> PaymentAssessment:
            facts: dict[str, object] = {
                "amount_units": req.prepared.amount_units,
                "per_payment_units": 5_000_000,
                "review_above_units": 1_000_000,
                "allowlisted": True,
                "pinned": True,
                "paid_before": True,
                "history_count": 0,
                "median_units": 0,
                "anomaly_factor": 5,
                "anomaly_history": 3,
                "goal_match": req.prepared.goals[0],
            }
            return PaymentAssessment.model_validate(facts | script.payment_facts)

        @activity.defn(name=Activities.record_payment.name)
        async def record_payment(event: PaymentEvent) -> None:
            script.payment_events.append(event)

        @activity.defn(name=Activities.send_payment.name)
        async def send_payment(req: SendRequest) -> WalletSent:
            body = {"headlines": [h.model_dump() for h in script.premium_headlines]} if req.inp.kind == "x402" else None
            return WalletSent(tx_hash="0x" + "ab" * 32, status="confirmed", duplicate=False, body=body)

        @activity.defn(name=Activities.payment_status.name)
        async def payment_status(req: SendRequest) -> PaymentConfirmation:
            return PaymentConfirmation(tx_hash="0x" + "ab" * 32, status="confirmed", confirmations=1, block_number=7)

        @activity.defn(name=Activities.settle_payment.name)
        async def settle_payment(req: PaymentSettle) -> None:
            script.settled_payments.append(req)

        return [
            prepare_payment,
            reserve_payment,
            assess_payment,
            record_payment,
            send_payment,
            payment_status,
            settle_payment,
        ]
