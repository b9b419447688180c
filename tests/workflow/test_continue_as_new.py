"""CampaignWorkflow continues as new with its state intact, on the dev server.

The time-skipping test server does not suggest continue-as-new, so this runs the real dev server
with a tiny history limit: a campaign cycling every second passes it within a few cycles.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from schemas.campaign_run import CampaignInput
from schemas.events import BudgetChange, CampaignStatus, ControlRequest, EmergencyStop, GoalsChange
from schemas.options import RuntimeOptions, TaskQueues
from schemas.review import Ack, AckQuery, ReviewDecision
from tests.helpers import scripted
from tests.helpers.campaigns import ObserveGate, ack, carried_input, status
from tests.helpers.dev_server import start_dev_server
from tests.helpers.identity import signed
from tests.helpers.polling import eventually
from tests.helpers.scripted import MEDIUM, Script, banned, post
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow

SUGGEST_CONTINUE_AS_NEW_AT = 60  # events; the default (thousands) would take hours of cycles
QUEUE = "can-queue"
NEW_GOALS = ["Launch the denim drop", "Answer every sizing question"]


@pytest.fixture
async def client(dev_server_path: str) -> AsyncIterator[Client]:
    async with await start_dev_server(dev_server_path, SUGGEST_CONTINUE_AS_NEW_AT) as env:
        yield env.client


async def test_continue_as_new_keeps_cycles_tasks_goals_budget_acks_and_pending_reviews(client: Client) -> None:
    gate = ObserveGate()
    script = Script(plans=[[post("rv"), post("bad", topic="#cryptogiveaway")], [post("n")]])
    script.scores = {"c1-rv": MEDIUM, "c1-bad": banned("crypto")}  # one review to outlive runs, one re-plan
    activities = [a for a in script.activities() if getattr(a, "__name__", "") != "observe"] + [gate.activity()]
    spec = scripted.spec(campaign_id="can-state", cycle_interval_seconds=1)
    runtime = RuntimeOptions(task_queues=TaskQueues(planner=QUEUE, worker=QUEUE, judge=QUEUE))
    async with Worker(
        client, task_queue=QUEUE, workflows=[CampaignWorkflow, ContentTaskWorkflow], activities=activities
    ):
        handle = await client.start_workflow(
            CampaignWorkflow.run,
            CampaignInput(spec=spec, runtime=runtime, max_cycles=40),
            id=spec.workflow_id,
            task_queue=QUEUE,
        )
        review_id = f"{spec.tenant_id}.{spec.campaign_id}.c1-rv"
        try:
            # Cycle 1 done: a review pending and a rejected task re-planned (and its replacement published).
            async def cycle_one_settled() -> bool:
                st = await status(handle)
                return review_id in st.pending_reviews and st.replans == 1 and len(script.published) >= 1

            await eventually(cycle_one_settled, "cycle 1 left a pending review and a re-plan")
            assert script.published[0].idempotency_key.endswith(".c1r1-bad")

            # Hold the campaign at its next cycle and change everything in that run.
            gate.allowed = set()
            signalled_run = await eventually(lambda: _one(gate.held), "the campaign held in observe")
            before = await status(handle)
            await handle.signal(
                CampaignWorkflow.set_goals,
                signed(GoalsChange(request_id="g1", actor="maya", goals=NEW_GOALS), handle, "set_goals"),
            )
            await handle.signal(
                CampaignWorkflow.set_budget,
                signed(BudgetChange(request_id="b1", actor="maya", daily_budget_usd=12.5), handle, "set_budget"),
            )
            await handle.signal(
                CampaignWorkflow.pause,
                signed(ControlRequest(request_id="p1", actor="maya", reason="check"), handle, "pause"),
            )
            await eventually(
                lambda: handle.query(CampaignWorkflow.ack, AckQuery(request_id="p1")), "the pause is applied"
            )
            assert (await status(handle)).state == "paused"
            await handle.signal(
                CampaignWorkflow.resume, signed(ControlRequest(request_id="r1", actor="maya"), handle, "resume")
            )
            await handle.signal(
                CampaignWorkflow.resume, signed(ControlRequest(request_id="r2", actor="omar"), handle, "resume")
            )  # refused
            await eventually(lambda: handle.query(CampaignWorkflow.ack, AckQuery(request_id="r2")), "r2 answered")
            assert (await ack(handle, "r1")).accepted and not (await ack(handle, "r2")).accepted
            assert (await handle.describe()).run_id == signalled_run

            # Let that run go on until it continues as new, and hold the new run at its first cycle.
            gate.allowed = {signalled_run}
            new_run = await eventually(lambda: _one(gate.held - {signalled_run}), "a new run after continue-as-new")
            old = await client.get_workflow_handle(spec.workflow_id, run_id=signalled_run).describe()
            first = await client.get_workflow_handle(spec.workflow_id, run_id=handle.first_execution_run_id).describe()
            assert old.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
            assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
            assert (await handle.describe()).run_id == new_run != signalled_run

            carried = (await carried_input(client, spec.workflow_id, new_run)).carried
            assert carried is not None and carried.runs >= 2
            assert carried.cycle >= before.cycle and carried.goals == NEW_GOALS

            after = await status(handle)
            assert after.cycle >= carried.cycle >= before.cycle > 1  # continued, not reset
            assert after.state == "running" and after.paused_by is None
            assert after.goals == NEW_GOALS and after.daily_budget_usd == 12.5
            assert after.replans == 1
            by_key = {t.key: t for t in after.tasks}
            assert by_key["c1-rv"].status == "pending_review" and by_key["c1-rv"].cycle == 1
            assert after.pending_reviews == [review_id]
            assert any(t.cycle < after.cycle and t.status == "published" for t in after.tasks), after.tasks
            acks = {r: (await ack(handle, r)).accepted for r in ("g1", "b1", "p1", "r1", "r2")}
            assert acks == {"g1": True, "b1": True, "p1": True, "r1": True, "r2": False}
            assert any(r.goals == NEW_GOALS for r in script.plan_requests)

            # The review started in cycle 1, in an earlier run, is approved now and reports to the new run.
            child = client.get_workflow_handle_for(ContentTaskWorkflow.run, review_id)
            await child.signal(
                ContentTaskWorkflow.decide,
                signed(ReviewDecision(request_id="rv1", action="approve", reviewer="lena"), child),
            )
            decided: Ack | None = await eventually(
                lambda: child.query(ContentTaskWorkflow.ack, AckQuery(request_id="rv1")), "the approval answered"
            )
            assert decided is not None and decided.accepted
            gate.allowed = {signalled_run, new_run}

            async def review_published() -> CampaignStatus | None:
                st = await status(handle)
                return st if any(t.key == "c1-rv" and t.status == "published" for t in st.tasks) else None

            published = await eventually(review_published, "the approved review shown as published")
            assert published.pending_reviews == [] and (await handle.describe()).run_id == new_run
            assert any(p.idempotency_key == review_id for p in script.published)

            await handle.signal(
                CampaignWorkflow.emergency_stop,
                signed(EmergencyStop(request_id="s1", actor="ops", reason="done"), handle, "emergency_stop"),
            )
        finally:
            gate.allowed = None  # never leave an activity waiting behind the worker's shutdown
        final: CampaignStatus = await handle.result()
    assert final.state == "stopped" and final.replans == 1 and final.goals == NEW_GOALS


async def _one(runs: set[str]) -> str | None:
    return next(iter(runs), None)
