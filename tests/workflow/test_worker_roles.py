"""Worker processes: each role registers its table entries, with the concurrency the settings give it."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from activities.registry import entry_of
from chimera.settings import Settings, WorkerConcurrency
from schemas.activity_table import ROLES, Activities
from schemas.options import TaskQueues
from workers.dependencies import Dependencies
from workers.roles import activity_threads, build_workers, deployment_config


async def test_each_role_runs_its_activities_with_the_configured_concurrency(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    limits = WorkerConcurrency(planner=7, worker=5, judge=3, workflow_tasks=11)
    deps = Dependencies.build(Settings(state_dir=tmp_path, worker_concurrency=limits))
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=15) as executor:
            workers = build_workers(env.client, ROLES, deps, TaskQueues(), executor)
            configs = {role: w.config() for role, w in zip(ROLES, workers, strict=True)}
    finally:
        await deps.aclose()
    for role, config in configs.items():
        assert config["task_queue"] == getattr(TaskQueues(), role)
        assert config["max_concurrent_activities"] == getattr(limits, role)
        entries = [entry_of(a) for a in config["activities"]]
        assert entries == [e for e in Activities.all() if e.role == role]
    assert configs["planner"]["max_concurrent_workflow_tasks"] == 11
    assert [w.__name__ for w in configs["planner"]["workflows"]] == [
        "CampaignWorkflow",
        "ContentTaskWorkflow",
        "ScopeStopWorkflow",
        "PaymentWorkflow",
    ]
    assert configs["worker"]["workflows"] == [] and configs["judge"]["workflows"] == []
    assert all(c["deployment_config"] is None for c in configs.values())  # unversioned unless configured


async def test_every_role_joins_the_configured_deployment_version(env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, worker_deployment_name="chimera", worker_build_id="0.1.0")
    deps = Dependencies.build(settings)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=activity_threads(deps, ROLES)) as executor:
            workers = build_workers(env.client, ROLES, deps, TaskQueues(), executor)
            configs = [w.config()["deployment_config"] for w in workers]
    finally:
        await deps.aclose()
    # One version across the roles: a pinned workflow's activities are dispatched to its own version.
    assert configs == [deployment_config(settings)] * len(ROLES)
    assert configs[0] is not None and configs[0].version.to_canonical_string() == "chimera.0.1.0"
