"""Image files for tests, built byte by byte with zlib + struct (not with Pillow), so each test knows exactly
what the file holds: a valid PNG, or only the header of a JPEG (which the social servers' header reader accepts
and a decoder would not)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from mcp_servers.media import MediaItem, MediaStore


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(width: int, height: int, rgb: tuple[int, int, int] = (200, 120, 80)) -> bytes:
    """A valid 8-bit RGB PNG of one colour (each row: filter byte 0, then the pixels)."""
    row = b"\x00" + bytes(rgb) * width
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(row * height, 9))
        + _chunk(b"IEND", b"")
    )


def jpeg_header_bytes(width: int, height: int) -> bytes:
    """The start of a baseline JPEG (SOI, a JFIF APP0, SOF0 with the size) and EOI: enough for a header reader."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x01\x03\x11\x01"
    return (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", len(app0) + 2)
        + app0
        + b"\xff\xc0"
        + struct.pack(">H", len(sof0) + 2)
        + sof0
        + b"\xff\xd9"
    )


def put_png(
    sandbox_dir: Path, width: int = 1080, height: int = 1080, *, public_url: str | None = None, seed: int = 0
) -> MediaItem:
    """A PNG in the media store the social servers read (`<sandbox_dir>/media`); `seed` varies its bytes (and id)."""
    data = png_bytes(width, height, rgb=(200, 120, (80 + seed) % 256))
    return MediaStore(sandbox_dir).put(data, "image/png", width=width, height=height, public_url=public_url)
