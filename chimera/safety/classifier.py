"""A learned harm classifier over the multilingual embeddings Chimera already ships (no extra model, no network).

A text (a mention, a tool result, a draft) is de-obfuscated (`prepare_text`: NFKC, zero-width characters
removed, letters split up with `*`, `-`, `.` joined again, Cyrillic/Greek look-alikes inside Latin words folded),
embedded with multilingual-e5-small as an e5 *query* (`Embedder.embed_query`, i.e. the "query: " prefix e5
recommends for classification), and scored by a multinomial logistic regression over five classes: `benign`,
`injection` (prompt injection and jailbreaks), `abuse` (abuse, threats, hate), `dangerous` (requests for or advice
about dangerous acts) and `scam` (payment scams, phishing, fake giveaways).

Only numpy weights are shipped (chimera/defaults/judge_classifier.npz, written by
scripts/train_judge_classifier.py, with metrics in judge_classifier.json); scikit-learn is used to fit them, never
at run time. Each harm category has its own decision threshold, chosen on the corpus' `dev` split so that few
benign mentions are flagged.

Each text is also scored in what it hides (`hidden_readings`: letters spread out joined again, base64 decoded,
rot13 undone where the text names it), and each harm category takes the worst of those readings.

A text longer than `CHUNK_CHARS` is scored in chunks (at most `MAX_CHUNKS`, from the start) and each harm
category takes its highest chunk score, `benign` its lowest: an injection buried in a long tool result is not
averaged away.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chimera.memory.embedder import Embedder, Vectors, default_embedder
from chimera.safety.normalize import hidden_readings, prepare_text

BENIGN = "benign"
HARM_CATEGORIES: tuple[str, ...] = ("injection", "abuse", "dangerous", "scam")
CLASSES: tuple[str, ...] = (BENIGN, *HARM_CATEGORIES)
# Corpus category (chimera/evaluation/corpus.py) -> classifier class.
CORPUS_TO_CLASS: dict[str, str] = {
    "benign": "benign",
    "injection": "injection",
    "jailbreak": "injection",
    "abuse": "abuse",
    "threat": "abuse",
    "hate": "abuse",
    "dangerous": "dangerous",
    "scam": "scam",
}
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "defaults" / "judge_classifier.npz"
FORMAT_VERSION = 1
CHUNK_CHARS = 600
MAX_CHUNKS = 32
CACHED_CHUNKS = 4096  # chunk probabilities kept (least recently used dropped): at most ~3 MB of text
# A draft is flagged above VOICE_MARGIN x its persona's own examples' score, but the floor never exceeds VOICE_CAP:
# a persona whose examples read as harmful does not make harmful drafts pass.
VOICE_MARGIN = 1.15
VOICE_CAP = 0.9
# Below this benign probability a text is unclear even when no harm category reaches its threshold (the
# probability is split between harms, typical of encoded or mixed payloads): a warm reply to such a mention
# goes to a human. Chosen on the corpus' dev split (specs/judge.md).
UNCLEAR_BENIGN = 0.25


class ClassifierError(RuntimeError):
    """The classifier cannot be used: its weights file is missing or unreadable, or was fitted on another model."""


def embed_texts(embedder: Embedder, texts: Sequence[str]) -> Vectors:
    """(len(texts), dimension): e5 *query* embeddings ("query: " prefix) of texts already `prepare_text`-ed."""
    if not texts:
        return np.zeros((0, embedder.dimension), dtype=np.float32)
    return np.stack([embedder.embed_query(text) for text in texts]).astype(np.float32, copy=False)


def _chunks(text: str) -> list[str]:
    if not text:
        return []
    if len(text) <= CHUNK_CHARS:
        return [text]
    chunks: list[str] = []
    start = 0
    while start < len(text) and len(chunks) < MAX_CHUNKS:
        end = min(start + CHUNK_CHARS, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + CHUNK_CHARS // 2, end)
            end = cut if cut > start else end
        chunks.append(text[start:end].strip())
        start = end
    return [c for c in chunks if c]


@dataclass(frozen=True)
class ClassifierScores:
    """Probabilities per class (`benign` and each harm category) for one text, and the thresholds to flag at."""

    scores: dict[str, float]
    thresholds: Mapping[str, float] = field(default_factory=dict, repr=False)

    def flagged(self, floors: Mapping[str, float] | None = None) -> list[tuple[str, float]]:
        """Harm categories at or above their thresholds (raised to `floors` where given), highest score first."""
        floors = floors or {}
        hits = [
            (c, self.scores[c])
            for c, t in self.thresholds.items()
            if c in self.scores and self.scores[c] >= max(t, floors.get(c, 0.0))
        ]
        return sorted(hits, key=lambda hit: (-hit[1], hit[0]))

    @property
    def benign(self) -> float:
        return self.scores.get(BENIGN, 0.0)

    @property
    def unclear(self) -> bool:
        """Not benign enough to trust, though no harm category is flagged."""
        return self.benign < UNCLEAR_BENIGN and not self.flagged()


class HarmClassifier:
    """Scores texts for injection, abuse, dangerous and scam; safe to share across threads."""

    _default: HarmClassifier | None = None
    _default_lock = threading.Lock()

    def __init__(self, weights_path: Path, embedder: Embedder | None = None) -> None:
        self.weights_path = Path(weights_path)
        coef, intercept, classes, categories, thresholds, model_name, meta = _load(self.weights_path)
        self._coef = coef
        self._intercept = intercept
        self.classes: tuple[str, ...] = classes
        self.categories: tuple[str, ...] = categories
        self.thresholds: dict[str, float] = thresholds
        self.model_name: str = model_name
        self.metadata: dict[str, Any] = meta
        self._embedder = embedder
        self._embedder_lock = threading.Lock()
        self._lock = threading.Lock()  # the caches: voice floors, chunk probabilities
        self._fitting = threading.Lock()  # computing voice floors
        self._floors: dict[tuple[str, ...], dict[str, float]] = {}
        self._cache: OrderedDict[str, NDArray[np.float64]] = OrderedDict()
        if embedder is not None:
            self._check_embedder(embedder)

    @classmethod
    def default(cls) -> HarmClassifier:
        """The shipped weights, loaded once per process; the embedder is the process-wide one, created on first use."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls(DEFAULT_WEIGHTS)
            return cls._default

    def _check_embedder(self, embedder: Embedder) -> None:
        if embedder.model_name != self.model_name:
            raise ClassifierError(
                f"{self.weights_path}: weights were fitted on embeddings of {self.model_name!r}, "
                f"but the embedder is {embedder.model_name!r}; retrain with scripts/train_judge_classifier.py"
            )
        if embedder.dimension != self._coef.shape[1]:
            raise ClassifierError(
                f"{self.weights_path}: weights expect {self._coef.shape[1]}-d embeddings, "
                f"the embedder gives {embedder.dimension}"
            )

    @property
    def embedder(self) -> Embedder:
        with self._embedder_lock:
            if self._embedder is None:
                embedder = default_embedder()
                self._check_embedder(embedder)
                self._embedder = embedder
            return self._embedder

    def probabilities(self, vectors: Vectors) -> NDArray[np.float64]:
        """(n, len(classes)) softmax probabilities for embeddings (rows of `embed_texts`)."""
        logits = np.asarray(vectors, dtype=np.float64) @ self._coef.T + self._intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        probs: NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
        return probs

    def score(self, texts: Sequence[str]) -> list[ClassifierScores]:
        """One `ClassifierScores` per text, in order; an empty (or all-invisible) text scores benign."""
        pieces: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            # What it says, and what it hides (decoded): each harm category takes the worst of them.
            for reading in (prepare_text(text), *hidden_readings(text)):
                for chunk in _chunks(reading):
                    pieces.append(chunk)
                    owner.append(i)
        probs = self._chunk_probabilities(pieces)
        per_text: list[NDArray[np.float64] | None] = [None] * len(texts)
        benign = self.classes.index(BENIGN)
        for row, i in zip(probs, owner, strict=True):
            current = per_text[i]
            if current is None:
                per_text[i] = row.copy()
            else:
                merged = np.maximum(current, row)
                merged[benign] = min(current[benign], row[benign])
                per_text[i] = merged
        out: list[ClassifierScores] = []
        for merged_row in per_text:
            if merged_row is None:
                scores = {c: (1.0 if c == BENIGN else 0.0) for c in self.classes}
            else:
                scores = {c: float(p) for c, p in zip(self.classes, merged_row, strict=True)}
            out.append(ClassifierScores(scores=scores, thresholds=self.thresholds))
        return out

    def _chunk_probabilities(self, pieces: list[str]) -> NDArray[np.float64]:
        """Probabilities per chunk, from a bounded cache where it can: the same news item or persona example is
        read by every campaign's tasks, and the embedder (one lock per process) is the Judge's bottleneck."""
        rows: list[NDArray[np.float64] | None] = []
        with self._lock:
            for piece in pieces:
                row = self._cache.get(piece)
                if row is not None:
                    self._cache.move_to_end(piece)
                rows.append(row)
        missing = sorted({p for p, row in zip(pieces, rows, strict=True) if row is None})
        if missing:
            fresh = dict(zip(missing, self.probabilities(embed_texts(self.embedder, missing)), strict=True))
            with self._lock:
                for piece, row in fresh.items():
                    self._cache[piece] = row
                while len(self._cache) > CACHED_CHUNKS:
                    self._cache.popitem(last=False)
            rows = [fresh[p] if row is None else row for p, row in zip(pieces, rows, strict=True)]
        return np.array(rows, dtype=np.float64).reshape(len(pieces), len(self.classes))

    def score_one(self, text: str) -> ClassifierScores:
        return self.score([text])[0]

    def voice_floors(self, examples: Sequence[str]) -> dict[str, float]:
        """Per category, a little above the highest score of the persona's own example posts: a draft in her voice
        is judged against her voice (a thrift persona's prices read a bit like a sales pitch), not against
        mentions. Cached per set of examples."""
        key = tuple(examples)
        with self._lock:
            cached = self._floors.get(key)
        if cached is not None:
            return cached
        with self._fitting:  # one persona's burst of first drafts waits for one computation
            with self._lock:
                cached = self._floors.get(key)
            if cached is None:
                scored = self.score(list(examples))
                cached = {c: min(VOICE_MARGIN * max((s.scores[c] for s in scored), default=0.0), VOICE_CAP)
                          for c in self.categories}  # fmt: skip
                with self._lock:
                    self._floors[key] = cached
        return cached


def _load(
    path: Path,
) -> tuple[
    NDArray[np.float64], NDArray[np.float64], tuple[str, ...], tuple[str, ...], dict[str, float], str, dict[str, Any]
]:
    if not path.is_file():
        raise ClassifierError(
            f"classifier weights not found at {path}; "
            "create them with .venv/bin/python scripts/train_judge_classifier.py"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            coef = np.asarray(data["coef"], dtype=np.float64)
            intercept = np.asarray(data["intercept"], dtype=np.float64)
            classes = tuple(str(c) for c in data["classes"])
            categories = tuple(str(c) for c in data["categories"])
            threshold_values = [float(t) for t in data["thresholds"]]
            model_name = str(data["model_name"])
            meta = json.loads(str(data["metadata"])) if "metadata" in data.files else {}
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise ClassifierError(f"{path}: not a usable classifier weights file ({exc})") from exc
    if version != FORMAT_VERSION:
        raise ClassifierError(f"{path}: weights format {version}, this code reads format {FORMAT_VERSION}")
    if BENIGN not in classes or coef.shape != (len(classes), coef.shape[1]) or intercept.shape != (len(classes),):
        raise ClassifierError(f"{path}: inconsistent shapes: coef {coef.shape}, intercept {intercept.shape}")
    if len(categories) != len(threshold_values) or not set(categories) <= set(classes):
        raise ClassifierError(f"{path}: thresholds {threshold_values} do not match categories {categories}")
    return coef, intercept, classes, categories, dict(zip(categories, threshold_values, strict=True)), model_name, meta
