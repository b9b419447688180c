"""How a workflow checks a person's request before applying it: one `authorize` activity call.

Signals carry the sender's signature (schemas.access.Signed). Runs from before the SIGNED_REQUESTS patch
applied requests as sent; their histories replay that way.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.access import Action, Authorization, AuthorizeRequest, Signed
    from schemas.activity_table import Activities
    from schemas.options import RuntimeOptions

from workflows.calls import failure_message, run_activity

# workflow.patched() id: requests are authorized (and the verified actor recorded) from this change on.
SIGNED_REQUESTS = "signed-requests"


async def authorize(
    request: Signed,
    request_id: str,
    action: Action,
    *,
    target: str,
    tenant_id: str | None,
    agent_id: str | None,
    runtime: RuntimeOptions,
) -> Authorization:
    """Ask the `authorize` activity; the time of receipt is the workflow's, so a slow worker expires nothing."""
    check = AuthorizeRequest(
        action=action,
        target=target,
        tenant_id=tenant_id,
        agent_id=agent_id,
        recipient=workflow.info().workflow_id,
        request_id=request_id,
        body=request.signed_body(),
        signature=request.signature,
        received_at=workflow.now().isoformat(),
    )
    return await run_activity(Activities.authorize, check, runtime, f"authorize {action}")


class InOrder:
    """Requests take effect in the order they arrived, whichever authorization finishes first: a pause and
    then a resume must not swap. Each request takes a ticket on arrival and waits for its turn to apply."""

    def __init__(self) -> None:
        self._issued = 0
        self._serving = 0

    def ticket(self) -> int:
        self._issued += 1
        return self._issued - 1

    async def turn(self, ticket: int) -> None:
        await workflow.wait_condition(lambda: self._serving == ticket)

    def done(self) -> None:
        """The request whose turn it is has been applied (or refused): the next may go."""
        self._serving += 1

    @property
    def busy(self) -> bool:
        """A request is still being authorized or waiting for its turn."""
        return self._serving < self._issued


async def authorize_in_order(
    order: InOrder,
    request: Signed,
    request_id: str,
    action: Action,
    *,
    target: str,
    tenant_id: str | None,
    agent_id: str | None,
    runtime: RuntimeOptions,
) -> Authorization:
    """`authorize`, then wait for this request's turn: the caller applies it before it next awaits.

    A check that cannot be made (the activity gave up) is a refusal saying so: a signal handler must never fail
    the workflow, and the sender can simply send the request again."""
    ticket = order.ticket()
    try:
        auth = await authorize(
            request, request_id, action, target=target, tenant_id=tenant_id, agent_id=agent_id, runtime=runtime
        )
    except ActivityError as err:
        auth = Authorization(
            allowed=False, actor="unknown", reason=f"not checked ({failure_message(err)}): send it again"
        )
    finally:
        await order.turn(ticket)  # even a failed check waits its turn, so no later request overtakes an earlier one
        order.done()
    return auth
