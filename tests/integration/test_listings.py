"""`campaign list` and `review list` from visibility: rows without a worker, pages, marks, `--check`.

On the Temporal dev server (the time-skipping server has no visibility), with the real workflows on
scripted activities. Each test uses a tenant of its own, so the listings see only its workflows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner, Result

from chimera.cli.app import app
from chimera.control import campaigns, listing, reviews
from chimera.control.errors import InvalidRequest
from chimera.control.listing import Page
from chimera.temporal_config import TemporalConfig
from schemas.campaign import CampaignSpec
from schemas.options import TaskQueues
from schemas.policy import ConfidenceComponents, JudgeScores, SafetyFlag
from tests.helpers import scripted
from tests.helpers.campaigns import running
from tests.helpers.dev_server import start_dev_server
from tests.helpers.polling import eventually
from tests.helpers.scripted import MEDIUM, Script, post
from workflows import search_attributes as sa

WEEK = 7 * 24 * 3600
runner = CliRunner()

pytestmark = pytest.mark.usefixtures("signed_in_as_admin")


@pytest.fixture(scope="module")
async def dev_env(dev_server_path: str) -> AsyncIterator[WorkflowEnvironment]:
    async with await start_dev_server(dev_server_path) as dev:
        yield dev


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def spec(tenant: str, name: str, **overrides: Any) -> CampaignSpec:
    return scripted.spec(tenant_id=tenant, campaign_id=name, cycle_interval_seconds=WEEK, **overrides)


async def start(client: Client, queue: str, campaign: CampaignSpec) -> None:
    queues = TaskQueues(planner=queue, worker=queue, judge=queue)
    inp = campaigns.campaign_input(campaign, TemporalConfig(task_queues=queues), child_summaries=False)
    await campaigns.start_campaign(client, inp)


async def start_unpolled(client: Client, workflow_type: str, workflow_id: str, *pairs: SearchAttributePair[Any]) -> str:
    """A workflow no worker will ever run: its visibility row holds only the attributes given here."""
    queue = f"q-nobody-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        workflow_type, id=workflow_id, task_queue=queue, search_attributes=TypedSearchAttributes(list(pairs))
    )
    return queue


async def settled(read: Callable[[], Awaitable[Page[Any]]], check: Callable[[Page[Any]], bool]) -> Page[Any]:
    """Visibility lags about a second: read until the listing shows what the workflows did."""

    async def ready() -> Page[Any] | None:
        page = await read()
        return page if check(page) else None

    return await eventually(ready, "visibility to catch up", within=30.0, every=0.3)


async def every_page(read: Callable[[str | None], Awaitable[Page[Any]]]) -> list[Page[Any]]:
    pages = [await read(None)]
    while pages[-1].next_page:
        pages.append(await read(pages[-1].next_page))
        assert len(pages) < 50, "the pages never end"
    return pages


async def runs_of(client: Client, workflow_id: str, n: int) -> bool:
    return len([e async for e in client.list_workflows(f"WorkflowId = '{workflow_id}'")]) == n


async def cycle_started(client: Client, ref: str) -> bool:
    return (await campaigns.campaign_status(client, ref)).cycle >= 1


class Cli:
    """`chimera ...` against the dev server, in a thread (each command runs its own event loop)."""

    def __init__(self, client: Client, tmp_path: Path) -> None:
        config = tmp_path / "temporal.yaml"
        config.write_text(yaml.safe_dump({"task_queues": {"planner": "q-cli"}}))
        self.env = {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "CHIMERA_TEMPORAL_CONFIG": str(config),
            "COLUMNS": "250",
        }

    async def __call__(self, *args: str) -> Result:
        return await asyncio.to_thread(runner.invoke, app, list(args), env=self.env)

    async def json(self, *args: str, code: int = 0) -> Any:
        result = await self(*args, "--json")
        assert result.exit_code == code, result.output
        return json.loads(result.stdout)


# --- campaign list ---------------------------------------------------------------------------------


async def test_campaign_rows_come_from_search_attributes_and_say_what_is_unknown(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = dev_env.client
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM)  # one draft waits for review per campaign
    async with running(client, script) as queue:
        for name in ("live", "held", "ended"):
            await start(client, queue, spec(tenant, name))
        for name in ("live", "held", "ended"):  # steer them once their first cycle has started
            await eventually(partial(cycle_started, client, f"{tenant}/{name}"))
        assert (await campaigns.change_campaign(client, f"{tenant}/held", "pause", actor="t")).accepted
        await campaigns.change_campaign(client, f"{tenant}/ended", "emergency_stop", reason="brand crisis", actor="t")

        def published(page: Page[Any]) -> bool:
            by_name = {r.campaign_id: (r.state, r.cycle) for r in page.rows}
            return by_name == {"live": ("running", 1), "held": ("paused", 1), "ended": ("stopped", 1)}

        await settled(lambda: campaigns.list_campaigns(client, tenant=tenant), published)
        checked = await settled(
            lambda: campaigns.list_campaigns(client, tenant=tenant, check=True),
            lambda p: any(r.campaign_id == "live" and r.pending_reviews == 1 for r in p.rows),
        )
        live = next(r for r in checked.rows if r.campaign_id == "live")
        assert live.checked and live.pending_reviews == 1 and live.check_error is None and live.note is None
    # The worker is gone; a run from before the state attributes, and a terminated one, join them.
    old_queue = await start_unpolled(
        client,
        "CampaignWorkflow",
        f"campaign-{tenant}-old",
        SearchAttributePair(sa.TENANT_ID, tenant),
        SearchAttributePair(sa.AGENT_ID, "mira-okafor"),
        SearchAttributePair(sa.CAMPAIGN_ID, "old"),
    )
    await start(client, f"q-nobody-{uuid.uuid4().hex[:8]}", spec(tenant, "gone"))
    await client.get_workflow_handle(f"campaign-{tenant}-gone").terminate("test")

    page = await settled(lambda: campaigns.list_campaigns(client, tenant=tenant), lambda p: len(p.rows) == 5)
    rows = {r.campaign_id: r for r in page.rows}
    assert page.total == 5 and page.next_page is None
    assert [(rows[n].status, rows[n].state, rows[n].cycle) for n in ("live", "held", "ended")] == [
        ("running", "running", 1),
        ("running", "paused", 1),
        ("completed", "stopped", 1),
    ]
    assert all(rows[n].note is None and not rows[n].checked for n in ("live", "held", "ended"))
    assert rows["old"].status == "running" and rows["old"].state is None
    assert rows["old"].note is not None and rows["old"].note.startswith("state not recorded")
    assert "campaign-state-search-attributes" in rows["old"].note and "--check" in rows["old"].note
    assert rows["gone"].status == "terminated"
    assert (
        rows["gone"].note == "the workflow terminated: the campaign did not record how it ended; it recorded no state"
    )
    assert [r.status for r in page.rows][:3] == ["running"] * 3  # running ones first

    # --check without a worker: every running row says why it could not be asked.
    monkeypatch.setattr(listing, "CHECK_TIMEOUT", 1.0)
    checked = await campaigns.list_campaigns(client, tenant=tenant, check=True)
    rows = {r.campaign_id: r for r in checked.rows}
    assert rows["old"].check_error == f"no worker polls task queue '{old_queue}': `chimera worker --role planner`"
    for name in ("live", "held"):  # the worker just left: its queue still looks polled, so the query times out
        error = rows[name].check_error
        assert error is not None and ("no worker answered within 1 s" in error or "no worker polls" in error), error
        assert rows[name].state is not None and not rows[name].checked  # the attribute still stands
    ended = rows["ended"]  # completed: its final status is in its history, no worker needed
    assert ended.checked and ended.stop_reason == "brand crisis" and ended.check_error is None
    assert rows["gone"].check_error is None and not rows["gone"].checked

    cli = Cli(client, tmp_path)
    text = await cli("campaign", "list", "--tenant", tenant)
    assert text.exit_code == 0, text.output
    assert f"{tenant}/old" in text.stdout and "state not recorded: this run has not published" in text.stdout
    assert "the workflow terminated" in text.stdout and "state paused · cycle 1" in text.stdout
    assert "campaigns 1-5 of 5" in text.stdout and "next page" not in text.stdout
    unchecked = await cli("campaign", "list", "--tenant", tenant, "--check")
    assert unchecked.exit_code == 4 and "not checked: no worker polls task queue" in unchecked.stdout
    assert "could not be checked" in unchecked.stderr
    stopped = await cli.json("campaign", "list", "--tenant", tenant, "--state", "stopped")
    assert [r["campaign_id"] for r in stopped["rows"]] == ["ended"] and stopped["total"] == 1
    bad_state = await cli("campaign", "list", "--state", "asleep")
    assert bad_state.exit_code == 2 and "unknown state 'asleep'" in bad_state.stderr


@workflow.defn(name="CampaignWorkflow", sandboxed=False)
class ContinuingCampaign:
    """Stands in for a campaign that continued as new: each run leaves a closed ContinuedAsNew row."""

    @workflow.run
    async def run(self, runs_left: int) -> None:
        workflow.upsert_search_attributes([sa.CAMPAIGN_STATE.value_set("running"), sa.CAMPAIGN_CYCLE.value_set(9)])
        if runs_left:
            workflow.continue_as_new(runs_left - 1)
        await workflow.wait_condition(lambda: False)


async def test_campaign_pages_return_every_campaign_exactly_once(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path
) -> None:
    client = dev_env.client
    for n in range(6):  # no worker needed: a listing reads only the attributes set at start
        await start(client, f"q-nobody-{uuid.uuid4().hex[:8]}", spec(tenant, f"c{n}"))
    queue = f"q-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=queue, workflows=[ContinuingCampaign]):
        handle = await client.start_workflow(
            ContinuingCampaign.run,
            3,
            id=f"campaign-{tenant}-long",
            task_queue=queue,
            search_attributes=TypedSearchAttributes([SearchAttributePair(sa.TENANT_ID, tenant)]),
        )
        await eventually(lambda: runs_of(client, handle.id, 4), "three continue-as-new")
    every = await settled(
        lambda: campaigns.list_campaigns(client, tenant=tenant, limit=None),
        lambda p: p.total == 7 and any(r.cycle == 9 for r in p.rows),
    )
    assert len(every.rows) == 7 and every.next_page is None
    assert [r.status for r in every.rows if r.workflow_id == handle.id] == ["running"]  # its latest run only

    pages = await every_page(lambda token: campaigns.list_campaigns(client, tenant=tenant, limit=3, page=token))
    assert [len(p.rows) for p in pages] == [3, 3, 1] and [p.offset for p in pages] == [0, 3, 6]
    ids = [r.workflow_id for p in pages for r in p.rows]
    assert ids == [r.workflow_id for r in every.rows] and len(set(ids)) == 7

    cli = Cli(client, tmp_path)
    first = await cli("campaign", "list", "--tenant", tenant, "--limit", "3")
    assert first.exit_code == 0 and "campaigns 1-3 of 7" in first.stdout
    hint = f"next page: `chimera campaign list --tenant {tenant} --limit 3 --page {pages[0].next_page}`"
    assert hint in first.stdout
    second = await cli.json("campaign", "list", "--tenant", tenant, "--limit", "3", "--page", str(pages[0].next_page))
    assert [r["workflow_id"] for r in second["rows"]] == ids[3:6] and second["offset"] == 3
    assert (await cli("campaign", "list", "--page", "r.e30")).exit_code == 2  # a review list token
    assert (await cli("campaign", "list", "--all", "--page", str(pages[0].next_page))).exit_code == 2


# --- review list ------------------------------------------------------------------------------------


async def reviews_page(client: Client, tenant: str, limit: int, token: str | None) -> Page[reviews.ReviewRow]:
    return await reviews.list_reviews(client, tenant, limit=limit, page=token)


def scores(persona_similarity: float) -> JudgeScores:
    # Confidence 0.62 + 0.3 * persona_similarity: 0.80-0.86, inside the escalation band.
    components = ConfidenceComponents(
        model_probability=0.85, persona_similarity=persona_similarity, safety=1.0, historical_success=0.8
    )
    return JudgeScores(components=components)


SIMILARITY = {"ka": 0.7, "kb": 0.65, "kc": 0.7, "kd": 0.6, "ke": 0.75, "kf": 0.65, "kg": 0.8, "kh": 0.6, "ki": 0.72}


async def test_review_pages_come_lowest_confidence_first_each_review_once(
    dev_env: WorkflowEnvironment, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = dev_env.client
    script = Script(plans=[[post(k) for k in SIMILARITY]], scores={k: scores(s) for k, s in SIMILARITY.items()})
    async with running(client, script) as queue:
        await start(client, queue, spec(tenant, "busy", max_tasks_per_cycle=len(SIMILARITY)))
        await settled(lambda: reviews.list_reviews(client, tenant, limit=None), lambda p: p.total == len(SIMILARITY))
        checked = await reviews.list_reviews(client, tenant, limit=4, check=True)
        assert all(r.checked and r.review is not None and r.review.state == "pending" for r in checked.rows)
        assert {r.review.text for r in checked.rows if r.review} <= {f"draft for c1-{k}" for k in SIMILARITY}
    # Two drafts with no confidence (e.g. escalated by an older build): they come first.
    for key in ("nx", "ny"):
        await start_unpolled(
            client,
            "ContentTaskWorkflow",
            f"{tenant}.busy.{key}",
            SearchAttributePair(sa.TENANT_ID, tenant),
            SearchAttributePair(sa.CAMPAIGN_ID, "busy"),
            SearchAttributePair(sa.REVIEW_STATE, "pending"),
        )
    total = len(SIMILARITY) + 2
    every = await settled(lambda: reviews.list_reviews(client, tenant, limit=None), lambda p: p.total == total)
    expected = [f"{tenant}.busy.nx", f"{tenant}.busy.ny"] + [
        f"{tenant}.busy.c1-{k}" for k in sorted(SIMILARITY, key=lambda k: (SIMILARITY[k], k))
    ]
    assert [r.task_id for r in every.rows] == expected  # (confidence, task id); none recorded first
    assert every.rows[0].note == "confidence not recorded; `--check` reads the verdict"
    assert every.rows[2].confidence == pytest.approx(0.62 + 0.3 * 0.6)

    for window in (reviews.WINDOW, 1):  # 1: narrow by counting on every page, ties included
        monkeypatch.setattr(reviews, "WINDOW", window)
        for limit in (2, 3):
            pages = await every_page(partial(reviews_page, client, tenant, limit))
            ids = [r.task_id for p in pages for r in p.rows]
            assert ids == expected, (window, limit)
            assert [p.offset for p in pages] == list(range(0, total, limit))
            assert all(p.total == total for p in pages)

    assert (await reviews.list_reviews(client, campaign=f"{tenant}/busy", limit=None)).total == total
    assert (await reviews.list_reviews(client, tenant, campaign="other", limit=None)).rows == []
    with pytest.raises(InvalidRequest, match="not a page token of `review list`"):
        await reviews.list_reviews(client, tenant, page="c.e30")

    # The worker is gone: the rows are all there; --check says why it could not add the drafts.
    monkeypatch.setattr(listing, "CHECK_TIMEOUT", 1.0)
    cli = Cli(client, tmp_path)
    text = await cli("review", "list", "--tenant", tenant, "--limit", "3")
    assert text.exit_code == 0, text.output
    assert text.stdout.index(expected[0]) < text.stdout.index(expected[1]) < text.stdout.index(expected[2])
    assert "pending reviews 1-3 of 11" in text.stdout and "--tenant " + tenant + " --limit 3 --page r." in text.stdout
    assert "confidence 0.80" in text.stdout and "post on twitter" in text.stdout
    unchecked = await cli.json("review", "list", "--tenant", tenant, "--limit", "3", "--check", code=4)
    errors = [r["check_error"] for r in unchecked["rows"]]
    assert all(e and e.startswith("no worker") for e in errors), errors


async def test_review_check_sorts_a_page_by_the_judges_full_risk(dev_env: WorkflowEnvironment, tenant: str) -> None:
    client = dev_env.client
    flagged = JudgeScores(
        components=scores(0.8).components,
        flags=[SafetyFlag(rule="unverified_claim", severity="low", where="output", detail="a price")],
    )
    script = Script(plans=[[post("calm"), post("risky")]], scores={"calm": scores(0.6), "risky": flagged})
    async with running(client, script) as queue:
        await start(client, queue, spec(tenant, "mixed"))
        plain = await settled(lambda: reviews.list_reviews(client, tenant), lambda p: p.total == 2)
        assert [r.task_id.rsplit("-", 1)[1] for r in plain.rows] == ["calm", "risky"]  # by confidence alone
        checked = await reviews.list_reviews(client, tenant, check=True)
    assert [r.task_id.rsplit("-", 1)[1] for r in checked.rows] == ["risky", "calm"]  # the flag outweighs
    risky = checked.rows[0].review
    assert risky is not None and risky.verdict is not None and risky.verdict.flags[0].rule == "unverified_claim"
    assert risky.deadline is not None and risky.text == "draft for c1-risky"
