"""Persona similarity: how much a text sounds like the persona, from 0 (not at all) to 1.

`PersonaSimilarity` is the pluggable interface the Judge scores with; its implementation is
`EmbeddingPersonaSimilarity` (chimera/persona_similarity.py: e5 embeddings calibrated per persona). The TF-IDF
scorer it replaced saturated at 1.0 for most text that reused the persona's vocabulary.
"""

from __future__ import annotations

from typing import Protocol

from schemas.persona import Persona


class PersonaSimilarity(Protocol):
    def score(self, persona: Persona, text: str) -> float:
        """0..1: how much `text` sounds like `persona`."""
        ...
