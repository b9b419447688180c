"""`chimera stop agent|tenant|fleet` end to end on a dev server (visibility finds the scope's workflows): the
real `authorize`, `record_scope_stop` and `find_in_scope` activities on a real user directory (SQLite), the
rest scripted; every stop alerts a loopback webhook receiver that checks the HMAC signature."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.worker import Worker

from activities.access import AccessActivities
from activities.alerting import AlertSender
from chimera.access.credentials import UserCredentials
from chimera.access.users import add_user
from chimera.alerts.dispatch import AlertDispatcher
from chimera.control.errors import InvalidRequest
from chimera.control.scopes import scope_request, stop_scope
from chimera.db import StateStore
from chimera.db.alerts import SqlDeliveryStore
from chimera.temporal_config import TemporalConfig
from schemas.access import FLEET_SCOPE
from schemas.activity_table import Activities
from schemas.events import CampaignStatus
from schemas.options import TaskQueues
from schemas.payment import PaymentInput, payment_workflow_id
from tests.helpers import scripted
from tests.helpers.campaigns import runtime, start, status, task_handle
from tests.helpers.dev_server import start_dev_server
from tests.helpers.polling import eventually
from tests.helpers.scripted import MEDIUM, Script, post
from tests.integration.test_notifiers import Receiver, webhook
from tests.integration.test_notifiers import receiver as receiver  # the fixture, used by name
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow
from workflows.payment import PaymentWorkflow
from workflows.scope_stop import ScopeStopWorkflow

REAL = {Activities.authorize.name, Activities.record_scope_stop.name, Activities.find_in_scope.name}


@pytest.fixture
async def client(dev_server_path: str) -> AsyncIterator[Client]:
    async with await start_dev_server(dev_server_path) as env:
        yield env.client


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore(f"sqlite:///{tmp_path / 'chimera.db'}")
    s.ensure_schema()
    return s


class People:
    def __init__(self, store: StateStore, tenants: tuple[str, str]) -> None:
        self.root = add_user(store, "root", FLEET_SCOPE, "administrator", by=None, bootstrap=True)
        a, b = tenants
        self.a_admin = add_user(store, "a-admin", a, "administrator", by=self.root)
        self.a_manager = add_user(store, "a-manager", a, "campaign_manager", by=self.root)
        self.b_admin = add_user(store, "b-admin", b, "administrator", by=self.root)


async def stop(client: Client, queue: str, creds: UserCredentials, scope: Any, tenant: str | None = None,
               agent: str | None = None, *, lift: bool = False) -> Any:  # fmt: skip
    config = TemporalConfig(task_queues=TaskQueues(planner=queue, worker=queue, judge=queue))
    request = scope_request(scope, tenant, agent, f"{scope} drill", lift=lift)
    return await stop_scope(client, config, request, credentials=creds, within=60)


async def ended(handle: WorkflowHandle[Any, Any]) -> CampaignStatus | None:
    desc = await handle.describe()
    return await handle.result() if desc.status == WorkflowExecutionStatus.COMPLETED else None


async def test_stops_reach_exactly_their_scope_and_alert(client: Client, store: StateStore, receiver: Receiver) -> None:
    tenants = (f"ta-{uuid.uuid4().hex[:6]}", f"tb-{uuid.uuid4().hex[:6]}")
    people = People(store, tenants)
    alerts = AlertSender(AlertDispatcher([webhook(receiver.url)], SqlDeliveryStore(store.database)), store)
    access = AccessActivities(store, alerts)
    # Each campaign keeps a review pending; a payment of tenant a waits for a finance approver.
    script = Script(plans=[[post("rv")]], default_scores=MEDIUM, payment_facts={"review_above_units": 1})
    scripted_ones = [a for a in script.activities() if activity._Definition.must_from_callable(a).name not in REAL]
    queue = f"q-{uuid.uuid4()}"
    with ThreadPoolExecutor(8) as threads:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[CampaignWorkflow, ContentTaskWorkflow, ScopeStopWorkflow, PaymentWorkflow],
            activities=[*scripted_ones, access.authorize, access.record_scope_stop, access.find_in_scope],
            activity_executor=threads,
        ):
            a1 = await start(client, queue, scripted.spec(tenant_id=tenants[0], campaign_id="one"), max_cycles=None)
            a2 = await start(client, queue, scripted.spec(tenant_id=tenants[0], campaign_id="two"), max_cycles=None)
            b1 = await start(client, queue, scripted.spec(tenant_id=tenants[1], campaign_id="one"), max_cycles=None)
            review_a1 = await task_handle(client, a1, "rv")
            await task_handle(client, b1, "rv")
            pay = PaymentInput(
                payment_id="waiting",
                tenant_id=tenants[0],
                campaign_id="one",
                agent_id="mira-okafor",
                kind="address",
                to=scripted.PAYEE,
                amount_units=500_000,
                purpose="promote the thrift-flip challenge",
                requested_by="a-manager",
                runtime=runtime(queue),
            )
            payment = await client.start_workflow(
                PaymentWorkflow.run, pay, id=payment_workflow_id(pay.tenant_id, pay.payment_id), task_queue=queue
            )

            async def visible() -> bool:  # visibility lags the starts by a moment
                rows = [
                    e async for e in client.list_workflows(f"TenantId = '{tenants[0]}' AND ExecutionStatus = 'Running'")
                ]
                return len(rows) >= 5  # two campaigns, two tasks, a payment

            await eventually(visible)
            not_fleet = await stop(client, queue, people.a_admin, "fleet")
            not_theirs = await stop(client, queue, people.a_admin, "tenant", tenants[1])
            not_manager = await stop(client, queue, people.a_manager, "tenant", tenants[0])
            tenant_a = await stop(client, queue, people.a_admin, "tenant", tenants[0])
            a1_final, a2_final = await eventually(lambda: ended(a1)), await eventually(lambda: ended(a2))
            task_outcome = await review_a1.result()
            payment_outcome = await payment.result()
            b_running = await status(b1)
            fleet = await stop(client, queue, people.root, "fleet")
            b1_final = await eventually(lambda: ended(b1))
            lift_refused = await stop(client, queue, people.b_admin, "fleet", lift=True)
            lifted = await stop(client, queue, people.root, "fleet", lift=True)
    assert not not_fleet.accepted and "only the fleet's operators" in not_fleet.message
    assert not not_theirs.accepted and not_theirs.message == f"a-admin acts for tenant {tenants[0]}, not {tenants[1]}"
    assert not not_manager.accepted and "tenant.stop needs an administrator" in not_manager.message
    assert tenant_a.accepted and len(tenant_a.campaigns) == 2 and tenant_a.actor == "a-admin"
    assert a1_final.state == a2_final.state == "stopped"
    assert a1_final.stop_reason == f"tenant:{tenants[0]} stopped: tenant drill"
    assert task_outcome.status == "cancelled" or task_outcome.status == "rejected", task_outcome
    assert payment_outcome.status == "cancelled" and "stopped" in payment_outcome.reason
    assert payment.id in tenant_a.tasks
    assert b_running.state == "running"  # the other tenant was not touched
    assert fleet.accepted and b1.id in fleet.campaigns and b1_final.state == "stopped"
    assert not lift_refused.accepted and "only the fleet's operators" in lift_refused.message
    assert lifted.accepted and "1 stop(s) lifted" in lifted.message
    assert store.active_stops(tenants[0], "mira-okafor")[0].scope == "tenant"  # the tenant stop stays until lifted
    kinds = [body["alert"]["alert_id"].split(":")[:2] for _, body in receiver.accepted]
    assert kinds == [["stop", "tenant"], ["stop", "fleet"], ["stop_lifted", "fleet"]]
    assert receiver.refused == []
    refused = [e for e in store.audit_entries(tenants[0]) if e.action == "request_refused"]
    assert [e.actor for e in refused] == ["a-manager"]


def test_a_malformed_scope_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(InvalidRequest, match="a tenant stop names the tenant"):
        scope_request("tenant", None, None, "x", lift=False)
    with pytest.raises(InvalidRequest, match="reason"):
        scope_request("fleet", None, None, "", lift=False)
    with pytest.raises(InvalidRequest, match="tenant_id"):
        scope_request("tenant", "Bad Tenant'", None, "x", lift=False)
