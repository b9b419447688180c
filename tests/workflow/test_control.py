"""chimera.control and the CLI, driving the real workflows with scripted activities.

The time-skipping test server has no visibility (ListWorkflowExecutions is unimplemented), so what
needs listing (`campaign list`, `review list`, a bare campaign id) runs on a Temporal dev server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from chimera.access.credentials import USER_KEY_ENV
from chimera.cli.app import app
from chimera.control import campaigns, connection, reviews, signals
from chimera.control.errors import CampaignExists, InvalidRequest, NotConfirmed, NotFound, Refused
from chimera.temporal_config import TemporalConfig
from schemas.campaign import CampaignSpec
from schemas.events import CampaignStatus
from schemas.options import TaskQueues
from schemas.policy import ConfidenceBands, JudgePolicy, JudgeScores, SafetyFlag, Verdict
from schemas.review import ReviewView
from tests.helpers import scripted
from tests.helpers.campaigns import running
from tests.helpers.dev_server import start_dev_server
from tests.helpers.identity import person
from tests.helpers.polling import eventually
from tests.helpers.scripted import HIGH, MEDIUM, Script, post
from workflows import search_attributes as sa

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "campaign.yaml"
BROKEN = ROOT / "tests" / "fixtures" / "campaigns" / "broken.yaml"
LOW_FLAG = JudgeScores(
    components=HIGH.components,
    flags=[SafetyFlag(rule="unverified_claim", severity="low", where="output", detail="a price claim")],
)
WEEK = 7 * 24 * 3600


def config_for(queue: str) -> TemporalConfig:
    return TemporalConfig(task_queues=TaskQueues(planner=queue, worker=queue, judge=queue))


def unique_spec(**overrides: Any) -> CampaignSpec:
    return scripted.spec(campaign_id=f"spring-{uuid.uuid4().hex[:8]}", cycle_interval_seconds=WEEK, **overrides)


async def start(client: Client, queue: str, spec: CampaignSpec) -> WorkflowHandle[Any, CampaignStatus]:
    # child_summaries=False: the time-skipping server stops skipping once children carry user metadata.
    return await campaigns.start_campaign(
        client, campaigns.campaign_input(spec, config_for(queue), child_summaries=False)
    )


async def closed(handle: WorkflowHandle[Any, Any]) -> bool:
    return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING


async def pending_task(client: Client, ref: str) -> str:
    async def find() -> str | None:
        st = await campaigns.campaign_status(client, ref)
        return st.pending_reviews[0] if st.pending_reviews else None

    return await eventually(find)


# --- no server --------------------------------------------------------------------------------


def test_temporal_yaml_fills_the_judge_and_deadline_the_file_leaves_out(tmp_path: Path) -> None:
    config = TemporalConfig(
        task_queues=TaskQueues(planner="q-plans"),
        judge=JudgePolicy(bands=ConfidenceBands(approve_at=0.95, escalate_at=0.6)),
        review_deadline_seconds=600,
    )
    # The example writes review.deadline (72h) and leaves judge commented out.
    inp = campaigns.load_campaign_input(EXAMPLE, config, max_cycles=2)
    assert inp.spec.judge == config.judge and inp.spec.review_deadline_seconds == 72 * 3600
    assert (inp.spec.campaign_id, inp.spec.cycle_interval_seconds) == ("spring-thrift", 3600)
    assert inp.max_cycles == 2 and inp.runtime == config.runtime_options() and inp.runtime.child_summaries

    # A file that writes judge and leaves review.deadline out; the demo's fresh id and short cycles.
    text = EXAMPLE.read_text(encoding="utf-8").replace("persona: personas/", f"persona: {EXAMPLE.parent}/personas/")
    text = re.sub(r"\nreview:\n  deadline: .*\n", "\n", text) + "judge:\n  bands: {approve_at: 0.8, escalate_at: 0.5}\n"
    own = tmp_path / "campaign.yaml"
    own.write_text(text, encoding="utf-8")
    inp = campaigns.load_campaign_input(own, config, id_suffix="0312-101500", cycle_interval_seconds=5)
    assert inp.spec.judge == JudgePolicy(bands=ConfidenceBands(approve_at=0.8, escalate_at=0.5))
    assert inp.spec.review_deadline_seconds == 600
    assert inp.spec.workflow_id == "campaign-acme-agency-spring-thrift-0312-101500"
    assert inp.spec.cycle_interval_seconds == 5 and inp.max_cycles is None


def _view(task_id: str, risk_flags: int, confidence: float, deadline: str) -> ReviewView:
    flag = SafetyFlag(rule="r", severity="low", where="output", detail="d")
    verdict = Verdict(
        decision="escalate",
        confidence=confidence,
        components=HIGH.components,
        flags=[flag] * risk_flags,
        reasons=[],
    )
    return ReviewView(
        task_id=task_id,
        campaign_id="c",
        platform="twitter",
        task_type="post",
        brief="b",
        text="t",
        state="pending",
        deadline=deadline,
        verdict=verdict,
    )


def test_reviews_sort_riskiest_first_then_earliest_deadline() -> None:
    calm_late = _view("calm-late", 0, 0.8, "2026-01-03T00:00:00+00:00")
    calm_soon = _view("calm-soon", 0, 0.8, "2026-01-02T00:00:00+00:00")
    flagged = _view("flagged", 1, 0.95, "2026-01-09T00:00:00+00:00")
    unsure = _view("unsure", 0, 0.72, "2026-01-09T00:00:00+00:00")
    ordered = sorted([calm_late, unsure, calm_soon, flagged], key=reviews.review_order)
    assert [v.task_id for v in ordered] == ["flagged", "unsure", "calm-soon", "calm-late"]


def test_malformed_requests_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(InvalidRequest, match="a rejection needs a reason"):
        reviews.review_decision("reject", "lena", "  ")
    with pytest.raises(InvalidRequest, match="an edit needs the new text"):
        reviews.review_decision("edit", "lena", "", None)
    assert reviews.review_decision("approve", None, None).reviewer == signals.default_actor()


# --- time-skipping test server: chimera.control ------------------------------------------------


async def test_control_pause_review_stop_and_refusals(env: WorkflowEnvironment) -> None:
    client = env.client
    script = Script(plans=[[post("tw")]], default_scores=MEDIUM)
    spec = unique_spec()
    ref = f"{spec.tenant_id}/{spec.campaign_id}"
    async with running(client, script) as queue:
        handle = await start(client, queue, spec)
        with pytest.raises(CampaignExists, match=r"already exists \(running"):
            await start(client, queue, spec)
        desc = await handle.describe()
        assert desc.typed_search_attributes.get(sa.CAMPAIGN_ID) == spec.campaign_id
        assert desc.typed_search_attributes.get(sa.AGENT_ID) == "mira-okafor"

        task_id = await pending_task(client, ref)
        maya, omar = person("maya", spec.tenant_id, "campaign_manager"), person("omar")
        paused = await campaigns.change_campaign(client, spec.workflow_id, "pause", reason="check", credentials=maya)
        again = await campaigns.change_campaign(client, ref, "pause", credentials=omar)
        assert paused.accepted and "paused" in paused.message
        assert not again.accepted and again.message == "already paused by maya"
        status = await campaigns.campaign_status(client, ref)
        assert status.state == "paused" and status.paused_by == "maya"

        view = await reviews.show_review(client, task_id)
        assert view.state == "pending" and view.text == "draft for c1-tw"
        assert view.verdict is not None and view.verdict.decision == "escalate"

        lena = person("lena", spec.tenant_id, "content_reviewer")
        ack = await reviews.decide_review(client, task_id, "approve", "lena", None, credentials=lena)
        assert ack.accepted and ack.message == "approve by lena accepted"
        await eventually(lambda: closed(client.get_workflow_handle(task_id)))
        assert [p.idempotency_key for p in script.published] == [task_id]
        with pytest.raises(Refused, match=r"already decided: approved by lena; .*has ended \(published"):
            await reviews.decide_review(client, task_id, "approve", "omar", None)

        stopped = await campaigns.change_campaign(client, ref, "emergency_stop", reason="brand crisis", actor="ops")
        assert stopped.accepted and "brand crisis" in stopped.message
        await eventually(lambda: closed(handle))
        with pytest.raises(Refused, match=r"has ended \(stopped: brand crisis\)"):
            await campaigns.change_campaign(client, ref, "resume")
        final = await campaigns.campaign_status(client, spec.workflow_id)
        assert final.state == "stopped" and final.stop_reason == "brand crisis"
    assert [a.action for a in script.audits] == ["pause", "emergency_stop"]
    assert script.audits[0].actor == "maya"


async def test_unknown_campaigns_and_tasks_are_not_found(env: WorkflowEnvironment) -> None:
    with pytest.raises(NotFound, match="unknown campaign 'acme/nope'"):
        await campaigns.change_campaign(env.client, "acme/nope", "pause")
    with pytest.raises(NotFound, match=r"unknown task 'acme\.nope\.c1-x'"):
        await reviews.decide_review(env.client, "acme.nope.c1-x", "approve", "lena", None)
    with pytest.raises(NotFound, match="unknown task"):
        await reviews.show_review(env.client, "acme.nope.c1-x")


async def test_a_task_that_already_ended_is_refused_with_its_outcome(env: WorkflowEnvironment) -> None:
    script = Script(plans=[[post("tw")]], default_scores=HIGH)  # auto-approved: never waits for a human
    spec = unique_spec()
    async with running(env.client, script) as queue:
        handle = await start(env.client, queue, spec)

        async def published() -> str | None:
            st = await campaigns.campaign_status(env.client, spec.workflow_id)
            return next((t.task_id for t in st.tasks if t.status == "published"), None)

        task_id = await eventually(published)
        with pytest.raises(Refused, match=r"has ended \(published, post p-1\)") as refused:
            await reviews.decide_review(env.client, task_id, "reject", "lena", "too late")
        assert "already decided" not in str(refused.value)
        await handle.terminate("test over")


async def test_a_signal_nobody_acknowledges_is_not_confirmed(env: WorkflowEnvironment) -> None:
    spec = unique_spec()
    await start(env.client, f"q-nobody-{uuid.uuid4()}", spec)  # no worker polls this queue
    with pytest.raises(NotConfirmed, match=r"delivered but not confirmed .*chimera worker --role all"):
        await campaigns.change_campaign(env.client, spec.workflow_id, "pause", ack_timeout=1.0)


# --- dev server: listings, and the CLI end to end -------------------------------------------------


@pytest.fixture(scope="module")
async def dev_env(dev_server_path: str) -> AsyncIterator[WorkflowEnvironment]:
    async with await start_dev_server(dev_server_path) as dev:
        yield dev


runner = CliRunner()


class Cli:
    """Runs `chimera ...` against a server; in a thread, since each command runs its own event loop."""

    def __init__(self, client: Client, queue: str, tmp_path: Path) -> None:
        config = tmp_path / "temporal.yaml"
        config.write_text(yaml.safe_dump({"task_queues": {"planner": queue, "worker": queue, "judge": queue}}))
        self.env = {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "CHIMERA_TEMPORAL_CONFIG": str(config),
            USER_KEY_ENV: person("tester", "acme-agency", "campaign_manager").to_json(),
            "COLUMNS": "250",  # rich wraps tables to the terminal width; keep task ids on one line
        }

    async def __call__(self, *args: str) -> Result:
        return await asyncio.to_thread(runner.invoke, app, list(args), env=self.env)

    async def json(self, *args: str) -> Any:
        result = await self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


async def test_cli_drives_a_campaign(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    client = dev_env.client
    script = Script(plans=[[post("risky"), post("calm")]], scores={"risky": LOW_FLAG, "calm": MEDIUM})
    ref = "acme-agency/spring-thrift"
    async with running(client, script) as queue:
        cli = Cli(client, queue, tmp_path)
        started = await cli("campaign", "start", str(EXAMPLE))
        assert started.exit_code == 0, started.output
        assert f"started campaign {ref}" in started.stdout
        again = await cli("campaign", "start", str(EXAMPLE))
        assert again.exit_code == 1 and "already exists (running" in again.stderr

        async def both_pending() -> dict[str, Any] | None:
            data = await cli.json("campaign", "status", ref)
            return data if len(data["pending_reviews"]) == 2 else None

        status = CampaignStatus.model_validate(await eventually(both_pending))
        assert (status.tenant_id, status.campaign_id) == ("acme-agency", "spring-thrift")
        assert status.agent_id == "mira-okafor"
        assert status.state == "running" and status.cycle == 1 and status.daily_budget_usd == 5.0
        risky, calm = (next(t for t in status.pending_reviews if t.endswith(k)) for k in ("risky", "calm"))

        async def listed() -> dict[str, Any] | None:
            rows = (await cli.json("campaign", "list", "--tenant", "acme-agency", "--check"))["rows"]
            row = next((r for r in rows if r["campaign_id"] == "spring-thrift"), None)
            return row if row and row["pending_reviews"] == 2 else None

        row = await eventually(listed)
        assert row["tenant_id"] == "acme-agency" and row["status"] == "running" and row["state"] == "running"
        by_bare_id = await cli("campaign", "status", "spring-thrift")  # resolved through visibility
        assert by_bare_id.exit_code == 0 and "acme-agency/spring-thrift" in by_bare_id.stdout

        paused = await cli("campaign", "pause", ref, "--reason", "checking drafts")
        assert paused.exit_code == 0 and "accepted: campaign paused" in paused.stdout
        paused_again = await cli("campaign", "pause", ref)
        assert paused_again.exit_code == 1 and "refused: already paused by tester" in paused_again.stderr
        budget = await cli("campaign", "budget", ref, "7.5")
        assert budget.exit_code == 0 and "daily budget set to $7.50 (was $5.00)" in budget.stdout
        bad_budget = await cli("campaign", "budget", ref, "0")
        assert bad_budget.exit_code == 2 and "greater than 0" in bad_budget.stderr

        async def two_reviews() -> list[Any] | None:
            rows: list[Any] = (await cli.json("review", "list", "--tenant", "acme-agency", "--check"))["rows"]
            return rows if len(rows) == 2 else None

        rows = await eventually(two_reviews)
        assert [r["task_id"] for r in rows] == [risky, calm]  # --check: the flagged draft first
        plain = await cli.json("review", "list", "--tenant", "acme-agency")
        assert [r["task_id"] for r in plain["rows"]] == [calm, risky]  # visibility: lowest confidence first
        table = await cli("review", "list", "--check")
        assert table.exit_code == 0
        assert table.stdout.index(risky) < table.stdout.index(calm)
        assert "unverified_claim (low)" in table.stdout and "draft for c1-risky" in table.stdout
        assert (await cli.json("review", "list", "--tenant", "other-agency"))["rows"] == []

        shown = await cli("review", "show", risky)
        assert shown.exit_code == 0
        assert "draft for c1-risky" in shown.stdout and "a price claim" in shown.stdout
        assert ReviewView.model_validate(await cli.json("review", "show", risky)).state == "pending"

        no_reason = await cli("review", "reject", calm)
        assert no_reason.exit_code == 2 and "Missing option '--reason'" in no_reason.stderr
        blank_reason = await cli("review", "reject", calm, "--reason", " ")
        assert blank_reason.exit_code == 2 and "a rejection needs a reason" in blank_reason.stderr
        unknown = await cli("review", "approve", "acme-agency.spring-thrift.c9-none")
        assert unknown.exit_code == 3 and "unknown task 'acme-agency.spring-thrift.c9-none'" in unknown.stderr

        approved = await cli("review", "approve", risky, "--reason", "price checked")
        assert approved.exit_code == 0 and "accepted: approve by tester accepted" in approved.stdout

        async def published() -> bool:
            return [p.idempotency_key for p in script.published] == [risky]

        await eventually(published)
        twice = await cli("review", "approve", risky)
        assert twice.exit_code == 1 and "already decided: approved by tester" in twice.stderr

        no_stop_reason = await cli("campaign", "stop", ref)
        assert no_stop_reason.exit_code == 2
        stop = await cli("campaign", "stop", ref, "--reason", "brand crisis")
        assert stop.exit_code == 0 and "emergency stop accepted: brand crisis" in stop.stdout
        await eventually(lambda: closed(client.get_workflow_handle("campaign-acme-agency-spring-thrift")))
        resume = await cli("campaign", "resume", ref)
        assert resume.exit_code == 1
        assert "campaign acme-agency/spring-thrift has ended (stopped: brand crisis)" in resume.stderr
        late = await cli("review", "approve", calm)
        assert late.exit_code == 1 and "brand crisis" in late.stderr
        final = CampaignStatus.model_validate(await cli.json("campaign", "status", ref))
        assert final.state == "stopped" and final.daily_budget_usd == 7.5
    assert [p.idempotency_key for p in script.published] == [risky]  # the calm draft never went out
    assert [a.action for a in script.audits] == ["pause", "budget", "emergency_stop"]
    assert {a.actor for a in script.audits} == {"tester"}


async def test_without_a_worker_changes_are_not_confirmed(
    dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signals, "ACK_TIMEOUT", 1.0)
    monkeypatch.setattr(connection, "QUERY_TIMEOUT", 1.0)
    queue = f"q-nobody-{uuid.uuid4()}"  # no worker polls it
    spec = unique_spec()
    await campaigns.start_campaign(dev_env.client, campaigns.campaign_input(spec, config_for(queue)))
    cli = Cli(dev_env.client, queue, tmp_path)
    ref = f"{spec.tenant_id}/{spec.campaign_id}"

    paused = await cli("campaign", "pause", ref)
    assert paused.exit_code == 4
    assert "delivered but not confirmed within 1s: is a worker running? `chimera worker --role all`" in paused.stderr
    status = await cli("campaign", "status", ref)
    assert status.exit_code == 4 and "did not answer within 1s" in status.stderr

    async def listed() -> dict[str, Any] | None:
        rows = (await cli.json("campaign", "list"))["rows"]
        return next((r for r in rows if r["campaign_id"] == spec.campaign_id), None)

    row = await eventually(listed)
    assert row["status"] == "running" and row["state"] is None  # listed all the same, saying why
    assert row["note"].startswith("state not recorded: this run has not published CampaignState")


async def test_cli_reports_an_unreachable_server(tmp_path: Path) -> None:
    cli_env = {"TEMPORAL_ADDRESS": "127.0.0.1:1", "CHIMERA_TEMPORAL_CONFIG": str(tmp_path / "none.yaml")}
    result = await asyncio.to_thread(runner.invoke, app, ["campaign", "list"], env=cli_env)
    assert result.exit_code == 5
    assert "cannot reach Temporal at 127.0.0.1:1: is `chimera dev` running?" in result.stderr


def test_cli_start_lists_every_problem_of_a_broken_file_and_starts_nothing(tmp_path: Path) -> None:
    # An unreachable server: the file is read and refused before any connection is tried (else exit 5).
    cli_env = {"TEMPORAL_ADDRESS": "127.0.0.1:1", "CHIMERA_TEMPORAL_CONFIG": str(tmp_path / "none.yaml")}
    result = runner.invoke(app, ["campaign", "start", str(BROKEN)], env=cli_env)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith(f"{BROKEN}:1: tenant 'Acme Agency' is not a valid slug")
    assert f"{BROKEN}:15: unknown key 'review.reviewers'; allowed: deadline" in lines
    assert lines[-1].startswith(f"{os.path.normpath(ROOT / 'tests/fixtures/personas/bad_id.md')}:2: id 'Bad_ID'")
    assert f"error: {BROKEN}: 10 problem(s); nothing was started" in result.stderr
