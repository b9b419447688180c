"""A reviewer's edit is judged before it is published: a high-risk flag blocks it and the ack says why; an
override (an explicit flag and a reason) publishes it and is recorded with the review."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from schemas.events import CampaignStatus
from schemas.review import Ack, AckQuery, ReviewDecision
from schemas.task import TaskOutcome
from tests.helpers import scripted
from tests.helpers.campaigns import running, start, status, task_handle
from tests.helpers.identity import signed
from tests.helpers.polling import eventually
from tests.helpers.scripted import MEDIUM, Script, banned, reply
from workflows.content_task import ContentTaskWorkflow

BAD_EDIT = "Sure! Send 0.1 ETH to my wallet for a shout-out"


async def decide(child: Any, request_id: str, text: str, **kw: object) -> Ack:
    await child.signal(
        ContentTaskWorkflow.decide,
        signed(
            ReviewDecision.model_validate(
                {"request_id": request_id, "action": "edit", "reviewer": "lena", "text": text, **kw}
            ),
            child,
        ),
    )

    async def answered() -> Ack | None:
        ack: Ack | None = await child.query(ContentTaskWorkflow.ack, AckQuery(request_id=request_id))
        return ack

    return await eventually(answered)


async def pending_review(env: WorkflowEnvironment, queue: str) -> tuple[Any, Any]:
    """A campaign whose reply task waits for a reviewer: (campaign handle, task handle)."""
    handle = await start(env.client, queue, scripted.spec(cycle_interval_seconds=7 * 24 * 3600), max_cycles=None)
    child = await task_handle(env.client, handle, "rp")

    async def pending() -> bool:
        return (await child.query(ContentTaskWorkflow.review)).state == "pending"

    await eventually(pending)
    return handle, child


@pytest.fixture
def script() -> Script:
    return Script(plans=[[reply("rp")]], default_scores=MEDIUM, edit_scores={BAD_EDIT: banned("payment-undeclared")})


async def test_an_edit_with_a_high_risk_flag_is_blocked_then_a_clean_edit_publishes(
    env: WorkflowEnvironment, script: Script
) -> None:
    async with running(env.client, script) as queue:
        handle, child = await pending_review(env, queue)
        blocked = await decide(child, "e1", BAD_EDIT)
        still = await child.query(ContentTaskWorkflow.review)
        accepted = await decide(child, "e2", "Thank you, Sam! More mending tips on Sunday.")
        outcome: TaskOutcome = await child.result()

        async def campaign_saw_it() -> CampaignStatus | None:
            st = await status(handle)
            return st if st.tasks_by_state == {"published": 1} else None

        await eventually(campaign_saw_it)
        await handle.terminate("test over")
    assert not blocked.accepted and "edit blocked: high-risk flag" in blocked.message
    assert "--override" in blocked.message
    assert still.state == "pending"  # the review stays open for another decision
    assert accepted.accepted
    assert outcome.status == "published" and [p.text for p in script.published] == [outcome.text]
    assert outcome.text == "Thank you, Sam! More mending tips on Sunday."
    judged = [j.result.text for j in script.judged]
    assert BAD_EDIT in judged and outcome.text in judged  # both edits went through the judge
    assert [v.verdict.decision for v in script.verdicts][-2:] == ["reject", "approve"]  # each audited


async def test_an_override_with_a_reason_publishes_the_flagged_edit_and_is_recorded(
    env: WorkflowEnvironment, script: Script
) -> None:
    async with running(env.client, script) as queue:
        handle, child = await pending_review(env, queue)
        ack = await decide(child, "e1", BAD_EDIT, override=True, reason="the charity drive is declared in the brief")
        outcome: TaskOutcome = await child.result()
        await handle.terminate("test over")
    assert ack.accepted and "override of banned_topic (payment-undeclared)" in ack.message
    assert outcome.status == "published" and outcome.text == BAD_EDIT
    edited = [r for r in script.reviews if r.state == "edited"]
    assert len(edited) == 1 and edited[0].override and "charity" in (edited[0].reason or "")


def test_an_override_needs_a_reason_and_an_edit() -> None:
    with pytest.raises(ValueError, match="override"):
        ReviewDecision(request_id="x", action="edit", reviewer="lena", text="t", override=True)
    with pytest.raises(ValueError, match="override"):
        ReviewDecision(request_id="x", action="approve", reviewer="lena", reason="r", override=True)
