"""The inputs ContentTaskWorkflow hands its activities, built from what the task knows so far.

Pure functions of the task's input and its results, kept out of the workflow so its `run` reads as
the steps alone.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.policy import Verdict
    from schemas.review import ReviewRecord, ReviewState
    from schemas.task import (
        BudgetRequest,
        CommitInput,
        ContentTaskInput,
        JudgeInput,
        OutcomeRecord,
        PublishInput,
        SettleRequest,
        TaskOutcome,
        TaskResult,
        VerdictRecord,
    )


def budget_request(inp: ContentTaskInput) -> BudgetRequest:
    return BudgetRequest(
        ref=inp.ref, task_type=inp.task.task_type, daily_budget_usd=inp.daily_budget_usd, timezone=inp.timezone
    )


def judge_input(inp: ContentTaskInput, draft: TaskResult, *, audited_by_workflow: bool) -> JudgeInput:
    return JudgeInput(
        ref=inp.ref,
        task=inp.task,
        persona=inp.persona,
        result=draft,
        verdict_audited_by_workflow=audited_by_workflow,
        content=inp.content,
        models=inp.models,
        timezone=inp.timezone,
        memory=inp.memory,
    )


def verdict_record(inp: ContentTaskInput, verdict: Verdict) -> VerdictRecord:
    return VerdictRecord(ref=inp.ref, task_type=inp.task.task_type, verdict=verdict)


def review_record(
    inp: ContentTaskInput,
    draft: TaskResult,
    verdict: Verdict,
    state: ReviewState,
    deadline: str | None,
    reason: str | None = None,
    reviewer: str | None = None,
    edited: str | None = None,
    override: bool = False,
) -> ReviewRecord:
    return ReviewRecord(
        task_id=inp.ref.task_id,
        tenant_id=inp.ref.tenant_id,
        campaign_id=inp.ref.campaign_id,
        agent_id=inp.ref.agent_id,
        platform=inp.task.platform,
        task_type=inp.task.task_type,
        text=draft.text,
        verdict=verdict,
        state=state,
        deadline=deadline or "",
        reviewer=reviewer,
        reason=reason,
        edited_text=edited,
        override=override,
    )


def commit_input(inp: ContentTaskInput, draft: TaskResult, verdict: Verdict, text: str, actor: str) -> CommitInput:
    return CommitInput(
        ref=inp.ref,
        task_key=inp.task.key,
        text=text,
        read_set=draft.read_set,
        write_keys=draft.write_keys,
        verdict=verdict,
        actor=actor,
    )


def publish_input(inp: ContentTaskInput, draft: TaskResult, text: str) -> PublishInput:
    return PublishInput(
        ref=inp.ref,
        platform=inp.task.platform,
        text=text,
        idempotency_key=inp.ref.task_id,  # the business key: a retry never posts twice
        reply_to=inp.task.mention.id if inp.task.mention else None,
        media_ids=draft.media_ids,
        mention=inp.task.mention,
        task_key=inp.task.key,
        topic=inp.task.topic,
    )


def settle_request(inp: ContentTaskInput, actual_usd: float) -> SettleRequest:
    return SettleRequest(ref=inp.ref, actual_usd=actual_usd, timezone=inp.timezone)


def outcome_record(inp: ContentTaskInput, outcome: TaskOutcome, *, human_decided: bool) -> OutcomeRecord:
    return OutcomeRecord(
        ref=inp.ref,
        task_type=inp.task.task_type,
        platform=inp.task.platform,
        outcome=outcome,
        human_decided=human_decided,
    )
