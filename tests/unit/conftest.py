"""Unit-test fixtures shared across files."""

from __future__ import annotations

import pytest

from chimera.memory import E5Embedder


@pytest.fixture(scope="session")
def embedder() -> E5Embedder:
    """The real offline embedding model, loaded once per test session."""
    return E5Embedder()
