"""The vision check (chimera/safety/vision): offline checks of an attached image's bytes, metadata, the platform's
rules and its likeness to the character reference, and the vision model's review, scripted and through the real
anthropic and google-genai SDKs against the loopback fakes (tests/helpers/fake_llm.py)."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from chimera.models.base import Answered, Ask, ModelError, Planned, Shape, ToolRunner, Written
from chimera.models.chat import ModelCallError
from chimera.models.llm import LlmModelProvider
from chimera.models.offline import OfflineModelProvider
from chimera.safety.rules import SafetyRules
from chimera.safety.vision import (
    OFF_CHARACTER_DISTANCE,
    ImageChecks,
    VisionCheck,
    VisionReport,
    character_distance,
    ensure_default_reference,
)
from chimera.safety.vision.review import MODEL_MAX_EDGE, for_model
from mcp_servers.images.ledger import Ledger
from mcp_servers.images.render import render_png, render_portrait
from mcp_servers.images.sandbox import SandboxGenerator
from mcp_servers.images.service import ImagesService
from mcp_servers.media import MediaItem, MediaStore
from schemas.models import Authorship
from schemas.plan import PlannedTask, Usage
from schemas.task import JudgeInput, PlanRequest, TaskRef, TaskResult, WriteRequest
from tests.helpers.fake_llm import FakeAnthropic, FakeGemini, anthropic_json, fake_anthropic, fake_gemini, gemini_json
from tests.helpers.live_models import live_provider
from tests.helpers.personas import MIRA

PROMPT = "Mira Solis, a bowl of carrot-top soup in autumn light. Photo for Instagram, no text."
CAPTION = "Carrot tops are not trash, friends. What are you simmering tonight? #ZeroWasteKitchen"
CLEAN_ANSWER: dict[str, Any] = {
    "character": {"verdict": "consistent", "severity": "low", "reason": "same hair, same jacket"},
    "text": [],
    "unsafe": [],
}


# --- fixtures: the real sandbox images service on a temporary media store ----------------------------------------


class Images:
    """The images service as the worker's MCP server runs it, with the persona's default reference."""

    def __init__(self, root: Path) -> None:
        self.store = MediaStore(root)
        ledger = Ledger(root, account="mira", rate_limit=None, rate_window_seconds=60.0)
        self.service = ImagesService(self.store, ledger, SandboxGenerator())
        self.reference = str(self.service.default_reference()["media_id"])

    def generate(self, key: str, reference: str | None = None, ratio: str = "4x5") -> MediaItem:
        made = self.service.generate_image(PROMPT, key, reference, ratio, "AUTO", seed=7)
        return self.store.get(str(made["media_id"]))

    def other_reference(self, name: str = "leo") -> str:
        encoded = base64.b64encode(render_portrait(name)).decode()
        return str(self.service.add_reference_image(encoded, "image/png")["media_id"])


@pytest.fixture
def images(tmp_path: Path) -> Images:
    return Images(tmp_path)


def rules_of(report: VisionReport) -> dict[str, str]:
    return {f.rule: f.severity for f in report.flags}


async def check(
    images: Images, media_ids: list[str], platform: str = "instagram", model: Any = None, **kw: Any
) -> VisionReport:
    vision = VisionCheck(images.store, model, SafetyRules.default(), require_model=kw.pop("require_model", False))
    return await vision.check(
        key="t-1/vision", persona=MIRA, platform=platform, media_ids=media_ids, caption=CAPTION, **kw
    )


def png(size: tuple[int, int], colour: tuple[int, int, int] = (200, 120, 90), fmt: str = "PNG", **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt, **save)
    return out.getvalue()


# --- offline: a valid image passes; the reference decides the likeness ------------------------------------------


async def test_a_post_image_rendered_with_the_persona_reference_passes(images: Images) -> None:
    item = images.generate("k-with", images.reference)
    report = await check(images, [item.media_id], persona_reference=images.reference)
    assert report.flags == []
    (line,) = report.reasons
    assert line.startswith(f"vision {item.media_id}: PNG 896x1120")
    assert f"compared with the persona's character reference ({images.reference})" in line
    assert "no vision model is configured, the offline checks decided alone" in line
    assert report.model_reviewed is False and report.calls == [] and report.retry is None


async def test_without_a_persona_reference_the_image_is_compared_with_the_one_it_was_generated_with(
    images: Images,
) -> None:
    item = images.generate("k-with", images.reference)
    assert item.details["character_reference"] == images.reference  # recorded by the images service
    report = await check(images, [item.media_id])
    assert report.flags == []
    assert "compared with the reference it was generated with" in report.reasons[0]


async def test_an_image_of_another_character_is_flagged_off_character(images: Images) -> None:
    without = images.generate("k-none")
    other = images.generate("k-other", images.other_reference("leo"))
    report = await check(images, [without.media_id, other.media_id], persona_reference=images.reference)
    off = [f for f in report.flags if f.rule == "image-off-character"]
    assert [f.severity for f in off] == ["low", "low"]
    assert {without.media_id, other.media_id} == {f.detail.split(" ")[0] for f in off}
    # The image generated with another reference is compared with it when the persona names none: it passes;
    # naming the persona's reference is what catches it.
    assert (await check(images, [other.media_id])).flags == []


async def test_no_reference_at_all_is_said_not_passed_as_a_likeness(images: Images) -> None:
    item = images.generate("k-none")
    report = await check(images, [item.media_id])
    assert report.flags == []
    assert "no character reference: the likeness was not checked" in report.reasons[0]


def test_the_character_distance_separates_with_from_without_the_reference() -> None:
    reference = render_portrait("mira")
    with_ref = render_png(PROMPT, 896, 1120, seed=3, style_type="REALISTIC", reference=reference)
    other = render_png(PROMPT, 896, 1120, seed=3, style_type="REALISTIC", reference=render_portrait("ana"))
    plain = render_png(PROMPT, 896, 1120, seed=3, style_type="REALISTIC")
    assert character_distance(with_ref, reference) <= 1.0 < OFF_CHARACTER_DISTANCE
    assert character_distance(other, reference) > 2 * OFF_CHARACTER_DISTANCE
    assert character_distance(plain, reference) > 2 * OFF_CHARACTER_DISTANCE
    # A JPEG round trip (a generator that re-encodes) keeps an on-character image on-character.
    decoded = Image.open(io.BytesIO(with_ref)).convert("RGB")
    out = io.BytesIO()
    decoded.save(out, format="JPEG", quality=80)
    assert character_distance(out.getvalue(), reference) < OFF_CHARACTER_DISTANCE


async def test_a_named_reference_missing_from_the_store_is_low_risk(images: Images) -> None:
    item = images.generate("k-with", images.reference)
    report = await check(images, [item.media_id], persona_reference="media-" + "f" * 32)
    assert rules_of(report) == {"image-reference-missing": "low"}


def test_the_default_reference_is_the_images_servers(images: Images, tmp_path: Path) -> None:
    assert ensure_default_reference(images.store, "mira") == images.reference
    fresh = MediaStore(tmp_path / "elsewhere")
    media_id = ensure_default_reference(fresh, "mira")
    assert media_id == images.reference
    assert fresh.get(media_id).details == {"kind": "character_reference", "default_for": "mira"}


# --- offline: unreadable, wrong format, the platform's rules -------------------------------------------------------


@pytest.fixture(scope="module")
def post_png() -> bytes:
    return render_png(PROMPT, 896, 1120, seed=5)


def _corrupt_idat(data: bytes) -> bytes:
    """The PNG with bytes flipped inside its first IDAT chunk (its CRC no longer matches)."""
    at = data.index(b"IDAT") + 200
    return data[:at] + bytes(b ^ 0xFF for b in data[at : at + 16]) + data[at + 16 :]


@pytest.mark.parametrize(
    ("name", "mangle", "says"),
    [
        ("truncated", lambda d: d[: len(d) // 2], "cannot be decoded as image/png"),
        ("corrupt", _corrupt_idat, "cannot be decoded as image/png"),
        ("empty", lambda d: b"", "is empty"),
        ("text", lambda d: b"<html>not an image</html>", "match no image format"),
        ("header only", lambda d: d[:40], "cannot be decoded"),
    ],
)
def test_an_unreadable_image_is_high_risk(post_png: bytes, name: str, mangle: Any, says: str) -> None:
    findings = ImageChecks().check(mangle(post_png), None, "instagram", render_portrait("mira"))
    assert findings.decoded is False
    unreadable = [f for f in findings.flags if f.rule == "image-unreadable"]
    assert unreadable and unreadable[0].severity == "high"
    assert says in unreadable[0].detail
    assert findings.character_distance is None  # nothing was compared, so nothing passed


def test_a_truncated_jpeg_is_unreadable() -> None:
    jpeg = png((1080, 1350), fmt="JPEG", quality=90)
    assert ImageChecks().check(jpeg, None, "instagram").flags == []
    (flag,) = ImageChecks().check(jpeg[: len(jpeg) * 2 // 3], None, "instagram").flags
    assert (flag.rule, flag.severity) == ("image-unreadable", "high") and "image/jpeg" in flag.detail


def test_a_valid_post_image_has_no_flag(post_png: bytes) -> None:
    findings = ImageChecks().check(post_png, None, "instagram")
    assert findings.flags == [] and findings.decoded
    assert (findings.mime_type, findings.width, findings.height) == ("image/png", 896, 1120)


def test_a_format_the_posts_do_not_attach_is_high_risk() -> None:
    gif = ImageChecks().check(png((1080, 1080), fmt="GIF"), None, "instagram")
    assert {f.rule: f.severity for f in gif.flags} == {
        "image-format-unsupported": "high",
        "image-platform-rules": "high",
    }
    webp = ImageChecks().check(png((1080, 1080), fmt="WEBP"), None, "instagram")
    (flag,) = webp.flags  # the store holds WebP, Instagram does not take it
    assert flag.rule == "image-platform-rules" and flag.severity == "high" and "(media_invalid)" in flag.detail


async def test_bytes_that_are_not_what_the_store_recorded_are_flagged(images: Images) -> None:
    jpeg_as_png = images.store.put(png((1080, 1080), fmt="JPEG"), "image/png", width=1080, height=1080)
    wrong_size = images.store.put(png((1080, 1350)), "image/png", width=1080, height=1080)
    swapped = images.generate("k-swap")
    images.store.path(swapped).write_bytes(png((1080, 1350)))  # a valid image, but not the one stored
    report = await check(images, [jpeg_as_png.media_id, wrong_size.media_id, swapped.media_id])

    def flags_on(item: MediaItem) -> dict[str, str]:
        return {f.rule: f.severity for f in report.flags if f.detail.startswith(item.media_id)}

    assert flags_on(jpeg_as_png) == {"image-mime-mismatch": "high"}
    assert flags_on(wrong_size) == {"image-metadata-mismatch": "low"}
    assert flags_on(swapped)["image-integrity"] == "high"


@pytest.mark.parametrize(
    ("size", "code"),
    [
        ((200, 250), "media_bad_dimensions"),  # narrower than 320 px
        ((1600, 1600), "media_bad_dimensions"),  # wider than 1440 px
        ((736, 1312), "media_bad_dimensions"),  # 9:16 is taller than 4:5
        ((1200, 600), "media_bad_dimensions"),  # 2:1 is wider than 1.91:1
    ],
)
def test_dimensions_outside_instagrams_rules_are_high_risk(size: tuple[int, int], code: str) -> None:
    (flag,) = ImageChecks().check(png(size), None, "instagram").flags
    assert flag.rule == "image-platform-rules" and flag.severity == "high"
    assert f"instagram would refuse it ({code})" in flag.detail


def test_an_image_over_instagrams_size_limit_is_high_risk() -> None:
    info = PngInfo()
    info.add_text("Comment", "x" * (8 * 1024 * 1024 + 1))  # uncompressed: the file is over 8 MB
    (flag,) = ImageChecks().check(png((1080, 1080), pnginfo=info), None, "instagram").flags
    assert flag.rule == "image-platform-rules" and "(media_too_large)" in flag.detail


@pytest.mark.parametrize("size", [(1080, 1350), (1080, 1080), (1440, 754), (320, 400)])
def test_the_edges_of_instagrams_rules_pass(size: tuple[int, int]) -> None:
    assert ImageChecks().check(png(size), None, "instagram").flags == []


def test_an_image_on_a_text_only_platform_would_be_dropped(post_png: bytes) -> None:
    (flag,) = ImageChecks().check(post_png, None, "twitter").flags
    assert (flag.rule, flag.severity) == ("image-not-published", "low")


def test_a_decompression_bomb_is_not_decoded() -> None:
    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, format="PNG")  # 64 MP of one bit each compresses to a few KB
    (flag,) = ImageChecks().check(out.getvalue(), None, "other").flags
    assert flag.rule == "image-unreadable" and "are not decoded" in flag.detail


# --- reading the media store -------------------------------------------------------------------------------------


async def test_an_attached_id_missing_from_the_store_is_high_risk(images: Images) -> None:
    item = images.generate("k-with", images.reference)
    gone = images.generate("k-gone", images.reference, ratio="1x1")
    images.store.path(gone).unlink()  # metadata left, bytes gone
    missing = "media-" + "0" * 32
    report = await check(images, [item.media_id, missing, "not-a-media-id", gone.media_id, item.media_id])
    flagged = [f for f in report.flags if f.rule == "image-missing"]
    assert [f.severity for f in flagged] == ["high", "high", "high"]
    assert [f.detail.split(" ")[0].strip("'") for f in flagged] == [missing, "not-a-media-id", gone.media_id]
    assert sum(r.startswith(f"vision {item.media_id}:") for r in report.reasons) == 1  # each id once


async def test_an_instagram_post_without_an_image_is_high_risk(images: Images) -> None:
    report = await check(images, [], image_required=True)
    assert rules_of(report) == {"image-missing": "high"}
    assert (await check(images, [])).flags == []


async def test_check_input_reads_everything_from_the_judge_input(images: Images) -> None:
    item = images.generate("k-with", images.reference)
    model = ScriptedVision(CLEAN_ANSWER)
    vision = VisionCheck(images.store, model)
    post = judge_input("post", "instagram", [])
    assert rules_of(await vision.check_input(post)) == {"image-missing": "high"}
    report = await vision.check_input(judge_input("post", "instagram", [item.media_id]), attempt=2)
    assert report.flags == [] and report.model_reviewed
    (ask,) = model.asks
    assert ask.key == f"t-9/vision/{item.media_id}" and ask.models == {"vision": {"effort": "low"}}
    assert model.attempts == [2]


# --- the model's review ----------------------------------------------------------------------------------------


class ScriptedVision:
    """A ModelProvider whose vision tier answers from a script (an answer, or an error to raise)."""

    name = "scripted"

    def __init__(self, answer: dict[str, Any] | None = None, error: ModelError | None = None) -> None:
        self.answer = answer
        self.error = error
        self.asks: list[Ask] = []
        self.attempts: list[int] = []

    async def plan(self, request: PlanRequest, *, attempt: int = 1) -> Planned:
        raise NotImplementedError

    async def write(self, request: WriteRequest, tools: ToolRunner | None = None, *, attempt: int = 1) -> Written:
        raise NotImplementedError

    async def ask(self, ask: Ask, shape: type[Shape], *, attempt: int = 1) -> Answered[Shape]:
        self.asks.append(ask)
        self.attempts.append(attempt)
        if self.error is not None:
            raise self.error
        author = Authorship(tier=ask.tier, provider="scripted", model="eyes-1", probability_source="self_assessment")
        return Answered(shape.model_validate(self.answer), author, Usage(model="eyes-1", tier=ask.tier))


def judge_input(task_type: str, platform: str, media_ids: list[str]) -> JudgeInput:
    ref = TaskRef(task_id="t-9", tenant_id="acme", campaign_id="spring", agent_id="mira", campaign_workflow_id="w")
    task = PlannedTask(key="c1-post", task_type=task_type, platform=platform, brief="Share the soup")
    usage = Usage(model="offline")
    result = TaskResult(text=CAPTION, platform=platform, usage=usage, model_probability=0.9, media_ids=media_ids)
    return JudgeInput(ref=ref, task=task, persona=MIRA, result=result, models={"vision": {"effort": "low"}})


async def test_the_models_findings_become_flags_with_floors(images: Images) -> None:
    item = images.generate("k-with", images.reference)
    answer = {
        "character": {"verdict": "inconsistent", "severity": "low", "reason": "short dark hair, not hers"},
        "text": [
            {"text": "Buy crypto now", "severity": "low", "reason": "a slogan on a sign"},
            {"text": "  ", "severity": "low", "reason": "blank"},
        ],
        "unsafe": [
            {"category": "nudity", "severity": "low", "reason": "a bare torso in the background"},
            {"category": "weapons", "severity": "low", "reason": "a kitchen knife"},
            {"category": "weapons", "severity": "high", "reason": "a gun on the table"},
        ],
    }
    model = ScriptedVision(answer)
    report = await check(images, [item.media_id], model=model, persona_reference=images.reference)
    assert rules_of(report) == {
        "vision-off-character": "low",
        "vision-text-in-image": "low",
        "vision-unsafe-nudity": "high",  # a floor: the model's "low" does not lower it
        "vision-unsafe-weapons": "high",  # one flag per category, the highest kept
        "image-text-banned-topic": "high",  # the text in the image goes through the draft's rules
    }
    assert report.texts == ["Buy crypto now"]
    assert "a gun on the table" in next(f.detail for f in report.flags if f.rule == "vision-unsafe-weapons")
    assert report.model_reviewed
    (ask,) = model.asks
    assert ask.tier == "vision" and ask.key == f"t-1/vision/{item.media_id}"
    post, reference = ask.images
    assert post.data == images.store.read_bytes(item.media_id) and post.mime_type == "image/png"
    assert reference.data == images.store.read_bytes(images.reference)
    assert dict(ask.data) == {"the post's caption": CAPTION, "the prompt the image was generated from": PROMPT}
    assert "The second image is the persona's character reference" in ask.instructions


async def test_a_clean_model_answer_adds_no_flag_and_says_who_reviewed(images: Images) -> None:
    item = images.generate("k-with", images.reference)
    report = await check(images, [item.media_id], model=ScriptedVision(CLEAN_ANSWER))
    assert report.flags == [] and report.model_reviewed
    assert report.reasons[0].endswith("vision model scripted:eyes-1: no flag")


async def test_without_a_reference_the_model_is_not_asked_about_likeness(images: Images) -> None:
    item = images.generate("k-none")
    model = ScriptedVision(
        {**CLEAN_ANSWER, "character": {"verdict": "inconsistent", "severity": "high", "reason": "?"}}
    )
    report = await check(images, [item.media_id], model=model)
    assert report.flags == []  # "inconsistent" with no reference to be consistent with means nothing
    (ask,) = model.asks
    assert len(ask.images) == 1 and '"no_reference"' in ask.instructions


async def test_a_model_failure_never_passes_an_image(images: Images) -> None:
    off = images.generate("k-none")
    # Offline: the offline checks decide, and the reasons say the model did not look.
    report = await check(images, [off.media_id], model=OfflineModelProvider(), persona_reference=images.reference)
    assert rules_of(report) == {"image-off-character": "low"}
    assert "vision model unavailable, the offline checks decided alone" in report.reasons[0]
    assert report.model_reviewed is False
    # A clean image the model could not review: no approval from the model, and a flag where the campaign wants one.
    clean = images.generate("k-with", images.reference)
    broken = ScriptedVision(error=ModelCallError("invalid_output", "did not validate", provider="p", model="m"))
    report = await check(images, [clean.media_id], model=broken)
    assert report.flags == [] and report.model_reviewed is False
    report = await check(images, [clean.media_id], model=broken, require_model=True)
    assert rules_of(report) == {"vision-review-unavailable": "low"}


async def test_a_model_that_declines_to_look_sends_the_image_to_a_human(images: Images) -> None:
    item = images.generate("k-with", images.reference)
    refusing = ScriptedVision(error=ModelCallError("refused", "SAFETY", provider="gemini", model="g"))
    report = await check(images, [item.media_id], model=refusing)
    assert rules_of(report) == {"vision-review-refused": "low"}
    assert report.model_reviewed is False


async def test_a_busy_provider_is_retried_then_left_to_the_offline_checks(images: Images) -> None:
    item = images.generate("k-with", images.reference)
    busy = ModelCallError("unavailable", "503", provider="gemini", model="g")
    report = await check(images, [item.media_id], model=ScriptedVision(error=busy), attempt=1)
    assert report.retry is busy and report.model_reviewed is False
    report = await check(images, [item.media_id], model=ScriptedVision(error=busy), attempt=3)
    assert report.retry is None and report.flags == []
    assert "vision model unavailable" in report.reasons[0]


async def test_an_image_the_offline_checks_reject_is_not_shown_to_the_model(images: Images) -> None:
    tall = images.generate("k-tall", images.reference, ratio="9x16")  # Instagram refuses 9:16 feed posts
    model = ScriptedVision(CLEAN_ANSWER)
    report = await check(images, [tall.media_id], model=model)
    assert rules_of(report) == {"image-platform-rules": "high"}
    assert model.asks == []
    assert "not shown to the vision model: the offline checks already reject it" in report.reasons[0]


def test_a_large_image_is_shown_to_the_model_downscaled() -> None:
    shown = for_model(png((3000, 2000)), "image/png")
    assert shown.mime_type == "image/jpeg"
    assert max(Image.open(io.BytesIO(shown.data)).size) == MODEL_MAX_EDGE
    small = png((1080, 1350))
    assert for_model(small, "image/png").data == small


# --- the model path through the real SDKs, against the loopback fakes ----------------------------------------------

BOTH = ("anthropic", "gemini")
MODELS = {"anthropic": "claude-haiku-5-5", "gemini": "gemini-4-hydrogen"}


@pytest.fixture
def fakes() -> Iterator[tuple[FakeAnthropic, FakeGemini]]:
    with fake_anthropic() as a, fake_gemini() as g:
        yield a, g


def live(fakes: tuple[FakeAnthropic, FakeGemini]) -> LlmModelProvider:
    """The embedded tiers through the real SDKs; each test picks the vision model with `vision_on`."""
    return live_provider(fakes, tiers=())


def vision_on(vendor: str) -> dict[str, Any]:
    return {"vision": {"primary": {"provider": vendor, "model": MODELS[vendor]}, "fallback": None}}


def sent_images(vendor: str, body: dict[str, Any]) -> tuple[list[bytes], str]:
    """The images and the text of the one user turn the fake received."""
    if vendor == "anthropic":
        content = body["messages"][0]["content"]
        pictures = [base64.b64decode(c["source"]["data"]) for c in content if c["type"] == "image"]
        return pictures, " ".join(c["text"] for c in content if c["type"] == "text")
    parts = body["contents"][0]["parts"]
    pictures = [base64.urlsafe_b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]  # proto3 JSON
    return pictures, " ".join(p["text"] for p in parts if "text" in p)


@pytest.mark.parametrize("vendor", BOTH)
async def test_the_vision_tier_reviews_the_image_and_its_reference_through_the_sdk(
    images: Images, fakes: tuple[FakeAnthropic, FakeGemini], vendor: str
) -> None:
    item = images.generate("k-with", images.reference)
    fake = fakes[0] if vendor == "anthropic" else fakes[1]
    answer = {
        **CLEAN_ANSWER,
        "unsafe": [{"category": "violence", "severity": "high", "reason": "a staged fight in the market"}],
    }
    fake.queue(anthropic_json(answer) if vendor == "anthropic" else gemini_json(answer))
    report = await check(
        images, [item.media_id], model=live(fakes), persona_reference=images.reference, models=vision_on(vendor)
    )
    assert rules_of(report) == {"vision-unsafe-violence": "high"}
    assert report.model_reviewed and len(report.calls) == 1
    assert report.calls[0].line.tier == "vision" and report.calls[0].line.model == MODELS[vendor]
    pictures, text = sent_images(vendor, fake.last.json)
    assert pictures == [images.store.read_bytes(item.media_id), images.store.read_bytes(images.reference)]
    assert "source=the post's caption" in text and "ZeroWasteKitchen" in text
    schema = json.dumps(fake.last.json)
    assert "child_safety" in schema and "no_reference" in schema  # the answer's schema was sent


@pytest.mark.parametrize("vendor", BOTH)
async def test_a_failing_vision_provider_does_not_pass_the_image(
    images: Images, fakes: tuple[FakeAnthropic, FakeGemini], vendor: str
) -> None:
    item = images.generate("k-none")
    model = live(fakes)  # nothing scripted: the fakes answer 500 in the vendor's error shape
    first = await check(images, [item.media_id], model=model, models=vision_on(vendor), attempt=1,
                        persona_reference=images.reference)  # fmt: skip
    assert first.retry is not None and first.retry.kind == "unavailable"
    last = await check(images, [item.media_id], model=model, models=vision_on(vendor), attempt=3,
                       persona_reference=images.reference)  # fmt: skip
    assert last.retry is None and last.model_reviewed is False
    assert rules_of(last) == {"image-off-character": "low"}  # the offline checks still decide
    assert "vision model unavailable" in last.reasons[0]
