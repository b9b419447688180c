"""How the host reaches one MCP server: the transport (stdio child or streamable HTTP), an initialized
session with the tools it lists, and the mapping of transport and protocol failures to McpError.

Sessions are kept open and reused by chimera.mcp.pool; every operation lists the tools first.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT, PaginatedRequestParams

from chimera.mcp.definitions import ToolInfo
from chimera.mcp.errors import McpError, McpResultInvalid, McpTimeout, McpToolError, McpUnavailable
from chimera.mcp.results import truncate
from chimera.settings import McpServerConfig
from mcp_servers.common import SANDBOX_DIR_ENV

# The tree holding `chimera` and `mcp_servers`, so `python -m mcp_servers.x` works from any cwd.
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
# A server that keeps returning cursors must not keep us paging forever.
MAX_TOOL_PAGES = 20


def stdio_params(config: McpServerConfig, sandbox_dir: Path) -> StdioServerParameters:
    """How to spawn one allowlisted server. The child sees only the SDK's safe default environment plus
    the configured env, the variables its entry passes through (`pass_env`), the sandbox dir (absolute, as the
    child's cwd may differ) and PYTHONPATH."""
    if not config.command:
        raise ValueError("a stdio server needs a command")
    env = {name: os.environ[name] for name in config.pass_env if name in os.environ}
    env.update(config.env)
    pythonpath = [str(PROJECT_ROOT)]
    if env.get("PYTHONPATH"):
        pythonpath.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    env[SANDBOX_DIR_ENV] = str(sandbox_dir.resolve())
    return StdioServerParameters(command=config.command, args=list(config.args), env=env)


def _transport(config: McpServerConfig, sandbox_dir: Path, errlog: TextIO | None) -> AbstractAsyncContextManager[Any]:
    if config.transport == "http":
        assert config.url is not None  # the settings validator guarantees it
        return streamable_http_client(config.url)
    return stdio_client(stdio_params(config, sandbox_dir), errlog=errlog or _stderr())


@asynccontextmanager
async def connect(
    config: McpServerConfig, sandbox_dir: Path, *, read_timeout_seconds: float, errlog: TextIO | None
) -> AsyncIterator[ClientSession]:
    """An initialized session with one server. `errlog` is where a stdio child's stderr goes; None means
    our stderr at call time."""
    async with (
        _transport(config, sandbox_dir, errlog) as streams,
        ClientSession(streams[0], streams[1], read_timeout_seconds=read_timeout_seconds) as session,
    ):
        await session.initialize()
        yield session


async def offered_tools(server: str, session: ClientSession) -> list[ToolInfo]:
    """What the server offers now (listed before every operation, so a changed definition is seen)."""
    tools: list[ToolInfo] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools.extend(ToolInfo.from_tool(t) for t in page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools
    raise McpResultInvalid(server, f"tool list did not end after {MAX_TOOL_PAGES} pages")


def innermost(exc: BaseException) -> BaseException:
    # anyio task groups (stdio transport, session) wrap a failure in nested single-member groups.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def map_error(server: str, exc: BaseException, timeout_seconds: float) -> McpError | None:
    """The McpError a session's failure means; None for cancellation and other BaseExceptions (not ours)."""
    if isinstance(exc, McpError):
        return exc
    if not isinstance(exc, Exception):
        return None
    if isinstance(exc, TimeoutError):
        return McpTimeout(server, f"no answer within {timeout_seconds:g}s")
    if isinstance(exc, MCPError):
        if exc.code == REQUEST_TIMEOUT:
            return McpTimeout(server, truncate(exc.message))
        if exc.code == CONNECTION_CLOSED:
            return McpUnavailable(server, f"connection closed: {truncate(exc.message)}")
        return McpToolError(server, "protocol_error", f"JSON-RPC error {exc.code}: {truncate(exc.message)}")
    if isinstance(exc, OSError):
        return McpUnavailable(server, f"could not start: {exc}")
    if isinstance(exc, RuntimeError | ValueError):
        # The SDK raises these for responses it cannot accept (schema mismatch, unexpected result kind).
        return McpResultInvalid(server, truncate(f"{type(exc).__name__}: {exc}"))
    return McpUnavailable(server, truncate(f"{type(exc).__name__}: {exc}"))


def _stderr() -> TextIO:
    """Where children's stderr goes: ours, unless it is no real file (captured output), then nowhere."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return _devnull()
    return sys.stderr


@functools.cache
def _devnull() -> TextIO:
    return open(os.devnull, "w")  # one for the whole process
