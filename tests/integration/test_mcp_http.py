"""Both sandbox servers over streamable HTTP, driven by the mcp SDK's own HTTP client."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent, TextResourceContents

from mcp_servers.social.sandbox import SandboxPlatform
from tests.helpers.media_files import put_png
from tests.helpers.servers import mcp_http_server

TOOLS = {
    "twitter": (
        {"post_tweet", "reply_to_mention", "find_tweet", "trends", "tweet_metrics"},
        "post_tweet",
        "text",
        "twitter://accounts/mira_threads/trends/current",  # the default account's (the demo persona's)
    ),
    "instagram": (
        {"post", "reply_to_comment", "find_post", "post_metrics"},
        "post",
        "caption",
        "instagram://accounts/mira.threads/trends/current",
    ),
}


@pytest.fixture(params=sorted(TOOLS))
def http_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    platform: str = request.param
    sandbox = tmp_path / "sandbox"
    with mcp_http_server(f"mcp_servers.{platform}", {**os.environ, "CHIMERA_SANDBOX_DIR": str(sandbox)}) as url:
        yield platform, url, sandbox


async def test_tools_and_resources_over_streamable_http(http_server: tuple[str, str, Path]) -> None:
    platform, url, sandbox = http_server
    names, post_tool, text_arg, trends_uri = TOOLS[platform]
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        assert {t.name for t in (await session.list_tools()).tools} == names
        args = {text_arg: "Thrifted, mended, worn. #thriftflip", "idempotency_key": "http-1"}
        if platform == "instagram":
            # An Instagram post is an image: a real PNG in the media store the server reads.
            args["media_id"] = put_png(sandbox, 1080, 1080).media_id
        first = await session.call_tool(post_tool, args)
        again = await session.call_tool(post_tool, args)
        assert not first.is_error and not again.is_error
        first_content, again_content = first.content[0], again.content[0]
        assert isinstance(first_content, TextContent) and isinstance(again_content, TextContent)
        one, two = json.loads(first_content.text), json.loads(again_content.text)
        assert two["post_id"] == one["post_id"] and two["duplicate"] and not one["duplicate"]
        trends = (await session.read_resource(trends_uri)).contents[0]
        assert isinstance(trends, TextResourceContents) and json.loads(trends.text)
    # The server persisted to the sandbox the test pointed it at.
    posts = SandboxPlatform(sandbox, platform).posts()  # type: ignore[arg-type]
    assert [p["idempotency_key"] for p in posts] == ["http-1"]
    assert posts[0]["media_id"] == args.get("media_id")
