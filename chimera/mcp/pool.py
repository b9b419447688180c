"""Open MCP sessions kept per server and reused, so a tool call costs a request, not a process.

Spawning a stdio server costs about a second of CPU (three for the memory server, which loads LanceDB
and its embedding model); a request on an open session costs milliseconds. The pool keeps up to
`max_sessions` sessions per server, lends each to one operation at a time, and closes one that
failed, timed out or was cancelled (its child exits with it), that idled past `idle_seconds`, or whose
server has gone (a crash): the next operation opens a fresh one. HTTP servers keep their streamable-HTTP
session, and with it the kept-alive connection.

A session is entered and left by one background task of its own: anyio's cancel scopes must be exited by
the task that entered them, and the operations that borrow a session run in other tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import anyio
from mcp.client.session import ClientSession

from chimera.mcp.errors import McpError, McpUnavailable
from chimera.mcp.sessions import connect
from chimera.settings import McpServerConfig

CLOSE_SECONDS = 5.0  # how long a closing session may take to shut its child down before it is cancelled


class PooledSession:
    """One open session, owned by a background task until `close`."""

    def __init__(self, server: str, config: McpServerConfig, sandbox_dir: Path, errlog: TextIO | None) -> None:
        self.server = server
        self._config, self._sandbox_dir, self._errlog = config, sandbox_dir, errlog
        self._ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.idle_since = time.monotonic()

    async def open(self, read_timeout_seconds: float) -> ClientSession:
        self._task = asyncio.create_task(self._own(read_timeout_seconds), name=f"mcp-session-{self.server}")
        try:
            return await asyncio.shield(self._ready)
        except BaseException:
            with anyio.CancelScope(shield=True):  # the caller gave up (timeout, cancel) or the server did not start
                await self.close()
            raise

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done() and self._ready.done() and not self._closing.is_set()

    async def close(self) -> None:
        self._closing.set()
        if self._ready.done() and not self._ready.cancelled():
            self._ready.exception()  # retrieved: a failed open was already raised to the caller
        task = self._task
        if task is None or task.done():
            return
        try:
            with contextlib.suppress(Exception):  # a session that fails while closing is closed all the same
                await asyncio.wait_for(asyncio.shield(task), CLOSE_SECONDS)
        except asyncio.CancelledError:
            task.cancel()  # we are cancelled: do not leave the child behind, and do not swallow it
            raise
        if not task.done():
            task.cancel()  # it would not shut down in time

    @property
    def session(self) -> ClientSession:
        return self._ready.result()

    async def _own(self, read_timeout_seconds: float) -> None:
        try:
            async with connect(
                self._config, self._sandbox_dir, read_timeout_seconds=read_timeout_seconds, errlog=self._errlog
            ) as session:
                self._ready.set_result(session)
                await self._closing.wait()
        except Exception as exc:
            # Failed to open, or the transport broke later (then `alive` turns false and the pool drops it).
            if not self._ready.done():
                self._ready.set_exception(exc)
        except BaseException:
            if not self._ready.done():
                self._ready.set_exception(McpUnavailable(self.server, "the session was cancelled while opening"))
            raise


@dataclass
class _Server:
    idle: list[PooledSession] = field(default_factory=list)
    open_count: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


@dataclass
class Lease:
    """A borrowed session. `reused` says it served an earlier operation (so it may have gone stale)."""

    session: ClientSession
    reused: bool
    pooled: PooledSession
    keep: bool = True


class SessionPool:
    def __init__(self, *, max_sessions: int = 4, idle_seconds: float = 300.0) -> None:
        self._max = max_sessions
        self._idle_seconds = idle_seconds
        self._servers: dict[str, _Server] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.asynccontextmanager
    async def lease(
        self,
        server: str,
        config: McpServerConfig,
        sandbox_dir: Path,
        *,
        read_timeout_seconds: float,
        errlog: TextIO | None,
        fresh: bool = False,
    ) -> AsyncIterator[Lease]:
        """Borrow a session for one operation. It goes back to the pool when the block ends normally or with
        an McpError that leaves the session sound (a tool's own error, a refused argument); anything else
        (a timeout, a broken transport, a cancellation) closes it. `fresh` skips idle sessions."""
        state = self._state(server)
        lease = await self._acquire(state, server, config, sandbox_dir, read_timeout_seconds, errlog, fresh)
        try:
            yield lease
        except BaseException as exc:
            if not (isinstance(exc, McpError) and exc.session_sound):
                lease.keep = False
            raise
        finally:
            # Shielded: a timed-out or cancelled operation must still give its session back or close it
            # (anyio re-raises a cancellation at every await inside the cancelled scope).
            with anyio.CancelScope(shield=True):
                await self._release(state, lease)

    async def close(self) -> None:
        """Close every idle session (sessions on loan close when they come back)."""
        servers, self._servers = self._servers, {}
        for state in servers.values():
            for pooled in state.idle:
                await pooled.close()
            state.idle.clear()

    def sessions(self, server: str) -> int:
        """How many sessions are open for `server` (idle or on loan)."""
        state = self._servers.get(server)
        return state.open_count if state else 0

    def _state(self, server: str) -> _Server:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Sessions belong to the loop that opened them; a new loop (a new asyncio.run) starts afresh.
            self._loop, self._servers = loop, {}
        return self._servers.setdefault(server, _Server())

    async def _acquire(
        self,
        state: _Server,
        server: str,
        config: McpServerConfig,
        sandbox_dir: Path,
        read_timeout_seconds: float,
        errlog: TextIO | None,
        fresh: bool,
    ) -> Lease:
        async with state.changed:
            while True:
                await self._drop_stale(state)
                if state.idle and not fresh:
                    pooled = state.idle.pop()
                    return Lease(session=pooled.session, reused=True, pooled=pooled)
                if state.open_count < (config.max_sessions or self._max):
                    state.open_count += 1
                    break
                if fresh and state.idle:
                    await self._discard(state, state.idle.pop(0))
                    continue
                await state.changed.wait()
        pooled = PooledSession(server, config, sandbox_dir, errlog)
        try:
            session = await pooled.open(read_timeout_seconds)
        except BaseException:
            with anyio.CancelScope(shield=True):  # the slot is given back even when we are cancelled
                async with state.changed:
                    state.open_count -= 1
                    state.changed.notify()
            raise
        return Lease(session=session, reused=False, pooled=pooled)

    async def _release(self, state: _Server, lease: Lease) -> None:
        pooled = lease.pooled
        if lease.keep and pooled.alive and self._servers.get(pooled.server) is state:
            pooled.idle_since = time.monotonic()
            async with state.changed:
                state.idle.append(pooled)
                state.changed.notify()
            return
        await pooled.close()
        async with state.changed:
            state.open_count -= 1
            state.changed.notify()

    async def _drop_stale(self, state: _Server) -> None:
        now = time.monotonic()
        for pooled in [p for p in state.idle if not p.alive or now - p.idle_since > self._idle_seconds]:
            await self._discard(state, pooled)

    async def _discard(self, state: _Server, pooled: PooledSession) -> None:
        state.idle.remove(pooled)
        state.open_count -= 1
        await pooled.close()
