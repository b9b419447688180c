"""The images MCP server as a real process: over stdio (the mcp SDK's client, and McpHost as Chimera reaches
it) and over streamable HTTP, on the sandbox backend and on the live backend against a loopback Ideogram."""

from __future__ import annotations

import base64
import io
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents
from PIL import Image

from chimera.mcp import McpToolError
from chimera.settings import default_mcp_servers
from mcp_servers.media import MediaStore
from tests.helpers.fake_ideogram import API_KEY, FakeIdeogram, fake_ideogram
from tests.helpers.mcp_hosts import approved_host, call
from tests.helpers.servers import mcp_http_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"generate_image", "add_reference_image"}
PROMPT = "Mira repairing a denim jacket at her sewing table, soft window light"


@asynccontextmanager
async def stdio_session(env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mcp_servers.images"],
        env={"PYTHONPATH": str(PROJECT_ROOT), **env},
        cwd=str(PROJECT_ROOT),
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def _payload(result: CallToolResult) -> dict[str, Any]:
    assert len(result.content) == 1 and isinstance(result.content[0], TextContent)
    payload = json.loads(result.content[0].text)
    assert isinstance(payload, dict)
    return payload


async def _resource(session: ClientSession, uri: str) -> Any:
    [content] = (await session.read_resource(uri)).contents
    assert isinstance(content, TextResourceContents) and content.mime_type == "application/json"
    return json.loads(content.text)


def _png_in_store(sandbox: Path, media_id: str) -> Image.Image:
    store = MediaStore(sandbox)
    path = store.path(store.get(media_id))
    assert path.exists() and path.parent == sandbox / "media"
    image = Image.open(io.BytesIO(path.read_bytes()))
    image.load()
    return image


async def test_sandbox_over_stdio_with_the_sdk_client(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    async with stdio_session({"CHIMERA_SANDBOX_DIR": str(sandbox), "CHIMERA_IMAGES_BACKEND": "sandbox"}) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == TOOLS
        generate = tools["generate_image"]
        assert set(generate.input_schema["required"]) == {"prompt", "idempotency_key"}
        assert {"character_reference", "aspect_ratio", "style_type", "seed"} <= set(generate.input_schema["properties"])
        assert generate.output_schema is not None
        assert {"media_id", "width", "height", "seed", "duplicate"} <= set(generate.output_schema["properties"])
        assert tools["add_reference_image"].output_schema is not None

        reference = await _resource(session, "images://references/default")
        args = {
            "prompt": PROMPT,
            "idempotency_key": "stdio-1",
            "character_reference": reference["media_id"],
            "aspect_ratio": "4x5",
        }
        first = await session.call_tool("generate_image", args)
        assert not first.is_error
        payload = _payload(first)
        assert first.structured_content == payload
        assert payload["duplicate"] is False and payload["character_reference"] == reference["media_id"]
        image = _png_in_store(sandbox, payload["media_id"])
        assert image.format == "PNG" and image.size == (payload["width"], payload["height"]) == (896, 1120)

        again = _payload(await session.call_tool("generate_image", args))
        assert again == {**payload, "duplicate": True}

        refused = await session.call_tool("generate_image", {"prompt": "x" * 5001, "idempotency_key": "stdio-2"})
        assert refused.is_error and _payload(refused)["error"] == "prompt_too_long"
        unknown = await session.call_tool(
            "generate_image", {"prompt": PROMPT, "idempotency_key": "s3", "aspect_ratio": "5x7"}
        )
        assert unknown.is_error and _payload(unknown)["error"] == "invalid_aspect_ratio"

        recent = await _resource(session, "images://media/recent")
        assert [i["media_id"] for i in recent["images"]] == [payload["media_id"]]
        usage = await _resource(session, "images://account/usage")
        assert usage["backend"] == "sandbox" and usage["images_generated"] == 1 and usage["used_in_window"] == 1
        item = await _resource(session, f"images://media/{payload['media_id']}")
        assert item["details"]["prompt"] == PROMPT and item["sha256"]


async def test_sandbox_through_the_host(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    host = await approved_host(sandbox, {"images": default_mcp_servers()["images"]})
    assert {t.name for t in await host.list_tools("images")} == TOOLS
    result = await call(host, "images", "generate_image", {"prompt": PROMPT, "idempotency_key": "host-1"})
    assert _png_in_store(sandbox, result["media_id"]).size == (1024, 1024)
    with pytest.raises(McpToolError) as err:
        await call(host, "images", "generate_image", {"prompt": "naked on the beach", "idempotency_key": "host-2"})
    assert err.value.code == "unsafe_prompt" and err.value.retryable is False


@pytest.fixture
def http_sandbox(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    sandbox = tmp_path / "sandbox"
    env = {
        **os.environ,
        "CHIMERA_SANDBOX_DIR": str(sandbox),
        "CHIMERA_IMAGES_BACKEND": "sandbox",
        "CHIMERA_IMAGES_RATE_LIMIT": "1",
        "CHIMERA_IMAGES_RATE_WINDOW_SECONDS": "3600",
    }
    with mcp_http_server("mcp_servers.images", env) as url:
        yield url, sandbox


async def test_sandbox_over_streamable_http(http_sandbox: tuple[str, Path]) -> None:
    url, sandbox = http_sandbox
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == TOOLS and all(t.output_schema for t in tools.values())

        png = Image.new("RGB", (320, 400), (180, 120, 90))
        buf = io.BytesIO()
        png.save(buf, format="PNG")
        added = await session.call_tool(
            "add_reference_image", {"image_base64": base64.b64encode(buf.getvalue()).decode(), "mime_type": "image/png"}
        )
        assert not added.is_error and added.structured_content
        reference = added.structured_content["media_id"]

        args = {"prompt": PROMPT, "idempotency_key": "http-1", "character_reference": reference, "aspect_ratio": "9x16"}
        first = await session.call_tool("generate_image", args)
        assert not first.is_error and first.structured_content == _payload(first)
        media_id = _payload(first)["media_id"]
        assert _png_in_store(sandbox, media_id).size == (736, 1312)

        # One image per hour on this account: a new key is refused with a retry-after, a retry is not.
        limited = await session.call_tool("generate_image", {"prompt": "another", "idempotency_key": "http-2"})
        assert limited.is_error
        error = _payload(limited)
        assert error["error"] == "rate_limited" and 3500 < error["retry_after_seconds"] <= 3600
        assert _payload(await session.call_tool("generate_image", args))["duplicate"] is True


@pytest.fixture
def ideogram() -> Iterator[FakeIdeogram]:
    with fake_ideogram() as api:
        yield api


async def test_live_backend_through_the_server_process(tmp_path: Path, ideogram: FakeIdeogram) -> None:
    sandbox = tmp_path / "sandbox"
    env = {
        "CHIMERA_SANDBOX_DIR": str(sandbox),
        "CHIMERA_IMAGES_BACKEND": "live",
        "CHIMERA_IDEOGRAM_BASE_URL": ideogram.base_url,
        "CHIMERA_IDEOGRAM_API_KEY": API_KEY,
    }
    async with stdio_session(env) as session:
        reference = await _resource(session, "images://references/default")
        args = {"prompt": PROMPT, "idempotency_key": "live-1", "character_reference": reference["media_id"]}
        result = await session.call_tool("generate_image", {**args, "aspect_ratio": "16x9"})
        assert not result.is_error, result.content
        payload = _payload(result)
        assert payload["backend"] == "ideogram" and payload["public_url"].startswith(ideogram.base_url)
        assert _png_in_store(sandbox, payload["media_id"]).size == (1312, 736)
        [sent] = ideogram.generations()
        assert sent.headers["Api-Key"] == API_KEY and sent.parts["aspect_ratio"][0].text == "16x9"
        assert sent.parts["character_reference_images"][0].value == MediaStore(sandbox).read_bytes(
            reference["media_id"]
        )

        again = await session.call_tool("generate_image", {**args, "aspect_ratio": "16x9"})
        assert _payload(again)["duplicate"] is True and len(ideogram.generations()) == 1

        ideogram.mode = "rate-limited"
        limited = await session.call_tool("generate_image", {"prompt": "next", "idempotency_key": "live-2"})
        assert limited.is_error and _payload(limited) == {
            "error": "rate_limited",
            "message": "Ideogram HTTP 429: Too many requests.",
            "retry_after_seconds": 30.0,
        }
        ideogram.mode = "ok"
        unsafe = await session.call_tool("generate_image", {"prompt": "forbidden thing", "idempotency_key": "live-3"})
        assert unsafe.is_error and _payload(unsafe)["error"] == "unsafe_prompt"
        usage = await _resource(session, "images://account/usage")
        assert usage["backend"] == "ideogram" and usage["images_generated"] == 1 and usage["rate_limit"] is None
        assert API_KEY not in json.dumps(usage)

    # A wrong key: unauthorized, and the key appears nowhere in the answer.
    async with stdio_session({**env, "CHIMERA_IDEOGRAM_API_KEY": "wrong"}) as session:
        denied = await session.call_tool("generate_image", {"prompt": PROMPT, "idempotency_key": "live-4"})
        assert denied.is_error and _payload(denied)["error"] == "unauthorized"
