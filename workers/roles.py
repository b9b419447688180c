"""Worker processes by role: the workflows run on the planner queue; each role's activities come from
the activity table (schemas/activity_table.py), each on its role's task queue."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Sequence
from datetime import timedelta

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig

from activities.access import AccessActivities
from activities.budget import BudgetActivities
from activities.content import ContentActivities
from activities.judging import JudgeActivities
from activities.payments import PaymentActivities
from activities.planning import PlannerActivities
from activities.registry import by_role
from chimera.finance.purpose_review import PurposeReviewer
from chimera.mcp.shared_reads import SharedReads
from chimera.models.factory import resolve_mode
from chimera.safety.model_review import ModelReviewer
from chimera.safety.vision import VisionCheck
from chimera.settings import Settings
from mcp_servers.media import MediaStore
from schemas.activity_table import Role
from schemas.options import TaskQueues
from workers.dependencies import Dependencies
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow
from workflows.payment import PaymentWorkflow
from workflows.scope_stop import ScopeStopWorkflow

GRACEFUL_SHUTDOWN = timedelta(seconds=10)  # in-flight activities get this long to finish on Ctrl-C

# One worker hosts both workflow types, so one default behavior: AUTO_UPGRADE, because a campaign runs
# for weeks (continue-as-new) and must move to new builds; its changes stay replay-safe via patched().
# A workflow type may say otherwise in its @workflow.defn (specs/deploy.md).
DEFAULT_VERSIONING_BEHAVIOR = VersioningBehavior.AUTO_UPGRADE


WORKFLOWS = [CampaignWorkflow, ContentTaskWorkflow, ScopeStopWorkflow, PaymentWorkflow]


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """Worker versioning when a deployment name and build id are configured; None runs unversioned."""
    if settings.worker_deployment_name is None or settings.worker_build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(
            deployment_name=settings.worker_deployment_name, build_id=settings.worker_build_id
        ),
        use_worker_versioning=True,
        default_versioning_behavior=DEFAULT_VERSIONING_BEHAVIOR,
    )


def activity_classes(deps: Dependencies) -> list[object]:
    """Every activity implementation, with its dependencies; which role runs which is the table's word."""
    s = deps.settings
    live = resolve_mode(s) == "live"  # offline templates cannot review drafts or look at images
    reviewer = ModelReviewer(deps.model) if live else None
    vision = VisionCheck(MediaStore(s.sandbox_dir), model=deps.model if live else None, rules=deps.rules)
    review_estimate = s.cost_estimates_usd.get("review", s.default_cost_estimate_usd) if reviewer else 0.0
    return [
        AccessActivities(deps.store, deps.alerts),
        PlannerActivities(
            deps.store,
            deps.mcp,
            deps.model,
            SharedReads(s.observe_share_seconds),
            plan_estimate_usd=s.cost_estimates_usd.get("plan", s.default_cost_estimate_usd),
            alerts=deps.alerts,
            memory=deps.memory,
            rules=deps.rules,
        ),
        BudgetActivities(
            deps.store, s.cost_estimates_usd, s.default_cost_estimate_usd, review_estimate, alerts=deps.alerts
        ),
        ContentActivities(deps.store, deps.mcp, deps.model, memory=deps.memory),
        JudgeActivities(
            deps.store,
            deps.rules,
            deps.similarity,
            deps.classifier,
            reviewer=reviewer,
            vision=vision,
            alerts=deps.alerts,
            memory=deps.memory,
            mcp=deps.mcp,
        ),
        PaymentActivities(
            deps.store,
            deps.mcp,
            s.payments,
            reviewer=PurposeReviewer(deps.model) if live else None,
            classifier=deps.classifier,
            rules=deps.rules,
        ),
    ]


def activity_threads(deps: Dependencies, roles: Sequence[Role]) -> int:
    """Threads for synchronous activities: every role may run them, each up to its concurrency limit."""
    return sum(getattr(deps.settings.worker_concurrency, role) for role in roles)


def build_workers(
    client: Client, roles: Sequence[Role], deps: Dependencies, queues: TaskQueues, executor: concurrent.futures.Executor
) -> list[Worker]:
    instances = activity_classes(deps)
    limits = deps.settings.worker_concurrency
    # Every role joins the same version: a pinned workflow's activities go to its version's workers.
    versioning = deployment_config(deps.settings)
    workers = []
    for role in roles:
        workers.append(
            Worker(
                client,
                task_queue=getattr(queues, role),
                workflows=WORKFLOWS if role == "planner" else [],
                activities=by_role(role, instances),
                activity_executor=executor,  # synchronous (database) activities run here
                max_concurrent_activities=getattr(limits, role),
                max_concurrent_workflow_tasks=limits.workflow_tasks if role == "planner" else None,
                max_cached_workflows=max(limits.cached_workflows, limits.workflow_tasks) if role == "planner" else 0,
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
                deployment_config=versioning,
            )
        )
    return workers


async def run_workers(
    client: Client, roles: Sequence[Role], deps: Dependencies, queues: TaskQueues, stop: asyncio.Event
) -> None:
    """Run the roles' workers until `stop` is set, then let in-flight activities finish."""
    threads = activity_threads(deps, roles)
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chimera-activity") as executor:
        workers = build_workers(client, roles, deps, queues, executor)
        runs = [asyncio.create_task(w.run()) for w in workers]
        await stop.wait()
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*runs, return_exceptions=True)
