"""Pooled MCP sessions against real server processes: reuse, the bound on sessions, recovery after a crash,
a timeout or an idle spell, and that the pool never hides a changed definition (test_mcp_host covers that)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from chimera.db import StateStore
from chimera.mcp import CallContext, McpHost, McpTimeout, McpUnavailable
from chimera.mcp.definitions import ToolInfo
from chimera.mcp.pool import SessionPool
from chimera.mcp.toolset import ToolCatalog
from tests.helpers.mcp_hosts import script_server

# Each answer names the process that gave it, so a test can tell a reused session from a new one.
PIDS = """
import asyncio

@server.tool()
def pid() -> dict[str, Any]:
    '''Which process answers.'''
    return {"pid": os.getpid()}

@server.tool()
async def slow(seconds: float) -> dict[str, Any]:
    '''Answers after a while.'''
    await asyncio.sleep(seconds)
    return {"pid": os.getpid()}

@server.tool()
def crash() -> dict[str, Any]:
    '''Dies mid-call.'''
    os._exit(3)
"""


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'chimera.db'}")


async def pids_host(tmp_path: Path, store: StateStore, pool: SessionPool, **config: object) -> McpHost:
    host = McpHost({"pids": script_server(tmp_path, PIDS, name="pids", **config)}, tmp_path / "sb", store, pool=pool)
    await host.approve("pids", actor="ops")
    return host


async def pid_of(host: McpHost, tool: str = "pid", **args: object) -> int:
    return int((await host.call_tool("pids", tool, dict(args))).data["pid"])


async def test_calls_reuse_one_open_session(tmp_path: Path, store: StateStore) -> None:
    pool = SessionPool(max_sessions=4)
    host = await pids_host(tmp_path, store, pool)
    pids = {await pid_of(host) for _ in range(20)}
    assert len(pids) == 1 and pool.sessions("pids") == 1  # one process served every call
    await host.aclose()
    assert pool.sessions("pids") == 0


async def test_concurrent_calls_share_at_most_max_sessions(tmp_path: Path, store: StateStore) -> None:
    pool = SessionPool(max_sessions=2)
    host = await pids_host(tmp_path, store, pool)
    answers = await asyncio.gather(*(pid_of(host, "slow", seconds=0.2) for _ in range(8)))
    assert len(answers) == 8 and len(set(answers)) <= 2
    assert pool.sessions("pids") <= 2
    await host.aclose()


async def test_a_server_entry_can_hold_fewer_sessions_than_the_pool(tmp_path: Path, store: StateStore) -> None:
    pool = SessionPool(max_sessions=4)
    host = await pids_host(tmp_path, store, pool, max_sessions=1)  # as the memory server's entry does (2)
    answers = await asyncio.gather(*(pid_of(host, "slow", seconds=0.1) for _ in range(6)))
    assert len(set(answers)) == 1 and pool.sessions("pids") == 1  # the six calls took turns on one session
    await host.aclose()


async def test_a_crashed_server_is_replaced_at_the_next_call(tmp_path: Path, store: StateStore) -> None:
    pool = SessionPool()
    host = await pids_host(tmp_path, store, pool)
    first = await pid_of(host)
    with pytest.raises(McpUnavailable):
        await host.call_tool("pids", "crash", {})
    second = await pid_of(host)
    assert second != first

    # Killed while idle in the pool: the next call notices before sending anything and opens a new session.
    os.kill(second, signal.SIGKILL)
    await asyncio.sleep(0.2)
    third = await pid_of(host)
    assert third not in (first, second)
    await host.aclose()


async def test_a_timed_out_session_is_closed_not_reused(tmp_path: Path, store: StateStore) -> None:
    pool = SessionPool()
    # Long enough to start a server on a loaded machine; the slow call outlasts it by far.
    host = await pids_host(tmp_path, store, pool, timeout_seconds=5.0)
    first = await pid_of(host)
    with pytest.raises(McpTimeout):
        await pid_of(host, "slow", seconds=60)
    assert await pid_of(host) != first  # the stuck session (and its child) went away
    assert pool.sessions("pids") == 1
    await host.aclose()


async def test_an_idle_session_is_closed_after_its_time(tmp_path: Path, store: StateStore) -> None:
    pool = SessionPool(idle_seconds=0.2)
    host = await pids_host(tmp_path, store, pool)
    first = await pid_of(host)
    await asyncio.sleep(0.4)
    assert await pid_of(host) != first
    await host.aclose()


async def test_a_cold_catalog_lists_each_server_once_for_many_tasks(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = await pids_host(tmp_path, store, SessionPool())
    listings: list[str] = []
    real = host.list_tools

    async def counted(server: str) -> list[ToolInfo]:
        listings.append(server)
        return await real(server)

    monkeypatch.setattr(host, "list_tools", counted)
    catalog = ToolCatalog(host)
    toolsets = await asyncio.gather(*(catalog.toolset(CallContext()) for _ in range(25)))
    assert all(t.has("pid") for t in toolsets)
    assert listings == ["pids"]  # 25 tasks at once, one listing (single flight)
    await host.aclose()
