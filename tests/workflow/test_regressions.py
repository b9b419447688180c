"""Regression tests for the workflow defects listed under "Fixed defects" in specs/workflows.md.

Each test drives the real workflows with scripted activities into the one situation its defect
needed, checks that the situation was reached (so the test cannot pass vacuously), then checks
the fixed behaviour. Continue-as-new cases run on a dev server with a suggestion limit high
enough that the test, not the cycle count, decides when the campaign continues as new.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.campaign_run import CampaignInput
from schemas.events import BudgetChange, CampaignStatus, ControlRequest, EmergencyStop, GoalsChange, TaskView
from schemas.review import Ack, AckQuery, ReviewDecision
from schemas.task import TERMINAL_STATUSES, TaskOutcome
from tests.helpers import scripted
from tests.helpers.campaigns import ObserveGate, carried_input, running, runtime, start, status, task_handle
from tests.helpers.dev_server import start_dev_server
from tests.helpers.identity import signed
from tests.helpers.polling import eventually
from tests.helpers.scripted import MEDIUM, Script, banned, post
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow

HOUR = 3600
SUGGEST_CONTINUE_AS_NEW_AT = 200  # events: more than three quiet cycles, so only the test's trigger crosses it
NEW_GOALS = ["Launch the denim drop"]


async def campaign_ack(handle: WorkflowHandle[Any, Any], request_id: str) -> Ack | None:
    answer: Ack | None = await handle.query(CampaignWorkflow.ack, AckQuery(request_id=request_id))
    return answer


async def task_ack(handle: WorkflowHandle[Any, Any], request_id: str) -> Ack | None:
    answer: Ack | None = await handle.query(ContentTaskWorkflow.ack, AckQuery(request_id=request_id))
    return answer


def uncached_worker(client: Client, queue: str, script: Script) -> Worker:
    """A worker without a workflow cache: no sticky queue, so a restarted worker gets the next task at once."""
    return Worker(
        client,
        task_queue=queue,
        workflows=[CampaignWorkflow, ContentTaskWorkflow],
        activities=script.activities(),
        max_cached_workflows=0,
    )


def by_key(st: CampaignStatus) -> dict[str, TaskView]:
    return {t.key: t for t in st.tasks}


def one_ending(st: CampaignStatus, suffix: str) -> TaskView | None:
    return next((t for t in st.tasks if t.key.endswith(suffix)), None)


def published_keys(script: Script) -> list[str]:
    return [p.idempotency_key.rsplit(".", 1)[-1] for p in script.published]


@dataclass
class HeldObserveScript(Script):
    """A Script whose observe activity waits behind an ObserveGate (the test decides when a cycle proceeds)."""

    gate: ObserveGate = field(default_factory=ObserveGate)

    def activities(self) -> list[Callable[..., object]]:
        kept = [a for a in super().activities() if getattr(a, "__name__", "") != "observe"]
        return [*kept, self.gate.activity()]


# --- time-skipping test server ----------------------------------------------------------------


async def test_pause_sent_with_the_start_is_honoured(env: WorkflowEnvironment) -> None:
    """Defect 1: a control signal handled before run() started failed the campaign."""
    script = Script(plans=[[post("tw")]])
    async with running(env.client, script) as queue:
        spec = scripted.spec(campaign_id=f"spring-{uuid.uuid4().hex[:8]}")
        handle: WorkflowHandle[Any, CampaignStatus] = await env.client.start_workflow(
            CampaignWorkflow.run,
            CampaignInput(spec=spec, runtime=runtime(queue), max_cycles=1),
            id=spec.workflow_id,
            task_queue=queue,
            start_signal="pause",
            start_signal_args=[
                signed(
                    ControlRequest(request_id="p0", actor="maya", reason="hold the launch"), spec.workflow_id, "pause"
                )
            ],
        )

        async def answered() -> Ack | None:
            desc = await handle.describe()
            assert desc.status == WorkflowExecutionStatus.RUNNING, f"the campaign ended: {desc.status!r}"
            return await campaign_ack(handle, "p0")

        paused_ack = await eventually(answered)

        async def pause_audited() -> bool:
            return [a.action for a in script.audits] == ["pause"]

        await eventually(pause_audited)
        paused = await status(handle)
        assert paused.state == "paused" and paused.paused_by == "maya" and paused.cycle == 0
        assert script.plan_requests == [] and script.executed == []  # nothing started while paused
        await handle.signal(
            CampaignWorkflow.resume, signed(ControlRequest(request_id="r0", actor="maya"), handle, "resume")
        )
        final = await handle.result()
    assert paused_ack.accepted and paused_ack.message.startswith("campaign paused")
    assert final.state == "completed" and final.cycle == 1 and final.tasks_by_state == {"published": 1}
    assert [a.action for a in script.audits] == ["pause", "resume"]
    assert script.audits[0].detail == {"reason": "hold the launch"} and script.audits[0].campaign_status == "paused"


async def test_two_decisions_handled_in_one_workflow_task_accept_only_the_first(
    env: WorkflowEnvironment,
) -> None:
    """Defect 4: two decide signals in the same workflow task were both accepted (the last one won)."""
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM)
    queue = f"q-{uuid.uuid4()}"
    async with uncached_worker(env.client, queue, script):
        handle = await start(env.client, queue, scripted.spec())
        child = await task_handle(env.client, handle, "tw")

        async def pending() -> bool:
            return (await child.query(ContentTaskWorkflow.review)).state == "pending"

        await eventually(pending)
    # No worker polls now: both decisions wait in the history and reach the task in one activation.
    await child.signal(
        ContentTaskWorkflow.decide,
        signed(ReviewDecision(request_id="a", action="reject", reviewer="lena", reason="off brand"), child),
    )
    await child.signal(
        ContentTaskWorkflow.decide, signed(ReviewDecision(request_id="b", action="approve", reviewer="omar"), child)
    )
    async with uncached_worker(env.client, queue, script):
        outcome: TaskOutcome = await child.result()
        first, second = await task_ack(child, "a"), await task_ack(child, "b")
        history = await child.fetch_history()
    kinds = [
        e.workflow_execution_signaled_event_attributes.signal_name
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        else "task started"
        for e in history.events
        if e.event_type
        in (EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
    ]
    decide_at = kinds.index("decide")
    assert kinds[decide_at : decide_at + 3] == ["decide", "decide", "task started"]  # one workflow task saw both
    assert first is not None and second is not None
    assert [first.accepted, second.accepted] == [True, False]
    assert second.message == "already decided: rejected by lena"
    assert outcome.status == "rejected" and outcome.reason == "rejected by lena: off brand"
    assert script.published == []
    assert [r.state for r in script.reviews] == ["pending", "rejected"] and script.reviews[1].reviewer == "lena"


async def paused_with_an_owed_replan(
    env: WorkflowEnvironment, script: HeldObserveScript, queue: str, max_cycles: int
) -> WorkflowHandle[Any, Any]:
    """A campaign paused in cycle 2 whose cycle-1 task was rejected (and settled) while paused."""
    assert script.execute_gate is not None
    handle = await start(env.client, queue, scripted.spec(cycle_interval_seconds=HOUR), max_cycles=max_cycles)

    async def executing() -> bool:
        return script.executed == ["c1-a"]

    await eventually(executing)
    child = await task_handle(env.client, handle, "c1-a")
    # Hold the campaign inside cycle 2's observe; the rejection and the pause land while it is busy.
    script.gate.allowed = set()
    await handle.signal(
        CampaignWorkflow.set_goals,
        signed(GoalsChange(request_id="g", actor="maya", goals=NEW_GOALS), handle, "set_goals"),
    )

    async def held() -> bool:
        return bool(script.gate.held)

    await eventually(held)
    script.execute_gate.set()
    rejected: TaskOutcome = await child.result()  # its task_update is in the campaign's inbox now
    assert rejected.status == "rejected" and rejected.replan
    await handle.signal(CampaignWorkflow.pause, signed(ControlRequest(request_id="p", actor="maya"), handle, "pause"))
    await eventually(lambda: campaign_ack(handle, "p"))
    script.gate.allowed = None

    async def settled_while_paused() -> CampaignStatus | None:
        st = await status(handle)
        return st if by_key(st)["c1-a"].status == "rejected" else None

    paused = await eventually(settled_while_paused)
    assert paused.state == "paused" and paused.cycle == 2 and paused.replans == 0
    assert not [r for r in script.plan_requests if r.replan_of is not None]
    return handle


def owed_replan_script() -> HeldObserveScript:
    return HeldObserveScript(
        plans=[[post("a", topic="#cryptogiveaway")], []],
        scores={"c1-a": banned("crypto")},
        execute_gate=asyncio.Event(),
    )


async def test_rejection_settled_while_paused_is_replanned_after_resume(env: WorkflowEnvironment) -> None:
    """Defect 5: a re-plan-worthy outcome settled while the campaign was paused was never re-planned."""
    script = owed_replan_script()
    async with running(env.client, script) as queue:
        handle = await paused_with_an_owed_replan(env, script, queue, max_cycles=3)
        await handle.signal(
            CampaignWorkflow.resume, signed(ControlRequest(request_id="r", actor="maya"), handle, "resume")
        )
        final: CampaignStatus = await handle.result()
    replans = [r for r in script.plan_requests if r.replan_of is not None]
    assert len(replans) == 1 and replans[0].replan_of is not None and replans[0].replan_of.key == "c1-a"
    assert replans[0].replan_reason is not None and "crypto" in replans[0].replan_reason
    assert final.state == "completed" and final.replans == 1
    replacement = one_ending(final, "r1-a")
    assert replacement is not None and replacement.status == "published" and replacement.attempt == 2
    assert published_keys(script) == [replacement.key]
    assert [a.action for a in script.audits] == ["goals", "pause", "resume"]


async def test_resume_replans_deferred_tasks_at_once(env: WorkflowEnvironment) -> None:
    """Defect 8: after resume, owed re-plans waited for the next wake-up (here an hour away)."""
    script = owed_replan_script()
    async with running(env.client, script) as queue:
        handle = await paused_with_an_owed_replan(env, script, queue, max_cycles=3)
        await handle.signal(
            CampaignWorkflow.resume, signed(ControlRequest(request_id="r", actor="maya"), handle, "resume")
        )

        async def replanned() -> CampaignStatus | None:
            # Real time only: nothing awaits a result, so the test server does not skip to the next cycle.
            st = await status(handle)
            return st if st.replans == 1 else None

        st = await eventually(replanned)
        assert st.cycle == 2
        await handle.terminate("test over")


async def test_last_cycle_waits_for_owed_replans(env: WorkflowEnvironment) -> None:
    """Defect 9: a campaign at max_cycles with nothing running completed without its owed re-plans."""
    script = owed_replan_script()
    async with running(env.client, script) as queue:
        handle = await paused_with_an_owed_replan(env, script, queue, max_cycles=2)
        await handle.signal(
            CampaignWorkflow.resume, signed(ControlRequest(request_id="r", actor="maya"), handle, "resume")
        )
        final: CampaignStatus = await handle.result()
    assert final.state == "completed" and final.cycle == 2 and final.replans == 1
    replacement = one_ending(final, "r1-a")
    assert replacement is not None and replacement.status == "published"


async def test_emergency_stop_during_a_review_records_it_cancelled(env: WorkflowEnvironment) -> None:
    """Defect 6: a review stopped mid-wait stayed `pending` in the store."""
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(), max_cycles=None)

        async def pending_review() -> list[str]:
            return (await status(handle)).pending_reviews

        [task_id] = await eventually(pending_review)
        child = env.client.get_workflow_handle_for(ContentTaskWorkflow.run, task_id)
        await handle.signal(
            CampaignWorkflow.emergency_stop,
            signed(EmergencyStop(request_id="s", actor="ops", reason="legal hold"), handle, "emergency_stop"),
        )
        final: CampaignStatus = await handle.result()
        outcome: TaskOutcome = await child.result()
    assert final.state == "stopped" and outcome.status == "cancelled"
    assert [(r.task_id, r.state) for r in script.reviews] == [(task_id, "pending"), (task_id, "cancelled")]
    assert script.reviews[1].reason == "emergency stop: legal hold"
    assert script.published == []


async def test_a_cancelled_dependent_names_the_dependency_that_failed(env: WorkflowEnvironment) -> None:
    """Defect 7: the reason named the first unpublished dependency, even one still running."""
    script = Script(
        plans=[[post("a"), post("b", topic="#cryptogiveaway"), post("c", depends_on=["a", "b"])]],
        scores={"c1-a": MEDIUM, "c1-b": banned("crypto")},  # a waits for a reviewer, b is rejected for good
    )
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(max_replans=0))
        final: CampaignStatus = await handle.result()
    tasks = by_key(final)
    assert tasks["c1-a"].status == "pending_review"  # unpublished, but not failed
    assert tasks["c1-b"].status == "rejected" and "gave up after 1 attempts" in tasks["c1-b"].reason
    assert tasks["c1-c"].status == "cancelled"
    assert tasks["c1-c"].reason == "dependency c1-b was not published"
    assert "c1-c" not in script.executed


# --- dev server: continue-as-new ----------------------------------------------------------------


@pytest.fixture(scope="module")
async def dev_client(dev_server_path: str) -> AsyncIterator[Client]:
    async with await start_dev_server(dev_server_path, SUGGEST_CONTINUE_AS_NEW_AT) as dev:
        yield dev.client


async def history_length(handle: WorkflowHandle[Any, Any]) -> int:
    return (await handle.describe()).history_length


async def pause_past_the_suggestion(handle: WorkflowHandle[Any, Any], script: Script) -> None:
    """Pause, grow the history past the limit with budget changes, resume: the campaign then waits,
    running, in a run whose next wake-up continues as new (a paused campaign never checks)."""
    await handle.signal(
        CampaignWorkflow.pause, signed(ControlRequest(request_id="hold", actor="test"), handle, "pause")
    )
    n = 0
    while await history_length(handle) <= SUGGEST_CONTINUE_AS_NEW_AT:
        n += 1
        change = BudgetChange(request_id=f"grow-{n}", actor="test", daily_budget_usd=5.0 + n)
        await handle.signal(CampaignWorkflow.set_budget, signed(change, handle, "set_budget"))

        async def audited(usd: float = change.daily_budget_usd) -> bool:
            return any(a.action == "budget" and a.detail.get("to_usd") == usd for a in script.audits)

        await eventually(audited)
    await handle.signal(
        CampaignWorkflow.resume, signed(ControlRequest(request_id="go", actor="test"), handle, "resume")
    )

    async def resumed() -> bool:
        return bool(script.audits) and script.audits[-1].action == "resume"

    await eventually(resumed)
    assert (await status(handle)).state == "running"
    assert (await handle.describe()).run_id == handle.first_execution_run_id  # not continued yet
    assert await history_length(handle) > SUGGEST_CONTINUE_AS_NEW_AT


async def next_run(handle: WorkflowHandle[Any, Any]) -> str:
    async def changed() -> str | None:
        run_id = (await handle.describe()).run_id
        return run_id if run_id != handle.first_execution_run_id else None

    return await eventually(changed)


async def test_goals_changed_on_the_continue_as_new_wake_up_replan_at_once(dev_client: Client) -> None:
    """Defect 2: the goals-changed flag was not carried, so the new run waited for the schedule."""
    script = Script(plans=[])  # quiet cycles: nothing but observe and plan
    async with running(dev_client, script) as queue:
        handle = await start(dev_client, queue, scripted.spec(cycle_interval_seconds=HOUR), max_cycles=None)
        try:

            async def first_cycle() -> bool:
                return [r.cycle for r in script.plan_requests] == [1]

            await eventually(first_cycle)
            await pause_past_the_suggestion(handle, script)
            await handle.signal(
                CampaignWorkflow.set_goals,
                signed(GoalsChange(request_id="g", actor="maya", goals=NEW_GOALS), handle, "set_goals"),
            )
            run_id = await next_run(handle)
            carried = (await carried_input(dev_client, handle.id, run_id)).carried
            assert carried is not None and carried.cycle == 1 and carried.goals == NEW_GOALS  # handed over first
            assert carried.goals_changed

            async def replanned() -> bool:
                return any(r.cycle == 2 and r.goals == NEW_GOALS for r in script.plan_requests)

            await eventually(replanned, within=15.0)  # the next scheduled cycle is an hour away
            after = await status(handle)
            goals_ack = await campaign_ack(handle, "g")
        finally:
            await handle.terminate("test over")
    assert after.cycle == 2 and after.goals == NEW_GOALS and (await handle.describe()).run_id == run_id
    assert goals_ack is not None and goals_ack.accepted and goals_ack.message.endswith("re-planning now")


async def test_a_dependency_replanned_long_ago_survives_continue_as_new(dev_client: Client) -> None:
    """Defect 3: a run that dropped a rejected original cancelled the task depending on it."""
    script = Script(
        plans=[[post("a", topic="#cryptogiveaway"), post("b", depends_on=["a"])], []],
        scores={"c1-a": banned("crypto"), "r1-a": MEDIUM},  # a rejected; its replacement waits for a reviewer
    )
    async with running(dev_client, script) as queue:
        handle = await start(dev_client, queue, scripted.spec(cycle_interval_seconds=HOUR), max_cycles=None)
        try:

            async def replacement_pending() -> CampaignStatus | None:
                st = await status(handle)
                return st if len(st.pending_reviews) == 1 and st.replans == 1 else None

            cycle_one = await eventually(replacement_pending)
            [review_id] = cycle_one.pending_reviews
            assert by_key(cycle_one)["c1-b"].status == "planned" and review_id.endswith("c1r1-a")
            for cycle, goal in ((2, "Second push"), (3, "Third push")):  # each goals change starts a cycle
                await handle.signal(
                    CampaignWorkflow.set_goals,
                    signed(GoalsChange(request_id=f"g{cycle}", actor="maya", goals=[goal]), handle, "set_goals"),
                )

                async def reached(want: int = cycle) -> bool:
                    return (await status(handle)).cycle == want and len(script.plan_requests) == want + 1

                await eventually(reached)
            # c1-a is now terminal and two cycles old: only its link from c1-b keeps it in the carry.
            await pause_past_the_suggestion(handle, script)
            await handle.signal(
                CampaignWorkflow.set_budget,
                signed(BudgetChange(request_id="wake", actor="maya", daily_budget_usd=9.0), handle, "set_budget"),
            )
            run_id = await next_run(handle)
            carried = (await carried_input(dev_client, handle.id, run_id)).carried
            assert carried is not None and carried.cycle == 3
            assert {"c1-a", "c1r1-a", "c1-b"} <= set(carried.tasks)

            review = dev_client.get_workflow_handle_for(ContentTaskWorkflow.run, review_id)
            await review.signal(
                ContentTaskWorkflow.decide,
                signed(ReviewDecision(request_id="ok", action="approve", reviewer="lena"), review),
            )

            async def dependent_ended() -> TaskView | None:
                view = by_key(await status(handle)).get("c1-b")
                return view if view is not None and view.status in TERMINAL_STATUSES else None

            dependent = await eventually(dependent_ended)
            after = await status(handle)
        finally:
            await handle.terminate("test over")
    assert (dependent.status, dependent.reason) == ("published", "")
    assert by_key(after)["c1r1-a"].status == "published"
    assert published_keys(script) == ["c1r1-a", "c1-b"]
    assert (await handle.describe()).run_id == run_id
