"""Persona similarity: how much a text sounds like the persona, from 0 (not at all) to 1.

`PersonaSimilarity` is the pluggable interface (an embedding-based scorer can replace the TF-IDF one);
`TfidfPersonaSimilarity` needs nothing but scikit-learn and the persona itself.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from schemas.persona import Persona

# Generic, off-voice English in several registers (corporate, legal, technical, news, academic, support).
# It is what the persona's voice must stand out from: it shapes the IDF weights and sets the floor.
BACKGROUND: tuple[str, ...] = (
    "The company today announced record quarterly revenue driven by strong demand across all business segments.",
    "Management remains confident in its long-term strategy and will continue to invest in operational excellence.",
    "This agreement shall be governed by and construed in accordance with the laws of the State of Delaware.",
    "The licensee shall not sublicense, transfer or assign any rights granted hereunder without prior consent.",
    "To configure the service, set the environment variable and restart the server before running migrations.",
    "The function returns a list of records sorted by timestamp, or raises an error if the index is missing.",
    "Officials said the committee would review the proposal next month after consultations with stakeholders.",
    "Heavy rain is expected across the northern region on Tuesday, with temperatures falling later in the week.",
    "The results indicate a statistically significant correlation between the variables in the sample population.",
    "Further research is required to determine whether these findings generalize to other contexts.",
    "Please find attached the updated report; let me know if you have any questions regarding the figures.",
    "Customers may request a refund within thirty days of purchase by contacting our support team.",
)

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"(?<!\w)@\w+")


class PersonaSimilarity(Protocol):
    def score(self, persona: Persona, text: str) -> float:
        """0..1: how much `text` sounds like `persona`."""
        ...


def _clean(text: str) -> str:
    # Handles and links say who and where, not how she writes.
    return " ".join(_HANDLE.sub(" ", _URL.sub(" ", text)).split()).lower()


def _content_hash(persona: Persona) -> str:
    material = "\x1f".join([persona.voice, *persona.examples, *persona.hashtags])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


class _Space:
    """One TF-IDF feature space whose vectors also count the n-grams it never saw.

    A fitted TfidfVectorizer silently drops unknown n-grams, so an off-voice text would be judged only on the
    few n-grams it happens to share with the persona. Here unknown n-grams keep their weight in the vector's
    norm (with the IDF of an n-gram seen in one document), so they pull the cosine down as they should.
    """

    def __init__(self, weight: float, **options: Any) -> None:
        self.weight = weight
        self._vectorizer = TfidfVectorizer(norm=None, sublinear_tf=True, **options)
        self._unseen_idf = 1.0

    def fit(self, corpus: Sequence[str]) -> _Space:
        self._vectorizer.fit(corpus)
        self._analyze = self._vectorizer.build_analyzer()
        self._vocabulary: dict[str, int] = self._vectorizer.vocabulary_
        self._unseen_idf = math.log((len(corpus) + 2) / 2) + 1  # smooth IDF of df=1 in a corpus one larger
        return self

    def transform(self, texts: Sequence[str]) -> Any:
        matrix = self._vectorizer.transform(texts).tocsr()
        known = np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel()
        unseen = np.array([self._unseen_mass(t) for t in texts])
        norms = np.sqrt(known + unseen)
        norms[norms == 0] = 1.0
        return matrix.multiply(1.0 / norms[:, None]).tocsr()

    def _unseen_mass(self, text: str) -> float:
        grams = Counter(self._analyze(text))
        return sum(((1 + math.log(n)) * self._unseen_idf) ** 2 for g, n in grams.items() if g not in self._vocabulary)


@dataclass(frozen=True)
class _Fitted:
    spaces: tuple[_Space, ...]
    examples: tuple[Any, ...]  # per space: the examples' unit vectors
    floor: float  # typical raw score of off-voice text
    ceiling: float  # typical raw score of her own writing that was not compared with itself


class TfidfPersonaSimilarity:
    """TF-IDF similarity to the persona's examples, calibrated per persona.

    Features: char_wb 2-5-grams (spelling, punctuation, emoji, hashtags) and word 1-2-grams (her phrases),
    weighted equally, fitted on voice + examples + hashtags + a small BACKGROUND corpus of generic English, so
    n-grams every English text shares get a low IDF. Handles and URLs are removed first. Fits are cached per
    persona id + content hash (LRU).

    Raw score: the mean of the text's top-k (k=2) cosine similarities to her examples, so a text must resemble
    more than one of her posts to look like her.

    Calibration: raw cosines are small and mean different things for different personas (repetitive examples
    give high raw scores everywhere), so each persona gets two anchors:

    - ceiling, her self-consistency: each example is scored leave-one-out, against the *other* examples only,
      exactly as new text is; the median of those scores is what unseen writing in her voice typically gets.
    - floor: the 75th percentile of the BACKGROUND sentences' raw scores, what off-voice English stays under.

    score = clamp((raw - floor) / (ceiling - floor), 0, 1). Text at least as consistent with her examples as they
    are with each other scores 1.0 (an exact copy is far above the ceiling and clamps to 1.0); generic or
    corporate text lands near 0. The ceiling is at least MIN_RATIO x floor: with a single example there is no
    leave-one-out, and a persona whose examples barely agree would otherwise get a scale too short to use.
    """

    TOP_K = 2
    FLOOR_PERCENTILE = 75
    MIN_RATIO = 1.8
    CACHE_SIZE = 128

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[str, str], _Fitted] = OrderedDict()
        self._lock = threading.Lock()  # activities may score from several threads

    def score(self, persona: Persona, text: str) -> float:
        cleaned = _clean(text)
        if not cleaned:
            return 0.0
        fitted = self._fitted(persona)
        raw = float(self._raw(fitted, self._similarities(fitted, [cleaned]))[0])
        value = (raw - fitted.floor) / (fitted.ceiling - fitted.floor)
        return round(min(1.0, max(0.0, value)), 4)

    def _fitted(self, persona: Persona) -> _Fitted:
        key = (persona.id, _content_hash(persona))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        fitted = self._fit(persona)  # outside the lock: a duplicate fit now and then is harmless
        with self._lock:
            self._cache[key] = fitted
            if len(self._cache) > self.CACHE_SIZE:
                self._cache.popitem(last=False)
        return fitted

    def _fit(self, persona: Persona) -> _Fitted:
        examples = [_clean(e) for e in persona.examples]
        background = [_clean(b) for b in BACKGROUND]
        corpus = [_clean(persona.voice), *examples, " ".join(persona.hashtags).lower(), *background]
        spaces = (
            _Space(0.5, analyzer="char_wb", ngram_range=(2, 5)).fit(corpus),
            _Space(0.5, analyzer="word", ngram_range=(1, 2), token_pattern=r"(?u)#?\b\w[\w']*").fit(corpus),
        )
        fitted = _Fitted(spaces, tuple(s.transform(examples) for s in spaces), floor=0.0, ceiling=1.0)
        floor = float(np.percentile(self._raw(fitted, self._similarities(fitted, background)), self.FLOOR_PERCENTILE))
        ceiling = max(floor * self.MIN_RATIO, floor + 1e-3)  # never a zero-width scale
        if len(examples) >= 2:
            own = self._similarities(fitted, examples)
            np.fill_diagonal(own, -np.inf)  # leave one out: an example never counts itself
            ceiling = max(ceiling, float(np.median(self._raw(fitted, own))))
        return _Fitted(fitted.spaces, fitted.examples, floor=floor, ceiling=ceiling)

    @staticmethod
    def _similarities(fitted: _Fitted, texts: Sequence[str]) -> Any:
        """texts x examples cosine matrix, the spaces' cosines averaged by weight."""
        total = np.zeros((len(texts), fitted.examples[0].shape[0]))
        for space, examples in zip(fitted.spaces, fitted.examples, strict=True):
            total += space.weight * np.asarray((space.transform(texts) @ examples.T).todense())
        return total

    def _raw(self, fitted: _Fitted, sims: Any) -> Any:
        usable = int(np.isfinite(sims[0]).sum())
        k = max(1, min(self.TOP_K, usable))
        return (-np.sort(-sims, axis=1)[:, :k]).mean(axis=1)
