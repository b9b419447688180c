"""Who holds which platform account: the claim record, its errors, and how a call's account is chosen.

A claim (table `platform_accounts`) gives one platform account to one agent of one tenant; the database holds
the rule that no two tenants (or agents) ever hold one handle. `choose` is the rule the MCP host binds by: a
call is made from the account its tenant's agent holds on that platform, and never from one it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from chimera.accounts.names import account_name


class PlatformAccount(BaseModel):
    """One claim: `handle` (an account name, chimera.accounts.names) on `platform`, held by the agent."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    agent_id: str
    platform: str
    handle: str
    claimed_at: datetime


class AccountError(Exception):
    """A platform account cannot be claimed or used as asked (the message says why and what to do)."""


class AccountTaken(AccountError):
    """Registration refused: another tenant, or another agent of the tenant, holds the handle."""


class AccountRefused(AccountError):
    """A call on behalf of a tenant's agent names (or needs) an account the agent does not hold."""


def choose(
    claims: Sequence[PlatformAccount],
    *,
    tenant_id: str,
    agent_id: str | None,
    platform: str,
    handle: str | None,
) -> str:
    """The account a call of (tenant, agent) on `platform` is made from, among the tenant's claims.

    With `handle` (the persona's), exactly that account, which the agent (or, without an agent, the tenant) must
    hold. Without it, the one account the agent holds on the platform."""
    mine = [c for c in claims if c.tenant_id == tenant_id and c.platform == platform]
    who = f"agent '{agent_id}' of tenant '{tenant_id}'" if agent_id else f"tenant '{tenant_id}'"
    if handle:
        name = account_name(handle)
        held = next((c for c in mine if c.handle == name), None)
        if held is None:
            raise AccountRefused(
                f"{platform} account @{name} is not claimed by {who}: it belongs to no agent of the tenant, or "
                "to another tenant; a campaign whose persona has the handle must be registered first"
            )
        if agent_id and held.agent_id != agent_id:
            raise AccountRefused(f"{platform} account @{name} belongs to agent '{held.agent_id}', not to {who}")
        return held.handle
    if agent_id:
        mine = [c for c in mine if c.agent_id == agent_id]
    if len(mine) == 1:
        return mine[0].handle
    if not mine:
        raise AccountRefused(
            f"{who} holds no {platform} account: its persona has no {platform} handle, or no campaign of it "
            "was registered"
        )
    names = ", ".join(f"@{c.handle}" for c in sorted(mine, key=lambda c: c.handle))
    raise AccountRefused(f"{who} holds several {platform} accounts ({names}); the call must name the agent")
