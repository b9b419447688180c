"""The official MCP Inspector's CLI (npm @modelcontextprotocol/inspector, pinned in tools/inspector) lists and
calls the tools of every Chimera server over stdio: proof that they work from another MCP host, not only ours.
`make test` installs it (`make inspector`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSPECTOR = ROOT / "tools" / "inspector" / "node_modules" / ".bin" / "mcp-inspector"

# server -> (the tools it must list, one tool call: name and arguments, a key its result must have)
SERVERS: dict[str, tuple[set[str], str, dict[str, str], str]] = {
    "twitter": ({"post_tweet", "reply_to_mention", "find_tweet"}, "find_tweet", {"idempotency_key": "k"}, "found"),
    "instagram": ({"post", "reply_to_comment", "find_post"}, "find_post", {"idempotency_key": "k"}, "found"),
    "news": ({"headlines", "trending_topics"}, "trending_topics", {"limit": "2"}, "topics"),
    "images": (
        {"generate_image", "add_reference_image"},
        "generate_image",
        {"prompt": "a linen jacket", "idempotency_key": "inspector-1", "aspect_ratio": "4x5"},
        "media_id",
    ),
    "memory": (
        {"search_memories", "store_memory"},
        "search_memories",
        {"tenant_id": "acme", "agent_id": "mira", "query": "linen"},
        "memories",
    ),
    # No chain here: the ledger answers without one.
    "wallet": (
        {"balance", "transfer", "pay_request", "transaction_status", "list_transactions", "x402_quote", "pay_x402"},
        "list_transactions",
        {"tenant_id": "acme", "agent_id": "mira"},
        "transactions",
    ),
}


def inspector(sandbox: Path, server: str, *args: str) -> dict[str, Any]:
    if not INSPECTOR.exists():
        pytest.fail(f"the MCP Inspector is not installed: run `make inspector` ({INSPECTOR} is missing)")
    command = [str(INSPECTOR), "--cli", "-e", f"CHIMERA_SANDBOX_DIR={sandbox}"]
    command += [sys.executable, "-m", f"mcp_servers.{server}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_inspector_lists_and_calls_tools(server: str, tmp_path: Path) -> None:
    expected, tool, arguments, key = SERVERS[server]
    listed = inspector(tmp_path, server, "--method", "tools/list")
    tools = {t["name"]: t for t in listed["tools"]}
    assert expected <= set(tools)
    assert all(t.get("outputSchema") for t in tools.values()), "every tool declares its result schema"

    args = [arg for name, value in arguments.items() for arg in ("--tool-arg", f"{name}={value}")]
    called = inspector(tmp_path, server, "--method", "tools/call", "--tool-name", tool, *args)
    assert called["isError"] is False
    assert key in called["structuredContent"]
    assert json.loads(called["content"][0]["text"]) == called["structuredContent"]
