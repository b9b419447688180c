"""Each platform's publishing rules, shared by the sandbox and the live backends.

The live backends check them too, before calling the platform: a refusal then costs no API call and reads
the same as in the sandbox. The platforms' own checks still apply (X weighs URLs and some scripts
differently; Graph re-validates images), and their refusals are mapped onto the same codes where they can be.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from dataclasses import dataclass

from mcp_servers.common import ToolError
from mcp_servers.media import MediaItem, MediaStore

MAX_IDEMPOTENCY_KEY_CHARS = 200
# One metrics request reads at most this many posts (X's GET /2/tweets takes 100 ids).
MAX_METRICS_IDS = 100
MAX_POST_ID_CHARS = 200

# Instagram's documented limits for a single-image feed post (content publishing) and for captions.
IG_MAX_CAPTION_CHARS = 2200
IG_MAX_HASHTAGS = 30
IG_MAX_IMAGE_BYTES = 8 * 1024 * 1024
IG_MIN_WIDTH = 320
IG_MAX_WIDTH = 1440
IG_MIN_ASPECT = 4 / 5
IG_MAX_ASPECT = 1.91
IG_IMAGE_TYPES = ("image/jpeg", "image/png")
TWEET_MAX_CHARS = 280

# A hashtag starts a word: "#tag" counts, "a#b" and "&#39;" do not.
_HASHTAG = re.compile(r"(?<![\w&])#\w+")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless...); C4, C8 and CC are other segments.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class InvalidRequest(ToolError):
    """The request breaks a platform rule (empty or too-long text, bad idempotency key, unusable media)."""


@dataclass(frozen=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int


def check_key(idempotency_key: str) -> None:
    if not idempotency_key.strip():
        raise InvalidRequest("invalid_idempotency_key", "idempotency_key must not be empty")
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidRequest(
            "invalid_idempotency_key", f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )


def check_post_ids(post_ids: object) -> list[str]:
    """The post ids of a metrics request, duplicates dropped (first one kept); 1 to 100 non-empty strings."""
    if isinstance(post_ids, str) or not isinstance(post_ids, list | tuple):
        raise InvalidRequest("invalid_request", "post_ids must be a list of post ids")
    if not 1 <= len(post_ids) <= MAX_METRICS_IDS:
        raise InvalidRequest(
            "invalid_request", f"post_ids must hold 1 to {MAX_METRICS_IDS} post ids; got {len(post_ids)}"
        )
    for post_id in post_ids:
        if not isinstance(post_id, str) or not post_id.strip() or len(post_id) > MAX_POST_ID_CHARS:
            raise InvalidRequest(
                "invalid_request",
                f"each post id is a non-empty string of at most {MAX_POST_ID_CHARS} characters; "
                f"got {str(post_id)[:40]!r}",
            )
    return list(dict.fromkeys(post_ids))


def count_hashtags(text: str) -> int:
    """Hashtags as Instagram counts them: a `#word` that starts a word ("a#b" and "&#39;" are none)."""
    return len(_HASHTAG.findall(text))


def check_text(platform: str, text: str, limit: int) -> str:
    """NFC-normalized text within `limit` characters (and, on Instagram, at most 30 hashtags)."""
    # NFC so a composed and a decomposed "é" count the same; the real platforms weigh some characters
    # and URLs differently, which this check deliberately ignores.
    normalized = unicodedata.normalize("NFC", text)
    if not normalized.strip():
        raise InvalidRequest("empty_text", "text must not be empty")
    if len(normalized) > limit:
        raise InvalidRequest("text_too_long", f"{platform} allows at most {limit} characters; got {len(normalized)}")
    if platform == "instagram":
        hashtags = count_hashtags(normalized)
        if hashtags > IG_MAX_HASHTAGS:
            raise InvalidRequest(
                "too_many_hashtags", f"instagram allows at most {IG_MAX_HASHTAGS} hashtags; got {hashtags}"
            )
    return normalized


def image_info(data: bytes) -> ImageInfo | None:
    """Type and pixel size read from the file's own header (not from metadata); None if neither PNG nor JPEG."""
    if data.startswith(_PNG_SIGNATURE):
        # The first chunk must be IHDR: length, type, then width and height as big-endian uint32.
        if len(data) < 24 or data[12:16] != b"IHDR":
            return None
        width, height = struct.unpack(">II", data[16:24])
        return ImageInfo("image/png", width, height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_info(data)
    return None


def _jpeg_info(data: bytes) -> ImageInfo | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return ImageInfo("image/jpeg", width, height)
        if marker == 0xD9 or length < 2:  # end of image before any frame, or a corrupt length
            return None
        pos += 2 + length
    return None


def check_instagram_image(store: MediaStore, media_id: str) -> MediaItem:
    """The media item, if it is an image Instagram accepts for a feed post; otherwise a ToolError saying why."""
    item = store.get(media_id)  # media_not_found
    path = store.path(item)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ToolError("media_not_found", f"media item {media_id!r} has no image file: {exc.strerror}") from exc
    problem = instagram_image_problem(media_id, data)
    if problem is not None:
        raise problem
    return item


def instagram_image_problem(media_id: str, data: bytes) -> InvalidRequest | None:
    """Why Instagram would refuse these bytes as a feed post's image (size, type, width, aspect ratio), read from
    the file's own header as the platform reads it; None when it would accept them. The publish tool raises it;
    the Judge's vision check (chimera/safety/vision) flags it before anything is published."""
    size = len(data)
    if size > IG_MAX_IMAGE_BYTES:
        return InvalidRequest(
            "media_too_large", f"instagram images are at most {IG_MAX_IMAGE_BYTES} bytes (8 MB); {media_id} has {size}"
        )
    info = image_info(data)
    if info is None or info.mime_type not in IG_IMAGE_TYPES:
        return InvalidRequest("media_invalid", f"{media_id} is not a readable JPEG or PNG image")
    if info.width == 0 or info.height == 0:
        return InvalidRequest("media_invalid", f"{media_id} has no pixels ({info.width}x{info.height})")
    if not IG_MIN_WIDTH <= info.width <= IG_MAX_WIDTH:
        return InvalidRequest(
            "media_bad_dimensions",
            f"instagram images are {IG_MIN_WIDTH} to {IG_MAX_WIDTH} px wide; {media_id} is {info.width} px",
        )
    ratio = info.width / info.height
    # The epsilon only absorbs float rounding (1080x1350 is exactly 4:5).
    if not IG_MIN_ASPECT - 1e-9 <= ratio <= IG_MAX_ASPECT + 1e-9:
        return InvalidRequest(
            "media_bad_dimensions",
            f"instagram images have an aspect ratio between 4:5 and 1.91:1; {media_id} is "
            f"{info.width}x{info.height} ({ratio:.3f}:1)",
        )
    return None
