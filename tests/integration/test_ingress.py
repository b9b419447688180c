"""The ingress for real: uvicorn on loopback, the state store on PostgreSQL (as the app role, under row-level
security), Temporal's time-skipping test server with the campaign workflow on scripted activities, and the
sandbox delivering signed webhooks the way `chimera sandbox mention` does (the CLI itself included).

A good delivery signals the campaign (a reply task appears and is published), a bad signature is refused, a
replayed event is refused and not signalled twice, the CRC and subscription checks are answered, and a closed
campaign is not restarted. Fixtures for PostgreSQL come from test_store_postgres.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, text
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from chimera.db import StateStore
from chimera.ingress.credentials import NAMES, load_secrets
from chimera.ingress.sandbox import deliver, push_mention
from chimera.ingress.server import serving
from chimera.settings import Settings
from chimera.temporal_config import TemporalConfig, ensure_search_attributes
from mcp_servers.social.sandbox import SandboxPlatform
from schemas.campaign_run import CampaignInput
from schemas.events import EmergencyStop
from schemas.options import TaskQueues
from tests.helpers import scripted
from tests.helpers.campaigns import running, runtime, status
from tests.helpers.identity import signed
from tests.helpers.polling import eventually
from tests.helpers.scripted import Script
from tests.integration.test_store_postgres import (  # noqa: F401  # fixtures, used by name
    PgDatabase,
    pg,
    pg_available,
)
from workflows.campaign import CampaignWorkflow

SECRET = {"x_consumer_secret": "x-consumer-secret", "meta_app_secret": "meta-app-secret", "meta_verify_token": "vt"}


@pytest.fixture
async def env(test_server_path: str) -> AsyncIterator[WorkflowEnvironment]:
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path, data_converter=pydantic_data_converter
    ) as env:
        await ensure_search_attributes(env.client, TemporalConfig())
        yield env


@pytest.fixture
def settings(tmp_path: Path, pg: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:  # noqa: F811
    monkeypatch.setenv("CHIMERA_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CHIMERA_DATABASE_URL", pg.app_url)
    for name in NAMES:
        monkeypatch.setenv(f"CHIMERA_{name.upper()}", SECRET[name])
    yield Settings()


def mira_spec() -> Any:
    persona = scripted.persona().model_copy(
        update={"handles": {"twitter": "@mira_threads", "instagram": "mira.threads"}}
    )
    return scripted.spec(
        campaign_id=f"spring-{uuid.uuid4().hex[:8]}", persona=persona, platforms=["twitter", "instagram"]
    )


async def start_registered(client: Client, store: StateStore, queue: str) -> WorkflowHandle[Any, Any]:
    """A campaign as `chimera campaign start` makes one: registered in the store, its workflow running."""
    spec = mira_spec()
    await asyncio.to_thread(store.ensure_campaign, spec)  # what the register_campaign activity does
    handle = await client.start_workflow(
        CampaignWorkflow.run,
        CampaignInput(spec=spec, runtime=runtime(queue), max_cycles=2),
        id=spec.workflow_id,
        task_queue=queue,
    )
    await eventually(lambda: _cycle_started(handle), "the first cycle")
    return handle


async def test_webhooks_signal_the_campaign_once_and_refuse_the_rest(
    env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    script = Script(plans=[[]])
    store = StateStore(settings.resolved_database_url)
    sandbox_twitter = SandboxPlatform(settings.sandbox_dir, "twitter")
    sandbox_instagram = SandboxPlatform(settings.sandbox_dir, "instagram")
    secrets = load_secrets(settings)
    try:
        async with running(env.client, script) as queue:
            config = TemporalConfig(task_queues=TaskQueues(planner=queue, worker=queue, judge=queue))
            handle = await start_registered(env.client, store, queue)
            async with (
                serving(settings, config, env.client, store, host="127.0.0.1", port=0) as url,
                httpx.AsyncClient() as http,
            ):
                # The platforms' own checks.
                crc = await http.get(f"{url}/webhooks/x", params={"crc_token": "tok-1"})
                mac = hmac.new(b"x-consumer-secret", b"tok-1", hashlib.sha256).digest()
                assert crc.json() == {"response_token": "sha256=" + base64.b64encode(mac).decode()}
                hub = {"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "8177"}
                assert (await http.get(f"{url}/webhooks/meta", params=hub)).text == "8177"
                hub["hub.verify_token"] = "guess"
                assert (await http.get(f"{url}/webhooks/meta", params=hub)).status_code == 403

                # A mention on X, delivered as the sandbox does: signalled, then answered.
                pushed = await push_mention(
                    sandbox_twitter,
                    "@mira_threads",
                    "ana",
                    "@mira_threads where do you thrift?",
                    http=http,
                    base_url=url,
                    secrets=secrets,
                )
                campaign = f"acme/{handle.id.removeprefix('campaign-acme-')}"
                assert pushed.delivery.status == 200
                assert [(e["outcome"], e["campaign"]) for e in pushed.delivery.events] == [("signalled", campaign)]
                tweet_id = pushed.mention["id"]
                await eventually(lambda: _published(script, tweet_id), "the reply to the pushed mention")

                # The same event again (a platform retry): refused as a repeat, not signalled twice.
                again = await deliver(http, url, "twitter", "@mira_threads", pushed.mention, secrets)
                assert [e["outcome"] for e in again.events] == ["repeat"]

                # Bad or missing signatures: refused, nothing signalled.
                forged = {**secrets.__dict__, "x_consumer_secret": "wrong"}
                bad = await deliver(
                    http,
                    url,
                    "twitter",
                    "@mira_threads",
                    {**pushed.mention, "id": "tw-m-forged"},
                    type(secrets)(**forged),
                )
                assert bad.status == 403
                unsigned = await http.post(f"{url}/webhooks/x", content=b'{"for_user_id": "1"}')
                assert unsigned.status_code == 401
                assert (await status(handle)).mentions_received == 1

                # Instagram, through the CLI (`chimera sandbox mention`), as an operator rehearses it.
                result = await asyncio.to_thread(
                    CliRunner().invoke,
                    _app(),
                    ["sandbox", "mention", "--platform", "instagram", "--author", "bo", "--text", "love this!"],
                    env={"CHIMERA_INGRESS_URL": url, "COLUMNS": "200"},
                )
                assert result.exit_code == 0, result.output
                assert f"signalled campaign {campaign}" in result.output
                comment_id = sandbox_instagram.recent_mentions(1)[0]["id"]
                await eventually(lambda: _published(script, comment_id), "the reply to the pushed comment")
                final = await status(handle)
                assert final.mentions_received == 2 and final.cycle == 1  # answered without a new cycle

                # A closed campaign is not restarted: the mention is left to polling.
                await handle.signal(
                    CampaignWorkflow.emergency_stop,
                    signed(EmergencyStop(request_id="s", actor="t", reason="x"), handle, "emergency_stop"),
                )
                await handle.result()
                late = await push_mention(
                    sandbox_twitter, "@mira_threads", "cy", "still there?", http=http, base_url=url, secrets=secrets
                )
                assert [(e["outcome"], e["campaign"]) for e in late.delivery.events] == [("closed", campaign)]
                assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    finally:
        store.close()


def test_deliveries_and_routes_are_invisible_to_tenants(pg: PgDatabase) -> None:  # noqa: F811
    store = StateStore(pg.app_url)
    try:
        store.ensure_campaign(mira_spec())
        assert store.claim_delivery("twitter", "1", "@mira_threads")
    finally:
        store.close()
    engine = create_engine(pg.app_url)
    try:
        for scope, expected in (("acme", 0), ("", 0), ("_platform", 1)):
            with engine.begin() as conn:
                conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": scope})
                for table in ("webhook_deliveries", "mention_routes"):
                    count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                    assert count == (2 if table == "mention_routes" and expected else expected), (scope, table)
        with engine.begin() as conn:  # a tenant cannot forge a route to itself either
            conn.execute(text("SELECT set_config('app.tenant_id', 'acme', true)"))
            with pytest.raises(Exception, match="row-level security"):
                conn.execute(text("INSERT INTO mention_routes VALUES ('twitter', 'someone', 'acme', 'spring', now())"))
    finally:
        engine.dispose()


async def _cycle_started(handle: WorkflowHandle[Any, Any]) -> bool:
    return (await status(handle)).cycle >= 1


async def _published(script: Script, mention_id: str) -> bool:
    return any(p.reply_to == mention_id for p in script.published)


def _app() -> Any:
    from chimera.cli.app import app

    return app
