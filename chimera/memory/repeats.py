"""Does a draft repeat one of the agent's own recent posts? Word-sequence overlap, not meaning.

Two posts of one persona on one topic are close in meaning by design; a repeat is the same sentences again.
So the measure is how much of the shorter post's 3-word sequences (casefolded, hashtags and punctuation
dropped) the other contains. Above REPEAT_AT it is the same post, reworded at most at its edges.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

REPEAT_AT = 0.6
SHINGLE = 3
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*", re.UNICODE)
_TAG = re.compile(r"(?<!\w)[#@]\w+")


@dataclass(frozen=True)
class Earlier:
    id: str
    text: str
    created_at: str


@dataclass(frozen=True)
class Repeat:
    earlier: Earlier
    overlap: float


def shingles(text: str) -> set[tuple[str, ...]]:
    words = [w.casefold() for w in _WORD.findall(_TAG.sub(" ", text))]
    if len(words) < SHINGLE:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def overlap(a: str, b: str) -> float:
    """The share of the shorter text's 3-word sequences found in the other (0 to 1)."""
    sa, sb = shingles(a), shingles(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / min(len(sa), len(sb))


def repeated(draft: str, earlier: Sequence[Earlier], threshold: float = REPEAT_AT) -> Repeat | None:
    """The earlier post the draft repeats most, if any reaches `threshold`."""
    best: Repeat | None = None
    for post in earlier:
        score = overlap(draft, post.text)
        if score >= threshold and (best is None or score > best.overlap):
            best = Repeat(post, round(score, 3))
    return best
