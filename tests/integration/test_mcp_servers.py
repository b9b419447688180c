"""Both sandbox MCP servers spawned over stdio and driven through McpHost."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chimera.mcp import (
    CallContext,
    McpError,
    McpHost,
    McpNotAllowed,
    McpResultInvalid,
    McpTimeout,
    McpToolError,
    McpUnavailable,
    stdio_params,
)
from chimera.mcp.account_binding import McpAccountRefused
from chimera.settings import McpServerConfig, default_mcp_servers
from mcp_servers.social.sandbox import SandboxPlatform
from tests.helpers.mcp_hosts import approved_host, call, script_server
from tests.helpers.media_files import put_png

# An operator's calls (no tenant) act for each server's default account, the demo persona's.
TW = "twitter://accounts/mira_threads"
IG = "instagram://accounts/mira.threads"


@pytest.fixture
def sandbox_dir(tmp_path: Path) -> Path:
    return tmp_path / "sandbox"


def social() -> dict[str, McpServerConfig]:
    return {name: default_mcp_servers()[name] for name in ("twitter", "instagram")}


@pytest.fixture
async def host(sandbox_dir: Path) -> McpHost:
    return await approved_host(sandbox_dir, social())


async def test_list_tools(host: McpHost) -> None:
    tw = {t.name: t for t in await host.list_tools("twitter")}
    ig = {t.name: t for t in await host.list_tools("instagram")}

    assert set(tw) == {"post_tweet", "reply_to_mention", "find_tweet", "trends", "tweet_metrics"}
    assert set(ig) == {"post", "reply_to_comment", "find_post", "post_metrics"}
    assert "280" in tw["post_tweet"].description and "idempotency" in tw["post_tweet"].description.lower()
    assert "2200" in ig["post"].description
    assert set(tw["post_tweet"].input_schema["required"]) == {"text", "idempotency_key"}
    assert set(tw["reply_to_mention"].input_schema["required"]) == {"mention_id", "text", "idempotency_key"}
    assert set(ig["post"].input_schema["required"]) == {"caption", "media_id", "idempotency_key"}
    assert "4:5" in ig["post"].description and "media_not_found" in ig["post"].description
    assert set(tw["trends"].input_schema["properties"]) == {"limit", "account"}  # account: bound by the host
    assert set(ig["reply_to_comment"].input_schema["required"]) == {"comment_id", "text", "idempotency_key"}
    for metrics in (tw["tweet_metrics"], ig["post_metrics"]):
        assert metrics.input_schema["required"] == ["post_ids"]
        assert set(metrics.input_schema["properties"]) == {"post_ids", "account"}
        assert metrics.output_schema is not None and set(metrics.output_schema["required"]) == {"metrics", "missing"}
        assert "likes + replies + reposts" in metrics.description and "invalid_request" in metrics.description


async def test_post_is_idempotent_and_persisted(host: McpHost, sandbox_dir: Path) -> None:
    args = {"text": "Thrifted, mended, worn to death. #SecondHandSeptember", "idempotency_key": "camp1-post-1"}
    first = await call(host, "twitter", "post_tweet", args)
    again = await call(host, "twitter", "post_tweet", args)

    assert first["duplicate"] is False and first["post_id"].startswith("tw-")
    assert again == {**first, "duplicate": True}
    found = await call(host, "twitter", "find_tweet", {"idempotency_key": "camp1-post-1"})
    assert found["found"] is True and found["post"]["post_id"] == first["post_id"]
    assert await call(host, "twitter", "find_tweet", {"idempotency_key": "nope"}) == {"found": False}

    image = put_png(sandbox_dir, 1080, 1350).media_id
    ig_args = {"caption": "Linen, reborn.", "media_id": image, "idempotency_key": "camp1-ig-1"}
    ig = await call(host, "instagram", "post", ig_args)
    assert ig["duplicate"] is False and ig["post_id"].startswith("ig-")
    ig_found = await call(host, "instagram", "find_post", {"idempotency_key": "camp1-ig-1"})
    assert ig_found["post"]["media_id"] == image
    with pytest.raises(McpToolError) as no_image:
        await call(
            host,
            "instagram",
            "post",
            {"caption": "x", "media_id": "media-" + "0" * 32, "idempotency_key": "camp1-ig-2"},
        )
    assert no_image.value.code == "media_not_found" and no_image.value.retryable is False
    tall = put_png(sandbox_dir, 1080, 1920, seed=1).media_id
    with pytest.raises(McpToolError) as bad_ratio:
        await call(host, "instagram", "post", {"caption": "x", "media_id": tall, "idempotency_key": "camp1-ig-3"})
    assert bad_ratio.value.code == "media_bad_dimensions"

    # The servers wrote to the sandbox dir the host handed them.
    assert [p["post_id"] for p in SandboxPlatform(sandbox_dir, "twitter").posts()] == [first["post_id"]]
    assert [p["post_id"] for p in SandboxPlatform(sandbox_dir, "instagram").posts()] == [ig["post_id"]]


async def test_reply_and_resources(host: McpHost) -> None:
    mentions = await host.read_resource("twitter", f"{TW}/mentions/recent")
    assert isinstance(mentions, list) and len(mentions) >= 5
    assert all(m["platform"] == "twitter" and m["replied"] is False for m in mentions)
    target = next(m for m in mentions if m["id"] == "tw-m-1006")

    receipt = await call(
        host,
        "twitter",
        "reply_to_mention",
        {"mention_id": target["id"], "text": "Look for GOTS certification!", "idempotency_key": "r-1006"},
    )
    assert receipt["duplicate"] is False
    after = {m["id"]: m for m in await host.read_resource("twitter", f"{TW}/mentions/recent")}
    assert after["tw-m-1006"]["replied"] is True
    unreplied = await host.read_resource("twitter", f"{TW}/mentions/unreplied")
    assert "tw-m-1006" not in {m["id"] for m in unreplied}

    stats = await host.read_resource("twitter", f"{TW}/profile/stats")
    assert stats["reply_count"] == 1 and stats["post_count"] == 0 and stats["followers"] > 0
    trends = await host.read_resource("twitter", f"{TW}/trends/current")
    assert {"platform", "topic", "volume"} <= set(trends[0])
    top = await call(host, "twitter", "trends", {"limit": 2})
    assert top == {"trends": trends[:2]}
    with pytest.raises(McpToolError) as bad_limit:
        await call(host, "twitter", "trends", {"limit": 0})
    assert bad_limit.value.code == "invalid_limit"

    comments = await host.read_resource("instagram", f"{IG}/comments/recent")
    assert all(c["id"].startswith("ig-c-") for c in comments)
    ig_reply = await call(
        host,
        "instagram",
        "reply_to_comment",
        {"comment_id": "ig-c-2003", "text": "Cold water and dry flat!", "idempotency_key": "ig-r-2003"},
    )
    assert ig_reply["duplicate"] is False
    assert (await host.read_resource("instagram", f"{IG}/profile/stats"))["reply_count"] == 1
    ig_trends = await host.read_resource("instagram", f"{IG}/trends/current")
    assert all(t["platform"] == "instagram" for t in ig_trends)


async def test_post_metrics_over_stdio(host: McpHost, sandbox_dir: Path) -> None:
    tweet = await call(host, "twitter", "post_tweet", {"text": "Darned, not dumped.", "idempotency_key": "m-1"})
    image = put_png(sandbox_dir, 1080, 1350).media_id
    ig_args = {"caption": "Linen, reborn. Which would you mend?", "media_id": image, "idempotency_key": "m-2"}
    post = await call(host, "instagram", "post", ig_args)
    # The server process reads the scripted counts a test (or demo) wrote into the account's file.
    SandboxPlatform(sandbox_dir, "twitter").set_metrics(
        tweet["post_id"], likes=8, replies=2, reposts=3, impressions=500
    )

    got = await call(host, "twitter", "tweet_metrics", {"post_ids": [tweet["post_id"], "tw-p-nope"]})
    [metric] = got["metrics"]
    assert {k: v for k, v in metric.items() if k != "measured_at"} == {
        "post_id": tweet["post_id"], "likes": 8, "replies": 2, "reposts": 3, "impressions": 500, "engagement": 13
    }  # fmt: skip
    assert metric["measured_at"].endswith("Z") and got["missing"] == ["tw-p-nope"]
    ig_got = await call(host, "instagram", "post_metrics", {"post_ids": [post["post_id"]]})
    assert [m["post_id"] for m in ig_got["metrics"]] == [post["post_id"]] and ig_got["missing"] == []
    assert ig_got["metrics"][0]["impressions"] >= 0  # just published: the simulated audience barely saw it
    # The twitter server's post ids are none of the instagram account's.
    assert (await call(host, "instagram", "post_metrics", {"post_ids": [tweet["post_id"]]}))["missing"] == [
        tweet["post_id"]
    ]
    for bad in ([], [f"tw-p-{i}" for i in range(101)]):
        with pytest.raises(McpToolError) as err:
            await call(host, "twitter", "tweet_metrics", {"post_ids": bad})
        assert err.value.code == "invalid_request" and err.value.retryable is False


class _Claims:
    """The accounts a tenant's agent holds (chimera.accounts.AccountLookup), without a database."""

    held = {"twitter": "nova_knits", "instagram": "nova.knits"}

    def account_for(self, tenant_id: str, agent_id: str | None, platform: str, handle: str | None) -> str:
        return self.held[platform]


async def test_post_metrics_act_for_the_bound_account(sandbox_dir: Path) -> None:
    host = await approved_host(sandbox_dir, social(), accounts=_Claims())
    mira = SandboxPlatform(sandbox_dir, "twitter")
    nova = SandboxPlatform(sandbox_dir, "twitter", account="nova_knits")
    mine, theirs = mira.post("Mira's tweet.", "k")["post_id"], nova.post("Nova's tweet.", "k")["post_id"]
    nova.set_metrics(theirs, likes=1, replies=1, reposts=1, impressions=10)
    task = CallContext(tenant_id="globex", actor="worker", agent_id="nova-berg")

    result = (await host.call_tool("twitter", "tweet_metrics", {"post_ids": [theirs, mine]}, task)).data
    assert [m["post_id"] for m in result["metrics"]] == [theirs] and result["missing"] == [mine]
    assert result["metrics"][0]["engagement"] == 3
    with pytest.raises(McpAccountRefused):  # naming another account is refused, not corrected
        await host.call_tool("twitter", "tweet_metrics", {"post_ids": [mine], "account": "mira_threads"}, task)
    ig = (await host.call_tool("instagram", "post_metrics", {"post_ids": [theirs]}, task)).data
    assert ig == {"metrics": [], "missing": [theirs]}
    # An operator's call without an account reads the default account's (mira's) posts.
    assert (await call(host, "twitter", "tweet_metrics", {"post_ids": [theirs, mine]}))["missing"] == [theirs]


async def test_rule_violation_is_a_parsed_tool_error(host: McpHost) -> None:
    with pytest.raises(McpToolError) as err:
        await call(host, "twitter", "post_tweet", {"text": "x" * 281, "idempotency_key": "too-long"})
    assert err.value.code == "text_too_long"
    assert "280" in err.value.message
    assert err.value.retry_after_seconds is None
    assert err.value.retryable is False

    with pytest.raises(McpToolError) as missing:
        await call(host, "instagram", "reply_to_comment", {"comment_id": "nope", "text": "hi", "idempotency_key": "k"})
    assert missing.value.code == "not_found"


async def test_rate_limit_is_retryable_with_delay(sandbox_dir: Path) -> None:
    config = default_mcp_servers()["twitter"].model_copy(update={"env": {"CHIMERA_SANDBOX_RATE_LIMIT": "1"}})
    host = await approved_host(sandbox_dir, {"twitter": config}, max_result_bytes=65536)
    await call(host, "twitter", "post_tweet", {"text": "one", "idempotency_key": "rl-1"})
    with pytest.raises(McpToolError) as err:
        await call(host, "twitter", "post_tweet", {"text": "two", "idempotency_key": "rl-2"})
    assert err.value.code == "rate_limited"
    assert err.value.retryable is True
    assert err.value.retry_after_seconds is not None and 0 < err.value.retry_after_seconds <= 900


async def test_unlisted_server_is_never_started(sandbox_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "started"
    host = await approved_host(sandbox_dir, {"twitter": default_mcp_servers()["twitter"]})
    with pytest.raises(McpNotAllowed):
        await call(host, "instagram", "post", {"caption": "x", "media_id": "media-x", "idempotency_key": "k"})
    with pytest.raises(McpNotAllowed):
        await host.read_resource("shell", f"file://{marker}")
    with pytest.raises(McpNotAllowed):
        await host.list_tools("instagram")
    assert not (sandbox_dir / "instagram.sqlite3").exists()  # approving twitter started only twitter


async def test_oversize_result_is_rejected(sandbox_dir: Path) -> None:
    host = await approved_host(sandbox_dir, social(), max_result_bytes=16)
    with pytest.raises(McpResultInvalid, match="limit"):
        await call(host, "twitter", "post_tweet", {"text": "hello", "idempotency_key": "big-1"})
    with pytest.raises(McpResultInvalid, match="limit"):
        await host.read_resource("instagram", f"{IG}/trends/current")


async def test_unknown_tool_and_resource(host: McpHost) -> None:
    with pytest.raises(McpToolError) as tool:
        await call(host, "twitter", "delete_account", {})
    assert tool.value.code == "unknown_tool"  # refused by the host: it is not among the pinned tools
    with pytest.raises(McpToolError) as resource:
        await host.read_resource("twitter", "twitter://dms/all")
    assert resource.value.code == "protocol_error"


async def test_non_json_and_wrong_shape_results(tmp_path: Path) -> None:
    config = script_server(
        tmp_path,
        """
        @server.tool(structured_output=False)
        def prose() -> str:
            '''Returns prose.'''
            return "I am definitely not JSON"

        @server.tool(structured_output=False)
        def a_list() -> str:
            '''Returns a JSON list.'''
            return "[1, 2, 3]"

        @server.tool(structured_output=False)
        def nan() -> str:
            '''Returns a non-standard constant.'''
            return '{"x": NaN}'

        @server.resource("rogue://text", mime_type="application/json")
        def text() -> str:
            return "{not json"
        """,
    )
    host = await approved_host(tmp_path / "sb", {"rogue": config})
    for tool in ("prose", "a_list", "nan"):
        with pytest.raises(McpResultInvalid):
            await call(host, "rogue", tool, {})
    with pytest.raises(McpResultInvalid, match="JSON"):
        await host.read_resource("rogue", "rogue://text")


async def test_timeout_and_unavailable(tmp_path: Path) -> None:
    servers = {
        "silent": McpServerConfig(command=sys.executable, args=["-c", "import time; time.sleep(60)"]),
        "crashing": McpServerConfig(command=sys.executable, args=["-c", "import sys; sys.exit(3)"]),
        "missing": McpServerConfig(command=str(tmp_path / "no-such-binary")),
    }
    host = await approved_host(tmp_path / "sb", servers, approve=[], timeout_seconds=2.0)
    with pytest.raises(McpTimeout) as timeout:
        await host.list_tools("silent")
    assert timeout.value.retryable is True
    with pytest.raises(McpUnavailable):
        await host.list_tools("crashing")
    with pytest.raises(McpUnavailable):
        await host.list_tools("missing")
    assert all(issubclass(e, McpError) for e in (McpTimeout, McpUnavailable, McpNotAllowed, McpResultInvalid))


def test_stdio_params(tmp_path: Path) -> None:
    config = McpServerConfig(command="python", args=["-m", "x"], env={"FOO": "1", "PYTHONPATH": "/extra"})
    params = stdio_params(config, tmp_path / "rel")
    assert params.command == "python" and params.args == ["-m", "x"]
    assert params.env is not None
    assert params.env["FOO"] == "1"
    assert params.env["CHIMERA_SANDBOX_DIR"] == str((tmp_path / "rel").resolve())
    assert params.env["PYTHONPATH"].endswith("/extra")
    assert config.env == {"FOO": "1", "PYTHONPATH": "/extra"}  # the config itself is not mutated


def test_stdio_params_pass_named_variables_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory server gets the worker's memory settings (Weaviate or the files), by name only."""
    monkeypatch.setenv("CHIMERA_WEAVIATE_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("CHIMERA_MEMORY_DIR", "/from/worker")
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    config = default_mcp_servers()["memory"].model_copy(update={"env": {"CHIMERA_MEMORY_DIR": "/from/config"}})
    env = stdio_params(config, tmp_path).env
    assert env is not None and env["CHIMERA_WEAVIATE_URL"] == "http://127.0.0.1:8080"
    assert env["CHIMERA_MEMORY_DIR"] == "/from/config"  # the allowlist entry's own env wins
    assert "UNRELATED_SECRET" not in env and "CHIMERA_WEAVIATE_API_KEY" not in env  # only named, only if set
