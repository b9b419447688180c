"""A real anvil for chain tests: skipped loudly without the binary (`make chain`), a failure when CI is set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from chimera.chain.anvil import Anvil, AnvilNotInstalledError, find_anvil


def running_anvil(**options: Any) -> Iterator[Anvil]:
    """For a fixture: `yield from running_anvil()`; `options` go to Anvil (e.g. chain_id)."""
    try:
        binary = find_anvil()
    except AnvilNotInstalledError as exc:
        message = f"anvil NOT TESTED: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with Anvil(binary=binary, **options) as running:
        yield running
