"""Fixtures for workflow tests: the time-skipping test server, fresh per test.

A fresh server per test keeps one test's timers and open workflows from stalling another's
time skipping (the Java test server shares one clock across everything it runs).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from chimera.temporal_config import TemporalConfig, ensure_search_attributes


@pytest.fixture
async def env(test_server_path: str) -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path, data_converter=pydantic_data_converter
    ) as env:
        await ensure_search_attributes(env.client, TemporalConfig())  # the test server needs them registered
        yield env


@pytest.fixture(autouse=True)
def _signed_in(signed_in_as_admin: None) -> None:
    """Every workflow test's control functions sign as the scripted directory's administrator."""
