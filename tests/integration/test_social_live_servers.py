"""The live backends through the real MCP server processes (stdio via McpHost, and streamable HTTP), with the
environment pointing them at loopback look-alikes of X and the Instagram Graph API."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp_types import TextContent

from chimera.mcp import McpHost, McpToolError
from chimera.settings import default_mcp_servers
from tests.helpers.fake_social import (
    IG_TOKEN,
    IG_USER_ID,
    X_APP_TOKEN,
    X_TOKEN,
    FakeGraph,
    FakeX,
    fake_graph,
    fake_x,
)
from tests.helpers.mcp_hosts import approved_host, call
from tests.helpers.media_files import put_png
from tests.helpers.servers import mcp_http_server


@pytest.fixture
def x() -> Iterator[tuple[FakeX, str]]:
    with fake_x() as served:
        yield served


@pytest.fixture
def graph() -> Iterator[tuple[FakeGraph, str]]:
    with fake_graph() as served:
        yield served


def _x_env(url: str, timeout: str = "5") -> dict[str, str]:
    return {
        "CHIMERA_TWITTER_BACKEND": "live",
        "CHIMERA_TWITTER_BASE_URL": url,
        "CHIMERA_TWITTER_ACCESS_TOKEN": X_TOKEN,
        "CHIMERA_TWITTER_APP_BEARER_TOKEN": X_APP_TOKEN,
        "CHIMERA_TWITTER_TIMEOUT_SECONDS": timeout,
        # The single-account variables belong to this account (checked against /2/users/me before first use).
        "CHIMERA_TWITTER_ACCOUNT": "mira_makes",
    }


def _ig_env(url: str) -> dict[str, str]:
    return {
        "CHIMERA_INSTAGRAM_BACKEND": "live",
        "CHIMERA_INSTAGRAM_BASE_URL": url,
        "CHIMERA_INSTAGRAM_ACCESS_TOKEN": IG_TOKEN,
        "CHIMERA_INSTAGRAM_USER_ID": IG_USER_ID,
        "CHIMERA_INSTAGRAM_ACCOUNT": "mira.makes",
    }


async def _host(platform: str, env: dict[str, str], sandbox: Path) -> McpHost:
    config = default_mcp_servers()[platform].model_copy(update={"env": env})
    return await approved_host(sandbox, {platform: config})


async def test_live_twitter_over_stdio(x: tuple[FakeX, str], tmp_path: Path) -> None:
    api, url = x
    sandbox = tmp_path / "sandbox"
    host = await _host("twitter", _x_env(url), sandbox)

    receipt = await call(host, "twitter", "post_tweet", {"text": "Live, mended.", "idempotency_key": "t-1"})
    assert receipt == {"post_id": api.tweets[0]["id"], "url": receipt["url"], "duplicate": False}
    mentions = await host.read_resource("twitter", "twitter://accounts/mira_makes/mentions/recent")
    assert [m["author"] for m in mentions] == ["spam_bot_99", "thrift_tom"]
    reply = await call(
        host,
        "twitter",
        "reply_to_mention",
        {"mention_id": mentions[1]["id"], "text": "Running stitch!", "idempotency_key": "t-2"},
    )
    assert reply["duplicate"] is False
    unreplied = await host.read_resource("twitter", "twitter://accounts/mira_makes/mentions/unreplied")
    assert [m["id"] for m in unreplied] == [mentions[0]["id"]]
    stats = await host.read_resource("twitter", "twitter://accounts/mira_makes/profile/stats")
    assert stats["followers"] == 12840 and stats["reply_count"] == 1
    trends = await call(host, "twitter", "trends", {"limit": 2})
    assert [t["topic"] for t in trends["trends"]] == ["#SlowFashion", "#RepairCafe"]
    assert (await host.read_resource("twitter", "twitter://accounts/mira_makes/trends/current"))[0][
        "topic"
    ] == "#SlowFashion"
    found = await call(host, "twitter", "find_tweet", {"idempotency_key": "t-2"})
    assert found["post"]["reply_to"] == mentions[1]["id"]
    assert len(api.tweets) == 2
    # The account's ledger sits in the state dir the host handed the server.
    assert (sandbox / "accounts" / "twitter" / "mira_makes-live-ledger.sqlite3").exists()


async def test_live_twitter_timeout_then_retry_posts_exactly_once(x: tuple[FakeX, str], tmp_path: Path) -> None:
    api, url = x
    sandbox = tmp_path / "sandbox"
    args = {"text": "Exactly one of me.", "idempotency_key": "task-7"}
    api.post_delay = 3.0
    with pytest.raises(McpToolError) as err:
        await call(await _host("twitter", _x_env(url, timeout="0.5"), sandbox), "twitter", "post_tweet", args)
    assert err.value.code == "outcome_unknown"
    assert len(api.tweets) == 1

    api.post_delay = 0.0
    again = await call(await _host("twitter", _x_env(url), sandbox), "twitter", "post_tweet", args)
    assert again["duplicate"] is True and again["post_id"] == api.tweets[0]["id"]
    assert len(api.tweets) == 1


async def test_live_twitter_errors_over_stdio(x: tuple[FakeX, str], tmp_path: Path) -> None:
    api, url = x
    bad = await _host("twitter", {**_x_env(url), "CHIMERA_TWITTER_ACCESS_TOKEN": "revoked"}, tmp_path / "a")
    with pytest.raises(McpToolError) as unauthorized:
        await call(bad, "twitter", "post_tweet", {"text": "hi", "idempotency_key": "k"})
    assert unauthorized.value.code == "unauthorized" and "revoked" not in str(unauthorized.value)

    api.rate_limited = True
    with pytest.raises(McpToolError) as limited:
        await call(
            await _host("twitter", _x_env(url), tmp_path / "b"),
            "twitter",
            "post_tweet",
            {"text": "hi", "idempotency_key": "k"},
        )
    assert limited.value.code == "rate_limited" and limited.value.retryable is True
    assert limited.value.retry_after_seconds is not None and 100 < limited.value.retry_after_seconds <= 121


async def test_live_instagram_over_stdio(graph: tuple[FakeGraph, str], tmp_path: Path) -> None:
    api, url = graph
    sandbox = tmp_path / "sandbox"
    image = put_png(sandbox, 1080, 1350, public_url="https://cdn.example.test/linen.png").media_id
    host = await _host("instagram", _ig_env(url), sandbox)

    args = {"caption": "Linen, reborn. #visiblemending", "media_id": image, "idempotency_key": "ig-1"}
    receipt = await call(host, "instagram", "post", args)
    assert receipt["url"] == api.media[-1]["permalink"] and receipt["duplicate"] is False
    assert (await call(host, "instagram", "post", args))["duplicate"] is True
    assert len(api.media) == 2 and api.media[-1]["image_url"] == "https://cdn.example.test/linen.png"

    comments = await host.read_resource("instagram", "instagram://accounts/mira.makes/comments/recent")
    assert {c["author"] for c in comments} == {"sew_sarah", "bot_77"}
    await call(
        host,
        "instagram",
        "reply_to_comment",
        {"comment_id": "17850000000000001", "text": "Doubled cotton thread.", "idempotency_key": "ig-2"},
    )
    assert [
        c["id"] for c in await host.read_resource("instagram", "instagram://accounts/mira.makes/comments/unreplied")
    ] == ["17850000000000002"]
    stats = await host.read_resource("instagram", "instagram://accounts/mira.makes/profile/stats")
    assert stats == {"platform": "instagram", "account": "mira.makes", "followers": 48210, "post_count": 2,
                     "reply_count": 1}  # fmt: skip
    assert await host.read_resource("instagram", "instagram://accounts/mira.makes/trends/current") == []

    private = put_png(sandbox, 1080, 1080, seed=3).media_id
    with pytest.raises(McpToolError) as not_public:
        await call(host, "instagram", "post", {"caption": "x", "media_id": private, "idempotency_key": "ig-3"})
    assert not_public.value.code == "media_not_public"


async def test_live_post_metrics_over_stdio(x: tuple[FakeX, str], graph: tuple[FakeGraph, str], tmp_path: Path) -> None:
    x_api, x_url = x
    tw = await _host("twitter", _x_env(x_url), tmp_path / "a")
    tweet = (await call(tw, "twitter", "post_tweet", {"text": "Counted.", "idempotency_key": "m-1"}))["post_id"]
    x_api.metrics[tweet] = {"like_count": 5, "reply_count": 1, "retweet_count": 2, "quote_count": 2,
                            "impression_count": 321}  # fmt: skip
    got = await call(tw, "twitter", "tweet_metrics", {"post_ids": [tweet, "1800000000000000001", "42"]})
    assert [(m["post_id"], m["reposts"], m["impressions"], m["engagement"]) for m in got["metrics"]] == [
        (tweet, 4, 321, 10)
    ]
    assert got["missing"] == ["1800000000000000001", "42"]  # someone else's tweet, and no tweet at all

    ig_api, ig_url = graph
    ig_api.media[0]["like_count"] = 40
    ig_api.insights["17900000000000001"] = {"reach": 2000, "shares": 6}
    ig = await _host("instagram", _ig_env(ig_url), tmp_path / "b")
    ig_got = await call(ig, "instagram", "post_metrics", {"post_ids": ["17900000000000001", "17900000000000099"]})
    assert [(m["likes"], m["replies"], m["reposts"], m["impressions"], m["engagement"]) for m in ig_got["metrics"]] == [
        (40, 2, 6, 2000, 48)
    ]
    assert ig_got["missing"] == ["17900000000000099"]  # another IG user's media
    ig_api.insights_refused = True
    [partial] = (await call(ig, "instagram", "post_metrics", {"post_ids": ["17900000000000001"]}))["metrics"]
    assert (partial["likes"], partial["reposts"], partial["impressions"]) == (40, 0, 0)


async def test_live_twitter_over_streamable_http(x: tuple[FakeX, str], tmp_path: Path) -> None:
    api, url = x
    env = {**os.environ, **_x_env(url), "CHIMERA_SANDBOX_DIR": str(tmp_path / "sandbox")}
    with mcp_http_server("mcp_servers.twitter", env) as endpoint:
        async with streamable_http_client(endpoint) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("post_tweet", {"text": "Over HTTP.", "idempotency_key": "h-1"})
            assert not result.is_error
            block = result.content[0]
            assert isinstance(block, TextContent)
            assert json.loads(block.text)["post_id"] == api.tweets[0]["id"]
