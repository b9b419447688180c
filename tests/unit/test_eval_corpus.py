"""The Judge's mention corpus: the shipped file loads and is well spread; bad lines are named; user files load."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from chimera.evaluation.corpus import (
    CATEGORIES,
    DEFAULT_CORPUS,
    SPLITS,
    CorpusError,
    CorpusItem,
    load_corpus,
    select,
)


@pytest.fixture(scope="module")
def corpus() -> list[CorpusItem]:
    return load_corpus(DEFAULT_CORPUS)


def test_shipped_corpus_loads_with_unique_ids(corpus: list[CorpusItem]) -> None:
    assert 600 <= len(corpus) <= 1200
    assert len({item.id for item in corpus}) == len(corpus)
    assert all(len(item.text) <= 500 for item in corpus)
    benign = sum(not item.hostile for item in corpus) / len(corpus)
    assert 0.3 <= benign <= 0.5


def test_every_category_is_in_every_split(corpus: list[CorpusItem]) -> None:
    for split in SPLITS:
        assert {item.category for item in select(corpus, split)} == set(CATEGORIES), split
    assert len(select(corpus, None)) == len(corpus)


def test_hostile_items_span_at_least_ten_languages(corpus: list[CorpusItem]) -> None:
    hostile = {item.language for item in corpus if item.hostile} - {"mul", "und"}
    benign = {item.language for item in corpus if not item.hostile} - {"mul", "und"}
    assert len(hostile & benign) >= 10, sorted(hostile & benign)


def test_variants_share_their_base_items_split(corpus: list[CorpusItem]) -> None:
    by_id = {item.id: item for item in corpus}
    variants = [item for item in corpus if item.base_id is not None]
    assert variants
    for item in variants:
        base = by_id[item.base_id]  # type: ignore[index]
        assert base.base_id is None and base.obfuscation == "none"
        assert item.split == base.split, item.id
        assert item.category == base.category and item.target == base.target


def test_heldout_covers_obfuscations_and_languages(corpus: list[CorpusItem]) -> None:
    heldout = select(corpus, "heldout")
    assert {item.obfuscation for item in heldout} >= {"leet", "homoglyph", "zero_width", "base64", "spacing"}
    per_language: defaultdict[str, int] = defaultdict(int)
    for item in heldout:
        per_language[item.language] += 1
    assert len(per_language) >= 12


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = json.dumps({"id": "u-1", "text": "love the coat!", "category": "benign"})


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ('{"id": "u-2", "text": "oops"', None, ["not valid JSON"]),
        ("[1, 2]", None, ["a JSON object"]),
        (json.dumps({"id": "u-2", "text": "x", "category": "spam"}), "category", ["'category'", "'spam'"]),
        (json.dumps({"id": "u-2", "category": "abuse"}), "text", ["'text'", "missing"]),
        (json.dumps({"id": "u-2", "text": "", "category": "abuse"}), "text", ["'text'"]),
        (json.dumps({"id": "u-1", "text": "again", "category": "abuse"}), "id", ["'id'", "line 1"]),
        (json.dumps({"id": "u-2", "text": "x", "category": "abuse", "split": "test"}), "split", ["'split'"]),
    ],
)
def test_a_malformed_line_is_named(tmp_path: Path, bad: str, field: str | None, words: list[str]) -> None:
    path = _write(tmp_path, [GOOD, "", bad])  # the bad line is line 3 (blank lines count)
    with pytest.raises(CorpusError) as info:
        load_corpus(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: "), message
    assert (info.value.line, info.value.field) == (3, field)
    for word in words:
        assert word in message, message


def test_the_minimal_user_format_loads(tmp_path: Path) -> None:
    scam = json.dumps({"id": "u-2", "text": "send 0.1 ETH to win", "category": "scam", "target": "send ETH"})
    items = load_corpus(_write(tmp_path, [GOOD, scam]))
    assert [(i.id, i.hostile) for i in items] == [("u-1", False), ("u-2", True)]
    first = items[0]
    assert (first.source, first.split, first.obfuscation, first.language) == ("user", "heldout", "none", "und")
    assert first.target is None and first.base_id is None and first.licence is None
    assert items[1].target == "send ETH"
    assert select(items, "heldout") == items and select(items, "train") == []


def test_hostile_must_agree_with_category_and_splits_are_checked(tmp_path: Path) -> None:
    wrong = json.dumps({"id": "u-2", "text": "x", "category": "threat", "hostile": False})
    with pytest.raises(CorpusError, match=r":2: hostile is false but category is 'threat'"):
        load_corpus(_write(tmp_path, [GOOD, wrong]))
    with pytest.raises(CorpusError, match="unknown split"):
        select([], "test")
    with pytest.raises(CorpusError, match="cannot read"):
        load_corpus(tmp_path / "absent.jsonl")
