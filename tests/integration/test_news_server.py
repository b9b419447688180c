"""The news MCP server over stdio (through McpHost, as Chimera reaches it) and over streamable HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent, TextResourceContents

from chimera.mcp import McpHost, McpToolError
from chimera.settings import default_mcp_servers
from tests.helpers.mcp_hosts import approved_host, call
from tests.helpers.servers import mcp_http_server

LATEST = "news://headlines/latest"


@pytest.fixture
async def host(tmp_path: Path) -> McpHost:
    return await approved_host(tmp_path / "sandbox", {"news": default_mcp_servers()["news"]})


async def test_news_over_stdio_through_the_host(host: McpHost) -> None:
    tools = {t.name: t for t in await host.list_tools("news")}
    assert set(tools) == {"headlines", "trending_topics"}
    assert set(tools["headlines"].input_schema["properties"]) == {"topic", "region", "limit"}
    assert not tools["headlines"].input_schema.get("required")

    german = await call(host, "news", "headlines", {"region": "DE", "topic": "sustainability", "limit": 5})
    assert german["articles"] and all(
        a["region"] == "DE" and a["topic"] == "sustainability" for a in german["articles"]
    )
    assert set(german["articles"][0]) == {"id", "title", "summary", "source", "url", "topic", "region", "published_at"}

    trending = await call(host, "news", "trending_topics", {"limit": 2})
    assert len(trending["topics"]) == 2
    assert trending["topics"][0] == {"topic": "sustainability", "count": 5}  # the seed feed's biggest topic

    latest = await host.read_resource("news", LATEST)
    assert len(latest["articles"]) == 10
    assert latest["articles"][0]["id"] == "nw-015"  # the newest seed item

    with pytest.raises(McpToolError) as err:
        await call(host, "news", "headlines", {"limit": 1000})
    assert err.value.code == "invalid_limit" and err.value.retryable is False


async def test_feed_env_reaches_the_stdio_server(tmp_path: Path) -> None:
    feed = tmp_path / "feed.json"
    feed.write_text("[{]")
    config = default_mcp_servers()["news"].model_copy(update={"env": {"CHIMERA_NEWS_FEED": str(feed)}})
    host = await approved_host(tmp_path / "sandbox", {"news": config})
    with pytest.raises(McpToolError) as err:
        await call(host, "news", "trending_topics", {})
    assert err.value.code == "feed_invalid" and str(feed) in err.value.message


@pytest.fixture
def http_url() -> Iterator[str]:
    env = {**os.environ, "CHIMERA_NEWS_BACKEND": "sandbox"}
    env.pop("CHIMERA_NEWS_FEED", None)
    with mcp_http_server("mcp_servers.news", env) as url:
        yield url


def _json(block: object) -> dict[str, object]:
    assert isinstance(block, TextContent)
    payload = json.loads(block.text)
    assert isinstance(payload, dict)
    return payload


async def test_news_over_streamable_http(http_url: str) -> None:
    async with streamable_http_client(http_url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        assert {t.name for t in (await session.list_tools()).tools} == {"headlines", "trending_topics"}

        result = await session.call_tool("headlines", {"topic": "crypto"})
        assert not result.is_error
        articles = _json(result.content[0])["articles"]
        assert isinstance(articles, list) and [a["id"] for a in articles] == ["nw-015"]

        result = await session.call_tool("trending_topics", {"region": "GB"})
        assert not result.is_error
        assert _json(result.content[0])["topics"] == [
            {"topic": "fashion", "count": 1},
            {"topic": "retail", "count": 1},
            {"topic": "sustainability", "count": 1},
        ]

        failed = await session.call_tool("trending_topics", {"limit": 0})
        assert failed.is_error and _json(failed.content[0])["error"] == "invalid_limit"

        latest = (await session.read_resource(LATEST)).contents[0]
        assert isinstance(latest, TextResourceContents) and latest.mime_type == "application/json"
        assert len(json.loads(latest.text)["articles"]) == 10
