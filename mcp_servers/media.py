"""The local media store: images the `images` server renders, which posts attach by id.

Content-addressed: an item's id is derived from the SHA-256 of its bytes, so storing the same image twice
yields one item, and an id names exactly one byte string forever. Each item is `<id>.<ext>` plus `<id>.json`
(its metadata). Writes go to a temporary file first and are renamed into place, so a reader never sees half
an image, and several server processes may share the directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from mcp_servers.common import ToolError

MEDIA_SUBDIR = "media"
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_ID = re.compile(r"^media-[0-9a-f]{32}$")


class MediaItem(BaseModel):
    media_id: str
    mime_type: str
    size_bytes: int
    sha256: str
    width: int | None = None
    height: int | None = None
    created_at: str
    # A URL the platforms can fetch the image from (live backends need one; the sandbox does not).
    public_url: str | None = None
    # Where it came from: the prompt, the generator, its seed; free-form and informational only.
    details: dict[str, Any] = Field(default_factory=dict)


class MediaNotFound(ToolError):
    def __init__(self, media_id: str) -> None:
        super().__init__("media_not_found", f"no media item {media_id!r} in the media store")


class MediaStore:
    def __init__(self, sandbox_dir: Path) -> None:
        self.root = sandbox_dir / MEDIA_SUBDIR
        self.root.mkdir(parents=True, exist_ok=True)

    def put(
        self,
        data: bytes,
        mime_type: str,
        *,
        width: int | None = None,
        height: int | None = None,
        public_url: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> MediaItem:
        ext = _EXTENSIONS.get(mime_type)
        if ext is None:
            raise ToolError("unsupported_media", f"media type {mime_type!r} is not one of {sorted(_EXTENSIONS)}")
        digest = hashlib.sha256(data).hexdigest()
        media_id = f"media-{digest[:32]}"
        existing = self.find(media_id)
        if existing is not None:
            return existing
        item = MediaItem(
            media_id=media_id,
            mime_type=mime_type,
            size_bytes=len(data),
            sha256=digest,
            width=width,
            height=height,
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            public_url=public_url,
            details=details or {},
        )
        self._write_atomic(self.root / f"{media_id}.{ext}", data)
        # Metadata last: an item exists once its metadata does, and by then its bytes are in place.
        self._write_atomic(self.root / f"{media_id}.json", item.model_dump_json(indent=2).encode())
        return item

    def find(self, media_id: str) -> MediaItem | None:
        if not _ID.match(media_id):
            return None
        meta = self.root / f"{media_id}.json"
        if not meta.exists():
            return None
        return MediaItem.model_validate(json.loads(meta.read_text(encoding="utf-8")))

    def get(self, media_id: str) -> MediaItem:
        item = self.find(media_id)
        if item is None:
            raise MediaNotFound(media_id)
        return item

    def path(self, item: MediaItem) -> Path:
        return self.root / f"{item.media_id}.{_EXTENSIONS[item.mime_type]}"

    def read_bytes(self, media_id: str) -> bytes:
        return self.path(self.get(media_id)).read_bytes()

    def _write_atomic(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
