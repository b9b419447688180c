"""The only way Chimera reaches MCP servers.

Only allowlisted servers (chimera.settings.McpServerConfig) are ever started. Everything a server
returns is untrusted data: it is size-checked and parsed as JSON, nothing else. Failures surface as
`McpError` subclasses, each with a `retryable` hint for the caller's retry policy.

Each operation currently opens its own stdio session (spawn, initialize, one request, shut down);
`McpHost._session` is the single place a connection pool would go.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CONNECTION_CLOSED,
    REQUEST_TIMEOUT,
    CallToolResult,
    PaginatedRequestParams,
    TextContent,
    TextResourceContents,
)
from pydantic import BaseModel, ConfigDict, Field

from chimera.settings import McpServerConfig, Settings

SANDBOX_DIR_ENV = "CHIMERA_SANDBOX_DIR"
# The tree holding `chimera` and `mcp_servers`, so `python -m mcp_servers.x` works from any cwd.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Server-supplied text is echoed into exception messages; keep those bounded.
MAX_MESSAGE_CHARS = 2000
# A server that keeps returning cursors must not keep us paging forever.
MAX_TOOL_PAGES = 20

T = TypeVar("T")


class ToolInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)


class McpError(Exception):
    """Base of every failure reaching an MCP server. `retryable` hints whether trying again may help."""

    retryable: bool = False

    def __init__(self, server: str, message: str) -> None:
        super().__init__(f"{server}: {message}")
        self.server = server
        self.message = message


class McpNotAllowed(McpError):
    """The server is not on the allowlist; it was not started."""


class McpUnavailable(McpError):
    """The server could not be started, or the connection to it failed."""

    retryable = True


class McpTimeout(McpError):
    retryable = True


class McpResultInvalid(McpError):
    """The server's answer is not acceptable: not JSON, too large, or the wrong shape."""


class McpToolError(McpError):
    """The server reported a failure. `code` comes from its error JSON ("rate_limited", "text_too_long", ...);
    "tool_error" when the error was not JSON, "protocol_error" for a JSON-RPC error response."""

    def __init__(self, server: str, code: str, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(server, f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after_seconds = retry_after_seconds
        self.retryable = code == "rate_limited"


def stdio_params(config: McpServerConfig, sandbox_dir: Path) -> StdioServerParameters:
    """How to spawn one allowlisted server. The child sees only the SDK's safe default environment plus
    the configured env, the sandbox dir (absolute, as the child's cwd may differ) and PYTHONPATH."""
    env = dict(config.env)
    pythonpath = [str(PROJECT_ROOT)]
    if env.get("PYTHONPATH"):
        pythonpath.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    env[SANDBOX_DIR_ENV] = str(sandbox_dir.resolve())
    return StdioServerParameters(command=config.command, args=list(config.args), env=env)


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "…"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _innermost(exc: BaseException) -> BaseException:
    # anyio task groups (stdio transport, session) wrap a failure in nested single-member groups.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class McpHost:
    def __init__(
        self,
        servers: dict[str, McpServerConfig],
        sandbox_dir: Path,
        timeout_seconds: float = 30.0,
        max_result_bytes: int = 256 * 1024,
        errlog: TextIO | None = None,
    ) -> None:
        self._servers = dict(servers)
        self._sandbox_dir = sandbox_dir
        self._timeout_seconds = timeout_seconds
        self._max_result_bytes = max_result_bytes
        self._errlog = errlog  # where children's stderr goes; None means our stderr at call time

    @classmethod
    def from_settings(cls, settings: Settings) -> McpHost:
        return cls(
            servers=settings.mcp_servers,
            sandbox_dir=settings.sandbox_dir,
            timeout_seconds=settings.mcp_timeout_seconds,
            max_result_bytes=settings.mcp_max_result_bytes,
        )

    @property
    def sandbox_dir(self) -> Path:
        return self._sandbox_dir

    @property
    def server_names(self) -> list[str]:
        return sorted(self._servers)

    # -- public operations ------------------------------------------------------------------

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Call a tool; its result must be one JSON object. A failed call raises McpToolError."""

        async def op(session: ClientSession) -> CallToolResult:
            result = await session.call_tool(tool, arguments)
            if not isinstance(result, CallToolResult):
                raise McpResultInvalid(server, f"{tool} returned {type(result).__name__}, not a tool result")
            return result

        result = await self._run(server, op)
        text = self._single_text(server, result.content, what=f"tool {tool}")
        if result.is_error:
            raise self._tool_error(server, text)
        payload = self._parse_json(server, text)
        if not isinstance(payload, dict):
            raise McpResultInvalid(server, f"tool {tool} returned JSON {type(payload).__name__}, expected an object")
        return payload

    async def read_resource(self, server: str, uri: str) -> Any:
        """Read a resource whose content is JSON text; returns the parsed JSON value."""
        result = await self._run(server, lambda session: session.read_resource(uri))
        if len(result.contents) != 1 or not isinstance(result.contents[0], TextResourceContents):
            raise McpResultInvalid(server, f"resource {uri} must have exactly one text content")
        text = result.contents[0].text
        self._check_size(server, text)
        return self._parse_json(server, text)

    async def list_tools(self, server: str) -> list[ToolInfo]:
        async def op(session: ClientSession) -> list[ToolInfo]:
            tools: list[ToolInfo] = []
            cursor: str | None = None
            for _ in range(MAX_TOOL_PAGES):
                params = PaginatedRequestParams(cursor=cursor) if cursor else None
                page = await session.list_tools(params=params)
                tools.extend(
                    ToolInfo(name=t.name, description=t.description or "", input_schema=dict(t.input_schema))
                    for t in page.tools
                )
                cursor = page.next_cursor
                if not cursor:
                    return tools
            raise McpResultInvalid(server, f"tool list did not end after {MAX_TOOL_PAGES} pages")

        return await self._run(server, op)

    # -- session plumbing -------------------------------------------------------------------

    def _config(self, server: str) -> McpServerConfig:
        config = self._servers.get(server)
        if config is None:
            raise McpNotAllowed(server, "not on the MCP server allowlist")
        return config

    @asynccontextmanager
    async def _session(self, server: str) -> AsyncIterator[ClientSession]:
        """An initialized session; the seam where a connection pool would hand out a live session."""
        params = stdio_params(self._config(server), self._sandbox_dir)
        errlog = self._errlog or sys.stderr
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, read_timeout_seconds=self._timeout_seconds) as session,
        ):
            await session.initialize()
            yield session

    async def _run(self, server: str, op: Callable[[ClientSession], Awaitable[T]]) -> T:
        """Run one operation in a fresh session under the host timeout, mapping failures to McpError."""
        self._config(server)  # refuse before spawning anything
        try:
            with anyio.fail_after(self._timeout_seconds):
                async with self._session(server) as session:
                    return await op(session)
        except BaseException as exc:
            inner = _innermost(exc)
            mapped = self._map_error(server, inner)
            if mapped is None:
                raise  # cancellation and other BaseExceptions are not ours to translate
            if mapped is inner:
                raise mapped from None  # already an McpError; drop the task-group wrappers
            raise mapped from inner

    def _map_error(self, server: str, exc: BaseException) -> McpError | None:
        if isinstance(exc, McpError):
            return exc
        if not isinstance(exc, Exception):
            return None
        if isinstance(exc, TimeoutError):
            return McpTimeout(server, f"no answer within {self._timeout_seconds:g}s")
        if isinstance(exc, MCPError):
            if exc.code == REQUEST_TIMEOUT:
                return McpTimeout(server, _truncate(exc.message))
            if exc.code == CONNECTION_CLOSED:
                return McpUnavailable(server, f"connection closed: {_truncate(exc.message)}")
            return McpToolError(server, "protocol_error", f"JSON-RPC error {exc.code}: {_truncate(exc.message)}")
        if isinstance(exc, OSError):
            return McpUnavailable(server, f"could not start: {exc}")
        if isinstance(exc, RuntimeError | ValueError):
            # The SDK raises these for responses it cannot accept (schema mismatch, unexpected result kind).
            return McpResultInvalid(server, _truncate(f"{type(exc).__name__}: {exc}"))
        return McpUnavailable(server, _truncate(f"{type(exc).__name__}: {exc}"))

    # -- result parsing ---------------------------------------------------------------------

    def _check_size(self, server: str, text: str) -> None:
        size = len(text.encode("utf-8"))
        if size > self._max_result_bytes:
            raise McpResultInvalid(server, f"result is {size} bytes, over the {self._max_result_bytes}-byte limit")

    def _single_text(self, server: str, content: list[Any], *, what: str) -> str:
        if len(content) != 1 or not isinstance(content[0], TextContent):
            raise McpResultInvalid(server, f"{what} must return exactly one text block")
        text: str = content[0].text
        self._check_size(server, text)
        return text

    def _parse_json(self, server: str, text: str) -> Any:
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise McpResultInvalid(server, f"result is not valid JSON: {_truncate(str(exc))}") from exc

    def _tool_error(self, server: str, text: str) -> McpToolError:
        """Read a server's error JSON; anything else (e.g. the SDK's argument errors) becomes "tool_error"."""
        try:
            payload = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("error"), str):
            return McpToolError(server, "tool_error", _truncate(text))
        message = payload.get("message")
        retry_after = payload.get("retry_after_seconds")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int | float) or not retry_after >= 0:
            retry_after = None  # absent, or not a usable delay (NaN is already rejected by the parser)
        return McpToolError(
            server,
            _truncate(payload["error"]),
            _truncate(message if isinstance(message, str) else ""),
            None if retry_after is None else float(retry_after),
        )
