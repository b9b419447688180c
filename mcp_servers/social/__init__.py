"""Sandbox social platforms (Twitter-like and Instagram-like) served over MCP.

`sandbox` holds the SQLite-backed platform; `server` exposes it as an MCP server.
"""

from mcp_servers.social.sandbox import (
    AlreadyReplied,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    Platform,
    SandboxPlatform,
)

__all__ = [
    "AlreadyReplied",
    "IdempotencyConflict",
    "InvalidRequest",
    "NotFound",
    "Platform",
    "SandboxPlatform",
]
