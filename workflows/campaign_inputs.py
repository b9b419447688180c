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
    from schemas.payment import PaymentInput, PaymentOutcome, usdc_units
    from schemas.plan import Headline, Observation
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


def premium_news_payment(spec: CampaignSpec, cycle: int, runtime: RuntimeOptions) -> PaymentInput:
    """This cycle's purchase of premium headlines: one payment id per campaign and cycle, so a retried cycle never
    pays twice. Its purpose names the campaign's topics and first goal, as the CFO Judge asks."""
    news = spec.news
    assert news.premium_url is not None
    topics = ", ".join(news.topics) or "the campaign's subjects"
    return PaymentInput(
        payment_id=f"{spec.campaign_id}-news-c{cycle}",
        tenant_id=spec.tenant_id,
        campaign_id=spec.campaign_id,
        agent_id=spec.agent_id,
        kind="x402",
        to=news.premium_url,
        amount_units=usdc_units(news.premium_max_usdc),
        purpose=f"premium news on {topics} to plan for: {spec.goals[0]}"[:500],
        requested_by=f"campaign:{spec.campaign_id}",
        runtime=runtime,
    )


def premium_headlines(outcome: PaymentOutcome, limit: int) -> list[Headline]:
    """The headlines a settled purchase bought (untrusted third-party text, as every headline); malformed items
    are skipped, not trusted."""
    items = outcome.body.get("headlines") if outcome.body else None
    found: list[Headline] = []
    for item in items if isinstance(items, list) else []:
        try:
            found.append(Headline.model_validate(item))
        except ValueError:
            continue
    return found[:limit]
