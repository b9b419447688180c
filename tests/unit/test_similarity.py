"""Persona similarity: her voice scores high, off-voice text low, copies clamp to 1, calibration is per persona."""

from __future__ import annotations

import pytest

from chimera.similarity import PersonaSimilarity, TfidfPersonaSimilarity
from schemas.persona import Persona
from tests.helpers.personas import MIRA

KAI = Persona(
    id="kai-bytes",
    name="Kai",
    handles={"twitter": "@kaibytes"},
    voice="Dry, precise gadget reviewer. Numbers first, jokes second, never gushes.",
    boundaries=["Never accept undisclosed gifts"],
    examples=[
        "Benchmarked the new laptop: 14h battery, 38 dB under load, keyboard flex is real. 7/10. #KaiTests",
        "Firmware 2.1 fixes the Bluetooth dropouts. Latency down from 210 ms to 95 ms. Finally usable. #KaiTests",
        "Three weeks with the budget phone: camera fine in daylight, mush at night, battery excellent. 6/10.",
        "USB-C hub roundup: two of five overheated at 60 W passthrough. Avoid the cheap ones. #GadgetNotes",
    ],
    hashtags=["#KaiTests", "#GadgetNotes"],
)

# New text in her style: her phrases, rhythm, question and hashtags, but not a copy of any example.
ON_VOICE = [
    "Leftover rice is not trash, friends. Fried rice, rice pudding, crispy rice cakes, done. "
    "What's your favourite rescue dinner? #ZeroWasteKitchen",
    "Wonky veg are my favourite kind of veg. Roasted, blended, done, nothing wasted. "
    "What's in your crisper drawer right now? #MiraCooks",
    "Tiny kitchen update: one sad onion and a bunch of carrot tops became a big pot of soup 🍲 "
    "What's simmering on your stove this week? #SlowLiving",
]
PRESS_RELEASE = (
    "Acme Corp is pleased to announce the appointment of Jane Doe as Chief Financial Officer, effective immediately."
)
OFF_VOICE = [
    PRESS_RELEASE,
    "The quarterly earnings report shows a 12% increase in operating margin, exceeding analyst expectations.",
    "Our enterprise platform leverages cutting-edge AI to deliver scalable solutions for Fortune 500 clients.",
    "We are excited to partner with leading retailers to bring our award-winning products to customers nationwide.",
]


@pytest.fixture
def similarity() -> TfidfPersonaSimilarity:
    return TfidfPersonaSimilarity()


def test_it_is_a_persona_similarity() -> None:
    scorer: PersonaSimilarity = TfidfPersonaSimilarity()
    assert 0.0 <= scorer.score(MIRA, ON_VOICE[0]) <= 1.0


@pytest.mark.parametrize("text", ON_VOICE)
def test_on_voice_text_scores_high(similarity: TfidfPersonaSimilarity, text: str) -> None:
    assert text not in MIRA.examples
    assert similarity.score(MIRA, text) >= 0.85


def test_a_corporate_press_release_scores_low(similarity: TfidfPersonaSimilarity) -> None:
    assert similarity.score(MIRA, PRESS_RELEASE) <= 0.5


@pytest.mark.parametrize("text", OFF_VOICE)
def test_off_voice_text_scores_below_on_voice_text(similarity: TfidfPersonaSimilarity, text: str) -> None:
    assert similarity.score(MIRA, text) <= 0.5
    assert similarity.score(MIRA, text) < min(similarity.score(MIRA, t) for t in ON_VOICE)


@pytest.mark.parametrize("example", MIRA.examples)
def test_an_exact_copy_clamps_to_one(similarity: TfidfPersonaSimilarity, example: str) -> None:
    assert similarity.score(MIRA, example) == 1.0


def test_calibration_is_per_persona(similarity: TfidfPersonaSimilarity) -> None:
    kai_post = "Two weeks with the new earbuds: 9h battery, latency 120 ms, fit is meh. 6/10. #KaiTests"
    assert similarity.score(KAI, kai_post) >= 0.85
    assert similarity.score(MIRA, kai_post) <= 0.5
    assert similarity.score(KAI, ON_VOICE[0]) <= 0.5


def test_handles_and_links_do_not_change_the_score(similarity: TfidfPersonaSimilarity) -> None:
    text = ON_VOICE[1]
    assert similarity.score(MIRA, f"@somebody {text} https://example.com/x") == similarity.score(MIRA, text)


def test_empty_text_scores_zero(similarity: TfidfPersonaSimilarity) -> None:
    assert similarity.score(MIRA, "") == 0.0
    assert similarity.score(MIRA, "   @someone  ") == 0.0


def test_scores_are_deterministic_and_fits_are_cached(similarity: TfidfPersonaSimilarity) -> None:
    first = [similarity.score(MIRA, t) for t in ON_VOICE + OFF_VOICE]
    assert [TfidfPersonaSimilarity().score(MIRA, t) for t in ON_VOICE + OFF_VOICE] == first
    assert len(similarity._cache) == 1
    # the cache follows the persona's content, not just its id
    changed = MIRA.model_copy(update={"examples": [*MIRA.examples, "Pickled the radish tops. Tangy! What next?"]})
    similarity.score(changed, ON_VOICE[0])
    assert len(similarity._cache) == 2


def test_a_single_example_persona_still_scores_sensibly(similarity: TfidfPersonaSimilarity) -> None:
    solo = MIRA.model_copy(update={"id": "mira-solo", "examples": MIRA.examples[:1]})
    assert similarity.score(solo, MIRA.examples[0]) == 1.0
    assert similarity.score(solo, PRESS_RELEASE) <= 0.5
