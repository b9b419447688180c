"""Pushed mentions (the ingress's signal) and the campaign's state search attributes."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from schemas.events import CampaignStatus, ControlRequest, EmergencyStop, MentionDelivery
from schemas.plan import Mention
from tests.helpers import scripted
from tests.helpers.campaigns import running, start, status
from tests.helpers.identity import signed
from tests.helpers.polling import eventually
from tests.helpers.scripted import Script, post
from workflows import search_attributes as sa
from workflows.campaign import CampaignWorkflow


def pushed(mention_id: str, platform: str = "twitter", event_id: str | None = None) -> MentionDelivery:
    mention = Mention(
        id=mention_id, platform=platform, author="ana", text="@mira where is the swap?", created_at="2026-01-01T00:00Z"
    )
    return MentionDelivery(event_id=event_id or f"evt-{mention_id}", mention=mention)


async def test_a_pushed_mention_is_answered_before_the_next_cycle(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]])
    async with running(env.client, script) as queue:
        # An hour between cycles: only the fast path can answer within the test.
        handle = await start(env.client, queue, scripted.spec(cycle_interval_seconds=3600), max_cycles=2)
        await eventually(lambda: _published_keys(script, "c1-tw"))
        await handle.signal(CampaignWorkflow.mention, pushed("m7"))
        await handle.signal(CampaignWorkflow.mention, pushed("m7", event_id="evt-again"))  # the same mention again
        await handle.signal(CampaignWorkflow.mention, pushed("m8", platform="tiktok"))  # not a campaign platform
        await eventually(lambda: _published_keys(script, "c1p1-reply-m7"))

        async def campaign_saw_it() -> CampaignStatus | None:  # the task reports to its campaign a moment later
            st = await status(handle)
            return st if any(t.key == "c1p1-reply-m7" and t.status == "published" for t in st.tasks) else None

        st = await eventually(campaign_saw_it)
        assert st.cycle == 1 and st.mentions_received == 1
        replies = [t for t in st.tasks if t.task_type == "reply"]
        assert [(t.key, t.status) for t in replies] == [("c1p1-reply-m7", "published")]
        [request] = [r for r in script.plan_requests if r.replies_only]
        assert [m.id for m in request.observation.mentions] == ["m7"]
        await handle.signal(
            CampaignWorkflow.emergency_stop,
            signed(EmergencyStop(request_id="s", actor="t", reason="done"), handle, "emergency_stop"),
        )
        await handle.result()


async def test_mentions_pushed_while_paused_are_answered_on_resume(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[]])
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(cycle_interval_seconds=3600), max_cycles=2)
        await eventually(lambda: _cycle_started(handle))
        await handle.signal(CampaignWorkflow.pause, signed(ControlRequest(request_id="p", actor="t"), handle, "pause"))
        await eventually(lambda: _attribute_is(handle, "paused"))
        await handle.signal(CampaignWorkflow.mention, pushed("m1"))
        assert not [r for r in script.plan_requests if r.replies_only]  # a paused campaign plans nothing
        await handle.signal(
            CampaignWorkflow.resume, signed(ControlRequest(request_id="r", actor="t"), handle, "resume")
        )
        await eventually(lambda: _published_keys(script, "c1p1-reply-m1"))
        assert await _attribute_is(handle, "running")
        await handle.signal(
            CampaignWorkflow.emergency_stop,
            signed(EmergencyStop(request_id="s", actor="t", reason="done"), handle, "emergency_stop"),
        )
        await handle.result()
        assert await _attribute_is(handle, "stopped")


async def test_the_campaign_state_and_cycle_are_search_attributes(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]])
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, scripted.spec(), max_cycles=1)
        await handle.result()
        attrs = (await handle.describe()).typed_search_attributes
    assert (attrs.get(sa.CAMPAIGN_STATE), attrs.get(sa.CAMPAIGN_CYCLE)) == ("completed", 1)


async def _published_keys(script: Script, key: str) -> bool:
    return any(p.idempotency_key.endswith("." + key) for p in script.published)


async def _cycle_started(handle: WorkflowHandle[Any, Any]) -> bool:
    return (await status(handle)).cycle >= 1


async def _attribute_is(handle: WorkflowHandle[Any, Any], state: str) -> bool:
    attrs = (await handle.describe()).typed_search_attributes
    return attrs.get(sa.CAMPAIGN_STATE) == state
