"""Every change a person sends is authenticated and authorized before a workflow applies it, and the actor it
records is the verified one (time-skipping server, scripted activities, the real verifier)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from schemas.access import Authorization
from schemas.events import ControlRequest, EmergencyStop
from schemas.review import Ack, AckQuery, ReviewDecision
from schemas.task import TaskOutcome
from tests.helpers import scripted
from tests.helpers.campaigns import running, start, status, task_handle
from tests.helpers.identity import DIRECTORY, person, signed
from tests.helpers.polling import eventually
from tests.helpers.scripted import MEDIUM, Script, post
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow

TENANT = scripted.spec().tenant_id


async def answer(handle: WorkflowHandle[Any, Any], request_id: str, query: Any = CampaignWorkflow.ack) -> Ack:
    async def answered() -> Ack | None:
        result: Ack | None = await handle.query(query, AckQuery(request_id=request_id))
        return result

    return await eventually(answered, f"an answer to {request_id}")


def refusals(script: Script) -> list[Authorization]:
    return [a for _, a in script.authorizations if not a.allowed]


async def test_unsigned_forged_and_expired_changes_are_refused_and_nothing_changes(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(), max_cycles=None)
        await task_handle(env.client, handle, "tw")
        maya = person("maya", TENANT, "campaign_manager")

        await handle.signal(CampaignWorkflow.pause, ControlRequest(request_id="unsigned", actor="maya"))
        forged = maya.sign(ControlRequest(request_id="forged", actor="maya"), "campaign.pause", handle.id)
        forged = forged.model_copy(update={"reason": "changed after signing"})
        await handle.signal(CampaignWorkflow.pause, forged)
        old = datetime.now(UTC) - timedelta(minutes=10)
        stale = maya.sign(ControlRequest(request_id="stale", actor="maya"), "campaign.pause", handle.id, now=old)
        await handle.signal(CampaignWorkflow.pause, stale)
        elsewhere = maya.sign(ControlRequest(request_id="moved", actor="maya"), "campaign.pause", "another-campaign")
        await handle.signal(CampaignWorkflow.pause, elsewhere)

        unsigned, bad, expired, moved = [await answer(handle, r) for r in ("unsigned", "forged", "stale", "moved")]
        st = await status(handle)
        await handle.terminate("test over")
    assert not unsigned.accepted and unsigned.message.startswith("unauthenticated: the request is not signed")
    assert not bad.accepted and bad.message.startswith("forged:")
    assert not expired.accepted and expired.message.startswith("expired: signed 6")
    assert not moved.accepted and moved.message.startswith("forged:")  # signed for another workflow
    assert st.state == "running" and st.paused_by is None
    assert [a.actor for a in refusals(script)][:1] == ["unauthenticated"]
    assert len(refusals(script)) == 4 and not [a for a in script.audits if a.action == "pause"]


async def test_roles_decide_who_may_pause_approve_and_override(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM)
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(), max_cycles=None)
        child = await task_handle(env.client, handle, "tw")

        async def pending() -> bool:
            return (await child.query(ContentTaskWorkflow.review)).state == "pending"

        await eventually(pending)
        lena = person("lena", TENANT, "content_reviewer")
        stranger = person("gus", "globex", "administrator")
        pause = lena.sign(ControlRequest(request_id="p-lena", actor="lena"), "campaign.pause", handle.id)
        await handle.signal(CampaignWorkflow.pause, pause)
        override = ReviewDecision(
            request_id="o", action="edit", reviewer="lena", text="New text", reason="ok", override=True
        )
        await child.signal(ContentTaskWorkflow.decide, lena.sign(override, override.access_action, child.id))
        theirs = ReviewDecision(request_id="g", action="approve", reviewer="gus")
        await child.signal(ContentTaskWorkflow.decide, stranger.sign(theirs, theirs.access_action, child.id))
        refused_pause = await answer(handle, "p-lena")
        refused_override = await answer(child, "o", ContentTaskWorkflow.ack)
        refused_stranger = await answer(child, "g", ContentTaskWorkflow.ack)
        approve = ReviewDecision(request_id="a", action="approve", reviewer="someone-else")
        await child.signal(ContentTaskWorkflow.decide, lena.sign(approve, approve.access_action, child.id))
        outcome: TaskOutcome = await child.result()
        approved = await answer(child, "a", ContentTaskWorkflow.ack)
        await handle.terminate("test over")
    assert refused_pause.message == "lena is a content_reviewer: campaign.pause needs a campaign_manager or above"
    assert refused_override.message.startswith("lena is a content_reviewer: judge.override needs an administrator")
    assert refused_stranger.message == "gus acts for tenant globex, not " + TENANT
    assert approved.accepted and approved.message == "approve by lena accepted"  # the verified name, not the claim
    assert outcome.status == "published"
    decided = [r for r in script.reviews if r.state == "approved"]
    assert [r.reviewer for r in decided] == ["lena"]


async def test_a_captured_request_sent_again_changes_nothing(env: WorkflowEnvironment) -> None:
    """Replay: pause, resume, then the captured pause once more: the campaign stays running."""
    script = Script(plans=[[post("tw")]])
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(), max_cycles=None)
        pause = signed(ControlRequest(request_id="p", actor="maya"), handle, "pause")
        await handle.signal(CampaignWorkflow.pause, pause)
        await answer(handle, "p")
        await handle.signal(
            CampaignWorkflow.resume, signed(ControlRequest(request_id="r", actor="maya"), handle, "resume")
        )
        await answer(handle, "r")
        await handle.signal(CampaignWorkflow.pause, pause)  # the attacker's copy
        stop = signed(EmergencyStop(request_id="s", actor="maya", reason="end"), handle, "emergency_stop")
        await handle.signal(CampaignWorkflow.emergency_stop, stop)
        final = await handle.result()
    assert [a.action for a in script.audits if a.action in ("pause", "resume")] == ["pause", "resume"]
    assert final.state == "stopped" and final.stop_reason == "end"
    assert [a.actor for a in script.audits if a.action == "emergency_stop"] == ["maya"]


async def test_a_revoked_key_is_refused_at_once(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]])
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(), max_cycles=None)
        omar = person("omar-revoked", TENANT, "campaign_manager")
        DIRECTORY.revoke_key(omar.key_id)
        req = omar.sign(ControlRequest(request_id="x", actor="omar-revoked"), "campaign.pause", handle.id)
        await handle.signal(CampaignWorkflow.pause, req)
        refused = await answer(handle, "x")
        await handle.terminate("test over")
    assert not refused.accepted and "was revoked" in refused.message


async def test_a_check_that_cannot_be_made_refuses_the_request_and_the_campaign_lives_on(
    env: WorkflowEnvironment,
) -> None:
    script = Script(plans=[[post("tw")]])
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(), max_cycles=None)
        script.authorize_down = True
        await handle.signal(
            CampaignWorkflow.pause, signed(ControlRequest(request_id="p", actor="maya"), handle, "pause")
        )
        refused = await answer(handle, "p")
        script.authorize_down = False
        again = signed(ControlRequest(request_id="p2", actor="maya"), handle, "pause")
        await handle.signal(CampaignWorkflow.pause, again)
        paused = await answer(handle, "p2")
        st = await status(handle)
        await handle.terminate("test over")
    assert not refused.accepted and refused.message.startswith("not checked (the user directory is unreachable)")
    assert paused.accepted and st.state == "paused"
