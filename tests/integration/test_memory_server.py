"""The memory MCP server as a real process: over stdio (the SDK client, and McpHost with the allowlist entry)
and over streamable HTTP. The real embedding model and LanceDB files under a temporary directory; and once over
stdio with the Weaviate backend, against the loopback fake Weaviate (tests/helpers/fake_weaviate.py)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents

from chimera.mcp import McpToolError
from chimera.settings import default_mcp_servers
from tests.helpers.fake_weaviate import FakeWeaviate
from tests.helpers.mcp_hosts import approved_host, call
from tests.helpers.servers import mcp_http_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN = "My morning run along the river was beautiful today."


def _payload(result: CallToolResult) -> dict[str, Any]:
    assert isinstance(result.content[0], TextContent)
    payload = json.loads(result.content[0].text)
    assert isinstance(payload, dict)
    if not result.is_error:
        assert result.structured_content == payload  # the declared outputSchema's object, also as text
    return payload


async def _exercise(session: ClientSession) -> None:
    """The same conversation over either transport."""
    await session.initialize()
    tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(tools) == {"search_memories", "store_memory"}
    search_schema, store_schema = tools["search_memories"].output_schema, tools["store_memory"].output_schema
    assert search_schema is not None and "memories" in search_schema["properties"]
    assert store_schema is not None and set(store_schema["properties"]) == {"id", "duplicate"}
    assert set(tools["search_memories"].input_schema["required"]) == {"tenant_id", "agent_id", "query"}
    assert set(tools["store_memory"].input_schema["required"]) == {"tenant_id", "agent_id", "text", "kind"}
    assert "subject" in tools["search_memories"].input_schema["properties"]
    assert "subject" in tools["store_memory"].input_schema["properties"]

    ids = {"tenant_id": "acme", "agent_id": "ava"}
    stored = _payload(await session.call_tool("store_memory", {**ids, "text": RUN, "kind": "published_post"}))
    assert stored["duplicate"] is False and stored["id"].startswith("mem_")
    again = _payload(await session.call_tool("store_memory", {**ids, "text": RUN, "kind": "published_post"}))
    assert again == {"id": stored["id"], "duplicate": True}
    await session.call_tool(
        "store_memory",
        {**ids, "text": "Lesson: questions in captions get replies", "kind": "lesson", "metadata": {"likes": 3}},
    )
    other_tenant = {"tenant_id": "globex", "agent_id": "ava"}
    await session.call_tool("store_memory", {**other_tenant, "text": RUN, "kind": "published_post"})

    found = _payload(await session.call_tool("search_memories", {**ids, "query": "jogging by the water", "limit": 1}))
    [hit] = found["memories"]
    assert hit["id"] == stored["id"] and hit["text"] == RUN and hit["kind"] == "published_post"
    assert set(hit) == {"id", "text", "kind", "subject", "created_at", "score", "metadata"} and hit["score"] > 0
    assert hit["subject"] == ""

    ana = {"text": "@ana asked which trail I run on", "kind": "interaction", "subject": "twitter:@ana"}
    about_ana = _payload(await session.call_tool("store_memory", {**ids, **ana}))
    only_ana = _payload(
        await session.call_tool("search_memories", {**ids, "query": "which trail do I run", "subject": "twitter:@ana"})
    )
    assert [(m["id"], m["subject"]) for m in only_ana["memories"]] == [(about_ana["id"], "twitter:@ana")]

    lessons = _payload(await session.call_tool("search_memories", {**ids, "query": "captions", "kinds": ["lesson"]}))
    assert [(m["kind"], m["metadata"]) for m in lessons["memories"]] == [("lesson", {"likes": 3})]

    cases: list[tuple[dict[str, Any], str]] = [
        ({**ids, "tenant_id": "acme' OR '1'='1", "query": "run"}, "invalid_id"),
        ({**ids, "query": "run", "kinds": ["diary"]}, "unknown_kind"),
        ({**ids, "query": "run", "limit": 500}, "invalid_limit"),
        ({**ids, "query": "  "}, "empty_query"),
        ({**ids, "query": "run", "subject": "Twitter:@Ana"}, "invalid_subject"),
    ]
    for arguments, code in cases:
        failed = await session.call_tool("search_memories", arguments)
        assert failed.is_error and _payload(failed)["error"] == code
    too_long = await session.call_tool("store_memory", {**ids, "text": "x" * 9000, "kind": "fact"})
    assert too_long.is_error and _payload(too_long)["error"] == "text_too_long"
    bad_subject = await session.call_tool("store_memory", {**ids, "text": "x", "kind": "fact", "subject": "a b"})
    assert bad_subject.is_error and _payload(bad_subject)["error"] == "invalid_subject"

    templates = (await session.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["memory://{tenant_id}/{agent_id}/recent"]
    recent = (await session.read_resource("memory://acme/ava/recent")).contents[0]
    assert isinstance(recent, TextResourceContents) and recent.mime_type == "application/json"
    newest = json.loads(recent.text)["memories"]
    assert [(m["kind"], m["subject"]) for m in newest] == [
        ("interaction", "twitter:@ana"),
        ("lesson", ""),
        ("published_post", ""),
    ]
    theirs = (await session.read_resource("memory://globex/ava/recent")).contents[0]
    assert isinstance(theirs, TextResourceContents)
    assert [m["id"] for m in json.loads(theirs.text)["memories"]] != [stored["id"]]  # same text, other tenant


async def test_memory_over_stdio(tmp_path: Path) -> None:
    env = {"CHIMERA_MEMORY_DIR": str(tmp_path / "memory"), "PYTHONPATH": str(PROJECT_ROOT)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_servers.memory"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await _exercise(session)
    assert (tmp_path / "memory" / "tenant_acme.lance").is_dir()


async def test_memory_over_stdio_on_weaviate(tmp_path: Path) -> None:
    # The same conversation with the Weaviate backend (CHIMERA_WEAVIATE_URL picks it): nothing lands on disk.
    with FakeWeaviate(api_key="server-test-key") as fake:
        env = {
            "CHIMERA_WEAVIATE_URL": fake.url,
            "CHIMERA_WEAVIATE_GRPC_PORT": str(fake.grpc_port),
            "CHIMERA_WEAVIATE_API_KEY": "server-test-key",
            "CHIMERA_MEMORY_DIR": str(tmp_path / "memory"),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_servers.memory"], env=env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await _exercise(session)
        assert sorted(fake.tenants["ChimeraMemory"]) == ["acme", "globex"]
        assert len(fake.stored("ChimeraMemory", "acme")) == 3
    assert not (tmp_path / "memory").exists()


@pytest.fixture
def http_url(tmp_path: Path) -> Iterator[str]:
    env = {**os.environ, "CHIMERA_MEMORY_DIR": str(tmp_path / "memory")}
    with mcp_http_server("mcp_servers.memory", env) as url:
        yield url


async def test_memory_over_streamable_http(http_url: str) -> None:
    async with streamable_http_client(http_url) as (read, write), ClientSession(read, write) as session:
        await _exercise(session)


async def test_allowlisted_server_keeps_memories_under_the_state_dir(tmp_path: Path) -> None:
    # McpHost gives servers only CHIMERA_SANDBOX_DIR=<state>/sandbox; memories land in <state>/memory and
    # survive from one server process to the next (the host starts one per call).
    host = await approved_host(tmp_path / "sandbox", {"memory": default_mcp_servers()["memory"]}, timeout_seconds=60.0)
    ids = {"tenant_id": "acme", "agent_id": "ava"}
    stored = await call(host, "memory", "store_memory", {**ids, "text": RUN, "kind": "fact", "idempotency_key": "k"})
    found = await call(host, "memory", "search_memories", {**ids, "query": "a sunrise jog near the water"})
    assert [m["id"] for m in found["memories"]] == [stored["id"]]
    assert (tmp_path / "memory" / "tenant_acme.lance").is_dir()
    with pytest.raises(McpToolError) as err:
        await call(host, "memory", "store_memory", {**ids, "text": "x", "kind": "gossip"})
    assert err.value.code == "unknown_kind" and err.value.retryable is False
