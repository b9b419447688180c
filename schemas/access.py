"""People and their authority: roles, the actions each role may take, and a signed request's envelope.

Every change a person makes reaches a workflow as a request signed with the person's key (chimera/access).
The workflow hands the request to the `authorize` activity before it applies it; the activity checks the
signature, the key, the time, repeats and the role against this table, and audits every refusal.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

Role = Literal["content_reviewer", "campaign_manager", "finance_approver", "administrator"]
ROLES: tuple[Role, ...] = get_args(Role)

Action = Literal[
    "review.approve",
    "review.reject",
    "review.edit",
    "campaign.pause",
    "campaign.resume",
    "campaign.budget",
    "campaign.goals",
    "campaign.stop",
    "judge.override",
    "agent.stop",
    "tenant.stop",
    "fleet.stop",
    "stop.lift",
    "persona.change",
    "mcp.approve",
    "mcp.call",
    "tenant.budget",
    "user.manage",
    "memory.manage",  # where a tenant's memories live (Weaviate tenant activity: active, inactive, offloaded)
    "payment.request",  # ask an agent to pay (the CFO Judge then decides)
    "payment.approve",  # an escalated payment (specs/payments.md): finance approvers and administrators
    "payment.reject",
    "payment.limit",  # a tenant's or an agent's daily payment cap
]
ACTIONS: tuple[Action, ...] = get_args(Action)

_REVIEWER: frozenset[Action] = frozenset({"review.approve", "review.reject", "review.edit"})
_MANAGER: frozenset[Action] = _REVIEWER | {
    "campaign.pause",
    "campaign.resume",
    "campaign.budget",
    "campaign.goals",
    "campaign.stop",
    "payment.request",
}
# Seed 2.4: each content role may do what the one below it may, and more. Money is kept apart: a finance
# approver decides escalated payments and nothing else, and no content role may approve a payment.
_FINANCE: frozenset[Action] = frozenset({"payment.approve", "payment.reject"})
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    "content_reviewer": _REVIEWER,
    "campaign_manager": _MANAGER,
    "finance_approver": _FINANCE,
    "administrator": frozenset(ACTIONS),
}

# The tenant scope of the deployment's own operators: an administrator there may act on every tenant, and
# only there may the whole fleet be stopped. No tenant slug can be "*".
FLEET_SCOPE = "*"


def allowed(role: Role, action: Action) -> bool:
    return action in ROLE_ACTIONS[role]


def least_role(action: Action) -> Role:
    """The lowest role that may take `action`, for refusal messages."""
    return next(role for role in ROLES if allowed(role, action))


class Signature(BaseModel):
    """Who signed a request, when, and the Ed25519 signature over its canonical form (chimera/access/signing)."""

    key_id: str = Field(min_length=1, max_length=64)
    issued_at: str = Field(min_length=1, description="ISO 8601 UTC; a request is valid for a few minutes")
    value: str = Field(min_length=1, max_length=200, description="base64url Ed25519 signature")


class AuthorizeRequest(BaseModel):
    """What a workflow asks the `authorize` activity about one request it received."""

    action: Action
    target: str = Field(description="what the request acts on: a workflow id, or a scope such as 'tenant:acme'")
    tenant_id: str | None = Field(description="the tenant the target belongs to; None for the fleet")
    agent_id: str | None = None
    recipient: str = Field(description="the workflow that received the request (a replay elsewhere is refused)")
    request_id: str
    body: dict[str, Any] = Field(description="the signed fields of the request, as sent")
    signature: Signature | None
    received_at: str = Field(description="when the workflow received it (workflow time, ISO 8601)")


class Authorization(BaseModel):
    """The activity's answer: allowed or not, who the verified sender is, and why."""

    allowed: bool
    actor: str = Field(description="the verified user, or 'unauthenticated'")
    role: Role | None = None
    reason: str = ""


class Signed(BaseModel):
    """A mixin for signal payloads a person sends: the envelope rides beside the fields it covers."""

    signature: Signature | None = Field(None, description="absent: the request is refused as unauthenticated")

    def signed_body(self) -> dict[str, Any]:
        """The fields the signature covers: everything but the signature itself."""
        return self.model_dump(mode="json", exclude={"signature"})
