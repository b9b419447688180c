"""Reading what a post attaches, and the character it should show, from the local media store.

The judge runs in a worker process on the machine that holds the media store (`Settings.sandbox_dir / "media"`,
where the images server writes), so it reads the bytes directly: `MediaStore(settings.sandbox_dir)`.

The character reference, in order:

1. **The persona's reference**, when the caller names one (`persona_reference`, a media id: a picture added with
   the images server's `add_reference_image`, or the images server's default portrait, `ensure_default_reference`).
   The persona's own reference wins: an image generated with another reference, or none, is compared with it.
2. **The reference the image was generated with**: the images service records it in every generated item's
   `details["character_reference"]`, on both backends.
3. Otherwise there is nothing to compare with, and the reasons say the likeness was not checked.

SOUL.md has no field for a reference image yet, so the persona's reference is the caller's to name.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from mcp_servers.media import MediaItem, MediaStore
from schemas.policy import SafetyFlag

ReferenceSource = Literal["persona", "generated_with"]


@dataclass(frozen=True)
class AttachedImage:
    """An attached media item and its bytes, as the store holds them."""

    item: MediaItem
    data: bytes

    @property
    def media_id(self) -> str:
        return self.item.media_id


@dataclass(frozen=True)
class LoadedMedia:
    images: list[AttachedImage]
    flags: list[SafetyFlag]  # high-risk `image-missing` for every attached id the store cannot give back


@dataclass(frozen=True)
class CharacterReference:
    media_id: str
    mime_type: str
    data: bytes
    source: ReferenceSource


@dataclass(frozen=True)
class ReferenceLookup:
    reference: CharacterReference | None
    flags: list[SafetyFlag]
    reason: str


def load_media(store: MediaStore, media_ids: Sequence[str]) -> LoadedMedia:
    """The attached items with their bytes, each id once. An id the store does not have (or whose file is gone)
    is a high-risk flag: the post would go out without the image the judge was meant to see, or not at all."""
    images: list[AttachedImage] = []
    flags: list[SafetyFlag] = []
    for media_id in dict.fromkeys(media_ids):
        found = _read(store, media_id)
        if isinstance(found, str):
            flags.append(SafetyFlag(rule="image-missing", severity="high", where="output", detail=found))
        else:
            images.append(found)
    return LoadedMedia(images, flags)


def _read(store: MediaStore, media_id: str) -> AttachedImage | str:
    try:
        item = store.find(media_id)
        if item is None:
            return f"{media_id!r} is attached but is not in the media store ({store.root})"
        return AttachedImage(item, store.path(item).read_bytes())
    except (OSError, ValueError, KeyError) as exc:  # a missing file, unreadable metadata, an unknown type
        return f"{media_id!r} is attached but the media store cannot give it back: {type(exc).__name__}: {exc}"


def character_reference(store: MediaStore, item: MediaItem, persona_reference: str | None = None) -> ReferenceLookup:
    """The reference `item` is compared with: the persona's, else the one it was generated with, else none.
    A named reference the store does not have is a low-risk flag (the likeness cannot be checked)."""
    generated_with = item.details.get("character_reference")
    source: ReferenceSource
    if persona_reference:
        wanted, source = persona_reference, "persona"
    elif isinstance(generated_with, str) and generated_with:
        wanted, source = generated_with, "generated_with"
    else:
        return ReferenceLookup(None, [], "no character reference: the likeness was not checked")
    named = "the persona's character reference" if source == "persona" else "the reference it was generated with"
    found = _read(store, wanted)
    if isinstance(found, str):
        detail = f"{named} for {item.media_id} cannot be read: {found}"
        flag = SafetyFlag(rule="image-reference-missing", severity="low", where="output", detail=detail)
        return ReferenceLookup(None, [flag], f"likeness not checked: {named} is missing")
    reference = CharacterReference(found.media_id, found.item.mime_type, found.data, source)
    return ReferenceLookup(reference, [], f"compared with {named} ({found.media_id})")


def ensure_default_reference(store: MediaStore, account: str) -> str:
    """The media id of the images server's default character reference for `account` (its
    `images://references/default`: the sandbox portrait, deterministic per account), stored as that server
    stores it if it is not in the store yet. `account` is the images server's CHIMERA_IMAGES_ACCOUNT
    (default "mira")."""
    from mcp_servers.images.render import render_portrait  # here: a worker that never needs it skips its fonts

    data = render_portrait(account)
    media_id = f"media-{hashlib.sha256(data).hexdigest()[:32]}"  # the store's content address
    if store.find(media_id) is None:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
        details = {"kind": "character_reference", "default_for": account}
        store.put(data, "image/png", width=width, height=height, details=details)
    return media_id
