"""Judge-side activities: measure a draft, record reviews, commit with OCC, learn from outcomes.

The judge measures; the decision itself is the pure policy in schemas/policy.py, applied by the
workflow.
"""

from __future__ import annotations

from temporalio import activity

from activities.errors import non_retryable
from chimera.db import StateConflict, StateStore
from chimera.safety.rules import SafetyRules, safety_score
from chimera.similarity import PersonaSimilarity
from schemas.policy import ConfidenceComponents, JudgeScores
from schemas.review import ReviewRecord
from schemas.task import CommitInput, CommitResult, JudgeInput, OutcomeRecord


class JudgeActivities:
    def __init__(self, store: StateStore, rules: SafetyRules, similarity: PersonaSimilarity) -> None:
        self._store = store
        self._rules = rules
        self._similarity = similarity

    @activity.defn(name="judge_result")
    def judge_result(self, inp: JudgeInput) -> JudgeScores:
        result = inp.result
        flags = self._rules.evaluate(inp.persona, result.text, result.untrusted_inputs)
        similarity = self._similarity.score(inp.persona, result.text)
        history = self._store.success_rate(inp.ref.tenant_id, inp.ref.agent_id, inp.task.task_type)
        components = ConfidenceComponents(
            model_probability=result.model_probability,
            persona_similarity=similarity,
            safety=safety_score(flags),
            historical_success=history.rate,
        )
        reasons = [
            f"model probability {result.model_probability:.2f} ({result.usage.model})",
            f"persona similarity {similarity:.2f} to {inp.persona.name}'s voice and examples",
            f"safety {components.safety:.2f}: " + (", ".join(f.rule for f in flags) or "no rule fired"),
            f"history {history.rate:.2f} from {history.samples} past {inp.task.task_type} outcomes",
        ]
        scores = JudgeScores(components=components, flags=flags, reasons=reasons)
        self._store.record_verdict(inp.ref, inp.task.task_type, scores)  # every verdict is audited
        return scores

    @activity.defn(name="record_review")
    def record_review(self, rec: ReviewRecord) -> None:
        self._store.record_review(rec)

    @activity.defn(name="commit_result")
    def commit_result(self, inp: CommitInput) -> CommitResult:
        if self._store.is_stopped(inp.ref.tenant_id, inp.ref.campaign_id):
            raise non_retryable("CampaignStopped", "the campaign was stopped: nothing more is committed")
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
            raise non_retryable("StateConflict", str(exc)) from exc
        return CommitResult(versions=versions)

    @activity.defn(name="record_outcome")
    def record_outcome(self, rec: OutcomeRecord) -> None:
        """Remember how the task ended: the judge's historical component learns from it."""
        out = rec.outcome
        self._store.record_task(rec.ref, out.key, rec.task_type, rec.platform, out.status, out.attempt, out.confidence)
        self._store.record_outcome(rec.ref, rec.task_type, out.status, rec.human_decided)
