"""Every failure reaching an MCP server, as McpError subclasses with a `retryable` hint for retry policies."""

from __future__ import annotations


class McpError(Exception):
    """Base of every failure reaching an MCP server. `retryable` hints whether trying again may help."""

    retryable: bool = False
    code: str = "mcp_error"
    # Whether the session the failure happened in can serve the next operation (chimera.mcp.pool): the
    # server answered, or nothing was sent. A timeout or a broken connection closes the session.
    session_sound: bool = True

    def __init__(self, server: str, message: str) -> None:
        super().__init__(f"{server}: {message}")
        self.server = server
        self.message = message


class McpNotAllowed(McpError):
    """The server is not on the allowlist; it was not started."""

    code = "not_allowed"


class McpNotApproved(McpError):
    """The server is allowlisted but an operator has not approved its tools yet (`chimera mcp approve`)."""

    code = "not_approved"


class McpQuarantined(McpError):
    """The server offers tool definitions other than the approved ones; nothing is called until re-approval.

    Retryable: an operator's `chimera mcp approve` lifts it, and a durable retry then goes through."""

    retryable = True
    code = "quarantined"


class McpShadowing(McpError):
    """Approval refused: a tool would take the name of another approved server's tool."""

    code = "shadowing"


class McpUnavailable(McpError):
    """The server could not be started, or the connection to it failed."""

    retryable = True
    code = "unavailable"
    session_sound = False


class McpTimeout(McpError):
    retryable = True
    code = "timeout"
    session_sound = False


class McpResultInvalid(McpError):
    """The server's answer is not acceptable: not JSON, too large, or not the shape its pinned schema declares."""

    code = "result_invalid"


class McpArgumentsInvalid(McpError):
    """The call's arguments do not match the tool's pinned input schema; it was not sent."""

    code = "arguments_invalid"


class McpToolError(McpError):
    """The server reported a failure. `code` comes from its error JSON ("rate_limited", "text_too_long", ...);
    "tool_error" when the error was not JSON, "protocol_error" for a JSON-RPC error response."""

    def __init__(self, server: str, code: str, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(server, f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_seconds = retry_after_seconds
        self.retryable = code == "rate_limited"
