"""How the MCP host binds a call to its agent's platform account (specs/accounts.md).

A server whose allowlist entry lists `account` in `bound_arguments` acts for one platform account per call. For
a tenant's call the host decides which (chimera.accounts.AccountLookup over the claims) and:
- a tool call gets `account` set to it; a call that names another account is refused, not corrected;
- a resource URI must be one of that account's (`<scheme>://accounts/<account>/...`); `{account}` in the URI
  is filled in, any other account is refused.
An operator's call (the platform scope, `chimera mcp call`) has no agent: it names the account itself or acts
for the server's default account.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from chimera.mcp.errors import McpError

ACCOUNT = "account"
PLACEHOLDER = "{account}"
_ACCOUNT_URI = re.compile(r"^[a-z][a-z0-9+.-]*://accounts/([^/?#]+)(?:[/?#]|$)")


class McpAccountRefused(McpError):
    """The call would act for a platform account its tenant's agent does not hold; nothing was sent."""

    code = "account_refused"


def bind_arguments(server: str, arguments: dict[str, Any], account: str) -> dict[str, Any]:
    given = arguments.get(ACCOUNT)
    if given is not None and given != account:
        raise McpAccountRefused(
            server, f"the call names account {given!r}, but this task's agent acts as @{account}; refused"
        )
    return {**arguments, ACCOUNT: account}


def bind_uri(server: str, uri: str, account: str | None, *, bound: bool) -> str:
    """The URI to read: `{account}` filled in, and checked to be the account's own."""
    if not bound:
        return uri
    if account is None:
        if PLACEHOLDER in uri:
            raise McpAccountRefused(server, f"{uri}: a call without an agent must name the account in the URI")
        return uri
    concrete = uri.replace(PLACEHOLDER, account)
    match = _ACCOUNT_URI.match(concrete)
    if match is None:
        raise McpAccountRefused(server, f"{concrete} is not an account's resource (<scheme>://accounts/<account>/...)")
    named = unquote(match.group(1))
    if named != account:
        raise McpAccountRefused(server, f"{concrete} is account @{named}'s; this task's agent acts as @{account}")
    return concrete
