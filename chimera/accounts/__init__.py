"""Platform accounts belong to agents (specs/accounts.md).

A persona's handles (SOUL.md `handles`, platform -> handle) name its platform accounts. Registering a campaign
claims them for its agent (`directory.AccountDirectory.claim`, table `platform_accounts`): one holder per handle
across every tenant. The MCP host binds each social call to the account its task's agent holds
(`AccountLookup`), and the live backends read that account's credentials from a secrets source under
`platform/<platform>/<account>` (`credentials`). `directory` needs the database; the rest does not, so MCP server
processes import only `names` and `credentials`.
"""

from __future__ import annotations

from typing import Protocol

from chimera.accounts.claims import AccountError, AccountRefused, AccountTaken, PlatformAccount, choose
from chimera.accounts.names import InvalidAccount, account_name, secret_name


class AccountLookup(Protocol):
    def account_for(self, tenant_id: str, agent_id: str | None, platform: str, handle: str | None) -> str:
        """The account name (tenant, agent) calls `platform` from, or AccountRefused."""
        ...


__all__ = [
    "AccountError",
    "AccountLookup",
    "AccountRefused",
    "AccountTaken",
    "InvalidAccount",
    "PlatformAccount",
    "account_name",
    "choose",
    "secret_name",
]
