"""The vision check's offline half: what can be computed from an image's bytes without any model.

- **Readable**: the first bytes name an image format (magic bytes), and Pillow decodes the whole file (a
  truncated or corrupt file fails here, not on the platform). Not readable is high-risk.
- **Format**: JPEG, PNG or WebP (what the media store holds); the item's `mime_type` and `sha256` agree with the
  bytes (a mismatch means the record and the file say different things: high); its recorded width and height
  agree with the decoded ones (low).
- **Platform rules**: Instagram's size, type, width and aspect-ratio limits, read from the file's header exactly
  as the publish tool reads them (`mcp_servers.social.rules.instagram_image_problem`): high, since the platform
  would refuse the post. On X, which Chimera publishes as text only, an attached image would be dropped: low.
- **Character**: how far the image's colours are from the character reference's (`character_distance`, CIELAB
  ΔE). Above `OFF_CHARACTER_DISTANCE` it is low-risk `image-off-character`: a human looks.

The character distance is a colour signature, not face recognition. The sandbox renderer draws the persona in the
reference's dominant colours (mcp_servers/images/render.py), and on its images the signature separates images
rendered with the reference from images rendered without it or with another persona's reference by a wide margin
(benchmarks/vision_check.py). Perceptual hashes of the whole image (pHash, dHash) do not: a post is a scene with
the character in it, not a copy of the reference, and the benchmark prints their distances too. On photographs
the signature is a weak signal; the vision model (chimera/safety/vision/review.py) judges the likeness.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from mcp_servers.media import MediaItem
from mcp_servers.social.rules import instagram_image_problem
from schemas.policy import SafetyFlag, Severity

# Calibrated on the sandbox renderer (benchmarks/vision_check.py): images rendered with the reference are at most
# 0.6 from it (PNG or JPEG), images rendered without it or with another persona's reference at least 5.0.
OFF_CHARACTER_DISTANCE = 2.5
REFERENCE_COLOURS = 4  # the reference's dominant colours (median cut, as the renderer reads them)
MATCHED_COLOURS = 2  # the best-matched of them count: a post need not show the reference's background, nor all of it
COVERAGE_PERCENT = 2.0  # a colour is "in" the image at the distance within which it covers 2% of it
THUMBNAIL_PX = 128  # colours are compared on thumbnails: the signature does not need detail
# Refused before decoding: far beyond any platform's image (Instagram's largest is 1440 x 1800 px), and a
# decompression bomb would exhaust the judge's memory first.
MAX_PIXELS = 50_000_000

# Formats by their first bytes, for a readable message about what the file is (Pillow decides what it decodes).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF", "application/pdf"),
)
_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"mif1": "image/heif", b"avif": "image/avif"}
# What Pillow calls the formats, as MIME types; the media store holds the first three (mcp_servers/media.py).
_PILLOW_MIME = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
STORE_TYPES = ("image/png", "image/jpeg", "image/webp")
# Platforms Chimera publishes text-only to (the twitter servers refuse media: "media_not_supported").
TEXT_ONLY_PLATFORMS = ("twitter",)


@dataclass(frozen=True)
class ImageFindings:
    """What the offline checks found in one image."""

    flags: list[SafetyFlag]
    reasons: list[str]  # short notes for the verdict's reasons (what it is, how far from the reference)
    decoded: bool  # Pillow decoded every byte: the image can be shown to a model
    mime_type: str | None = None  # what the bytes are, as decoded (None when unreadable)
    width: int | None = None
    height: int | None = None
    character_distance: float | None = None  # None: no reference, or nothing to compare


def sniff(data: bytes) -> str | None:
    """The MIME type the first bytes announce, or None when they announce no image format known here."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[data[8:12]]
    head = data[:512].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head:
        return "image/svg+xml"
    return None


def _flag(rule: str, severity: Severity, detail: str) -> SafetyFlag:
    return SafetyFlag(rule=rule, severity=severity, where="output", detail=detail)


class ImageChecks:
    """The offline checks of one image: bytes, metadata, the platform's rules, and the character reference."""

    def __init__(self, off_character_distance: float = OFF_CHARACTER_DISTANCE) -> None:
        self.off_character_distance = off_character_distance

    def check(
        self,
        data: bytes,
        item: MediaItem | None,
        platform: str,
        reference: bytes | None = None,
        *,
        label: str | None = None,
    ) -> ImageFindings:
        """Flags for `data` (the media item `item`, when known) attached to a post on `platform`, compared with
        the character `reference` when one is given. `label` names the image in the flags (default: its id)."""
        name = label or (item.media_id if item is not None else "the image")
        flags = _integrity(name, data, item)
        decoded = _decode(data)
        if isinstance(decoded, str):
            flags.append(_flag("image-unreadable", "high", f"{name} {decoded}"))
            return ImageFindings(flags, ["unreadable"], decoded=False)
        mime, width, height, rgb = decoded
        flags += _format_flags(name, mime, width, height, item)
        flags += platform_flags(name, data, platform)
        reasons = [f"{mime.removeprefix('image/').upper()} {width}x{height}, {len(data):,} bytes"]
        distance = None
        if reference is not None:
            distance, found = self._character(name, rgb, reference)
            flags += found
            if distance is not None:
                limit = self.off_character_distance
                reasons.append(f"colour distance {distance:.1f} to the character reference (off above {limit:g})")
        return ImageFindings(flags, reasons, True, mime, width, height, distance)

    def _character(self, name: str, rgb: Image.Image, reference: bytes) -> tuple[float | None, list[SafetyFlag]]:
        try:
            distance = character_distance(rgb, reference)
        except Exception as exc:  # any decoder failure: the reference cannot be compared, which is not a pass
            detail = f"the character reference of {name} cannot be read ({exc}): its likeness was not checked"
            return None, [_flag("image-reference-unreadable", "low", detail)]
        if distance > self.off_character_distance:
            detail = (
                f"{name} is off-character: its colours are {distance:.1f} from the character reference's "
                f"(at most {self.off_character_distance:g} on-character)"
            )
            return distance, [_flag("image-off-character", "low", detail)]
        return distance, []


def _integrity(name: str, data: bytes, item: MediaItem | None) -> list[SafetyFlag]:
    """The bytes are the ones the media store recorded (its ids are content addresses)."""
    if not data:
        return [_flag("image-unreadable", "high", f"{name} is empty (0 bytes)")]
    if item is None:
        return []
    if hashlib.sha256(data).hexdigest() != item.sha256 or len(data) != item.size_bytes:
        detail = (
            f"{name}'s bytes are not the ones the media store recorded (sha256 or size differ): the file changed "
            "after it was stored"
        )
        return [_flag("image-integrity", "high", detail)]
    return []


def _decode(data: bytes) -> tuple[str, int, int, Image.Image] | str:
    """(MIME type, width, height, an RGB thumbnail), after Pillow decoded every byte; else what is wrong."""
    if not data:
        return "has no bytes"
    announced = sniff(data)
    if announced is None:
        return f"is not an image: its first bytes ({data[:8].hex(' ')}) match no image format"
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height, image_format = probe.width, probe.height, probe.format or ""
            if width * height > MAX_PIXELS:
                return f"has {width}x{height} pixels, more than {MAX_PIXELS:,} are not decoded"
            probe.verify()  # structure and checksums (PNG chunk CRCs)
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # every pixel: a truncated file fails here
            rgb = image.convert("RGB")
    except Exception as exc:  # Pillow raises many types on corrupt data; any of them means unreadable
        return f"cannot be decoded as {announced}: {type(exc).__name__}: {exc}"
    rgb.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    mime = _PILLOW_MIME.get(image_format, f"image/{image_format.lower() or 'unknown'}")
    return mime, width, height, rgb


def _format_flags(name: str, mime: str, width: int, height: int, item: MediaItem | None) -> list[SafetyFlag]:
    flags = []
    if mime not in STORE_TYPES:
        detail = f"{name} is {mime}; posts attach JPEG, PNG or WebP images"
        flags.append(_flag("image-format-unsupported", "high", detail))
    if item is None:
        return flags
    if item.mime_type != mime:
        detail = f"{name} is recorded as {item.mime_type} but its bytes are {mime}"
        flags.append(_flag("image-mime-mismatch", "high", detail))
    recorded = (item.width, item.height)
    if None not in recorded and recorded != (width, height):
        detail = f"{name} is recorded as {item.width}x{item.height} but decodes as {width}x{height}"
        flags.append(_flag("image-metadata-mismatch", "low", detail))
    return flags


def platform_flags(name: str, data: bytes, platform: str) -> list[SafetyFlag]:
    """The platform's own image rules: what its publish tool would refuse, or drop."""
    if platform == "instagram":
        problem = instagram_image_problem(name, data)
        if problem is None:
            return []
        detail = f"instagram would refuse it ({problem.code}): {problem.message}"
        return [_flag("image-platform-rules", "high", detail)]
    if platform in TEXT_ONLY_PLATFORMS:
        detail = f"{platform} is published as text only: {name} would not be posted with the text"
        return [_flag("image-not-published", "low", detail)]
    return []


def character_distance(image: Image.Image | bytes, reference: bytes) -> float:
    """How far an image's colours are from the character reference's, in CIELAB ΔE76 (0: the reference's colours
    are there as they are). For each of the reference's `REFERENCE_COLOURS` dominant colours: the distance within
    which it covers `COVERAGE_PERCENT` of the image's pixels; the mean of the `MATCHED_COLOURS` smallest."""
    if isinstance(image, bytes):
        with Image.open(io.BytesIO(image)) as opened:
            image = opened.convert("RGB")
    thumb = image.convert("RGB")
    thumb.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    pixels = _lab(np.asarray(thumb, dtype=np.float64).reshape(-1, 3))
    colours = _reference_colours(reference)
    distances = np.linalg.norm(pixels[None, :, :] - colours[:, None, :], axis=2)  # (colours, pixels)
    per_colour = np.sort(np.percentile(distances, COVERAGE_PERCENT, axis=1))
    return round(float(per_colour[:MATCHED_COLOURS].mean()), 2)


@lru_cache(maxsize=32)
def _reference_colours(reference: bytes) -> NDArray[np.float64]:
    """The reference's dominant colours in CIELAB (cached: a persona's reference is compared again and again)."""
    from mcp_servers.images.render import dominant_colours  # here: loaded with the first reference

    return _lab(np.array(dominant_colours(reference, REFERENCE_COLOURS), dtype=np.float64))


def _lab(rgb: NDArray[np.float64]) -> NDArray[np.float64]:
    """sRGB (0-255, D65) to CIELAB."""
    c = rgb / 255.0
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    lightness = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    result: NDArray[np.float64] = np.stack([lightness, a, b], axis=-1)
    return result
