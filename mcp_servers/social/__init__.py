"""Social platforms (Twitter/X and Instagram) served over MCP.

`backend` holds the contract every backend keeps; `sandbox` the SQLite-backed sandbox platform;
`live_twitter` / `live_instagram` the real services' APIs, made exactly-once by `ledger`; `server` exposes
one backend, chosen by `config.backend_from_env`, as an MCP server.
"""

from mcp_servers.social.backend import AlreadyReplied, IdempotencyConflict, NotFound, Platform, SocialBackend
from mcp_servers.social.rules import InvalidRequest
from mcp_servers.social.sandbox import SandboxPlatform

__all__ = [
    "AlreadyReplied",
    "IdempotencyConflict",
    "InvalidRequest",
    "NotFound",
    "Platform",
    "SandboxPlatform",
    "SocialBackend",
]
