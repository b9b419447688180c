"""The sandbox generator: a real PNG rendered locally with Pillow, with Ideogram's safety refusal stood in for."""

from __future__ import annotations

import hashlib
import re

from mcp_servers.images.render import render_png
from mcp_servers.images.service import (
    ASPECT_RATIOS,
    MAX_SEED,
    GeneratedImage,
    ImageRequest,
    ImagesError,
    Reference,
    check_speed,
)

# The sandbox's stand-in for Ideogram's safety check: prompts that are plainly out of bounds for any
# brand account. Deliberately small and obvious; the real check is the service's, and the Judge's.
_UNSAFE = re.compile(
    r"\b(nude|nudes|naked|nsfw|porn\w*|explicit sex|sexual(ly)? explicit|gore|gory|behead\w*|decapitat\w*|"
    r"dismember\w*|mutilat\w*|self[- ]harm|suicide|child abuse|swastika|terrorist attack)\b",
    re.IGNORECASE,
)


class SandboxGenerator:
    """Renders locally with Pillow; refuses obviously unsafe prompts as Ideogram's safety check would."""

    name = "sandbox"

    def __init__(self, rendering_speed: str = "DEFAULT") -> None:
        self.rendering_speed = check_speed(rendering_speed)

    def __repr__(self) -> str:
        return "SandboxGenerator()"

    def precheck(self, request: ImageRequest) -> None:
        match = _UNSAFE.search(request.prompt)
        if match:
            raise ImagesError("unsafe_prompt", f"Prompt failed the safety check (matched {match.group(0)!r})")

    def generate(self, request: ImageRequest, reference: Reference | None) -> GeneratedImage:
        # Without a seed, the real service picks one at random; the sandbox derives it from the key, so a
        # fresh key gives a fresh image and the same key (which never regenerates anyway) the same one.
        seed = request.seed
        if seed is None:
            seed = int.from_bytes(hashlib.sha256(request.idempotency_key.encode()).digest()[:4], "big") % (MAX_SEED + 1)
        width, height = ASPECT_RATIOS[request.aspect_ratio]
        data = render_png(
            request.prompt,
            width,
            height,
            seed=seed,
            style_type=request.style_type,
            reference=reference.data if reference else None,
        )
        return GeneratedImage(data, "image/png", width, height, seed)
