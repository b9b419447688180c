"""What every Chimera MCP server shares: the error shape, the result shape, the sandbox dir, the command line.

A tool's success is a CallToolResult whose structured content is one JSON object (declared as the tool's
outputSchema through `Annotated[CallToolResult, Model]`, and validated by the SDK before it is sent) and whose one
text block is the same object as JSON, for hosts that read text. A failure is `is_error=True` with the text
`{"error": code, "message": ..., "retry_after_seconds": ...}`, so a host can tell a rate limit (wait, then retry)
from a rule violation (do not retry) without parsing prose.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The mcp SDK ships its HTTP client as the `httpx2` distribution; there is no plain `httpx` in the venv.
import httpx2 as httpx
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent

SANDBOX_DIR_ENV = "CHIMERA_SANDBOX_DIR"
DEFAULT_SANDBOX_DIR = Path(".chimera/sandbox")
SEED_DIR = Path(__file__).resolve().parent / "seed"


class ToolError(Exception):
    """Any failure a server reports to its caller; `code` is machine-readable."""

    def __init__(self, code: str, message: str, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_seconds = retry_after_seconds

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "retry_after_seconds": self.retry_after_seconds}


class RateLimited(ToolError):
    def __init__(self, retry_after_seconds: float, message: str | None = None) -> None:
        super().__init__(
            "rate_limited",
            message or f"rate limit exceeded; retry after {retry_after_seconds:.1f}s",
            retry_after_seconds,
        )


def sandbox_dir_from_env() -> Path:
    """Where sandbox backends keep their files (the host passes an absolute CHIMERA_SANDBOX_DIR)."""
    return Path(os.environ.get(SANDBOX_DIR_ENV) or DEFAULT_SANDBOX_DIR)


def tool_result(payload: dict[str, Any]) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(payload))], structured_content=payload)


def error_result(error: ToolError) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(error.to_dict()))], is_error=True)


def run_tool(action: Callable[[], dict[str, Any]]) -> CallToolResult:
    """Run a backend call; a ToolError becomes a parseable is_error result, not a generic crash."""
    try:
        return tool_result(action())
    except ToolError as exc:
        return error_result(exc)


def serve(build: Callable[[], MCPServer], prog: str, argv: Sequence[str] | None = None) -> None:
    """Serve over stdio (the default; stdout is the protocol channel, the SDK logs to stderr) or over
    streamable HTTP (`--transport http`, endpoint http://HOST:PORT/mcp)."""
    parser = argparse.ArgumentParser(prog=prog, description=serve.__doc__)
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="http only; loopback unless you mean it")
    parser.add_argument("--port", type=int, default=8000, help="http only")
    args = parser.parse_args(argv)
    server = build()
    if args.transport == "http":
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run()


# Long enough for several server processes writing one file to queue behind each other.
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def sqlite_connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (sqlite_transaction), never implicit.
    conn = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def enable_wal(path: Path) -> None:
    """Switch the file to WAL (it persists in the file; readers then never block the single writer). The switch
    needs the file to itself and ignores the busy timeout, so processes opening a new file at once retry it."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    conn = sqlite_connect(path)
    try:
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
    finally:
        conn.close()


@contextmanager
def sqlite_transaction(path: Path, *, write: bool) -> Iterator[sqlite3.Connection]:
    """One transaction on a fresh connection. Writers take the lock up front (BEGIN IMMEDIATE), so a
    check-then-insert (idempotency keys, rate limits) is atomic across the processes sharing the file."""
    conn = sqlite_connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()


def check_rate(
    conn: sqlite3.Connection, account: str, limit: int, window_seconds: float, now: float, what: str
) -> None:
    """A per-account sliding window over the `rate_events` table (account, at), inside the caller's write
    transaction. Raises RateLimited with the time until the oldest event in the window leaves it."""
    conn.execute("DELETE FROM rate_events WHERE account = ? AND at <= ?", (account, now - window_seconds))
    times = [r["at"] for r in conn.execute("SELECT at FROM rate_events WHERE account = ? ORDER BY at", (account,))]
    if len(times) < limit:
        return
    # A slot frees when enough of the oldest events have left the window.
    freeing = times[len(times) - limit]
    retry_after = max(freeing + window_seconds - now, 0.001)
    raise RateLimited(
        round(retry_after, 3),
        f"{account} may {what} {limit} times per {window_seconds:g}s; retry after {retry_after:.1f}s",
    )


# -- what live backends read from a remote service's answer ---------------------------------------------


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when the body is not one (an HTML error page, an empty body)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
