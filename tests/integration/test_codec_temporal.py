"""End to end on a real Temporal dev server: with the codec on, the server stores only ciphertext, and the
plaintext comes back through the codec, in the SDK and in Temporal's own CLI through the codec server."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from temporalio import activity, workflow

# The sandbox re-imports this module to run PolishDraft: everything but the workflow's own code passes through.
with workflow.unsafe.imports_passed_through():
    import pytest
    from pydantic import BaseModel
    from temporalio.api.common.v1 import Payload
    from temporalio.api.history.v1 import HistoryEvent
    from temporalio.client import Client, WorkflowHistory
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.converter import DataConverter
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker

    from chimera.codec import ENCODING, KEY_ID_HEADER, KeyRing
    from chimera.codec.server import build_app, serving, token_authenticator
    from chimera.secrets import StaticSecrets
    from chimera.settings import Settings
    from chimera.temporal_config import data_converter

SECRET_DRAFT = "Thrifted this blazer for $6, ask me how"
TOKEN = "cli-operator-token"


class Draft(BaseModel):
    persona: str
    text: str


@activity.defn
async def polish(draft: Draft) -> Draft:
    return draft.model_copy(update={"text": draft.text + " #thriftflip"})


@workflow.defn
class PolishDraft:
    @workflow.run
    async def run(self, draft: Draft) -> Draft:
        return await workflow.execute_activity(polish, draft, start_to_close_timeout=timedelta(seconds=30))


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing(active="test-k1", keys={"test-k1": os.urandom(32)})  # a test-only key, made here


@pytest.fixture(scope="module")
def converter(ring: KeyRing) -> DataConverter:
    return data_converter(Settings(payload_encryption="on"), StaticSecrets({"codec-keys": ring.to_json()}))


@pytest.fixture(scope="module")
async def env(dev_server_path: str, converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path, data_converter=converter, ui=False
    ) as env:
        yield env


@pytest.fixture(scope="module")
async def history(env: WorkflowEnvironment) -> WorkflowHistory:
    queue = f"codec-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[PolishDraft], activities=[polish]):
        handle = await env.client.start_workflow(
            PolishDraft.run, Draft(persona="mira", text=SECRET_DRAFT), id=f"codec-{uuid.uuid4()}", task_queue=queue
        )
        result = await handle.result()
    assert result.text == SECRET_DRAFT + " #thriftflip"
    plain = Client(env.client.service_client, namespace=env.client.namespace, data_converter=pydantic_data_converter)
    return await plain.get_workflow_handle(handle.id).fetch_history()


def payloads_of(history: WorkflowHistory) -> list[Payload]:
    """Every payload a workflow's input, activity input/result and workflow result were stored as."""
    found: list[Payload] = []
    for event in history.events:
        for name in (
            "workflow_execution_started_event_attributes",
            "activity_task_scheduled_event_attributes",
            "activity_task_completed_event_attributes",
            "workflow_execution_completed_event_attributes",
        ):
            if event.HasField(name):
                attributes = getattr(event, name)
                carrier = attributes.input if hasattr(attributes, "input") else attributes.result
                found.extend(carrier.payloads)
    return found


def started(history: WorkflowHistory) -> HistoryEvent:
    return history.events[0]


async def test_the_server_stores_only_ciphertext(history: WorkflowHistory) -> None:
    stored = payloads_of(history)
    assert len(stored) == 4  # workflow input, activity input, activity result, workflow result
    for payload in stored:
        assert payload.metadata["encoding"] == ENCODING
        assert payload.metadata[KEY_ID_HEADER] == b"test-k1"
        assert b"Thrifted" not in payload.data and b"mira" not in payload.data
    raw = history.to_json()
    assert "Thrifted" not in raw and "thriftflip" not in raw


async def test_a_plain_client_cannot_read_the_input(history: WorkflowHistory) -> None:
    with pytest.raises(Exception, match="binary/encrypted"):
        pydantic_data_converter.payload_converter.from_payloads(
            started(history).workflow_execution_started_event_attributes.input.payloads, [Draft]
        )


async def test_the_codec_reads_the_plaintext(history: WorkflowHistory, converter: DataConverter) -> None:
    stored = started(history).workflow_execution_started_event_attributes.input.payloads
    [draft] = await converter.decode(stored, [Draft])
    assert draft == Draft(persona="mira", text=SECRET_DRAFT)
    result = history.events[-1].workflow_execution_completed_event_attributes.result.payloads
    [polished] = await converter.decode(result, [Draft])
    assert polished.text == SECRET_DRAFT + " #thriftflip"


async def test_temporal_cli_decodes_through_the_codec_server(
    env: WorkflowEnvironment, history: WorkflowHistory, converter: DataConverter, dev_server_path: str
) -> None:
    """Temporal's own client of the remote codec protocol (the Web UI speaks the same) reads the plaintext."""
    assert converter.payload_codec is not None
    app = build_app(converter.payload_codec, token_authenticator({TOKEN: "cli@ops"}), cors_origins=[])
    address = env.client.service_client.config.target_host
    show = [dev_server_path, "workflow", "show", "--address", address, "-w", history.workflow_id, "-o", "json"]
    async with serving(app, host="127.0.0.1", port=0) as url:
        code, decoded = await run(*show, "--codec-endpoint", url, "--codec-auth", f"Bearer {TOKEN}")
        refused_code, refused = await run(*show, "--codec-endpoint", url, "--codec-auth", "Bearer wrong")
    assert code == 0, decoded
    assert first_input(decoded) == (b"json/plain", {"persona": "mira", "text": SECRET_DRAFT})
    assert refused_code != 0 and SECRET_DRAFT not in refused  # the CLI gives up: the server answered 401


def first_input(shown: str) -> tuple[bytes, object]:
    """The encoding and (if JSON) the value of the workflow's input in `temporal workflow show -o json`."""
    started = json.loads(shown)["events"][0]["workflowExecutionStartedEventAttributes"]
    payload = started["input"]["payloads"][0]
    encoding, data = base64.b64decode(payload["metadata"]["encoding"]), base64.b64decode(payload["data"])
    return encoding, json.loads(data) if encoding == b"json/plain" else data


async def run(*command: str) -> tuple[int, str]:
    """(exit code, stdout) of the CLI; stderr joins stdout on failure, for the message."""
    proc = await asyncio.create_subprocess_exec(
        *command, "--command-timeout", "5s", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    code = proc.returncode or 0
    return code, out.decode() if code == 0 else out.decode() + err.decode()
