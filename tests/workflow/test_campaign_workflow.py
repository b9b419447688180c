"""CampaignWorkflow and ContentTaskWorkflow on the time-skipping test server."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from schemas.events import CampaignStatus, ControlRequest, EmergencyStop, GoalsChange
from schemas.policy import ConfidenceBands, JudgePolicy
from schemas.review import AckQuery, ReviewDecision, ReviewView
from schemas.task import TaskOutcome
from tests.helpers import scripted
from tests.helpers.campaigns import running, start, status, task_handle
from tests.helpers.identity import signed
from tests.helpers.polling import eventually
from tests.helpers.scripted import MEDIUM, Script, banned, post, reply
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow

REVIEW_STATE = SearchAttributeKey.for_keyword("ReviewState")


async def skipping_result(env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any]) -> TaskOutcome:
    """Let the test server skip time until a child ends, then read its result.

    Only handles from start_workflow skip time by themselves, and the test server's history
    long-poll can miss a child's completion after a skip, so this polls describe() instead.
    """
    async with env.time_skipping_unlocked():  # type: ignore[attr-defined]

        async def closed() -> bool:
            return (await handle.describe()).close_time is not None

        await eventually(closed, within=60.0)  # generous: a loaded machine slows the skipped activities
    return TaskOutcome.model_validate(await handle.result())


async def test_approved_tasks_publish_in_dependency_order(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw"), post("ig", depends_on=["tw"])]])
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec())
        final: CampaignStatus = await handle.result()
    assert final.state == "completed"
    assert final.tasks_by_state == {"published": 2}
    assert [p.idempotency_key.rsplit(".", 1)[-1] for p in script.published] == ["c1-tw", "c1-ig"]
    assert all(p.idempotency_key.startswith("acme.spring-") for p in script.published)


async def test_the_audited_verdict_is_the_one_the_task_acted_on(env: WorkflowEnvironment) -> None:
    # Bands stricter than the defaults: scores the default policy approves escalate in this campaign.
    strict = JudgePolicy(bands=ConfidenceBands(approve_at=0.99, escalate_at=0.5))
    script = Script(plans=[[post("tw")]])
    async with running(env.client, script) as queue:
        final: CampaignStatus = await (await start(env.client, queue, scripted.spec(judge=strict))).result()
    assert final.tasks_by_state == {"pending_review": 1}
    assert [j.verdict_audited_by_workflow for j in script.judged] == [True]  # the judge activity does not audit
    [audited] = script.verdicts
    assert (audited.verdict.decision, audited.verdict.confidence) == ("escalate", 0.953)
    assert audited.verdict == script.reviews[0].verdict  # what the reviewer sees is what was audited
    assert final.tasks[0].confidence == audited.verdict.confidence


@pytest.mark.parametrize("broken", ["observe", "plan"])
async def test_a_failed_cycle_is_recorded_and_the_next_cycle_runs(env: WorkflowEnvironment, broken: str) -> None:
    script = Script(
        plans=[[post("tw")]], observe_failures=int(broken == "observe"), plan_failures=int(broken == "plan")
    )
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(cycle_interval_seconds=60), max_cycles=2)
        final: CampaignStatus = await handle.result()  # completed, not failed
    assert final.state == "completed" and final.cycle == 2
    assert final.tasks_by_state == {"published": 1}  # the second cycle planned and published
    [error] = final.cycle_errors
    assert error.startswith("cycle 1: ") and ("platform is down" in error or "plan is invalid" in error)
    alerts = [a for a in script.audits if a.action == "cycle_failed"]
    assert [a.detail["error"] for a in alerts] == [error] and alerts[0].actor == "system"


async def test_a_failed_replan_leaves_the_task_rejected_and_the_campaign_running(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("bad")]], scores={"bad": banned("crypto")}, replan_failures=1)
    async with running(env.client, script) as queue:
        final: CampaignStatus = await (await start(env.client, queue, scripted.spec())).result()
    assert final.state == "completed" and final.tasks_by_state == {"rejected": 1}
    assert "(re-planning failed: the planner is down)" in final.tasks[0].reason
    assert final.cycle_errors == ["re-plan of c1-bad: the planner is down"]


async def test_a_reply_to_a_mention_answered_meanwhile_is_not_replanned(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[reply("rp")]], answered_keys={"rp"})
    async with running(env.client, script) as queue:
        final: CampaignStatus = await (await start(env.client, queue, scripted.spec())).result()
    assert final.tasks_by_state == {"cancelled": 1} and final.replans == 0
    assert final.tasks[0].reason == "nothing left to do: the mention already has a reply"
    assert len(script.plan_requests) == 1 and script.published == []


async def test_review_deadline_days_away_expires_and_never_publishes(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(review_deadline_seconds=3 * 24 * 3600))
        final: CampaignStatus = await handle.result()  # one cycle; the review outlives the campaign
        assert final.tasks_by_state == {"pending_review": 1}
        child = env.client.get_workflow_handle_for(ContentTaskWorkflow.run, final.pending_reviews[0])
        outcome = await skipping_result(env, child)  # the test server skips the three days
        described = await child.describe()
    assert outcome.status == "rejected" and outcome.reason == "review expired" and not outcome.replan
    # Measured on the task's own clock: the server may skip ahead while the campaign is still finishing.
    assert described.close_time is not None
    assert described.close_time - described.start_time >= timedelta(days=2, hours=23)
    assert script.published == []
    assert [r.state for r in script.reviews] == ["pending", "expired"]
    desc = await child.describe()
    assert desc.typed_search_attributes.get(REVIEW_STATE) == "expired"


async def test_review_approve_publishes_once_and_second_decision_is_refused(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[reply("rp")]], default_scores=MEDIUM)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(cycle_interval_seconds=7 * 24 * 3600), max_cycles=None)
        child = await task_handle(env.client, handle, "rp")

        async def pending() -> bool:
            return (await child.query(ContentTaskWorkflow.review)).state == "pending"

        await eventually(pending)
        view: ReviewView = await child.query(ContentTaskWorkflow.review)
        assert view.verdict is not None and view.verdict.decision == "escalate"
        await child.signal(
            ContentTaskWorkflow.decide,
            signed(
                ReviewDecision(request_id="r1", action="edit", reviewer="lena", text="Edited reply, thank you!"), child
            ),
        )
        outcome: TaskOutcome = await child.result()
        ack = await child.query(ContentTaskWorkflow.ack, AckQuery(request_id="r1"))

        async def campaign_saw_it() -> CampaignStatus | None:
            st = await status(handle)
            return st if st.tasks_by_state == {"published": 1} else None

        final = await eventually(campaign_saw_it)
        await handle.terminate("test over")
    assert ack is not None and ack.accepted
    assert outcome.status == "published" and outcome.text == "Edited reply, thank you!"
    assert [p.text for p in script.published] == ["Edited reply, thank you!"]
    assert script.published[0].reply_to == "m1"
    assert final.tasks[0].post_id == outcome.post_id
    assert script.outcomes[-1].human_decided


async def test_second_decision_on_a_pending_review_is_refused(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM, execute_gate=None)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec())
        child = await task_handle(env.client, handle, "tw")

        async def pending() -> bool:
            return (await child.query(ContentTaskWorkflow.review)).state == "pending"

        await eventually(pending)
        await child.signal(
            ContentTaskWorkflow.decide,
            signed(ReviewDecision(request_id="a", action="reject", reviewer="lena", reason="off brand"), child),
        )
        await child.signal(
            ContentTaskWorkflow.decide, signed(ReviewDecision(request_id="b", action="approve", reviewer="omar"), child)
        )
        outcome: TaskOutcome = await child.result()
        second = await child.query(ContentTaskWorkflow.ack, AckQuery(request_id="b"))
        await handle.result()
    assert outcome.status == "rejected" and "off brand" in outcome.reason
    assert second is not None and not second.accepted and "already decided: rejected by lena" in second.message
    assert script.published == []


async def test_pause_holds_new_cycles_and_resume_continues(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("a")], [post("b")]])
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(cycle_interval_seconds=600), max_cycles=2)

        async def first_published() -> bool:
            return (await status(handle)).tasks_by_state.get("published") == 1

        await eventually(first_published)
        await handle.signal(
            CampaignWorkflow.pause,
            signed(ControlRequest(request_id="p1", actor="maya", reason="check"), handle, "pause"),
        )
        await handle.signal(
            CampaignWorkflow.pause, signed(ControlRequest(request_id="p2", actor="maya"), handle, "pause")
        )
        await env.sleep(timedelta(hours=5))  # far past the next cycle: nothing may start while paused
        paused = await status(handle)
        again = await handle.query(CampaignWorkflow.ack, AckQuery(request_id="p2"))
        assert paused.state == "paused" and paused.cycle == 1 and paused.paused_by == "maya"
        assert again is not None and not again.accepted
        await handle.signal(
            CampaignWorkflow.resume, signed(ControlRequest(request_id="r1", actor="maya"), handle, "resume")
        )
        final: CampaignStatus = await handle.result()
    assert final.cycle == 2 and final.tasks_by_state == {"published": 2}
    assert [a.action for a in script.audits] == ["pause", "resume"]
    assert script.audits[0].campaign_status == "paused"


async def test_emergency_stop_during_an_activity_publishes_nothing(env: WorkflowEnvironment) -> None:
    gate = asyncio.Event()
    script = Script(plans=[[post("tw")]], execute_gate=gate)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec())

        async def executing() -> bool:
            return bool(script.executed)

        await eventually(executing)
        child = await task_handle(env.client, handle, "tw")
        await handle.signal(
            CampaignWorkflow.emergency_stop,
            signed(EmergencyStop(request_id="s1", actor="ops", reason="brand crisis"), handle, "emergency_stop"),
        )
        final: CampaignStatus = await handle.result()
        outcome: TaskOutcome = await child.result()
        gate.set()
        refused = ControlRequest(request_id="late", actor="maya")
        # A stopped campaign has completed: a late signal cannot reach it at all.
        with pytest.raises(Exception, match=r"(?i)completed"):
            await handle.signal(CampaignWorkflow.resume, signed(refused, handle, "resume"))
    assert final.state == "stopped" and final.stop_reason == "brand crisis"
    assert outcome.status == "cancelled" and "brand crisis" in outcome.reason
    assert script.published == []
    assert script.audits[-1].action == "emergency_stop" and script.audits[-1].campaign_status == "stopped"


async def test_emergency_stop_during_a_review_wait_publishes_nothing(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw"), post("two")]], default_scores=MEDIUM)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(), max_cycles=None)

        async def both_pending() -> bool:
            return len((await status(handle)).pending_reviews) == 2

        await eventually(both_pending)
        pending = (await status(handle)).pending_reviews
        children = [env.client.get_workflow_handle_for(ContentTaskWorkflow.run, t) for t in pending]
        await handle.signal(
            CampaignWorkflow.emergency_stop,
            signed(EmergencyStop(request_id="s1", actor="ops", reason="legal hold"), handle, "emergency_stop"),
        )
        final: CampaignStatus = await handle.result()
        outcomes: list[TaskOutcome] = [await c.result() for c in children]
        late = ReviewDecision(request_id="late", action="approve", reviewer="lena")
        with pytest.raises(Exception, match=r"(?i)completed"):
            await children[0].signal(ContentTaskWorkflow.decide, late)
    assert final.state == "stopped"
    assert {o.status for o in outcomes} == {"cancelled"}
    assert script.published == []
    for child in children:
        desc = await child.describe()
        assert desc.typed_search_attributes.get(REVIEW_STATE) == "cancelled"


async def test_rejected_task_is_replanned_with_the_reason(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw", topic="#cryptogiveaway"), post("ig", depends_on=["tw"])]])
    script.scores = {"c1-tw": banned("crypto")}
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec())
        final: CampaignStatus = await handle.result()
    replans = [r for r in script.plan_requests if r.replan_of is not None]
    assert len(replans) == 1
    assert replans[0].replan_of is not None and replans[0].replan_of.key == "c1-tw"
    assert replans[0].replan_reason is not None and "crypto" in replans[0].replan_reason
    assert final.replans == 1
    by_key = {t.key: t for t in final.tasks}
    assert by_key["c1-tw"].status == "rejected"
    assert by_key["c1r1-tw"].status == "published" and by_key["c1r1-tw"].attempt == 2
    # the dependent waited for the replacement, then published after it
    assert by_key["c1-ig"].status == "published"
    assert [p.idempotency_key.rsplit(".", 1)[-1] for p in script.published] == ["c1r1-tw", "c1-ig"]


async def test_replanning_stops_at_the_limit(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]], default_scores=banned("crypto"))
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(max_replans=2))
        final: CampaignStatus = await handle.result()
    assert final.replans == 2
    assert final.tasks_by_state == {"rejected": 3}
    assert any("gave up after 3 attempts" in t.reason for t in final.tasks)


async def test_state_conflict_rejects_and_replans(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]], conflict_keys={"c1-tw"})
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec())
        final: CampaignStatus = await handle.result()
    by_key = {t.key: t for t in final.tasks}
    assert by_key["c1-tw"].status == "rejected" and "state conflict" in by_key["c1-tw"].reason
    assert by_key["c1r1-tw"].status == "published"


async def test_budget_exhaustion_stops_the_task_without_replanning(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw"), post("ig", depends_on=["tw"])]], budget_ok=False)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec())
        final: CampaignStatus = await handle.result()
    by_key = {t.key: t for t in final.tasks}
    assert by_key["c1-tw"].status == "budget_exhausted" and "spent" in by_key["c1-tw"].reason
    assert by_key["c1-ig"].status == "cancelled"
    assert script.executed == [] and script.published == []
    assert not [r for r in script.plan_requests if r.replan_of is not None]


async def test_new_goals_replan_at_once(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("a")], [post("b")]])
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(cycle_interval_seconds=7 * 24 * 3600), max_cycles=2)

        async def first_published() -> bool:
            return (await status(handle)).tasks_by_state.get("published") == 1

        await eventually(first_published)
        await handle.signal(
            CampaignWorkflow.set_goals,
            signed(GoalsChange(request_id="g", actor="maya", goals=["Launch the denim drop"]), handle, "set_goals"),
        )
        final: CampaignStatus = await handle.result()
    assert final.goals == ["Launch the denim drop"]
    assert script.plan_requests[-1].goals == ["Launch the denim drop"] and script.plan_requests[-1].cycle == 2
