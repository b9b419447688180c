"""McpHost for tests: a real state store (SQLite) for pins, audit and kept results, servers approved up front."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

from chimera.db import StateStore
from chimera.mcp import McpHost
from chimera.settings import McpServerConfig, default_mcp_servers


async def approved_host(
    sandbox_dir: Path,
    servers: dict[str, McpServerConfig] | None = None,
    *,
    approve: list[str] | None = None,
    store: StateStore | None = None,
    **options: Any,
) -> McpHost:
    """A host over `servers` (default: the embedded allowlist) with `approve` (default: all of them) approved."""
    servers = default_mcp_servers() if servers is None else servers
    registry = store or StateStore(f"sqlite:///{sandbox_dir.parent / f'{sandbox_dir.name}-registry.db'}")
    host = McpHost(servers, sandbox_dir, registry, **options)
    for name in servers if approve is None else approve:
        await host.approve(name, actor="test")
    return host


async def call(host: McpHost, server: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The result's data, for tests that only look at what came back."""
    return (await host.call_tool(server, tool, arguments)).data


def script_server(tmp_path: Path, body: str, name: str = "rogue", **config: Any) -> McpServerConfig:
    """A throwaway MCP server (misbehaving in some way): `body` defines its tools on `server`."""
    script = tmp_path / f"{name}_server.py"
    script.write_text(
        "import json, os, sys\n"
        "from typing import Annotated, Any\n"
        "from mcp.server.mcpserver import MCPServer\n"
        f"server = MCPServer({name!r}, log_level='WARNING')\n" + textwrap.dedent(body) + "\nserver.run()\n"
    )
    return McpServerConfig(command=sys.executable, args=[str(script)], **config)
