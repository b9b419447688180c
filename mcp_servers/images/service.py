"""The images service: what the sandbox and live (Ideogram 3.0) generators share, and the contract they keep.

`ImagesService` owns the argument rules, the idempotency ledger (one generation, and one bill, per key), the
local media store and usage. An `ImageGenerator` makes the pixels: `mcp_servers.images.sandbox` renders locally,
`mcp_servers.images.ideogram` calls Ideogram; `mcp_servers.images.config` picks one from the environment. Every
failure is an ImagesError (a ToolError with a machine-readable code), which the server turns into the shared
error JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image, UnidentifiedImageError

from mcp_servers.common import ToolError
from mcp_servers.images.ledger import Ledger, Pending
from mcp_servers.images.render import render_portrait
from mcp_servers.media import MediaItem, MediaStore

RENDERING_SPEED_ENV = "CHIMERA_IDEOGRAM_RENDERING_SPEED"

# Ideogram 3.0's aspect ratios (AspectRatioV3) and the resolution each renders at (from ResolutionV3).
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1x1": (1024, 1024),
    "4x5": (896, 1120),
    "5x4": (1120, 896),
    "3x4": (864, 1152),
    "4x3": (1152, 864),
    "2x3": (832, 1248),
    "3x2": (1248, 832),
    "9x16": (736, 1312),
    "16x9": (1312, 736),
    "10x16": (800, 1280),
    "16x10": (1280, 800),
    "1x2": (704, 1408),
    "2x1": (1408, 704),
    "1x3": (512, 1536),
    "3x1": (1536, 512),
}
STYLE_TYPES = ("AUTO", "GENERAL", "REALISTIC", "DESIGN", "FICTION")
# Ideogram's character generation offers only these styles with a character reference.
CHARACTER_STYLE_TYPES = ("AUTO", "REALISTIC", "FICTION")
RENDERING_SPEEDS = ("TURBO", "DEFAULT", "QUALITY")
# Ideogram's API reference gives no maximum; 5,000 characters is the limit its API resellers document.
# Both backends enforce it, so a prompt the sandbox accepts is one the live backend sends.
MAX_PROMPT_CHARS = 5000
MAX_SEED = 2_147_483_647
MAX_IDEMPOTENCY_KEY_CHARS = 200
# "maximum total size 10MB across all character references ... JPEG, PNG or WebP" (Ideogram 3.0 generate).
MAX_REFERENCE_BYTES = 10 * 1024 * 1024
REFERENCE_MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
# How long a call waits for another call generating under the same key before giving up.
PENDING_WAIT_SECONDS = 90.0
RECENT_LIMIT = 20

# List prices per image in USD (Ideogram 3.0 API pricing): plain, and with a character reference.
# Estimates for budgeting; the invoice is Ideogram's.
PRICES_USD: dict[str, tuple[float, float]] = {
    "TURBO": (0.03, 0.10),
    "DEFAULT": (0.06, 0.15),
    "QUALITY": (0.09, 0.20),
}


class ImagesError(ToolError):
    """An images failure with a machine-readable code (the shared error JSON via `to_dict`)."""


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    idempotency_key: str
    aspect_ratio: str
    style_type: str
    seed: int | None
    character_reference: str | None

    def fingerprint(self) -> str:
        """What the key promises: the same key with a different request is a conflict, not a duplicate."""
        fields = {
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "style_type": self.style_type,
            "seed": self.seed,
            "character_reference": self.character_reference,
        }
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Reference:
    media_id: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime_type: str
    width: int
    height: int
    seed: int
    public_url: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class ImageGenerator(Protocol):
    name: str
    rendering_speed: str

    def precheck(self, request: ImageRequest) -> None:
        """Refusals the generator makes before anything is reserved or billed."""
        ...

    def generate(self, request: ImageRequest, reference: Reference | None) -> GeneratedImage: ...


def check_request(
    prompt: str,
    idempotency_key: str,
    aspect_ratio: str,
    style_type: str,
    seed: int | None,
    character_reference: str | None,
) -> ImageRequest:
    """Validate the arguments (the same rules for both backends) and normalise them."""
    if not idempotency_key.strip():
        raise ImagesError("invalid_idempotency_key", "idempotency_key must not be empty")
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise ImagesError(
            "invalid_idempotency_key", f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )
    # NFC so composed and decomposed accents count the same and hash the same.
    normalized = unicodedata.normalize("NFC", prompt).strip()
    if not normalized:
        raise ImagesError("empty_prompt", "prompt must not be empty")
    if len(normalized) > MAX_PROMPT_CHARS:
        raise ImagesError(
            "prompt_too_long", f"prompt allows at most {MAX_PROMPT_CHARS} characters; got {len(normalized)}"
        )
    ratio = aspect_ratio.strip().lower().replace(":", "x")
    if ratio not in ASPECT_RATIOS:
        raise ImagesError(
            "invalid_aspect_ratio", f"aspect_ratio {aspect_ratio!r} is not one of {', '.join(ASPECT_RATIOS)}"
        )
    style = style_type.strip().upper()
    if style not in STYLE_TYPES:
        raise ImagesError("invalid_style", f"style_type {style_type!r} is not one of {', '.join(STYLE_TYPES)}")
    if character_reference is not None and style not in CHARACTER_STYLE_TYPES:
        raise ImagesError(
            "invalid_style",
            f"with a character reference, style_type must be one of {', '.join(CHARACTER_STYLE_TYPES)}; got {style}",
        )
    if seed is not None and (isinstance(seed, bool) or not 0 <= seed <= MAX_SEED):
        raise ImagesError("invalid_seed", f"seed must be between 0 and {MAX_SEED}; got {seed!r}")
    return ImageRequest(normalized, idempotency_key, ratio, style, seed, character_reference or None)


def inspect_image(data: bytes) -> tuple[str, int, int]:
    """(mime type, width, height) of JPEG, PNG or WebP bytes, after Pillow decoded them; else invalid_image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, width, height = image.format or "", image.width, image.height
            image.load()  # decode fully: a truncated or corrupt file fails here, not later on a platform
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImagesError("invalid_image", f"not a readable image: {exc}") from exc
    mime_type = REFERENCE_MIME_TYPES.get(image_format)
    if mime_type is None:
        raise ImagesError("unsupported_media", f"images must be JPEG, PNG or WebP; got {image_format or 'unknown'}")
    return mime_type, width, height


def _media_info(item: MediaItem, *, duplicate: bool) -> dict[str, Any]:
    return {
        "media_id": item.media_id,
        "mime_type": item.mime_type,
        "width": item.width,
        "height": item.height,
        "size_bytes": item.size_bytes,
        "sha256": item.sha256,
        "duplicate": duplicate,
    }


class ImagesService:
    """Generation with idempotency, usage and the media store; the pixels come from `generator`."""

    def __init__(self, store: MediaStore, ledger: Ledger, generator: ImageGenerator) -> None:
        self.store = store
        self.ledger = ledger
        self.generator = generator

    @property
    def name(self) -> str:
        return self.generator.name

    def __repr__(self) -> str:
        return f"ImagesService(generator={self.generator!r}, media={str(self.store.root)!r})"

    # -- generation -------------------------------------------------------------------------

    def generate_image(
        self,
        prompt: str,
        idempotency_key: str,
        character_reference: str | None = None,
        aspect_ratio: str = "1x1",
        style_type: str = "AUTO",
        seed: int | None = None,
    ) -> dict[str, Any]:
        request = check_request(prompt, idempotency_key, aspect_ratio, style_type, seed, character_reference)
        deadline = time.monotonic() + PENDING_WAIT_SECONDS
        while True:
            held = self.ledger.reserve(request.idempotency_key, request.fingerprint(), lambda: self._precheck(request))
            if held is None:
                break
            if not isinstance(held, Pending):
                return {**held, "duplicate": True}
            if time.monotonic() > deadline:
                raise ImagesError(
                    "in_progress",
                    f"another call is still generating under idempotency_key {request.idempotency_key!r}",
                    retry_after_seconds=10.0,
                )
            time.sleep(0.1)
        try:
            result, media_id, cost = self._generate(request)
        except BaseException:
            self.ledger.release(request.idempotency_key)
            raise
        self.ledger.complete(request.idempotency_key, result, media_id=media_id, cost_usd=cost)
        return {**result, "duplicate": False}

    def _precheck(self, request: ImageRequest) -> None:
        if request.character_reference is not None:
            self._reference(request.character_reference)
        self.generator.precheck(request)

    def _reference(self, media_id: str) -> Reference:
        item = self.store.get(media_id)  # media_not_found when unknown
        if item.mime_type not in REFERENCE_MIME_TYPES.values():
            raise ImagesError("invalid_reference", f"{media_id} is {item.mime_type}; references are JPEG, PNG or WebP")
        if item.size_bytes > MAX_REFERENCE_BYTES:
            raise ImagesError("invalid_reference", f"{media_id} is {item.size_bytes} bytes; the maximum is 10 MB")
        return Reference(media_id, item.mime_type, self.store.read_bytes(media_id))

    def _generate(self, request: ImageRequest) -> tuple[dict[str, Any], str, float]:
        reference = None if request.character_reference is None else self._reference(request.character_reference)
        image = self.generator.generate(request, reference)
        speed = self.generator.rendering_speed
        cost = PRICES_USD[speed][1 if reference else 0]
        item = self.store.put(
            image.data,
            image.mime_type,
            width=image.width,
            height=image.height,
            public_url=image.public_url,
            details={
                "kind": "generated",
                "generator": self.generator.name,
                "prompt": request.prompt,
                "seed": image.seed,
                "aspect_ratio": request.aspect_ratio,
                "style_type": request.style_type,
                "rendering_speed": speed,
                "character_reference": request.character_reference,
                **image.details,
            },
        )
        result = {
            "media_id": item.media_id,
            "mime_type": item.mime_type,
            "width": image.width,
            "height": image.height,
            "size_bytes": item.size_bytes,
            "prompt": request.prompt,
            "seed": image.seed,
            "aspect_ratio": request.aspect_ratio,
            "style_type": request.style_type,
            "character_reference": request.character_reference,
            "public_url": item.public_url,
            "backend": self.generator.name,
            "estimated_cost_usd": cost,
        }
        return result, item.media_id, cost

    # -- references, media, usage -------------------------------------------------------------

    def add_reference_image(self, image_base64: str, mime_type: str) -> dict[str, Any]:
        """Store a character reference (a picture of the persona) and return its media id."""
        if mime_type not in REFERENCE_MIME_TYPES.values():
            raise ImagesError("unsupported_media", f"mime_type must be one of {sorted(REFERENCE_MIME_TYPES.values())}")
        # Refuse an oversized upload before decoding it (base64 is 4 characters per 3 bytes).
        if len(image_base64) > (MAX_REFERENCE_BYTES + 2) // 3 * 4 + 4:
            raise ImagesError("image_too_large", "a reference image may be at most 10 MB")
        try:
            data = base64.b64decode("".join(image_base64.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ImagesError("invalid_image", f"image_base64 is not valid base64: {exc}") from exc
        if not data:
            raise ImagesError("invalid_image", "image_base64 is empty")
        if len(data) > MAX_REFERENCE_BYTES:
            raise ImagesError("image_too_large", f"a reference image may be at most 10 MB; got {len(data)} bytes")
        actual, width, height = inspect_image(data)
        if actual != mime_type:
            raise ImagesError("invalid_image", f"mime_type says {mime_type} but the data is {actual}")
        existed = self.store.find(f"media-{hashlib.sha256(data).hexdigest()[:32]}") is not None
        item = self.store.put(data, mime_type, width=width, height=height, details={"kind": "character_reference"})
        return _media_info(item, duplicate=existed)

    def default_reference(self) -> dict[str, Any]:
        """The demo persona's portrait, rendered locally on first use (never billed, never sent anywhere
        unless a generate call names it)."""
        data = render_portrait(self.ledger.account)
        existed = self.store.find(f"media-{hashlib.sha256(data).hexdigest()[:32]}") is not None
        _, width, height = inspect_image(data)
        item = self.store.put(
            data,
            "image/png",
            width=width,
            height=height,
            details={"kind": "character_reference", "default_for": self.ledger.account},
        )
        return _media_info(item, duplicate=existed)

    def media(self, media_id: str) -> dict[str, Any]:
        return self.store.get(media_id).model_dump()

    def recent(self, limit: int = RECENT_LIMIT) -> list[dict[str, Any]]:
        return self.ledger.recent(limit)

    def usage(self) -> dict[str, Any]:
        return {"backend": self.name, "rendering_speed": self.generator.rendering_speed, **self.ledger.usage()}


def check_speed(speed: str) -> str:
    """The rendering speed, normalised (it prices the estimate on both generators, and is sent to Ideogram)."""
    normalized = speed.strip().upper()
    if normalized not in RENDERING_SPEEDS:
        raise ValueError(f"{RENDERING_SPEED_ENV} must be one of {', '.join(RENDERING_SPEEDS)}; got {speed!r}")
    return normalized
