"""Payments from the CLI: ask an agent to pay (a PaymentWorkflow per payment id), read one, and decide an
escalated one as a finance approver (a signed signal, confirmed by the workflow's ack). specs/payments.md."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from chimera.access.credentials import UserCredentials
from chimera.control.connection import answer, describe, or_none, query_timeout, status_name
from chimera.control.errors import NotFound
from chimera.control.signals import Recipient, build_request, signal_and_wait, signed_in
from schemas.payment import PaymentDecision, PaymentInput, PaymentOutcome, PaymentView, payment_workflow_id
from schemas.review import Ack
from workflows.payment import PaymentWorkflow

PaymentHandle = WorkflowHandle[PaymentWorkflow, PaymentOutcome]


async def request_payment(client: Client, inp: PaymentInput, task_queue: str) -> tuple[PaymentHandle, bool]:
    """Start the payment's workflow; (its handle, False) when this payment id was requested before: one id is
    one payment, whatever was asked the second time."""
    workflow_id = payment_workflow_id(inp.tenant_id, inp.payment_id)
    try:
        handle = await client.start_workflow(
            PaymentWorkflow.run,
            inp,
            id=workflow_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=f"pay {inp.to} for {inp.campaign_id}: {inp.purpose}"[:200],
        )
        return handle, True
    except WorkflowAlreadyStartedError:
        return client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id), False


async def _payment(
    client: Client, tenant_id: str, payment_id: str
) -> tuple[PaymentHandle, WorkflowExecutionDescription]:
    workflow_id = payment_workflow_id(tenant_id, payment_id.strip())
    desc = await describe(client, workflow_id)
    if desc is None or desc.workflow_type != "PaymentWorkflow":
        raise NotFound(f"unknown payment {tenant_id}/{payment_id}; `chimera payment list --tenant {tenant_id}`")
    return client.get_workflow_handle_for(PaymentWorkflow.run, workflow_id), desc


async def show_payment(client: Client, tenant_id: str, payment_id: str) -> PaymentView | PaymentOutcome:
    """A running payment's view (its query), or an ended one's outcome."""
    handle, desc = await _payment(client, tenant_id, payment_id)
    if desc.status == WorkflowExecutionStatus.RUNNING:
        return await answer(lambda timeout: handle.query(PaymentWorkflow.payment, rpc_timeout=timeout), payment_id)
    outcome = await or_none(handle.result(rpc_timeout=query_timeout()))
    if outcome is None:
        raise NotFound(f"payment {tenant_id}/{payment_id} ended {status_name(desc.status)} without an outcome")
    return outcome


async def decide_payment(
    client: Client,
    tenant_id: str,
    payment_id: str,
    action: str,
    reason: str,
    *,
    credentials: UserCredentials | None = None,
    ack_timeout: float | None = None,
) -> Ack:
    """Approve or reject an escalated payment as the signed-in finance approver; the workflow's ack says whether
    it took the decision (a refusal names why: role, already decided, the requester, not waiting)."""
    creds = credentials or signed_in()
    decision = build_request(PaymentDecision, action=action, approver=creds.user, reason=reason)
    handle, desc = await _payment(client, tenant_id, payment_id)
    signed = creds.sign(decision, decision.access_action, desc.id)

    async def ended(d: WorkflowExecutionDescription) -> str:
        return f"payment {payment_id} has ended ({status_name(d.status)})"

    to = Recipient(handle, desc, f"payment {tenant_id}/{payment_id}", ended)
    return await signal_and_wait(to, PaymentWorkflow.decide, signed, PaymentWorkflow.ack, ack_timeout)
