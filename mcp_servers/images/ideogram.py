"""The live generator: Ideogram 3.0's `POST /v1/ideogram-v3/generate`, then a download of the image it answers with."""

from __future__ import annotations

import json
from typing import Any

# The mcp SDK ships its HTTP client as the `httpx2` distribution; there is no plain `httpx` in the venv.
import httpx2 as httpx

from chimera.retry_after import retry_after_header
from mcp_servers.common import json_object
from mcp_servers.images.service import GeneratedImage, ImageRequest, ImagesError, Reference, check_speed, inspect_image

API_KEY_ENV = "CHIMERA_IDEOGRAM_API_KEY"
BASE_URL_ENV = "CHIMERA_IDEOGRAM_BASE_URL"
DEFAULT_BASE_URL = "https://api.ideogram.ai"
GENERATE_PATH = "/v1/ideogram-v3/generate"
MAX_DOWNLOAD_BYTES = 30 * 1024 * 1024
HTTP_TIMEOUT_SECONDS = 60.0


class IdeogramGenerator:
    """Ideogram 3.0's `POST /v1/ideogram-v3/generate` (multipart/form-data, `Api-Key` header), then a
    download of the returned URL, which is ephemeral: the image must be stored to be kept."""

    name = "ideogram"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        rendering_speed: str = "DEFAULT",
        timeout_seconds: float = HTTP_TIMEOUT_SECONDS,
    ) -> None:
        if not api_key:
            raise ValueError(f"the live images backend needs an Ideogram API key in {API_KEY_ENV}")
        self.base_url = base_url.rstrip("/")
        self.rendering_speed = check_speed(rendering_speed)
        self._api_key = api_key
        self._timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        return f"IdeogramGenerator(base_url={self.base_url!r})"  # never the key

    def precheck(self, request: ImageRequest) -> None:
        """Nothing local: safety and rate limits are the service's own."""

    def generate(self, request: ImageRequest, reference: Reference | None) -> GeneratedImage:
        # Every field as a form part, files or not, so the body is multipart/form-data as the API requires.
        parts: list[tuple[str, tuple[str | None, bytes | str] | tuple[str, bytes, str]]] = [
            ("prompt", (None, request.prompt)),
            ("aspect_ratio", (None, request.aspect_ratio)),
            ("rendering_speed", (None, self.rendering_speed)),
            ("style_type", (None, request.style_type)),
            # The Judge approves the prompt as written; Magic Prompt would rewrite it after approval.
            ("magic_prompt", (None, "OFF")),
            ("num_images", (None, "1")),
        ]
        if request.seed is not None:
            parts.append(("seed", (None, str(request.seed))))
        if reference is not None:
            ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}[reference.mime_type]
            parts.append(("character_reference_images", (f"reference.{ext}", reference.data, reference.mime_type)))
        try:
            response = httpx.post(
                f"{self.base_url}{GENERATE_PATH}",
                files=parts,
                headers={"Api-Key": self._api_key, "Accept": "application/json"},
                timeout=self._timeout_seconds,
            )
        except httpx.HTTPError as exc:
            raise ImagesError("unavailable", f"Ideogram unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise _api_error(response)
        first = _first_image(response)
        url = first.get("url")
        if first.get("is_image_safe") is False or not isinstance(url, str) or not url:
            raise ImagesError("unsafe_image", "Ideogram withheld the generated image: it failed the image safety check")
        data = self._download(url)
        mime_type, width, height = inspect_image(data)
        seed = first.get("seed")
        details = {
            "ideogram_prompt": first.get("prompt"),
            "ideogram_resolution": first.get("resolution"),
            "ideogram_style_type": first.get("style_type"),
            "ideogram_created": json_object(response).get("created"),
        }
        return GeneratedImage(
            data,
            mime_type,
            width,
            height,
            seed if isinstance(seed, int) and not isinstance(seed, bool) else (request.seed or 0),
            public_url=url,
            details=details,
        )

    def _download(self, url: str) -> bytes:
        # No Api-Key here: the URL is signed, and the key must not travel to another host.
        try:
            response = httpx.get(url, timeout=self._timeout_seconds, follow_redirects=True)
        except httpx.HTTPError as exc:
            raise ImagesError("upstream_error", f"image download failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise ImagesError("upstream_error", f"image download answered HTTP {response.status_code}")
        if len(response.content) > MAX_DOWNLOAD_BYTES:
            raise ImagesError("upstream_error", f"the generated image is over {MAX_DOWNLOAD_BYTES} bytes")
        return response.content


def _first_image(response: httpx.Response) -> dict[str, Any]:
    data = json_object(response).get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise ImagesError("upstream_error", "Ideogram answered 200 without an image in `data`")
    first: dict[str, Any] = data[0]
    return first


def _upstream_message(response: httpx.Response) -> str:
    body = json_object(response)
    for key in ("detail", "message", "error"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value[:500]
        if value:
            return json.dumps(value)[:500]
    return response.text[:200]


# Ideogram 3.0 generate's documented statuses: 400 invalid input, 401 not authorized, 422 prompt failed the
# safety check, 429 too many requests.
_STATUS_CODES = {400: "invalid_request", 401: "unauthorized", 403: "unauthorized", 422: "unsafe_prompt"}


def _api_error(response: httpx.Response) -> ImagesError:
    status = response.status_code
    message = f"Ideogram HTTP {status}: {_upstream_message(response)}"
    if status == 429:
        return ImagesError("rate_limited", message, retry_after_header(response.headers.get("Retry-After")))
    return ImagesError(_STATUS_CODES.get(status, "upstream_error"), message)
