"""The images backends: the sandbox renderer and its rules, the ledger, and the Ideogram client against a
local Ideogram look-alike."""

from __future__ import annotations

import base64
import io
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from mcp_servers.common import ToolError
from mcp_servers.images.config import backend_from_env
from mcp_servers.images.ideogram import IdeogramGenerator
from mcp_servers.images.ledger import Ledger, Pending, process_owner
from mcp_servers.images.render import dominant_colours, render_png
from mcp_servers.images.sandbox import SandboxGenerator
from mcp_servers.images.service import (
    ASPECT_RATIOS,
    MAX_PROMPT_CHARS,
    GeneratedImage,
    ImageRequest,
    ImagesError,
    ImagesService,
    Reference,
)
from mcp_servers.media import MediaStore
from tests.helpers.fake_ideogram import API_KEY, FakeIdeogram, fake_ideogram

PROMPT = "Mira in a mended linen jacket at a Berlin flea market, golden hour"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _service(
    tmp_path: Path, *, rate_limit: int | None = 20, clock: Clock | None = None, generator: object = None
) -> ImagesService:
    ledger = Ledger(tmp_path, account="mira", rate_limit=rate_limit, rate_window_seconds=60.0, clock=clock or Clock())
    return ImagesService(MediaStore(tmp_path), ledger, generator or SandboxGenerator())  # type: ignore[arg-type]


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 64), fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _code(exc: pytest.ExceptionInfo[ToolError]) -> str:
    return exc.value.code


# -- the sandbox renderer ---------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", ["1x1", "4x5", "9x16", "16x9", "3x1"])
def test_sandbox_stores_a_real_png_at_the_aspect_ratio_size(tmp_path: Path, ratio: str) -> None:
    images = _service(tmp_path)
    result = images.generate_image(PROMPT, f"key-{ratio}", aspect_ratio=ratio)

    item = images.store.get(result["media_id"])
    data = images.store.path(item).read_bytes()
    image = _decode(data)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and image.format == "PNG"
    assert image.size == ASPECT_RATIOS[ratio] == (result["width"], result["height"])
    assert item.mime_type == result["mime_type"] == "image/png" and item.size_bytes == len(data)
    assert item.details["prompt"] == PROMPT and item.details["seed"] == result["seed"]
    assert result["backend"] == "sandbox" and result["public_url"] is None and result["duplicate"] is False
    # Not a flat placeholder: the composition has many colours.
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50


def test_rendering_is_deterministic_and_every_input_matters() -> None:
    reference = _png((200, 30, 30))
    base = render_png(PROMPT, 512, 640, seed=7, reference=reference)
    assert render_png(PROMPT, 512, 640, seed=7, reference=reference) == base
    variants = [
        render_png(PROMPT + "!", 512, 640, seed=7, reference=reference),
        render_png(PROMPT, 512, 640, seed=8, reference=reference),
        render_png(PROMPT, 512, 640, seed=7, reference=_png((30, 30, 200))),
        render_png(PROMPT, 512, 640, seed=7),
        render_png(PROMPT, 512, 640, seed=7, style_type="DESIGN", reference=reference),
    ]
    assert len({base, *variants}) == 6


def test_same_request_gives_the_same_image_in_another_sandbox(tmp_path: Path) -> None:
    one = _service(tmp_path / "a").generate_image(PROMPT, "k", seed=99)
    two = _service(tmp_path / "b").generate_image(PROMPT, "k", seed=99)
    assert one["media_id"] == two["media_id"]
    # Without a seed the sandbox derives one from the key: another key, another image.
    three = _service(tmp_path / "c").generate_image(PROMPT, "other-key")
    assert three["media_id"] != one["media_id"]


def test_the_character_reference_drives_the_figure_and_palette(tmp_path: Path) -> None:
    images = _service(tmp_path)
    red = images.add_reference_image(base64.b64encode(_png((220, 20, 20))).decode(), "image/png")
    blue = images.add_reference_image(base64.b64encode(_png((20, 40, 220))).decode(), "image/png")
    assert dominant_colours(_png((220, 20, 20)))[0] == (220, 20, 20)

    with_red = images.generate_image(PROMPT, "r", character_reference=red["media_id"], seed=5)
    with_blue = images.generate_image(PROMPT, "b", character_reference=blue["media_id"], seed=5)

    assert with_red["media_id"] != with_blue["media_id"]
    assert with_red["character_reference"] == red["media_id"]
    width, height = ASPECT_RATIOS["1x1"]
    face = (width // 2, int(height * 0.38))  # the centre of the figure's head
    assert _decode(images.store.read_bytes(with_red["media_id"])).convert("RGB").getpixel(face) == (220, 20, 20)
    assert _decode(images.store.read_bytes(with_blue["media_id"])).convert("RGB").getpixel(face) == (20, 40, 220)
    # Billed at the character-reference price.
    assert with_red["estimated_cost_usd"] > images.generate_image(PROMPT, "plain")["estimated_cost_usd"]


def test_default_reference_is_rendered_once_and_usable(tmp_path: Path) -> None:
    images = _service(tmp_path)
    first = images.default_reference()
    again = images.default_reference()
    assert first["duplicate"] is False and again == {**first, "duplicate": True}
    assert _decode(images.store.read_bytes(first["media_id"])).size == (first["width"], first["height"])
    result = images.generate_image(PROMPT, "k", character_reference=first["media_id"], style_type="realistic")
    assert result["style_type"] == "REALISTIC" and result["character_reference"] == first["media_id"]


# -- idempotency, billing once, rate limits -----------------------------------------------------------


def test_the_same_key_never_generates_or_bills_twice(tmp_path: Path) -> None:
    images = _service(tmp_path)
    first = images.generate_image(PROMPT, "campaign-1-img-1", aspect_ratio="4x5")
    again = images.generate_image(PROMPT, "campaign-1-img-1", aspect_ratio="4:5")  # the same ratio, spelt otherwise
    assert again == {**first, "duplicate": True}
    usage = images.usage()
    assert usage["images_generated"] == 1 and usage["used_in_window"] == 1
    assert usage["estimated_cost_usd"] == first["estimated_cost_usd"]
    assert len(list(images.store.root.glob("*.png"))) == 1
    recent = images.recent()
    assert [r["media_id"] for r in recent] == [first["media_id"]]
    assert recent[0]["idempotency_key"] == "campaign-1-img-1" and "duplicate" not in recent[0]

    with pytest.raises(ToolError) as err:
        images.generate_image(PROMPT + " at dusk", "campaign-1-img-1")
    assert _code(err) == "idempotency_conflict"


def test_rate_limit_is_a_sliding_window_with_retry_after(tmp_path: Path) -> None:
    clock = Clock()
    images = _service(tmp_path, rate_limit=2, clock=clock)
    images.generate_image("one", "k1")
    clock.now += 20
    images.generate_image("two", "k2")
    clock.now += 10
    with pytest.raises(ToolError) as err:
        images.generate_image("three", "k3")
    assert _code(err) == "rate_limited"
    assert err.value.retry_after_seconds == pytest.approx(30.0)  # when the first image leaves the 60 s window
    # A retry of an earlier key still answers while the account is limited; it is no new generation.
    assert images.generate_image("one", "k1")["duplicate"] is True
    clock.now += 30.5
    assert images.generate_image("three", "k3")["duplicate"] is False
    assert images.usage()["used_in_window"] == 2


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"prompt": "   "}, "empty_prompt"),
        ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt_too_long"),
        ({"aspect_ratio": "7x5"}, "invalid_aspect_ratio"),
        ({"style_type": "ANIME"}, "invalid_style"),
        ({"seed": -1}, "invalid_seed"),
        ({"seed": 2**31}, "invalid_seed"),
        ({"idempotency_key": " "}, "invalid_idempotency_key"),
        ({"idempotency_key": "k" * 201}, "invalid_idempotency_key"),
        ({"prompt": "a NSFW shot of the model"}, "unsafe_prompt"),
        ({"prompt": "gore everywhere"}, "unsafe_prompt"),
        ({"character_reference": "media-" + "0" * 32}, "media_not_found"),
        ({"character_reference": "not-a-media-id"}, "media_not_found"),
    ],
)
def test_rule_violations_are_refused_and_cost_nothing(tmp_path: Path, kwargs: dict[str, object], code: str) -> None:
    images = _service(tmp_path, rate_limit=1)
    args: dict[str, object] = {"prompt": PROMPT, "idempotency_key": "k", **kwargs}
    with pytest.raises(ToolError) as err:
        images.generate_image(**args)  # type: ignore[arg-type]
    assert _code(err) == code and err.value.retry_after_seconds is None
    assert images.usage()["used_in_window"] == 0 and images.usage()["images_generated"] == 0
    # The refused key is not burnt, and the one-image quota is untouched.
    assert images.generate_image(PROMPT, "k")["duplicate"] is False


def test_a_character_reference_allows_only_character_styles(tmp_path: Path) -> None:
    images = _service(tmp_path)
    reference = images.default_reference()["media_id"]
    for style in ("GENERAL", "DESIGN"):
        with pytest.raises(ToolError) as err:
            images.generate_image(PROMPT, f"k-{style}", character_reference=reference, style_type=style)
        assert _code(err) == "invalid_style"
    assert images.generate_image(PROMPT, "k-fiction", character_reference=reference, style_type="FICTION")


def test_a_failed_generation_releases_its_key(tmp_path: Path) -> None:
    class Flaky(SandboxGenerator):
        calls = 0

        def generate(self, request: ImageRequest, reference: Reference | None) -> GeneratedImage:
            self.calls += 1
            if self.calls == 1:
                raise ImagesError("upstream_error", "boom")
            return super().generate(request, reference)

    images = _service(tmp_path, generator=Flaky())
    with pytest.raises(ToolError):
        images.generate_image(PROMPT, "k")
    assert images.generate_image(PROMPT, "k")["duplicate"] is False


def test_ledger_reservation_is_exclusive_until_stale(tmp_path: Path) -> None:
    clock = Clock()
    ledger = Ledger(tmp_path, account="mira", rate_limit=None, rate_window_seconds=60, clock=clock)
    assert ledger.reserve("k", "fp", lambda: None) is None
    held = ledger.reserve("k", "fp", lambda: None)
    assert isinstance(held, Pending) and held.reserved_at == clock.now
    clock.now += ledger.stale_after_seconds + 1
    assert ledger.reserve("k", "fp", lambda: None) is None  # the first holder died; taken over
    ledger.complete("k", {"media_id": "m"}, media_id="m", cost_usd=0.06)
    assert ledger.reserve("k", "fp", lambda: None) == {"media_id": "m"}

    # A reservation whose process has exited (a host timeout ends the stdio child) is taken over at once.
    assert ledger.reserve("k2", "fp", lambda: None) is None
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with sqlite3.connect(ledger.path) as conn:
        owner = conn.execute("SELECT owner FROM generations WHERE idempotency_key = 'k2'").fetchone()[0]
        assert owner == process_owner()
        conn.execute(
            "UPDATE generations SET owner = ? WHERE idempotency_key = 'k2'",
            (f"{owner.rpartition(':')[0]}:{dead.stdout.strip()}",),
        )
    assert ledger.reserve("k2", "fp", lambda: None) is None
    assert ledger.usage()["rate_limit"] is None and ledger.usage()["used_in_window"] is None


# -- reference uploads ---------------------------------------------------------------------------------


def test_add_reference_image_validates_type_and_size(tmp_path: Path) -> None:
    images = _service(tmp_path)
    jpeg = _png((10, 120, 60), size=(300, 400), fmt="JPEG")
    stored = images.add_reference_image(base64.b64encode(jpeg).decode(), "image/jpeg")
    assert stored["mime_type"] == "image/jpeg" and (stored["width"], stored["height"]) == (300, 400)
    assert stored["duplicate"] is False
    assert images.add_reference_image(base64.b64encode(jpeg).decode(), "image/jpeg")["duplicate"] is True
    assert images.store.read_bytes(stored["media_id"]) == jpeg

    cases = [
        (base64.b64encode(jpeg).decode(), "image/png", "invalid_image"),  # declared type does not match
        ("not base64!!", "image/png", "invalid_image"),
        (base64.b64encode(b"hello, not an image").decode(), "image/png", "invalid_image"),
        (base64.b64encode(_png((1, 2, 3))[:40]).decode(), "image/png", "invalid_image"),  # truncated
        (base64.b64encode(_png((1, 2, 3), fmt="GIF")).decode(), "image/gif", "unsupported_media"),
        ("A" * (14 * 1024 * 1024), "image/png", "image_too_large"),
    ]
    for data, mime, code in cases:
        with pytest.raises(ToolError) as err:
            images.add_reference_image(data, mime)
        assert _code(err) == code, (mime, code, err.value.message)


# -- configuration ---------------------------------------------------------------------------------------


def test_backend_from_env(tmp_path: Path) -> None:
    sandbox = backend_from_env({"CHIMERA_SANDBOX_DIR": str(tmp_path), "CHIMERA_IMAGES_RATE_LIMIT": "3"})
    assert sandbox.name == "sandbox" and sandbox.ledger.rate_limit == 3
    assert sandbox.ledger.path == tmp_path / "images.sqlite3" and sandbox.store.root == tmp_path / "media"
    live = backend_from_env(
        {
            "CHIMERA_SANDBOX_DIR": str(tmp_path),
            "CHIMERA_IMAGES_BACKEND": "live",
            "CHIMERA_IDEOGRAM_API_KEY": API_KEY,
            "CHIMERA_IDEOGRAM_BASE_URL": "http://127.0.0.1:9/",
            "CHIMERA_IDEOGRAM_RENDERING_SPEED": "turbo",
        }
    )
    assert isinstance(live.generator, IdeogramGenerator) and live.generator.base_url == "http://127.0.0.1:9"
    assert live.ledger.rate_limit is None and live.generator.rendering_speed == "TURBO"
    assert API_KEY not in repr(live) and API_KEY not in repr(live.generator)
    with pytest.raises(ValueError, match="CHIMERA_IDEOGRAM_API_KEY"):
        backend_from_env({"CHIMERA_SANDBOX_DIR": str(tmp_path), "CHIMERA_IMAGES_BACKEND": "live"})
    with pytest.raises(ValueError, match="sandbox' or 'live"):
        backend_from_env({"CHIMERA_SANDBOX_DIR": str(tmp_path), "CHIMERA_IMAGES_BACKEND": "midjourney"})
    with pytest.raises(ValueError, match="CHIMERA_IDEOGRAM_RENDERING_SPEED"):
        backend_from_env({"CHIMERA_SANDBOX_DIR": str(tmp_path), "CHIMERA_IDEOGRAM_RENDERING_SPEED": "WARP"})


# -- live, against the local Ideogram look-alike -----------------------------------------------------------


@pytest.fixture
def ideogram() -> Iterator[FakeIdeogram]:
    with fake_ideogram() as api:
        yield api


def _live(tmp_path: Path, api: FakeIdeogram, key: str = API_KEY) -> ImagesService:
    generator = IdeogramGenerator(api.base_url + "/", key, rendering_speed="TURBO", timeout_seconds=5.0)
    return _service(tmp_path, rate_limit=None, generator=generator)


def test_live_generate_sends_ideogram_multipart_and_stores_the_download(tmp_path: Path, ideogram: FakeIdeogram) -> None:
    images = _live(tmp_path, ideogram)
    reference = images.default_reference()
    reference_bytes = images.store.read_bytes(reference["media_id"])

    result = images.generate_image(
        PROMPT, "live-1", character_reference=reference["media_id"], aspect_ratio="4x5", seed=4242
    )

    [sent] = ideogram.generations()
    assert sent.path == "/v1/ideogram-v3/generate"
    assert sent.headers["Api-Key"] == API_KEY and sent.headers["Content-Type"].startswith("multipart/form-data")
    fields = {name: parts[0].text for name, parts in sent.parts.items() if parts[0].filename is None}
    assert fields == {
        "prompt": PROMPT,
        "aspect_ratio": "4x5",
        "rendering_speed": "TURBO",
        "style_type": "AUTO",
        "magic_prompt": "OFF",
        "num_images": "1",
        "seed": "4242",
    }
    [ref_part] = sent.parts["character_reference_images"]
    assert ref_part.value == reference_bytes and ref_part.content_type == "image/png"
    assert ref_part.filename == "reference.png"
    # The ephemeral URL was downloaded without the key, and the image kept locally.
    [download] = ideogram.downloads()
    assert "Api-Key" not in download.headers and "api-key" not in download.headers
    assert result["public_url"] == ideogram.base_url + download.path
    item = images.store.get(result["media_id"])
    assert item.public_url == result["public_url"] and item.details["ideogram_resolution"] == "896x1120"
    assert _decode(images.store.read_bytes(result["media_id"])).size == (896, 1120)
    assert (result["width"], result["height"], result["seed"]) == (896, 1120, 4242)
    assert result["backend"] == "ideogram" and result["estimated_cost_usd"] == 0.10  # TURBO, with a reference

    # The same key again: answered from the ledger; Ideogram is not called (nor billed) a second time.
    assert images.generate_image(PROMPT, "live-1", reference["media_id"], "4x5", seed=4242)["duplicate"] is True
    assert len(ideogram.generations()) == 1


def test_live_without_seed_or_reference_reports_ideograms_seed(tmp_path: Path, ideogram: FakeIdeogram) -> None:
    result = _live(tmp_path, ideogram).generate_image("A linen jacket on a hanger", "live-2")
    [sent] = ideogram.generations()
    assert "seed" not in sent.parts and "character_reference_images" not in sent.parts
    assert result["seed"] == 1234567 and (result["width"], result["height"]) == (1024, 1024)


@pytest.mark.parametrize(
    ("mode", "prompt", "code", "retry_after", "needle"),
    [
        ("ok", "a forbidden scene", "unsafe_prompt", None, "Prompt failed the safety check"),
        ("rate-limited", PROMPT, "rate_limited", 30.0, "429"),
        ("bad-request", PROMPT, "invalid_request", None, "Invalid input provided"),
        ("unsafe-image", PROMPT, "unsafe_image", None, "safety"),
        ("not-an-image", PROMPT, "invalid_image", None, "not a readable image"),
    ],
)
def test_live_errors_map_to_codes_and_release_the_key(
    tmp_path: Path,
    ideogram: FakeIdeogram,
    mode: str,
    prompt: str,
    code: str,
    retry_after: float | None,
    needle: str,
) -> None:
    ideogram.mode = mode
    images = _live(tmp_path, ideogram)
    with pytest.raises(ToolError) as err:
        images.generate_image(prompt, "live-err")
    assert _code(err) == code and err.value.retry_after_seconds == retry_after
    assert needle in err.value.message and API_KEY not in err.value.message
    assert images.usage()["images_generated"] == 0
    # The key was released: once the service recovers, the same key generates.
    ideogram.mode = "ok"
    if "forbidden" not in prompt:
        assert images.generate_image(prompt, "live-err")["duplicate"] is False


def test_live_wrong_key_is_unauthorized(tmp_path: Path, ideogram: FakeIdeogram) -> None:
    with pytest.raises(ToolError) as err:
        _live(tmp_path, ideogram, key="wrong-key").generate_image(PROMPT, "k")
    assert _code(err) == "unauthorized" and "401" in err.value.message
    assert "wrong-key" not in err.value.message
    assert ideogram.generations()[0].headers["Api-Key"] == "wrong-key"


def test_live_unreachable_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    generator = IdeogramGenerator(f"http://127.0.0.1:{port}", API_KEY, timeout_seconds=2.0)
    with pytest.raises(ToolError) as err:
        _service(tmp_path, rate_limit=None, generator=generator).generate_image(PROMPT, "k")
    assert _code(err) == "unavailable" and API_KEY not in err.value.message
