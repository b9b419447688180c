"""Persona similarity on embeddings: her held-out writing scores high, generic and off-brand text low, a copy with
an off-brand sentence added falls, scores spread over [0, 1], calibration is per persona, results are stable."""

from __future__ import annotations

import statistics

import pytest

import chimera.persona_similarity as persona_similarity
from chimera.memory import E5Embedder
from chimera.persona_similarity import EmbeddingPersonaSimilarity, chunks
from chimera.similarity import PersonaSimilarity
from chimera.similarity_references import REFERENCES
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
GENERIC = [
    PRESS_RELEASE,
    "The quarterly earnings report shows a 12% increase in operating margin, exceeding analyst expectations.",
    "Our enterprise platform leverages cutting-edge AI to deliver scalable solutions for Fortune 500 clients.",
    "The city council voted on Tuesday to extend the public consultation on the new tram line until June.",
]
OFF_BRAND = [
    "Grinding ranked all night, finally hit Diamond. Stream tomorrow at 8, bring snacks!",
    "Bitcoin just broke 100k! Load up your bags now before it moons, this is financial advice you can't ignore.",
]
OTHER_LANGUAGE = [
    "Ich finde, die Regierung muss endlich die Steuern senken, sonst wählen wir sie ab!",
    "¡Oferta exclusiva! Compra ahora tu seguro de coche con un 50% de descuento, solo hoy.",
    "Die Sitzung des Ausschusses wurde auf Donnerstag verschoben, die Tagesordnung bleibt unverändert.",
]


@pytest.fixture(scope="module")
def similarity(embedder: E5Embedder) -> EmbeddingPersonaSimilarity:
    return EmbeddingPersonaSimilarity(embedder)  # the session's model: no second copy


def without(persona: Persona, i: int) -> Persona:
    return persona.model_copy(update={"examples": [e for j, e in enumerate(persona.examples) if j != i]})


def test_it_is_a_persona_similarity(similarity: EmbeddingPersonaSimilarity) -> None:
    scorer: PersonaSimilarity = similarity
    assert 0.0 <= scorer.score(MIRA, ON_VOICE[0]) <= 1.0


def test_her_held_out_examples_score_high(similarity: EmbeddingPersonaSimilarity) -> None:
    held_out = [similarity.score(without(MIRA, i), e) for i, e in enumerate(MIRA.examples)]
    assert statistics.median(held_out) > 0.8, held_out
    assert min(held_out) > 0.6, held_out


@pytest.mark.parametrize("text", ON_VOICE)
def test_new_text_in_her_voice_scores_high(similarity: EmbeddingPersonaSimilarity, text: str) -> None:
    assert text not in MIRA.examples
    assert similarity.score(MIRA, text) > 0.8


@pytest.mark.parametrize("text", GENERIC)
def test_generic_corporate_and_news_text_scores_low(similarity: EmbeddingPersonaSimilarity, text: str) -> None:
    assert text not in REFERENCES  # not what it was calibrated on
    assert similarity.score(MIRA, text) < 0.3


@pytest.mark.parametrize("text", OFF_BRAND + OTHER_LANGUAGE)
def test_off_brand_text_scores_well_below_her_writing(similarity: EmbeddingPersonaSimilarity, text: str) -> None:
    lowest_of_hers = min(similarity.score(MIRA, t) for t in ON_VOICE)
    assert similarity.score(MIRA, text) < min(0.4, lowest_of_hers - 0.4)


@pytest.mark.parametrize("text", OTHER_LANGUAGE)
def test_off_brand_text_in_another_language_scores_low(similarity: EmbeddingPersonaSimilarity, text: str) -> None:
    assert similarity.score(MIRA, text) < 0.3


@pytest.mark.parametrize("i", range(len(MIRA.examples)))
def test_a_copied_example_with_an_off_brand_sentence_falls(similarity: EmbeddingPersonaSimilarity, i: int) -> None:
    example = MIRA.examples[i]
    copy = similarity.score(MIRA, example)
    assert copy > 0.9
    for added in [PRESS_RELEASE, OFF_BRAND[1], OTHER_LANGUAGE[0]]:
        mixed = similarity.score(MIRA, f"{example} {added}")
        assert mixed < 0.65 and mixed < copy - 0.3, (added, mixed)


def test_scores_spread_over_the_range(similarity: EmbeddingPersonaSimilarity) -> None:
    scores = [similarity.score(MIRA, t) for t in ON_VOICE + GENERIC + OFF_BRAND + OTHER_LANGUAGE]
    assert max(scores) - min(scores) > 0.8
    assert statistics.pstdev(scores) > 0.3
    assert sum(s >= 0.9 for s in scores) <= len(ON_VOICE)  # not everything near 1


def test_calibration_is_per_persona(similarity: EmbeddingPersonaSimilarity) -> None:
    kai_post = "Two weeks with the new earbuds: 9h battery, latency 120 ms, fit is meh. 6/10. #KaiTests"
    assert similarity.score(KAI, kai_post) > 0.8
    assert similarity.score(MIRA, kai_post) < 0.5
    assert similarity.score(KAI, ON_VOICE[0]) < 0.3
    assert similarity.score(KAI, PRESS_RELEASE) < 0.3


def test_handles_links_and_hashtags_do_not_count(similarity: EmbeddingPersonaSimilarity) -> None:
    text = ON_VOICE[1]
    assert similarity.score(MIRA, f"@somebody {text} https://example.com/x") == similarity.score(MIRA, text)
    # her hashtags pasted onto someone else's text do not make it hers
    tags = " ".join(MIRA.hashtags)
    assert similarity.score(MIRA, f"{PRESS_RELEASE} {tags}") == similarity.score(MIRA, PRESS_RELEASE)


def test_empty_text_scores_zero(similarity: EmbeddingPersonaSimilarity) -> None:
    assert similarity.score(MIRA, "") == 0.0
    assert similarity.score(MIRA, "   @someone  #MiraCooks https://example.com ") == 0.0


def test_short_sentences_lean_on_a_neighbour() -> None:
    assert chunks("@x Thank you! Stale bread is not trash, friends, ever. 7/10. #MiraCooks", 7) == [
        "Thank you! Stale bread is not trash, friends, ever. 7/10."
    ]
    assert chunks("Stale bread is not trash, friends, ever.\n\nAcme Corp is pleased to announce a CFO.", 7) == [
        "Stale bread is not trash, friends, ever.",
        "Acme Corp is pleased to announce a CFO.",
    ]
    assert chunks("Hi!", 7) == ["Hi!"]
    assert chunks(" #tag @who ", 7) == []


def test_a_new_instance_uses_the_process_wide_embedder_and_scores_the_same(
    monkeypatch: pytest.MonkeyPatch, embedder: E5Embedder, similarity: EmbeddingPersonaSimilarity
) -> None:
    taken: list[E5Embedder] = []

    def shared() -> E5Embedder:
        taken.append(embedder)
        return embedder

    monkeypatch.setattr(persona_similarity, "default_embedder", shared)
    scorer = EmbeddingPersonaSimilarity()
    assert scorer.score(MIRA, "") == 0.0 and taken == []  # nothing is loaded before it is needed
    texts = ON_VOICE + GENERIC + OFF_BRAND
    assert [scorer.score(MIRA, t) for t in texts] == [similarity.score(MIRA, t) for t in texts]
    assert taken == [embedder]  # taken once, then kept


def test_profiles_are_cached_by_content(similarity: EmbeddingPersonaSimilarity) -> None:
    similarity.score(MIRA, ON_VOICE[0])
    cached = len(similarity._profiles)
    assert similarity.score(MIRA, ON_VOICE[1]) == similarity.score(MIRA, ON_VOICE[1])
    assert len(similarity._profiles) == cached
    # the cache follows the persona's content, not just its id
    changed = MIRA.model_copy(update={"examples": [*MIRA.examples, "Pickled the radish tops. Tangy! What next?"]})
    similarity.score(changed, ON_VOICE[0])
    assert len(similarity._profiles) == cached + 1


def test_a_single_example_persona_still_scores_sensibly(similarity: EmbeddingPersonaSimilarity) -> None:
    solo = MIRA.model_copy(update={"id": "mira-solo", "examples": MIRA.examples[:1]})
    assert similarity.score(solo, MIRA.examples[0]) > 0.9
    assert similarity.score(solo, PRESS_RELEASE) < 0.3
