"""Which workflows and activities each worker role runs, on which task queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Literal

from temporalio.client import Client
from temporalio.worker import Worker

from activities.budget import BudgetActivities
from activities.content import ContentActivities
from activities.judging import JudgeActivities
from activities.planning import PlannerActivities
from schemas.options import TaskQueues
from workers.dependencies import Dependencies
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow

Role = Literal["planner", "worker", "judge"]
ROLES: tuple[Role, ...] = ("planner", "worker", "judge")
GRACEFUL_SHUTDOWN = timedelta(seconds=10)  # in-flight activities get this long to finish on Ctrl-C


def activities_for(role: Role, deps: Dependencies) -> list[Callable[..., Any]]:
    s = deps.settings
    if role == "planner":
        planner = PlannerActivities(deps.store, deps.mcp, deps.model)
        budget = BudgetActivities(deps.store, s.cost_estimates_usd, s.default_cost_estimate_usd)
        return [
            planner.observe,
            planner.plan,
            planner.register_campaign,
            planner.record_control,
            budget.reserve_budget,
            budget.settle_budget,
        ]
    if role == "worker":
        content = ContentActivities(deps.store, deps.mcp, deps.model)
        return [content.execute_task, content.publish]
    judge = JudgeActivities(deps.store, deps.rules, deps.similarity)
    return [judge.judge_result, judge.record_review, judge.commit_result, judge.record_outcome]


def build_workers(
    client: Client, roles: Sequence[Role], deps: Dependencies, queues: TaskQueues, executor: concurrent.futures.Executor
) -> list[Worker]:
    workers = []
    for role in roles:
        workers.append(
            Worker(
                client,
                task_queue=getattr(queues, role),
                workflows=[CampaignWorkflow, ContentTaskWorkflow] if role == "planner" else [],
                activities=activities_for(role, deps),
                activity_executor=executor,  # synchronous (database) activities run here
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
            )
        )
    return workers


async def run_workers(
    client: Client, roles: Sequence[Role], deps: Dependencies, queues: TaskQueues, stop: asyncio.Event
) -> None:
    """Run the roles' workers until `stop` is set, then let in-flight activities finish."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="chimera-activity") as executor:
        workers = build_workers(client, roles, deps, queues, executor)
        runs = [asyncio.create_task(w.run()) for w in workers]
        await stop.wait()
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*runs, return_exceptions=True)
