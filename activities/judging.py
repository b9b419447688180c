"""Judge-side activities: measure a draft, audit the verdict, record reviews, commit with OCC, learn.

The judge measures; the decision itself is the pure policy in schemas/policy.py, applied by the
workflow, which then has `record_verdict` audit exactly the verdict it acts on.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from temporalio import activity

from activities.alerting import AlertSender
from activities.errors import failure, model_failure
from activities.registry import implements
from activities.spend import CallLedger
from activities.state_keys import CONVERSATION
from chimera.db import StateConflict, StateStore
from chimera.mcp import CallContext, McpError, McpHost
from chimera.memory.context import AgentMemory
from chimera.memory.repeats import Earlier, repeated
from chimera.models.base import CallRecord
from chimera.models.chat import ModelCallError
from chimera.safety.checks import hides_payload, hijack_flags, hostile_reply_flags, link_flags, payment_flags
from chimera.safety.classifier import HarmClassifier
from chimera.safety.model_review import ModelReviewer, ReviewOutcome
from chimera.safety.rules import SafetyRules, safety_score
from chimera.safety.vision import VisionCheck, VisionReport
from chimera.similarity import PersonaSimilarity
from schemas.activity_table import Activities, Failure
from schemas.alerts import review_expired_alert
from schemas.memory import PublishedPost, Reflection, ReflectRequest
from schemas.policy import ConfidenceComponents, JudgePolicy, JudgeScores, SafetyFlag, decide
from schemas.review import ReviewRecord
from schemas.task import CommitInput, CommitResult, JudgeInput, OutcomeRecord, TaskResult, VerdictRecord

# What the classifier judges in a draft. A scam in a draft is what makes it one (a payment request, a wallet, a
# link, a giveaway), which chimera/safety/checks.py sees exactly; the classifier's scam score, learned on
# mentions, misreads a thrift persona's prices as a pitch. On mentions it counts for all four.
OUTPUT_CATEGORIES = frozenset({"injection", "abuse", "dangerous"})
# Each social server's per-post engagement tool (specs/mcp/twitter.md, instagram.md): names differ, because
# the host refuses one tool name on two servers.
METRICS_TOOLS = {"twitter": "tweet_metrics", "instagram": "post_metrics"}
METRICS_BATCH = 100


class JudgeActivities:
    def __init__(
        self,
        store: StateStore,
        rules: SafetyRules,
        similarity: PersonaSimilarity,
        classifier: HarmClassifier | None = None,
        reviewer: ModelReviewer | None = None,
        vision: VisionCheck | None = None,
        alerts: AlertSender | None = None,
        memory: AgentMemory | None = None,
        mcp: McpHost | None = None,
    ) -> None:
        self._memory = memory  # None: nothing is learned into memory (some tests)
        self._mcp = mcp  # the platforms' servers, for engagement
        self._store = store
        self._alerts = alerts or AlertSender(None, store)
        self._rules = rules
        self._similarity = similarity
        self._classifier = classifier  # workers always pass it (workers/roles.py); some unit tests do not
        self._reviewer = reviewer  # set when a judging model is configured (live models)
        self._vision = vision  # workers always pass it; its model part only when a vision model is configured
        self._ledger = CallLedger(store)

    @implements(Activities.judge_result)
    async def judge_result(self, inp: JudgeInput) -> JudgeScores:
        """The offline measurements (in a thread: the classifier computes), the model review and the vision check,
        side by side; the models' flags are added to the offline ones, never in place of them."""
        scores, review, vision = await asyncio.gather(
            asyncio.to_thread(self._measure, inp), self._review(inp), self._look(inp)
        )
        flags, reasons = list(scores.flags), list(scores.reasons)
        if review is not None:
            flags, reasons = [*flags, *review.flags], [*reasons, review.reason]
        if vision is not None:
            flags, reasons = [*flags, *vision.flags], [*reasons, *vision.reasons]
        scores = scores.model_copy(update={"flags": flags, "reasons": reasons})
        if not inp.verdict_audited_by_workflow:
            await asyncio.to_thread(self._audit_legacy_verdict, inp, scores)
        return scores

    async def _review(self, inp: JudgeInput) -> ReviewOutcome | None:
        """The judging model's review, its calls kept against the task (its spend is the task's), or None
        when no judging model is configured. A busy provider is retried by the activity (see model_review)."""
        if self._reviewer is None:
            return None
        review = await self._reviewer.review(inp, _attempt())
        await self._settle_calls(inp, review.calls, review.retry)
        return review

    async def _look(self, inp: JudgeInput) -> VisionReport | None:
        """The vision check of the draft's images (offline, and by the vision model when one is configured)."""
        if self._vision is None:
            return None
        report = await self._vision.check_input(inp, _attempt())
        await self._settle_calls(inp, report.calls, report.retry)
        return report

    async def _settle_calls(self, inp: JudgeInput, calls: list[CallRecord], retry: ModelCallError | None) -> None:
        """Keep a model check's calls against the task (their spend is the task's), then, if its provider was busy
        on an attempt that may still retry, fail the activity so Temporal retries it (the fallback may answer)."""
        await self._ledger.keep(inp.ref, calls, inp.timezone)
        if retry is not None:
            raise model_failure(retry, Failure.MODEL_UNAVAILABLE)

    def _measure(self, inp: JudgeInput) -> JudgeScores:
        result = inp.result
        inputs = [*result.untrusted_inputs, *result.recalled_inputs]
        flags = self._rules.evaluate(inp.persona, result.text, inputs) + self._checks(inp)
        similarity = self._similarity.score(inp.persona, result.text)
        history = self._store.success_rate(inp.ref.tenant_id, inp.ref.agent_id, inp.task.task_type)
        calibration = self._store.band_calibration(inp.ref.tenant_id, inp.ref.agent_id, inp.task.task_type)
        components = ConfidenceComponents(
            model_probability=result.model_probability,
            persona_similarity=similarity,
            safety=safety_score(flags),
            historical_success=history.rate,
        )
        reasons = [
            f"model probability {result.model_probability:.2f} ({_probability_source(result)})",
            f"persona similarity {similarity:.2f} to {inp.persona.name}'s voice and examples",
            f"safety {components.safety:.2f}: " + (", ".join(f.rule for f in flags) or "no rule fired"),
            f"history {history.rate:.2f} from {history.samples} past {inp.task.task_type} outcomes",
        ]
        return JudgeScores(
            components=components, flags=flags, reasons=reasons, author=result.author, calibration=calibration
        )

    def _checks(self, inp: JudgeInput) -> list[SafetyFlag]:
        """The checks that hold whatever the model did: hijack, links, payments, the classifier on the draft
        and on what the task read, and replies to hostile mentions."""
        text, mention = inp.result.text, inp.task.mention
        inputs = [*inp.result.untrusted_inputs, *inp.result.recalled_inputs]
        flags = hijack_flags(text, inputs, mention.author if mention else None)
        flags += link_flags(text, inp.content) + payment_flags(text, inp.content)
        flags += self._repeat_flags(inp)
        classified, hostile = self._classified(inp)
        flags += classified
        if mention is not None:
            hostile += [f.rule for f in self._rules.evaluate(inp.persona, "", [mention.text]) if f.where == "input"]
            hostile += ["encoded payload"] if hides_payload(mention.text) else []
            flags += hostile_reply_flags(text, hostile)
        return flags

    def _repeat_flags(self, inp: JudgeInput) -> list[SafetyFlag]:
        """A post that repeats one of the agent's own posts within the repeat window is turned down (re-planned):
        the judge reads the posts itself, not only those the writer was shown."""
        window = inp.memory.repeat_window_seconds
        if inp.task.task_type != "post" or not window or self._memory is None:
            return []
        try:
            posts = self._memory.own_posts(inp.ref.tenant_id, inp.ref.agent_id, window)
        except Exception as exc:  # any backend's failure: the writer's view of its posts stands in
            activity.logger.warning("task %s: repeat check on the writer's view: %s", inp.ref.task_id, exc)
            posts = []
        earlier = [Earlier(p.id, p.text, p.created_at) for p in posts]
        earlier += [Earlier(m.id, m.text, m.created_at) for m in inp.result.memories_used if m.source == "recent_post"]
        found = repeated(inp.result.text, earlier)
        if found is None:
            return []
        detail = f"repeats the agent's post of {found.earlier.created_at[:10]} ({found.overlap:.0%} the same)"
        return [SafetyFlag(rule="repeat-post", severity="high", where="output", detail=detail)]

    def _classified(self, inp: JudgeInput) -> tuple[list[SafetyFlag], list[str]]:
        """The classifier's flags on the draft and the tool results, and what it reads the mention as."""
        if self._classifier is None:
            return [], []
        mention = [inp.task.mention.text] if inp.task.mention else []
        tools = [t for t in inp.result.untrusted_inputs if t not in mention]
        draft, *rest = self._classifier.score([inp.result.text, *mention, *tools])
        read_mention, read_tools = (rest[:1], rest[1:]) if mention else ([], rest)
        floors = self._classifier.voice_floors(inp.persona.examples)
        flags = [
            SafetyFlag(rule=f"classifier-{category}", severity="high", where="output",
                       detail=f"the draft reads as {category} ({p:.2f})")
            for category, p in draft.flagged(floors) if category in OUTPUT_CATEGORIES
        ]  # fmt: skip
        flags += [
            SafetyFlag(rule=f"classifier-{category}-input", severity="low", where="input",
                       detail=f"a tool result reads as {category} ({p:.2f})")
            for result in read_tools for category, p in result.flagged()
        ][:3]  # fmt: skip
        hostile = [f"classifier-{category}" for scores in read_mention for category, _ in scores.flagged()]
        hostile += [f"classifier-unclear (benign {s.benign:.2f})" for s in read_mention if s.unclear]
        return flags, hostile

    def _audit_legacy_verdict(self, inp: JudgeInput, scores: JudgeScores) -> None:
        """A task whose workflow was judged by code older than record_verdict: audit the verdict it decides
        (the campaign's policy on these scores, as that code applied it) so no verdict goes unaudited."""
        campaign = self._store.get_campaign(inp.ref.tenant_id, inp.ref.campaign_id)
        policy = campaign.spec.judge if campaign else JudgePolicy()
        self._store.record_verdict(inp.ref, inp.task.task_type, decide(scores, policy))

    @implements(Activities.record_verdict)
    def record_verdict(self, rec: VerdictRecord) -> None:
        """Audit the verdict the workflow decided and acts on (judge.verdict)."""
        self._store.record_verdict(rec.ref, rec.task_type, rec.verdict)

    @implements(Activities.record_review)
    def record_review(self, rec: ReviewRecord) -> None:
        self._store.record_review(rec)
        if rec.state in ("rejected", "edited"):
            self._learn_from_review(rec)
        if rec.state == "expired":
            alert = review_expired_alert(
                tenant_id=rec.tenant_id,
                campaign_id=rec.campaign_id,
                agent_id=rec.agent_id,
                task_id=rec.task_id,
                deadline=rec.deadline,
                raised_at=datetime.now(UTC).isoformat(),
            )
            self._alerts.send(alert)

    def _learn_from_review(self, rec: ReviewRecord) -> None:
        """What a human rejected or rewrote, and why, becomes a campaign learning (best effort)."""
        if self._memory is None:
            return
        try:
            self._memory.remember_review(
                rec.tenant_id,
                rec.agent_id,
                campaign_id=rec.campaign_id,
                task_id=rec.task_id,
                platform=rec.platform,
                state=rec.state,
                draft=rec.text,
                reason=rec.reason,
                edited=rec.edited_text,
            )
        except Exception as exc:  # any backend's failure: the review stands, the lesson is lost
            activity.logger.warning("review %s: not learned: %s", rec.task_id, exc)

    @implements(Activities.reflect)
    async def reflect(self, req: ReflectRequest) -> Reflection:
        """Look back before a cycle: read the engagement of posts now due from their platforms and learn from it,
        then move conversation turns older than the short-term window into semantic memory."""
        out = Reflection()
        if self._memory is None:
            out.errors.append("no memory configured: nothing learned")
            return out
        context = CallContext(
            tenant_id=req.tenant_id, actor="judge", agent_id=req.agent_id, task_id=req.campaign_id, handles=req.handles
        )
        by_platform: dict[str, list[PublishedPost]] = {}
        for post in req.due:
            by_platform.setdefault(post.platform, []).append(post)
        for platform, posts in sorted(by_platform.items()):
            for start in range(0, len(posts), METRICS_BATCH):
                await self._measure_posts(req, platform, posts[start : start + METRICS_BATCH], context, out)
        try:
            out.archived = await asyncio.to_thread(self._memory.archive, req.tenant_id, req.agent_id, req.policy)
        except Exception as exc:  # any backend's failure: the turns stay short-term and are archived next time
            out.errors.append(f"archive: {exc}")
        return out

    async def _measure_posts(
        self, req: ReflectRequest, platform: str, posts: list[PublishedPost], context: CallContext, out: Reflection
    ) -> None:
        assert self._memory is not None
        tool = METRICS_TOOLS.get(platform)
        if tool is None or self._mcp is None or platform not in self._mcp.server_names:
            out.errors.append(f"{platform}: no server to read engagement from")
            return
        try:
            result = await self._mcp.call_tool(platform, tool, {"post_ids": [p.post_id for p in posts]}, context)
        except McpError as exc:
            out.errors.append(f"{platform}.{tool}: {exc}")  # they stay due: read at the next cycle
            return
        metrics = {m.get("post_id"): m for m in result.data.get("metrics", []) if isinstance(m, dict)}
        missing = {str(i) for i in result.data.get("missing", [])}
        for post in posts:
            found = metrics.get(post.post_id)
            if found is None:
                if post.post_id in missing:
                    out.measured.append(post.task_id)  # deleted on the platform: nothing will be learned
                continue
            counts = {k: _count(found.get(k)) for k in ("likes", "replies", "reposts", "impressions", "engagement")}
            try:
                await asyncio.to_thread(
                    self._memory.remember_engagement,
                    req.tenant_id,
                    req.agent_id,
                    campaign_id=req.campaign_id,
                    platform=platform,
                    post_id=post.post_id,
                    text=post.text,
                    counts=counts,
                    topic=post.topic,
                )
            except Exception as exc:  # any backend's failure: the post stays due
                out.errors.append(f"{post.post_id}: not learned: {exc}")
                continue
            out.measured.append(post.task_id)
            out.lessons += 1

    @implements(Activities.commit_result)
    def commit_result(self, inp: CommitInput) -> CommitResult:
        halted = self._store.halted(inp.ref)
        if halted:
            raise failure(Failure.CAMPAIGN_STOPPED, f"{halted}: nothing more is committed")
        value = {
            "task_id": inp.ref.task_id,
            "task_key": inp.task_key,
            "text": inp.text,
            "decision": inp.verdict.decision,
            "confidence": inp.verdict.confidence,
        }
        try:
            versions = self._store.commit(inp.ref, inp.read_set, inp.write_keys, value, inp.actor)
        except StateConflict as exc:
            if exc.key.startswith(CONVERSATION):  # a reply to this mention was committed first: goal met
                raise failure(Failure.ALREADY_DONE, f"the mention already has a reply ({exc.key})") from exc
            raise failure(Failure.STATE_CONFLICT, str(exc)) from exc
        return CommitResult(versions=versions)

    @implements(Activities.record_outcome)
    def record_outcome(self, rec: OutcomeRecord) -> None:
        """Remember how the task ended: the judge's historical component learns from it."""
        out = rec.outcome
        self._store.record_task(rec.ref, out.key, rec.task_type, rec.platform, out.status, out.attempt, out.confidence)
        self._store.record_outcome(rec.ref, rec.task_type, out.status, rec.human_decided)
        self._alerts.check_agent(rec.ref.tenant_id, rec.ref.agent_id, rec.ref.campaign_id)


def _count(value: object) -> int:
    """A platform's count as a non-negative int (untrusted tool output)."""
    return max(0, int(value)) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _attempt() -> int:
    """The activity's attempt (1 outside an activity): from a tier's primary_attempts + 1 on, its fallback runs."""
    return activity.info().attempt if activity.in_activity() else 1


def _probability_source(result: TaskResult) -> str:
    """Which model wrote the draft, and what its model_probability is (logprobs, or the model's own view)."""
    author = result.author
    if author is None:
        return result.usage.model
    source = {"logprobs": "token log-probabilities", "self_assessment": "the model's self-assessment of the brief"}
    return f"{author.describe()}, from {source.get(author.probability_source, 'an offline template')}"
