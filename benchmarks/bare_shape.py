"""The bare-Temporal baseline of benchmarks/throughput.py: Chimera's workflow shape with no-op activities.

The same shape as a Chimera campaign of that benchmark, step for step:

  BareCampaign (one per campaign, on the planner queue)
    register_campaign, observe, plan                      the cycle: it plans one post
    start a BareTask child (abandoned, like Chimera's)
    one `mention` signal per reply -> plan, each on its own (Chimera plans a pushed mention at once)
    start a BareTask child per reply, then wait for every child's `task_update` signal
  BareTask (one per task, on the planner queue)
    reserve_budget, execute_task, judge_result, record_verdict, commit_result, publish, settle_budget,
    record_outcome, then signal the campaign

Activity names and queues come from Chimera's activity table (schemas/activity_table.py), so each runs on
its role's queue, as Chimera's do; their bodies do nothing. The workflows run in the SDK's default sandbox
(as Chimera's do), with the default data converter and small dataclass payloads: what Chimera adds on
top (pydantic payloads, search attributes, details, real activity bodies, MCP, the database) is what the
ratio measures. `serve` runs one worker process with the three queues' workers at Chimera's concurrency
limits (Settings.worker_concurrency, so CHIMERA_WORKER_CONCURRENCY applies to both), as `chimera worker
--role all` does.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from schemas.activity_table import Activities, ActivityDef, Role

TIMEOUT = timedelta(seconds=60)
CAMPAIGN_STEPS: tuple[ActivityDef[Any, Any], ...] = (Activities.register_campaign, Activities.observe, Activities.plan)
TASK_STEPS: tuple[ActivityDef[Any, Any], ...] = (
    Activities.reserve_budget,
    Activities.execute_task,
    Activities.judge_result,
    Activities.record_verdict,
    Activities.commit_result,
    Activities.publish,
    Activities.settle_budget,
    Activities.record_outcome,
)


@dataclass
class Queues:
    planner: str
    worker: str
    judge: str

    def of(self, role: Role) -> str:
        queue: str = getattr(self, role)
        return queue


@dataclass
class CampaignIn:
    campaign_id: str
    tasks: int
    queues: Queues


@dataclass
class TaskIn:
    task_id: str
    campaign_workflow_id: str
    queues: Queues


async def _step(entry: ActivityDef[Any, Any], arg: str, queues: Queues) -> None:
    await workflow.execute_activity(
        entry.name, arg, task_queue=queues.of(entry.role), start_to_close_timeout=TIMEOUT, result_type=type(None)
    )


@workflow.defn
class BareTask:
    @workflow.run
    async def run(self, inp: TaskIn) -> str:
        for entry in TASK_STEPS:
            await _step(entry, inp.task_id, inp.queues)
        await workflow.get_external_workflow_handle(inp.campaign_workflow_id).signal("task_update", inp.task_id)
        return "published"


@workflow.defn
class BareCampaign:
    def __init__(self) -> None:
        self._mentions: list[str] = []
        self._done: set[str] = set()

    @workflow.run
    async def run(self, inp: CampaignIn) -> list[str]:
        for entry in CAMPAIGN_STEPS:
            await _step(entry, inp.campaign_id, inp.queues)
        ids = [await self._start(inp, 0)]
        await workflow.wait_condition(lambda: len(self._mentions) >= inp.tasks - 1)
        for mention in self._mentions:
            await _step(Activities.plan, mention, inp.queues)
        for i in range(1, inp.tasks):
            ids.append(await self._start(inp, i))
        await workflow.wait_condition(lambda: len(self._done) >= inp.tasks)
        return ids

    async def _start(self, inp: CampaignIn, i: int) -> str:
        task_id = f"{inp.campaign_id}.task-{i}"
        await workflow.start_child_workflow(
            BareTask.run,
            TaskIn(task_id, workflow.info().workflow_id, inp.queues),
            id=task_id,
            task_queue=inp.queues.planner,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
        return task_id

    @workflow.signal
    def mention(self, mention_id: str) -> None:
        self._mentions.append(mention_id)

    @workflow.signal
    def task_update(self, task_id: str) -> None:
        self._done.add(task_id)


def _noop(name: str) -> Any:
    @activity.defn(name=name)
    async def noop(_arg: str) -> None:
        return None

    return noop


def activities_for(role: Role) -> list[Any]:
    return [_noop(e.name) for e in (*CAMPAIGN_STEPS, *TASK_STEPS) if e.role == role]


async def serve(address: str, queues: Queues) -> None:
    """One worker process: a worker per queue at Chimera's default limits, until SIGTERM or SIGINT."""
    from chimera.settings import Settings

    limits = Settings(_env_file=None).worker_concurrency
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workers = [
        Worker(
            client,
            task_queue=queues.of(role),
            workflows=[BareCampaign, BareTask] if role == "planner" else [],
            activities=activities_for(role),
            max_concurrent_activities=getattr(limits, role),
            max_concurrent_workflow_tasks=limits.workflow_tasks if role == "planner" else None,
        )
        for role in ("planner", "worker", "judge")
    ]
    runs = [asyncio.create_task(w.run()) for w in workers]
    await stop.wait()
    await asyncio.gather(*(w.shutdown() for w in workers))
    await asyncio.gather(*runs, return_exceptions=True)
