"""Running Chimera's workflows in tests: a worker with scripted activities, a campaign started on it,
and the reads tests make of it (status, acks, the input a run was handed)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from chimera.control.campaigns import campaign_search_attributes
from schemas.activity_table import Activities
from schemas.campaign import CampaignSpec
from schemas.campaign_run import CampaignInput, ObserveRequest
from schemas.events import CampaignStatus
from schemas.options import RuntimeOptions, TaskQueues
from schemas.plan import Observation
from schemas.review import Ack, AckQuery
from tests.helpers.polling import eventually
from tests.helpers.scripted import Script
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow
from workflows.payment import PaymentWorkflow


def runtime(queue: str) -> RuntimeOptions:
    queues = TaskQueues(planner=queue, worker=queue, judge=queue)
    return RuntimeOptions(task_queues=queues, child_summaries=False)


@asynccontextmanager
async def running(client: Client, script: Script) -> AsyncIterator[str]:
    queue = f"q-{uuid.uuid4()}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[CampaignWorkflow, ContentTaskWorkflow, PaymentWorkflow],
        activities=script.activities(),
    ):
        yield queue


async def start(client: Client, queue: str, spec: CampaignSpec, max_cycles: int | None = 1) -> WorkflowHandle[Any, Any]:
    # A campaign id of its own per test: task ids (and so child workflow ids) derive from it.
    spec = spec.model_copy(update={"campaign_id": f"spring-{uuid.uuid4().hex[:8]}"})
    return await client.start_workflow(
        CampaignWorkflow.run,
        CampaignInput(spec=spec, runtime=runtime(queue), max_cycles=max_cycles),
        id=spec.workflow_id,
        task_queue=queue,
        search_attributes=campaign_search_attributes(spec),  # as `chimera campaign start` does
    )


async def status(handle: WorkflowHandle[Any, Any]) -> CampaignStatus:
    return await handle.query(CampaignWorkflow.status)


async def task_handle(client: Client, handle: WorkflowHandle[Any, Any], key_suffix: str) -> WorkflowHandle[Any, Any]:
    async def find() -> str | None:
        st = await status(handle)
        return next((t.task_id for t in st.tasks if t.key.endswith(key_suffix) and t.status != "planned"), None)

    return client.get_workflow_handle_for(ContentTaskWorkflow.run, await eventually(find))


class ObserveGate:
    """Holds campaign runs at the start of a cycle (in observe), so the test can act between cycles.

    A held run cannot continue as new, take a new cycle or settle task updates: what the test sees
    and sends meanwhile lands in exactly that run.
    """

    def __init__(self) -> None:
        self.allowed: set[str] | None = None  # run ids whose observe passes; None: every run
        self.held: set[str] = set()  # run ids waiting in observe now

    def activity(self) -> Callable[..., Awaitable[Observation]]:
        gate = self

        @activity.defn(name=Activities.observe.name)
        async def observe(req: ObserveRequest) -> Observation:
            run_id = activity.info().workflow_run_id or ""
            while gate.allowed is not None and run_id not in gate.allowed:
                gate.held.add(run_id)
                await asyncio.sleep(0.05)
            gate.held.discard(run_id)
            return Observation()

        return observe


async def ack(handle: WorkflowHandle[Any, Any], request_id: str) -> Ack:
    answer: Ack | None = await handle.query(CampaignWorkflow.ack, AckQuery(request_id=request_id))
    assert answer is not None, f"no ack for {request_id}"
    return answer


async def carried_input(client: Client, workflow_id: str, run_id: str) -> CampaignInput:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [inp] = pydantic_data_converter.payload_converter.from_payloads(started.input.payloads, [CampaignInput])
    assert isinstance(inp, CampaignInput)
    return inp
