"""PaymentWorkflow's flow on the time-skipping server with scripted activities, and a campaign buying premium
news through it before it plans (the real chain runs in tests/integration/test_payment_workflow.py)."""

from __future__ import annotations

import uuid
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from schemas.news import NewsWatch
from schemas.payment import PaymentDecision, PaymentInput, payment_workflow_id
from schemas.plan import Headline
from schemas.review import AckQuery
from tests.helpers import scripted
from tests.helpers.campaigns import running, runtime, start
from tests.helpers.identity import person
from tests.helpers.polling import eventually
from tests.helpers.scripted import Script
from workflows.payment import PaymentWorkflow

SCOOP = Headline(id="pn-9", title="Exclusive: thrift-flip challenge tops resale searches", topic="fashion")


def request(queue: str, **fields: Any) -> PaymentInput:
    base: dict[str, Any] = {
        "payment_id": f"p-{uuid.uuid4().hex[:8]}",
        "tenant_id": "acme",
        "campaign_id": "spring",
        "agent_id": "mira",
        "kind": "address",
        "to": scripted.PAYEE,
        "amount_units": 500_000,
        "purpose": "promote the thrift-flip challenge",
        "requested_by": "maya",
        "runtime": runtime(queue),
    }
    return PaymentInput(**(base | fields))


async def begin(env: WorkflowEnvironment, queue: str, inp: PaymentInput) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        PaymentWorkflow.run, inp, id=payment_workflow_id(inp.tenant_id, inp.payment_id), task_queue=queue
    )


async def test_the_steps_run_in_order_and_the_ledger_sees_each(env: WorkflowEnvironment) -> None:
    script = Script()
    async with running(env.client, script) as queue:
        outcome = await (await begin(env, queue, request(queue))).result()
    assert outcome.status == "settled" and outcome.approved_by == "cfo"
    assert [e.status for e in script.payment_events] == ["approved", "sent"]
    assert script.settled_payments[0].confirmations == 1 and script.settled_payments[0].approved_by == "cfo"


async def test_a_rejection_sends_nothing(env: WorkflowEnvironment) -> None:
    script = Script(payment_facts={"allowlisted": False})
    async with running(env.client, script) as queue:
        outcome = await (await begin(env, queue, request(queue))).result()
    assert outcome.status == "rejected" and "allowlist" in outcome.reason
    assert [e.status for e in script.payment_events] == ["rejected"] and not script.settled_payments


async def test_an_escalation_waits_for_an_approver_and_a_stop_signal_cancels_it(env: WorkflowEnvironment) -> None:
    script = Script(payment_facts={"review_above_units": 100_000})
    async with running(env.client, script) as queue:
        handle = await begin(env, queue, request(queue))

        async def waiting() -> bool:
            return (await handle.query(PaymentWorkflow.payment)).status == "pending_approval"

        await eventually(waiting)
        fran = person("fran", "acme", "finance_approver")
        reviewer = person("lena", "acme", "content_reviewer")
        for who, rid in ((reviewer, "by-lena"), (fran, "by-fran")):
            raw = PaymentDecision(request_id=rid, action="approve", approver=who.user, reason="ok")
            await handle.signal(PaymentWorkflow.decide, who.sign(raw, raw.access_action, handle.id))
        outcome = await handle.result()
        refused = await handle.query(PaymentWorkflow.ack, AckQuery(request_id="by-lena"))
    assert outcome.status == "settled" and outcome.approved_by == "fran"
    assert refused is not None and not refused.accepted and "finance_approver" in refused.message
    assert [e.status for e in script.payment_events] == ["pending_approval", "approved", "sent"]


async def test_a_campaign_buys_premium_news_and_plans_with_it(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[scripted.post("tw")]], premium_headlines=[SCOOP])
    spec = scripted.spec(news=NewsWatch(topics=["thrifting"], premium_url="http://127.0.0.1:9/premium/headlines"))
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, spec)
        final = await handle.result()
    assert final.cycle == 1  # the cycle ran to its end
    (plan,) = script.plan_requests
    assert plan.observation.headlines[0].title == SCOOP.title  # bought before planning, first in the list
    (settled,) = script.settled_payments
    assert settled.inp.kind == "x402" and settled.inp.requested_by.startswith("campaign:")
    assert settled.inp.payment_id.endswith("-news-c1") and "Promote the thrift-flip challenge" in settled.inp.purpose


async def test_a_campaign_does_not_wait_for_an_escalated_purchase(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[scripted.post("tw")]], premium_headlines=[SCOOP], payment_facts={"review_above_units": 10})
    spec = scripted.spec(news=NewsWatch(premium_url="http://127.0.0.1:9/premium/headlines"))
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, spec)
        final = await handle.result()
    (plan,) = script.plan_requests
    assert SCOOP.title not in [h.title for h in plan.observation.headlines]
    assert final.cycle == 1 and not script.settled_payments
    assert [e.status for e in script.payment_events] == ["pending_approval"]


async def test_the_control_functions_request_show_and_decide_a_payment(env: WorkflowEnvironment) -> None:
    from chimera.control.errors import NotFound
    from chimera.control.payments import decide_payment, request_payment, show_payment

    script = Script(payment_facts={"review_above_units": 100_000})
    async with running(env.client, script) as queue:
        inp = request(queue, payment_id="cli-1")
        handle, started = await request_payment(env.client, inp, queue)
        again, started_again = await request_payment(env.client, inp.model_copy(update={"amount_units": 9}), queue)
        assert started and not started_again and again.id == handle.id  # one id is one payment

        async def waiting() -> bool:
            view = await show_payment(env.client, "acme", "cli-1")
            return view.status == "pending_approval"

        await eventually(waiting)
        maya = person("maya", "acme", "finance_approver")  # the requester
        refused = await decide_payment(env.client, "acme", "cli-1", "approve", "mine", credentials=maya)
        fran = person("fran", "acme", "finance_approver")
        rejected = await decide_payment(env.client, "acme", "cli-1", "reject", "no invoice", credentials=fran)
        outcome = await handle.result()
        ended = await show_payment(env.client, "acme", "cli-1")
        try:
            await show_payment(env.client, "acme", "nope")
            raise AssertionError("an unknown payment was found")
        except NotFound as exc:
            assert "unknown payment acme/nope" in str(exc)
    assert not refused.accepted and "cannot also approve it" in refused.message
    assert rejected.accepted and outcome.status == "rejected" and "rejected by fran: no invoice" in outcome.reason
    assert ended.status == "rejected" and not script.settled_payments
