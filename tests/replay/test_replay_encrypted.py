"""Encrypted histories replay with the codec, and only with it.

A short campaign (one cycle, one post) runs on the time-skipping server with payloads encrypted under a
test-only key made here; its histories then replay on today's workflow code through the codec. Without the
key, replay fails and says which key it needs.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

with workflow.unsafe.imports_passed_through():
    from chimera.codec import ENCODING, KeyRing
    from chimera.secrets import StaticSecrets
    from chimera.settings import Settings
    from chimera.temporal_config import TemporalConfig, data_converter, ensure_search_attributes
    from schemas.events import CampaignStatus
    from tests.helpers import scripted
    from tests.helpers.campaigns import running, start, status
    from tests.helpers.scripted import Script, post

from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow


def converter_for(ring: KeyRing) -> DataConverter:
    return data_converter(Settings(payload_encryption="on"), StaticSecrets({"codec-keys": ring.to_json()}))


@dataclass(frozen=True)
class Recorded:
    ring: KeyRing
    campaign: WorkflowHistory
    task: WorkflowHistory


@pytest.fixture(scope="module")
async def recorded(test_server_path: str) -> AsyncIterator[Recorded]:
    ring = KeyRing(active="replay-test", keys={"replay-test": os.urandom(32)})
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path, data_converter=converter_for(ring)
    ) as env:
        await ensure_search_attributes(env.client, TemporalConfig())
        async with running(env.client, Script(plans=[[post("tw")]])) as queue:
            handle = await start(env.client, queue, scripted.spec())
            final: CampaignStatus = await handle.result()
            assert final.tasks_by_state == {"published": 1}
            [task_id] = [t.task_id for t in (await status(handle)).tasks]
        campaign = await handle.fetch_history()
        task = await env.client.get_workflow_handle(task_id).fetch_history()
        yield Recorded(ring=ring, campaign=campaign, task=task)


def replayer(converter: DataConverter) -> Replayer:
    return Replayer(workflows=[CampaignWorkflow, ContentTaskWorkflow], data_converter=converter)


def test_the_recorded_histories_are_encrypted(recorded: Recorded) -> None:
    for history in (recorded.campaign, recorded.task):
        started = history.events[0].workflow_execution_started_event_attributes
        assert started.input.payloads[0].metadata["encoding"] == ENCODING
        assert "Thrifted" not in history.to_json() and "Mira" not in history.to_json()


@pytest.mark.parametrize("which", ["campaign", "task"])
async def test_replays_with_the_codec(recorded: Recorded, which: str) -> None:
    history: WorkflowHistory = getattr(recorded, which)
    result = await replayer(converter_for(recorded.ring)).replay_workflow(history)
    assert result.replay_failure is None


async def test_replays_after_rotation(recorded: Recorded) -> None:
    """A newer key is active; the recorded payloads still decrypt with the kept old key."""
    rotated = KeyRing(active="newer", keys={**recorded.ring.keys, "newer": os.urandom(32)})
    result = await replayer(converter_for(rotated)).replay_workflow(recorded.task)
    assert result.replay_failure is None


async def test_replay_without_the_key_fails_naming_it(recorded: Recorded) -> None:
    other = KeyRing(active="someone-else", keys={"someone-else": os.urandom(32)})
    with pytest.raises(Exception, match="key 'replay-test', which is not in this process's key ring"):
        await replayer(converter_for(other)).replay_workflow(recorded.task)


async def test_replay_without_any_codec_fails(recorded: Recorded) -> None:
    with pytest.raises(Exception, match="binary/encrypted"):
        await replayer(pydantic_data_converter).replay_workflow(recorded.campaign)


async def test_the_same_client_reads_its_results(recorded: Recorded) -> None:
    """Not only replay: the result payload of the recorded campaign decodes to the status it returned."""
    completed = recorded.campaign.events[-1].workflow_execution_completed_event_attributes
    [final] = await converter_for(recorded.ring).decode(completed.result.payloads, [CampaignStatus])
    assert final.tasks_by_state == {"published": 1}
