"""What CampaignWorkflow hands its planner and its child tasks, built from the spec and its progress.

Pure functions, kept out of the workflow so its methods read as the flow.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributePair, SearchAttributeUpdate, TypedSearchAttributes

with workflow.unsafe.imports_passed_through():
    from schemas.campaign import CampaignSpec
    from schemas.campaign_run import CampaignProgress, TaskRecord
    from schemas.news import BreakingNews
    from schemas.options import RuntimeOptions
    from schemas.plan import Observation
    from schemas.task import ContentTaskInput, PlanRequest, TaskRef

from workflows import campaign_views as views
from workflows import search_attributes as sa


def plan_request(
    spec: CampaignSpec,
    c: CampaignProgress,
    observation: Observation,
    prefix: str,
    replan_of: TaskRecord | None,
    replies_only: bool = False,
    breaking: list[BreakingNews] | None = None,
) -> PlanRequest:
    max_tasks = spec.max_tasks_per_cycle
    if replan_of:
        max_tasks = 1
    elif breaking:
        max_tasks = min(len(spec.platforms), spec.max_tasks_per_cycle)  # a reaction per platform
    return PlanRequest(
        tenant_id=spec.tenant_id,
        campaign_id=spec.campaign_id,
        persona=spec.persona,
        goals=c.goals,
        platforms=list(spec.platforms),
        observation=observation,
        cycle=c.cycle,
        max_tasks=max_tasks,
        recent=views.recent_outcomes(c),
        replan_of=replan_of.task if replan_of else None,
        replan_reason=replan_of.reason if replan_of else None,
        key_prefix=prefix,
        replies_only=replies_only,
        models=spec.model_overrides(),
        timezone=spec.timezone,
        daily_budget_usd=c.daily_budget_usd,
        breaking=breaking or [],
    )


def child_input(
    spec: CampaignSpec, c: CampaignProgress, rec: TaskRecord, runtime: RuntimeOptions, campaign_workflow_id: str
) -> ContentTaskInput:
    ref = TaskRef(
        task_id=rec.task_id,
        tenant_id=spec.tenant_id,
        campaign_id=spec.campaign_id,
        agent_id=spec.agent_id,
        campaign_workflow_id=campaign_workflow_id,
    )
    return ContentTaskInput(
        ref=ref,
        task=rec.task,
        persona=spec.persona,
        goals=c.goals,
        cycle=rec.cycle,
        attempt=rec.attempt,
        judge=spec.judge,
        review_deadline_seconds=spec.review_deadline_seconds,
        timezone=spec.timezone,
        daily_budget_usd=c.daily_budget_usd,
        runtime=runtime,
        models=spec.model_overrides(),
        content=spec.content,
        memory=spec.memory,
    )


def campaign_state_attributes(c: CampaignProgress) -> list[SearchAttributeUpdate[Any]]:
    """What `campaign list` reads without querying each workflow: the campaign's state and cycle."""
    return [sa.CAMPAIGN_STATE.value_set(c.state), sa.CAMPAIGN_CYCLE.value_set(c.cycle)]


def child_search_attributes(spec: CampaignSpec, rec: TaskRecord) -> TypedSearchAttributes:
    """A task's attributes: the review queue operators filter in the Web UI."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.TENANT_ID, spec.tenant_id),
            SearchAttributePair(sa.AGENT_ID, spec.agent_id),
            SearchAttributePair(sa.CAMPAIGN_ID, spec.campaign_id),
            SearchAttributePair(sa.TASK_TYPE, rec.task.task_type),
            SearchAttributePair(sa.PLATFORM, rec.task.platform),
            SearchAttributePair(sa.REVIEW_STATE, "none"),
        ]
    )
