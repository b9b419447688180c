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
from schemas.policy import ConfidenceComponents, JudgePolicy, JudgeScores, SafetyFlag, decide
from schemas.review import ReviewRecord
from schemas.task import CommitInput, CommitResult, JudgeInput, OutcomeRecord, TaskResult, VerdictRecord

# What the classifier judges in a draft. A scam in a draft is what makes it one (a payment request, a wallet, a
# link, a giveaway), which chimera/safety/checks.py sees exactly; the classifier's scam score, learned on
# mentions, misreads a thrift persona's prices as a pitch. On mentions it counts for all four.
OUTPUT_CATEGORIES = frozenset({"injection", "abuse", "dangerous"})


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
    ) -> None:
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
        flags = self._rules.evaluate(inp.persona, result.text, result.untrusted_inputs) + self._checks(inp)
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
        flags = hijack_flags(text, inp.result.untrusted_inputs, mention.author if mention else None)
        flags += link_flags(text, inp.content) + payment_flags(text, inp.content)
        classified, hostile = self._classified(inp)
        flags += classified
        if mention is not None:
            hostile += [f.rule for f in self._rules.evaluate(inp.persona, "", [mention.text]) if f.where == "input"]
            hostile += ["encoded payload"] if hides_payload(mention.text) else []
            flags += hostile_reply_flags(text, hostile)
        return flags

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
