"""Persona similarity on multilingual-e5 embeddings, calibrated per persona (specs/judge.md, "Persona similarity").

`EmbeddingPersonaSimilarity` is the Judge's `PersonaSimilarity`. It embeds her voice description and example
posts with the process-wide embedder (chimera/memory/embedder.py: no second copy of the model) and maps a draft's
raw closeness to her onto [0, 1] with two anchors measured for her: her own examples, each held out, and the
shipped generic and off-brand reference texts (chimera/similarity_references.py).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chimera.memory.embedder import Embedder, default_embedder
from chimera.similarity_references import REFERENCES
from schemas.persona import Persona

Floats = NDArray[np.float64]

# Handles, links and hashtags say who, where and which campaign, not how she writes, and they are cheap to paste
# onto any text: they are removed before embedding, from her examples too.
_NOISE = re.compile(r"https?://\S+|www\.\S+|(?<!\w)[@#][\w.]*\w")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+|\s*\n\s*")
_WORD = re.compile(r"\w+")


def clean(text: str) -> str:
    return " ".join(_NOISE.sub(" ", text).split())


def chunks(text: str, min_words: int) -> list[str]:
    """The cleaned text's sentences, one under `min_words` words joined to the one before it (at the start, to the
    one after): "Thank you!", "Finally usable." or "7/10." says too little to be judged alone, and is judged with
    the sentence it most often belongs to."""
    pieces: list[str] = []
    pending = ""  # short sentences at the start, waiting for one to lean on
    for sentence in _SENTENCE.split(clean(text)):
        if not sentence:
            continue
        if pieces and len(_WORD.findall(sentence)) < min_words:
            pieces[-1] = f"{pieces[-1]} {sentence}"
            continue
        pending = f"{pending} {sentence}".strip()
        if len(_WORD.findall(pending)) >= min_words:
            pieces.append(pending)
            pending = ""
    return [*pieces, pending] if pending else pieces


def _content_hash(persona: Persona) -> str:
    material = "\x1f".join([persona.voice, *persona.examples])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


def _top_mean(similarities: Floats, k: int) -> Floats:
    """Per row, the mean of the k largest values (all of them if there are fewer)."""
    k = max(1, min(k, similarities.shape[1]))
    top: Floats = np.sort(similarities, axis=1)[:, ::-1][:, :k].mean(axis=1)
    return top


@dataclass(frozen=True)
class _Chunked:
    """A text's chunks as centred unit vectors, with each chunk's share of the text's words."""

    vectors: Floats  # (chunks, dimension)
    weights: Floats  # (chunks,), summing to 1


@dataclass(frozen=True)
class _References:
    """REFERENCES embedded once per instance: their mean (the centre) and each text, whole and in chunks."""

    centre: Floats  # (dimension,)
    whole: Floats  # (references, dimension), centred unit vectors
    chunked: tuple[_Chunked, ...]


@dataclass(frozen=True)
class _Profile:
    """One persona, fitted: centred unit vectors of her examples and voice, the references that are off-brand for
    her, and her two calibration anchors (raw scores)."""

    examples: Floats  # (examples + their chunks, dimension): each example whole, then its chunks
    starts: NDArray[np.intp]  # where each example's rows start in `examples`
    voice: Floats  # (dimension,)
    contrast: Floats  # (kept references, dimension)
    off_brand: float  # median raw score of the kept references
    in_voice: float  # median raw score of her examples, each held out


class EmbeddingPersonaSimilarity:
    """How much a text sounds like the persona, from e5 embeddings of her voice and examples, calibrated for her.

    Vectors are centred on the mean of REFERENCES before cosines are taken: e5 puts nearly every pair of texts
    between 0.7 and 0.9, mostly for sharing a genre (social posts look alike); what is left after removing the
    common direction is what makes her posts hers.

    Raw score of a chunk (a sentence; a short one is joined to its neighbour, see `chunks`):

    - closeness to an example: its cosine to the whole post or to one of the post's chunks, whichever is higher
      (a reply that reuses one of her sentences is in her voice even when the rest of that post is not quoted);
    - (1 - VOICE_WEIGHT) x the mean of its TOP_K highest closenesses (it must resemble more than one of her posts)
      + VOICE_WEIGHT x its cosine to her voice description (what she says she sounds like);
    - minus CONTRAST x how much nearer it is to a reference that is off-brand for her than to any of her posts
      (a crypto pitch, a gadget review): nothing for a chunk nearer to her, so generic politeness ("Thank you so
      much for this!") is not punished for being generic, only text that reads as someone else's.

    A reference her examples resemble as much as they resemble each other is on-brand for her (a gadget review, for
    a gadget reviewer) and is left out of her contrast set and of her off-brand anchor.

    Calibration, per persona, because raw scores mean different things for different personas:

    - in-voice anchor: each example scored against the *other* examples only (leave one out), exactly as new text
      is; the median is what new writing in her voice typically gets.
    - off-brand anchor: the median raw score of her off-brand references (each scored without itself).

    A chunk's score is the logistic through (off-brand anchor, OFF_BRAND_SCORE) and (in-voice anchor,
    IN_VOICE_SCORE): monotonic, near 1 for text closer to her than her examples are to each other (a copy), near
    0 for text further from her than generic text is. The anchors are at least MIN_GAP apart (the shipped and test
    personas get 0.25 to 0.42), so a single example (nothing to hold out) or examples that agree no better than
    generic text still get a usable scale.

    A text's score: the word-weighted geometric mean of its chunks' scores (each at least FLOOR). Chunks are scored
    on their own and bounded before they are combined, so "one of her posts, copied, plus an off-brand sentence"
    falls: the copy cannot outweigh the added sentence however close it is, where one embedding of the whole text
    would stay close to the copied post. The geometric mean punishes a chunk near 0 (off-brand) hard and one in
    between (a campaign-goal line the offline writer adds, "This week's mission: ...") mildly; an arithmetic mean
    would let the copy carry an off-brand half, the minimum would sink every post with a template line.

    Cost: one e5 call per chunk of a draft; fitting a persona embeds her examples, their chunks and her voice, and
    an instance's first fit also the references (about 150 calls in all). Deterministic: the embedder is, and
    nothing is sampled. Profiles are cached per persona id + content hash (LRU, CACHE_SIZE), the references once
    per instance; both are safe to use from several threads.
    """

    TOP_K = 2
    VOICE_WEIGHT = 0.2
    CONTRAST = 1.0
    MIN_WORDS = 7
    FLOOR = 0.01
    OFF_BRAND_SCORE = 0.1
    IN_VOICE_SCORE = 0.9
    MIN_GAP = 0.2
    CACHE_SIZE = 128

    _default: EmbeddingPersonaSimilarity | None = None
    _default_lock = threading.Lock()

    @classmethod
    def default(cls) -> EmbeddingPersonaSimilarity:
        """One per process, on the process-wide embedder: the references and each persona are fitted once."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._embedder = embedder  # None: the process-wide one, taken on first use
        self._profiles: OrderedDict[tuple[str, str], _Profile] = OrderedDict()
        self._references: _References | None = None
        self._lock = threading.Lock()  # activities may score from several threads
        self._fitting = threading.Lock()

    def score(self, persona: Persona, text: str) -> float:
        if not clean(text):
            return 0.0
        profile = self._profile(persona)
        per_chunk, weights = self._chunk_scores(profile, self._chunked([text], self._refs().centre)[0])
        value = math.exp(float(np.log(np.maximum(per_chunk, self.FLOOR)) @ weights))  # word-weighted geometric mean
        return round(value, 4)

    # -- fitting ---------------------------------------------------------------------------------------------------

    def _profile(self, persona: Persona) -> _Profile:
        key = (persona.id, _content_hash(persona))
        cached = self._cached(key)
        if cached is not None:
            return cached
        # One fit at a time: a burst of campaigns of one persona (their first drafts judged together) waits for
        # the first fit instead of each doing it (~150 embeddings, seconds of CPU, all through one embedder).
        with self._fitting:
            cached = self._cached(key)
            if cached is not None:
                return cached
            profile = self._fit(persona)
            with self._lock:
                self._profiles[key] = profile
                if len(self._profiles) > self.CACHE_SIZE:
                    self._profiles.popitem(last=False)
        return profile

    def _cached(self, key: tuple[str, str]) -> _Profile | None:
        with self._lock:
            if key in self._profiles:
                self._profiles.move_to_end(key)
                return self._profiles[key]
        return None

    def _fit(self, persona: Persona) -> _Profile:
        refs = self._refs()
        texts = [e for e in persona.examples if chunks(e, self.MIN_WORDS)] or [persona.voice]
        wholes = self._embed([clean(t) for t in texts], refs.centre)
        voice = self._embed([clean(persona.voice) or persona.voice], refs.centre)[0]
        own = self._chunked(texts, refs.centre)
        examples = np.concatenate([np.vstack([w[None, :], c.vectors]) for w, c in zip(wholes, own, strict=True)])
        starts = np.cumsum([0] + [1 + len(c.weights) for c in own[:-1]]).astype(np.intp)
        keep = np.ones(len(REFERENCES), dtype=bool)
        if len(texts) >= 2:
            agreement = wholes @ wholes.T
            np.fill_diagonal(agreement, -np.inf)  # leave one out
            typical = float(np.median(_top_mean(agreement, self.TOP_K)))
            keep = _top_mean(refs.whole @ wholes.T, self.TOP_K) < typical
            keep = keep if keep.any() else np.ones_like(keep)
        contrast = refs.whole[keep]
        kept = [c for c, k in zip(refs.chunked, keep, strict=True) if k]
        profile = _Profile(examples, starts, voice, contrast, off_brand=0.0, in_voice=0.0)
        off_brand = float(np.median([self._text_raw(profile, c, skip_contrast=i) for i, c in enumerate(kept)]))
        in_voice = off_brand + self.MIN_GAP
        if len(texts) >= 2:
            held_out = [self._text_raw(profile, c, skip_example=i) for i, c in enumerate(own)]
            in_voice = max(in_voice, float(np.median(held_out)))
        return _Profile(examples, starts, voice, contrast, off_brand=off_brand, in_voice=in_voice)

    def _refs(self) -> _References:
        with self._lock:
            if self._references is not None:
                return self._references
        pieces = [chunks(r, self.MIN_WORDS) for r in REFERENCES]
        wholes = [clean(r) for r in REFERENCES]
        raw = self._embed([*wholes, *(p for ps in pieces for p in ps)], None)
        centre = raw[: len(wholes)].mean(axis=0)
        vectors = _unit(raw - centre)
        chunked = _assemble(pieces, vectors[len(wholes) :])
        references = _References(centre, vectors[: len(wholes)], tuple(chunked))
        with self._lock:
            self._references = references
        return references

    # -- scoring ---------------------------------------------------------------------------------------------------

    def _raw(
        self, profile: _Profile, vectors: Floats, skip_example: int | None = None, skip_contrast: int | None = None
    ) -> Floats:
        """Per chunk, the raw score; `skip_*` leaves one example or one reference out (the text being scored)."""
        # closeness to an example: to the whole post or to one of its sentences, whichever is higher
        per_example = np.maximum.reduceat(vectors @ profile.examples.T, profile.starts, axis=1)
        if skip_example is not None:
            per_example = np.delete(per_example, skip_example, axis=1)
        contrast = profile.contrast if skip_contrast is None else np.delete(profile.contrast, skip_contrast, axis=0)
        own = (1 - self.VOICE_WEIGHT) * _top_mean(per_example, self.TOP_K)
        own += self.VOICE_WEIGHT * (vectors @ profile.voice)
        if contrast.shape[0]:  # only what is nearer to an off-brand reference than to any of her posts pays
            own -= self.CONTRAST * np.maximum(0.0, (vectors @ contrast.T).max(axis=1) - per_example.max(axis=1))
        return own

    def _text_raw(self, profile: _Profile, text: _Chunked, **skip: int) -> float:
        return float(self._raw(profile, text.vectors, **skip) @ text.weights)

    def _chunk_scores(self, profile: _Profile, text: _Chunked) -> tuple[Floats, Floats]:
        low, high = profile.off_brand, profile.in_voice
        logit_low, logit_high = _logit(self.OFF_BRAND_SCORE), _logit(self.IN_VOICE_SCORE)
        z = logit_low + (logit_high - logit_low) * (self._raw(profile, text.vectors) - low) / (high - low)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))), text.weights

    def _chunked(self, texts: Sequence[str], centre: Floats) -> list[_Chunked]:
        pieces = [chunks(t, self.MIN_WORDS) for t in texts]
        return _assemble(pieces, self._embed([p for ps in pieces for p in ps], centre))

    def _embed(self, texts: Sequence[str], centre: Floats | None) -> Floats:
        """Unit vectors of `texts`, centred first when `centre` is given. e5's "query: " prefix on every text: its
        advice for symmetric similarity (the harm classifier embeds drafts so too)."""
        if self._embedder is None:
            self._embedder = default_embedder()
        if not texts:
            return np.zeros((0, self._embedder.dimension))
        unique = list(dict.fromkeys(texts))  # references are often one chunk: embed each text once
        found = {t: self._embedder.embed_query(t).astype(np.float64) for t in unique}
        vectors = np.stack([found[t] for t in texts])
        return vectors if centre is None else _unit(vectors - centre)


def _assemble(pieces: Sequence[Sequence[str]], vectors: Floats) -> list[_Chunked]:
    """Texts' chunk vectors (all texts' chunks, in order) cut back into one _Chunked per text."""
    out: list[_Chunked] = []
    start = 0
    for ps in pieces:
        words = np.array([max(1, len(_WORD.findall(p))) for p in ps], dtype=np.float64)
        out.append(_Chunked(vectors[start : start + len(ps)], words / words.sum()))
        start += len(ps)
    return out


def _unit(vectors: Floats) -> Floats:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    unit: Floats = vectors / np.where(norms == 0, 1.0, norms)
    return unit


def _logit(p: float) -> float:
    return math.log(p / (1 - p))
