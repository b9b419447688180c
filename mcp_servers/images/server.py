"""The images MCP server: generate an image from a prompt and a character reference into the media store.

The backend comes from CHIMERA_IMAGES_BACKEND (sandbox: a local Pillow renderer with Ideogram's rules and a
per-account rate limit; live: Ideogram 3.0 at CHIMERA_IDEOGRAM_BASE_URL with the key from
CHIMERA_IDEOGRAM_API_KEY). Either way the image lands in the media store under CHIMERA_SANDBOX_DIR, and posts
attach it by `media_id`. Failures are is_error results with `{"error", "message", "retry_after_seconds"}`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult
from pydantic import BaseModel

from mcp_servers.common import run_tool, serve
from mcp_servers.images.config import backend_from_env
from mcp_servers.images.service import RECENT_LIMIT, ImagesService


class GeneratedImage(BaseModel):
    """A generated image in the media store, and whether the idempotency key had already produced it."""

    media_id: str
    mime_type: str
    width: int
    height: int
    size_bytes: int
    prompt: str
    seed: int
    aspect_ratio: str
    style_type: str
    character_reference: str | None = None
    public_url: str | None = None
    backend: str
    estimated_cost_usd: float
    duplicate: bool


class StoredImage(BaseModel):
    """An image in the media store; `duplicate` when the same bytes were already there."""

    media_id: str
    mime_type: str
    width: int | None = None
    height: int | None = None
    size_bytes: int
    sha256: str
    duplicate: bool


def build_server(backend: ImagesService | None = None) -> MCPServer:
    """An images MCP server; `backend` defaults to one configured from the environment."""
    images = backend_from_env() if backend is None else backend
    server = MCPServer(
        "images",
        log_level="WARNING",
        instructions="Generates images for the persona's posts into the local media store; posts attach them by "
        "media_id. Use the persona's character reference (images://references/default, or one added with "
        "add_reference_image) so the persona looks the same in every image.",
    )

    @server.tool()
    def generate_image(
        prompt: str,
        idempotency_key: str,
        character_reference: str | None = None,
        aspect_ratio: str = "1x1",
        style_type: str = "AUTO",
        seed: int | None = None,
    ) -> Annotated[CallToolResult, GeneratedImage]:
        """Generate one image (Ideogram 3.0) and store it in the media store.

        Args:
            prompt: What the image shows, 1 to 5000 characters. Prompts that fail the safety check are refused.
            idempotency_key: A unique key for this intended image. Calling again with the same key and request
                never generates (or bills) twice: it returns the same media item with "duplicate": true.
                The same key with a different request is refused ("idempotency_conflict").
            character_reference: The media_id of an image of the persona (from images://references/default or
                add_reference_image), so the generated person looks like her. Allows style_type AUTO, REALISTIC
                or FICTION only.
            aspect_ratio: One of 1x1 (1024x1024), 4x5, 5x4, 3x4, 4x3, 2x3, 3x2, 9x16, 16x9, 10x16, 16x10,
                1x2, 2x1, 1x3, 3x1. Instagram feed: 4x5 or 1x1; stories: 9x16.
            style_type: AUTO, GENERAL, REALISTIC, DESIGN or FICTION.
            seed: 0 to 2147483647 for a reproducible image; omitted, the service picks one (and reports it).

        Returns {"media_id", "mime_type", "width", "height", "size_bytes", "prompt", "seed", "aspect_ratio",
        "style_type", "character_reference", "public_url", "backend", "estimated_cost_usd", "duplicate"}.
        Errors (is_error) carry JSON {"error", "message", "retry_after_seconds"}; error codes: "empty_prompt",
        "prompt_too_long", "invalid_aspect_ratio", "invalid_style", "invalid_seed", "invalid_idempotency_key",
        "idempotency_conflict", "media_not_found", "invalid_reference", "unsafe_prompt", "unsafe_image",
        "unauthorized", "invalid_request", "unavailable", "upstream_error", "in_progress",
        "rate_limited" (retry after retry_after_seconds).
        """
        return run_tool(
            lambda: images.generate_image(prompt, idempotency_key, character_reference, aspect_ratio, style_type, seed)
        )

    @server.tool()
    def add_reference_image(image_base64: str, mime_type: str) -> Annotated[CallToolResult, StoredImage]:
        """Add a character reference (a picture of the persona) to the media store.

        Args:
            image_base64: The image bytes, base64-encoded; at most 10 MB decoded.
            mime_type: "image/png", "image/jpeg" or "image/webp"; must match the data.

        Returns {"media_id", "mime_type", "width", "height", "size_bytes", "sha256", "duplicate"}; pass media_id
        as generate_image's character_reference. Error codes: "unsupported_media", "invalid_image",
        "image_too_large".
        """
        return run_tool(lambda: images.add_reference_image(image_base64, mime_type))

    @server.resource(
        "images://media/recent",
        mime_type="application/json",
        description=f'{{"images": [...]}}: the {RECENT_LIMIT} most recently generated images, newest first, each '
        "as generate_image returns it plus idempotency_key and created_at.",
    )
    def recent() -> str:
        return json.dumps({"images": images.recent(RECENT_LIMIT)})

    @server.resource(
        "images://account/usage",
        mime_type="application/json",
        description='{"backend", "rendering_speed", "account", "images_generated", "estimated_cost_usd", '
        '"rate_limit", "rate_window_seconds", "used_in_window"} (rate fields null on the live backend).',
    )
    def usage() -> str:
        return json.dumps(images.usage())

    @server.resource(
        "images://references/default",
        mime_type="application/json",
        description="The demo persona's default character reference, rendered locally on first read: "
        '{"media_id", "mime_type", "width", "height", "size_bytes", "sha256", "duplicate"}.',
    )
    def default_reference() -> str:
        return json.dumps(images.default_reference())

    @server.resource(
        "images://media/{media_id}",
        mime_type="application/json",
        description="One media store item's metadata: media_id, mime_type, size_bytes, sha256, width, height, "
        "created_at, public_url, details.",
    )
    def media(media_id: str) -> str:
        item: dict[str, Any] = images.media(media_id)
        return json.dumps(item)

    return server


def main(argv: list[str] | None = None) -> None:
    serve(build_server, "python -m mcp_servers.images", argv)
