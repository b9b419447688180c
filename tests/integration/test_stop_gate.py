"""The stop gate: a stop recorded while a post is going out waits for it, and nothing is sent after the stop
(SQLite and PostgreSQL), and the publish and commit activities refuse once a scope stop covers them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.access import AccessActivities
from activities.content import ContentActivities
from chimera.accounts.directory import AccountDirectory
from chimera.campaign_file import load_campaign
from chimera.db import StateStore
from chimera.db.errors import CampaignHalted
from chimera.db.users import ScopeStop
from chimera.models.offline import OfflineModelProvider
from chimera.settings import default_mcp_servers
from chimera.temporal_config import TemporalConfig
from mcp_servers.social.sandbox import SandboxPlatform
from schemas.activity_table import Failure
from schemas.campaign_run import task_id_for
from schemas.events import ScopeStop as ScopeStopRequest
from schemas.events import StopRecord
from schemas.task import BudgetRequest, PublishInput, TaskRef
from tests.e2e.hanging_twitter import HANG_FILE_ENV
from tests.helpers.mcp_hosts import approved_host
from tests.helpers.polling import eventually
from tests.integration.test_store_postgres import pg, pg_available  # noqa: F401  # fixtures, used by name
from tests.unit.test_store import make_spec

ROOT = Path(__file__).resolve().parents[2]

REF = TaskRef(
    task_id="acme.spring.c1-a", tenant_id="acme", campaign_id="spring", agent_id="mira", campaign_workflow_id="w"
)
OTHER = TaskRef(
    task_id="globex.fall.c1-a", tenant_id="globex", campaign_id="fall", agent_id="zed", campaign_workflow_id="v"
)


def fleet_stop(request_id: str = "s1") -> ScopeStop:
    return ScopeStop(
        request_id=request_id,
        scope="fleet",
        tenant_id=None,
        agent_id=None,
        reason="brand crisis",
        stopped_by="ops",
        stopped_at=datetime.now(UTC),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    """The application's store: SQLite (flock) or PostgreSQL as the app role (advisory locks)."""
    sqlite = f"sqlite:///{tmp_path / 'chimera.db'}"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("pg").app_url
    s = StateStore(url)
    s.ensure_schema()
    yield s
    s.close()


async def test_a_stop_waits_for_the_post_in_flight_and_no_post_follows_it(store: StateStore) -> None:
    sent: list[tuple[str, float]] = []
    in_flight = asyncio.Event()

    async def post(name: str, hold: float) -> None:
        async with store.sending(REF):
            in_flight.set()
            await asyncio.sleep(hold)  # the platform takes its time to answer
            sent.append((name, time.monotonic()))

    first = asyncio.create_task(post("during", 0.8))
    await in_flight.wait()
    stopped_at: list[float] = []

    def stop() -> None:
        _, quiet = store.record_scope_stop(fleet_stop())
        stopped_at.append(time.monotonic())
        assert quiet

    started = time.monotonic()
    await asyncio.to_thread(stop)
    await first
    assert stopped_at[0] - started >= 0.5  # it waited for the post under way
    assert [name for name, at in sent if at > stopped_at[0]] == []
    with pytest.raises(CampaignHalted, match="the fleet was stopped by ops: brand crisis"):
        await post("after", 0.0)
    with pytest.raises(CampaignHalted):
        async with store.sending(OTHER):  # every tenant: it is the fleet
            pass
    assert [name for name, _ in sent] == ["during"]


async def test_a_stop_does_not_wait_forever_for_a_stuck_send(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chimera.db import stop_gate

    monkeypatch.setattr(stop_gate, "STOP_WAIT_SECONDS", 0.3)
    release = threading.Event()

    async def stuck() -> None:
        async with store.sending(REF):
            await asyncio.to_thread(release.wait, 10)

    task = asyncio.create_task(stuck())
    await asyncio.sleep(0.2)
    quiet = await asyncio.to_thread(lambda: store.record_scope_stop(fleet_stop("s2"))[1])
    release.set()
    await task
    assert quiet is False  # recorded anyway, and it says a send was still under way
    assert [s.request_id for s in store.active_stops("acme", "mira")] == ["s2"]


def test_stops_cover_their_scope_only_and_lift(store: StateStore) -> None:
    agent = ScopeStop("a1", "agent", "acme", "mira", "rogue agent", "ops", datetime.now(UTC))
    tenant = ScopeStop("t1", "tenant", "globex", None, "unpaid", "ops", datetime.now(UTC))
    store.record_scope_stop(agent)
    store.record_scope_stop(tenant)
    store.record_scope_stop(agent)  # a retry records it once
    assert [s.request_id for s in store.active_stops("acme", "mira")] == ["a1"]
    assert store.active_stops("acme", "other-agent") == []
    assert [s.request_id for s in store.active_stops("globex", "zed")] == ["t1"]
    assert store.halted(REF) == "agent acme/mira was stopped by ops: rogue agent"
    assert store.lift_scope_stop("agent", "acme", "mira", "root", "fixed") == 1
    assert store.halted(REF) is None and store.halted(OTHER) is not None
    actions = [e.action for e in store.audit_entries("_platform")]
    assert actions.count("agent_stop") == 2 and "tenant_stop" in actions and "agent_stop_lifted" in actions


async def test_after_a_scope_stop_nothing_is_reserved_and_the_activity_records_it(store: StateStore) -> None:
    from activities.budget import BudgetActivities

    access = AccessActivities(store)
    stop = ScopeStopRequest(request_id="s3", actor="ops", scope="tenant", tenant_id="acme", reason="pause all")
    recorded = ActivityEnvironment().run(access.record_scope_stop, StopRecord(stop=stop, actor="root"))
    assert recorded.in_flight_finished
    budget = BudgetActivities(store, {"post": 0.01}, 0.01)
    refused = budget.reserve_budget(BudgetRequest(ref=REF, task_type="post", daily_budget_usd=5.0, timezone="UTC"))
    assert not refused.ok and refused.reason == "tenant acme was stopped by root: pause all: nothing more is spent"
    with pytest.raises(CampaignHalted, match="tenant acme was stopped"):
        async with store.sending(REF):
            raise AssertionError("the gate must refuse before the send")


async def test_a_fleet_stop_during_a_running_publish_lets_no_post_out_after_it(tmp_path: Path) -> None:
    """The real publish activity, the real MCP host and a sandbox twitter server that has accepted the post but
    not answered yet (tests/e2e/hanging_twitter.py): the stop waits for it, and the next publish is refused."""
    spec = load_campaign(ROOT / "examples" / "campaign.yaml", TemporalConfig())
    store = StateStore(f"sqlite:///{tmp_path / 'chimera.db'}")
    AccountDirectory.of(store).claim(spec.tenant_id, spec.agent_id, spec.persona.handles)
    store.ensure_campaign(spec)
    flag = tmp_path / "hang"
    flag.touch()
    hanging = default_mcp_servers()["twitter"].model_copy(
        update={"args": ["-m", "tests.e2e.hanging_twitter"], "env": {HANG_FILE_ENV: str(flag)}}
    )
    host = await approved_host(tmp_path / "sandbox", {"twitter": hanging}, store=store)
    content = ContentActivities(store, host, OfflineModelProvider())
    platform = SandboxPlatform(tmp_path / "sandbox", "twitter", seed=False)

    def publish(key: str) -> PublishInput:
        ref = TaskRef(
            task_id=task_id_for(spec.tenant_id, spec.campaign_id, key),
            tenant_id=spec.tenant_id,
            campaign_id=spec.campaign_id,
            agent_id=spec.agent_id,
            campaign_workflow_id=spec.workflow_id,
        )
        return PublishInput(ref=ref, platform="twitter", text=f"post {key}", idempotency_key=ref.task_id)

    try:
        first = asyncio.create_task(ActivityEnvironment().run(content.publish, publish("c1-a")))
        # The platform has the post; its answer is held back.
        await eventually(lambda: asyncio.to_thread(platform.posts), "the post accepted")
        stopping = asyncio.create_task(asyncio.to_thread(store.record_scope_stop, fleet_stop("outage")))
        await asyncio.sleep(0.7)
        assert not stopping.done() and store.active_stops(spec.tenant_id, spec.agent_id) == []  # it waits
        flag.unlink()
        published = await first
        recorded, quiet = await stopping
        with pytest.raises(ApplicationError) as refused:
            await ActivityEnvironment().run(content.publish, publish("c1-b"))
    finally:
        flag.unlink(missing_ok=True)
        await host.aclose()
    assert quiet and published.post_id == platform.posts()[0]["post_id"]
    assert refused.value.type == Failure.CAMPAIGN_STOPPED
    assert "the fleet was stopped by ops: brand crisis: nothing more is published" in refused.value.message
    after = [p for p in platform.posts() if datetime.fromisoformat(p["created_at"]) > recorded.stopped_at]
    assert after == [] and len(platform.posts()) == 1


async def test_the_gate_also_refuses_a_campaign_stopped_on_its_own(store: StateStore) -> None:
    spec = make_spec()
    store.ensure_campaign(spec)
    ref = TaskRef(
        task_id=f"{spec.tenant_id}.{spec.campaign_id}.c1-a",
        tenant_id=spec.tenant_id,
        campaign_id=spec.campaign_id,
        agent_id=spec.agent_id,
        campaign_workflow_id=spec.workflow_id,
    )
    async with store.sending(ref):
        pass  # running: it may send
    store.set_campaign_status(spec.tenant_id, spec.campaign_id, "stopped", "maya", "legal hold")
    with pytest.raises(CampaignHalted, match=f"campaign {spec.tenant_id}/{spec.campaign_id} was stopped"):
        async with store.sending(ref):
            raise AssertionError("the gate must refuse before the send")
