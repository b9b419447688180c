"""Chimera's MCP host: allowlisted servers, pinned tool definitions, checked and audited calls."""

from chimera.mcp.definitions import ToolInfo
from chimera.mcp.errors import (
    McpArgumentsInvalid,
    McpError,
    McpNotAllowed,
    McpNotApproved,
    McpQuarantined,
    McpResultInvalid,
    McpShadowing,
    McpTimeout,
    McpToolError,
    McpUnavailable,
)
from chimera.mcp.host import CallContext, McpHost, McpRegistry, ServerStatus, ToolResult
from chimera.mcp.sessions import stdio_params

__all__ = [
    "CallContext",
    "McpArgumentsInvalid",
    "McpError",
    "McpHost",
    "McpNotAllowed",
    "McpNotApproved",
    "McpQuarantined",
    "McpRegistry",
    "McpResultInvalid",
    "McpShadowing",
    "McpTimeout",
    "McpToolError",
    "McpUnavailable",
    "ServerStatus",
    "ToolInfo",
    "ToolResult",
    "stdio_params",
]
