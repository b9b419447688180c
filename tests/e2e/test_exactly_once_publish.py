"""Exactly one post when a worker dies after the platform accepted the post but before the activity completed.

The Worker role runs as a real `chimera worker --role worker` process; its twitter server accepts the post and
then hangs (tests/e2e/hanging_twitter.py), the test kills the worker's whole process group, and a second worker
takes over. Temporal retries the publish activity after its start-to-close timeout; the retry looks the task's
key up on the platform (find_tweet) and returns the earlier post instead of posting again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from chimera.campaign_file import load_campaign
from chimera.settings import McpServerConfig, default_mcp_servers
from chimera.temporal_config import TemporalConfig
from mcp_servers.social.sandbox import SandboxPlatform
from schemas.activity_table import Role
from schemas.options import ActivityOptions, RetrySpec, RuntimeOptions
from schemas.plan import PlannedTask
from schemas.policy import ConfidenceBands, JudgePolicy
from schemas.task import TaskOutcome
from tests.e2e.hanging_twitter import HANG_FILE_ENV
from tests.e2e.worker_processes import kill, split_roles, worker_process
from tests.helpers.dev_server import start_dev_server
from tests.helpers.polling import eventually
from tests.helpers.tasks import content_input
from workers.dependencies import Dependencies
from workers.roles import activity_threads, build_workers
from workflows.content_task import ContentTaskWorkflow

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def servers(flag: Path) -> dict[str, McpServerConfig]:
    """The allowlist: only twitter, served by the hanging variant of the sandbox server."""
    hanging = McpServerConfig(
        command=sys.executable,
        args=["-m", "tests.e2e.hanging_twitter"],
        env={HANG_FILE_ENV: str(flag)},
        publish_tools=default_mcp_servers()["twitter"].publish_tools,
    )
    return {"twitter": hanging}


@pytest.fixture
def flag(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "hang"
    path.touch()
    yield path
    path.unlink(missing_ok=True)


async def test_killed_worker_after_platform_accepted_still_posts_once(
    dev_server_path: str, tmp_path: Path, flag: Path
) -> None:
    env_server: WorkflowEnvironment = await start_dev_server(dev_server_path)
    settings, child_env = split_roles(env_server, tmp_path, servers(flag))
    deps = Dependencies.build(settings)
    spec = load_campaign(ROOT / "examples" / "campaign.yaml", TemporalConfig())
    deps.store.ensure_campaign(spec)
    await deps.mcp.approve("twitter", actor="test")

    task = PlannedTask(key="c1-post-twitter", task_type="post", platform="twitter", brief="A post", topic="#thriftflip")
    publish = ActivityOptions(start_to_close_seconds=5, retry=RetrySpec(initial_interval_seconds=0.5))
    inp = content_input(spec, task).model_copy(
        update={
            "runtime": RuntimeOptions(activities={"publish": publish}),
            "judge": JudgePolicy(bands=ConfidenceBands(approve_at=0.2, escalate_at=0.1)),
        }
    )
    sandbox = SandboxPlatform(settings.sandbox_dir, "twitter")
    roles: tuple[Role, ...] = ("planner", "judge")  # in this process; the worker role runs in the child
    first = worker_process(child_env)
    second: subprocess.Popen[bytes] | None = None
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=activity_threads(deps, roles)) as executor:
            workers = build_workers(env_server.client, roles, deps, inp.runtime.task_queues, executor)
            runs = [asyncio.create_task(w.run()) for w in workers]
            try:
                handle = await env_server.client.start_workflow(
                    ContentTaskWorkflow.run, inp, id=inp.ref.task_id, task_queue=inp.runtime.task_queues.planner
                )
                posted = await eventually(
                    lambda: asyncio.to_thread(sandbox.find_post, inp.ref.task_id), "the platform accepted the post"
                )
                # The platform has the post; the worker is still waiting for its answer. Kill it.
                kill(first)
                await asyncio.to_thread(flag.unlink)
                second = worker_process(child_env)

                outcome: TaskOutcome = await asyncio.wait_for(handle.result(), timeout=120)
            finally:
                await asyncio.gather(*(w.shutdown() for w in workers))
                await asyncio.gather(*runs, return_exceptions=True)
    finally:
        for proc in (first, second):
            kill(proc)
        await deps.aclose()
        await env_server.shutdown()

    assert outcome.status == "published" and outcome.post_id == posted["post_id"]
    assert [p["idempotency_key"] for p in sandbox.posts()] == [inp.ref.task_id]  # exactly one post
    audit = deps.store.audit_entries(spec.tenant_id, limit=500)
    lookups = [e.detail for e in audit if e.action == "mcp_call" and e.detail.get("tool") == "find_tweet"]
    assert [d["outcome"] for d in lookups] == ["ok"]  # the retry looked the key up first
    published = [e.detail for e in audit if e.action == "publish"]
    assert published == [{"platform": "twitter", "post_id": posted["post_id"], "duplicate": True}]
