"""Budgets bind on what was really spent: the real budget activities over a real (SQLite) store, with a writer
whose calls cost what a live model's would. Once settled costs fill the day's budget, new tasks are refused."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.budget import BudgetActivities
from activities.spend import CallLedger
from chimera.db import StateStore
from chimera.models.base import CallRecord
from schemas.activity_table import Activities
from schemas.campaign_run import CampaignInput
from schemas.events import CampaignStatus
from schemas.models import CostLine, TokenUsage
from schemas.plan import Usage
from schemas.task import ContentTaskInput, StateRead, TaskResult
from tests.helpers import scripted
from tests.helpers.campaigns import runtime
from tests.helpers.scripted import Script, post
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow

CALL_USD = 0.40  # what each draft's model calls cost (the reservation estimate is only $0.01)


def costly_writer(store: StateStore) -> Any:
    ledger = CallLedger(store)

    @activity.defn(name=Activities.execute_task.name)
    async def execute_task(inp: ContentTaskInput) -> TaskResult:
        tokens = TokenUsage(input_tokens=20_000, output_tokens=12_000)
        line = CostLine(
            key=f"{inp.ref.task_id}/a1/c1", tier="post", provider="anthropic", model="claude-fable-5-2",
            tokens=tokens, cost_usd=CALL_USD,
        )  # fmt: skip
        await ledger.keep(inp.ref, [CallRecord(line=line)], inp.timezone)
        return TaskResult(
            text=f"draft for {inp.task.key}",
            platform=inp.task.platform,
            # The result claims nothing: settling must take the ledger's figure, not the result's.
            usage=Usage(model="claude-fable-5-2", provider="anthropic", tier="post"),
            model_probability=0.95,
            read_set=[StateRead(key=f"topic:{inp.task.key}", version=0)],
            write_keys=[f"topic:{inp.task.key}"],
        )

    return execute_task


async def test_settled_costs_exhaust_the_budget_and_stop_new_tasks(env: WorkflowEnvironment, tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'chimera.db'}")
    budget = BudgetActivities(store, {"post": 0.01}, 0.01)
    chain = [post("t1"), post("t2", depends_on=["t1"]), post("t3", depends_on=["t2"]), post("t4", depends_on=["t3"])]
    script = Script(plans=[chain])
    replaced = {Activities.reserve_budget.name, Activities.settle_budget.name, Activities.execute_task.name}
    activities = [a for a in script.activities() if activity._Definition.must_from_callable(a).name not in replaced]
    activities += [budget.reserve_budget, budget.settle_budget, costly_writer(store)]
    spec = scripted.spec(daily_budget_usd=1.0).model_copy(update={"campaign_id": f"spend-{uuid.uuid4().hex[:8]}"})
    store.ensure_campaign(spec)
    queue = f"q-{uuid.uuid4()}"
    client: Client = env.client
    with ThreadPoolExecutor(4) as threads:  # the budget activities are synchronous (database) activities
        async with Worker(
            client,
            task_queue=queue,
            workflows=[CampaignWorkflow, ContentTaskWorkflow],
            activities=activities,
            activity_executor=threads,
        ):
            handle = await client.start_workflow(
                CampaignWorkflow.run,
                CampaignInput(spec=spec, runtime=runtime(queue), max_cycles=1),
                id=spec.workflow_id,
                task_queue=queue,
            )
            final: CampaignStatus = await handle.result()
    by_key = {t.key: t for t in final.tasks}
    # $0.40 settles per task: t1 and t2 fit, t3 reserves at $0.80 + $0.01 and settles at $1.20, t4 is refused.
    assert [by_key[f"c1-t{i}"].status for i in (1, 2, 3)] == ["published"] * 3
    assert by_key["c1-t4"].status == "budget_exhausted"
    assert "would be exceeded" in by_key["c1-t4"].reason and "$1.2" in by_key["c1-t4"].reason
    assert [store.owner_cost(spec.tenant_id, by_key[f"c1-t{i}"].task_id) for i in (1, 2, 3)] == [CALL_USD] * 3
    assert store.spend_today(spec.tenant_id, spec.campaign_id, spec.timezone).spent_usd == 1.2
