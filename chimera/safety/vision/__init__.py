"""The Judge's vision check of the images a draft attaches (issue 11, item 5; specs/judge.md, "Vision check").

- `offline`: what the bytes show without a model: readable, the right format, the platform's rules, the
  character's colours against the reference (`ImageChecks`).
- `review`: the vision tier's structured review: the character against the reference, text in the image,
  unsafe content (`VisionReviewer`).
- `media`: the attached items and the character reference, read from the local media store.
- `check`: both together for a judge input (`VisionCheck`, `VisionReport`).
"""

from chimera.safety.vision.check import IMAGE_POSTS, VisionCheck, VisionReport
from chimera.safety.vision.media import (
    AttachedImage,
    CharacterReference,
    LoadedMedia,
    ReferenceLookup,
    character_reference,
    ensure_default_reference,
    load_media,
)
from chimera.safety.vision.offline import OFF_CHARACTER_DISTANCE, ImageChecks, ImageFindings, character_distance
from chimera.safety.vision.review import VisionAnswer, VisionReviewer

__all__ = [
    "IMAGE_POSTS",
    "OFF_CHARACTER_DISTANCE",
    "AttachedImage",
    "CharacterReference",
    "ImageChecks",
    "ImageFindings",
    "LoadedMedia",
    "ReferenceLookup",
    "VisionAnswer",
    "VisionCheck",
    "VisionReport",
    "VisionReviewer",
    "character_distance",
    "character_reference",
    "ensure_default_reference",
    "load_media",
]
