"""Deciding several reviews at once (chimera/control/review_batch.py, `chimera review approve|reject`), and the
outcome `review show` gives once a task has ended.

By ids, on the time-skipping test server. By filters, on a dev server: the test server has no visibility, and a
filter selects from the pending queue through it. Activities are scripted (tests/helpers/scripted.py); each
decision is authorized by the scripted `authorize` activity against the in-memory directory
(tests/helpers/identity.py), with the real signature checks.
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
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from chimera.access.credentials import USER_KEY_ENV
from chimera.cli import review_batch as cli_batch
from chimera.cli.app import app
from chimera.control import campaigns, connection, review_batch, reviews
from chimera.control.errors import InvalidRequest
from chimera.control.review_batch import ReviewFilter
from chimera.temporal_config import TemporalConfig
from schemas.campaign import CampaignSpec
from schemas.options import TaskQueues
from schemas.plan import PlannedTask
from schemas.policy import ConfidenceComponents, JudgeScores
from schemas.review import ReviewView
from tests.helpers import scripted
from tests.helpers.campaigns import running
from tests.helpers.dev_server import start_dev_server
from tests.helpers.identity import person
from tests.helpers.polling import eventually
from tests.helpers.scripted import MEDIUM, Script, post, reply

WEEK = 7 * 24 * 3600
OUTSIDER = person("x", "other-tenant", "content_reviewer")


def scored(confidence: float) -> JudgeScores:
    """Scores whose confidence is `confidence` (every component equal: the weights sum to 1), no flags."""
    c = confidence
    return JudgeScores(
        components=ConfidenceComponents(model_probability=c, persona_similarity=c, safety=c, historical_success=c)
    )


def ig_post(key: str) -> PlannedTask:
    return PlannedTask(key=key, task_type="post", platform="instagram", brief=f"post {key}")


def spec(tenant: str, name: str) -> CampaignSpec:
    return scripted.spec(
        tenant_id=tenant,
        campaign_id=f"{name}-{uuid.uuid4().hex[:6]}",
        platforms=["twitter", "instagram"],
        cycle_interval_seconds=WEEK,
    )


async def start(client: Client, queue: str, campaign: CampaignSpec) -> None:
    queues = TaskQueues(planner=queue, worker=queue, judge=queue)
    # child_summaries=False: the time-skipping server stops skipping once children carry user metadata.
    inp = campaigns.campaign_input(campaign, TemporalConfig(task_queues=queues), child_summaries=False)
    await campaigns.start_campaign(client, inp)


async def pending(client: Client, campaign: CampaignSpec, n: int) -> list[str]:
    """The campaign's pending reviews once all `n` escalated, by task key order."""

    async def found() -> list[str] | None:
        st = await campaigns.campaign_status(client, campaign.workflow_id)
        return sorted(st.pending_reviews) if len(st.pending_reviews) == n else None

    return await eventually(found)


async def closed(client: Client, task_id: str) -> bool:
    return (await client.get_workflow_handle(task_id).describe()).status != WorkflowExecutionStatus.RUNNING


def published(script: Script) -> list[str]:
    return sorted(p.idempotency_key for p in script.published)


# --- by ids, on the time-skipping test server ------------------------------------------------------


async def test_a_batch_by_ids_reports_each_refusal_and_decides_the_rest(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = env.client
    script = Script(plans=[[post("a"), post("b"), post("c"), post("d")]], default_scores=MEDIUM)
    campaign = spec("acme", "spring")
    lena = person("lena", "acme", "content_reviewer")
    async with running(client, script) as queue:
        await start(client, queue, campaign)
        a, b, c, d = await pending(client, campaign, 4)
        first = await reviews.decide_review(client, a, "approve", None, None, credentials=lena)
        assert first.accepted
        await eventually(lambda: closed(client, a))

        # Someone of another tenant: every decision of theirs is refused, and none is applied.
        outsider = await review_batch.decide_reviews(client, [b, c], "approve", credentials=OUTSIDER)
        assert [(i.task_id, i.status) for i in outsider] == [(b, "refused"), (c, "refused")]
        assert all(i.message == "x acts for tenant other-tenant, not acme" for i in outsider)
        assert (await reviews.show_review(client, b)).state == "pending"

        # In flight at once, at most `concurrency`: measured around the real sends.
        in_flight, most = 0, 0
        send = reviews.send_review_decision

        async def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            try:
                return await send(*args, **kwargs)
            finally:
                in_flight -= 1

        monkeypatch.setattr(review_batch, "send_review_decision", counted)
        nope = "acme.nope.c9-x"
        items = await review_batch.decide_reviews(
            client, [a, b, c, nope, b], "approve", reason="checked", credentials=lena, concurrency=2
        )
        assert most == 2
        assert [(i.task_id, i.status) for i in items] == [
            (a, "refused"),
            (b, "accepted"),
            (c, "accepted"),
            (nope, "failed"),
        ]
        assert items[0].message.startswith(f"already decided: approved by lena; task {a} has ended (published")
        assert items[1].message == "approve by lena accepted"
        assert items[3].message.startswith(f"unknown task '{nope}'")
        await eventually(lambda: closed(client, b))
        await eventually(lambda: closed(client, c))
        assert published(script) == sorted([a, b, c])

        # One authorization per decision sent, each under its own request id; one review record each.
        by_request = {req.request_id: (req, auth) for req, auth in script.authorizations}
        assert len(by_request) == len(script.authorizations) == 5  # a once, the outsider's two, b and c
        for item in outsider:
            req, auth = by_request[item.request_id or ""]
            assert not auth.allowed and req.target == item.task_id and req.action == "review.approve"
        for item in items[1:3]:
            req, auth = by_request[item.request_id or ""]
            assert auth.allowed and auth.actor == "lena" and req.target == item.task_id
        approved = sorted((r.task_id, r.reviewer) for r in script.reviews if r.state == "approved")
        assert approved == [(a, "lena"), (b, "lena"), (c, "lena")]

        shown = await reviews.show_review(client, b)
        assert (shown.state, shown.reviewer, shown.reason) == ("approved", "lena", "checked")
        assert shown.outcome_status == "published" and shown.post_url == "sandbox://p"
        assert shown.post_id == next(f"p-{n}" for n, p in enumerate(script.published, 1) if p.idempotency_key == b)

        [rejected] = await review_batch.decide_reviews(client, [d], "reject", reason="off brand", credentials=lena)
        assert rejected.status == "accepted" and rejected.message == "reject by lena accepted"
        await eventually(lambda: closed(client, d))
        view = await reviews.show_review(client, d)
        assert (view.state, view.reviewer, view.reason) == ("rejected", "lena", "off brand")
        assert (view.outcome_status, view.outcome_reason) == ("rejected", "rejected by lena: off brand")
        assert view.post_id is None and view.post_url is None
        assert [r.reviewer for r in script.reviews if r.task_id == d and r.state == "rejected"] == ["lena"]

    # No worker any more: the ended task's outcome comes from its result, its brief from its input.
    monkeypatch.setattr(connection, "QUERY_TIMEOUT", 1.0)
    fallback = await reviews.show_review(client, b)
    assert (fallback.outcome_status, fallback.post_id, fallback.post_url) == ("published", shown.post_id, "sandbox://p")
    assert fallback.brief == "post b" and fallback.state == "approved" and fallback.verdict is None
    assert fallback.note is not None and "no worker answered" in fallback.note


async def test_a_batch_is_checked_before_anything_is_sent(env: WorkflowEnvironment) -> None:
    client = env.client
    with pytest.raises(InvalidRequest, match="edits are not batched"):
        await review_batch.decide_reviews(client, ["acme.spring.c1-a"], "edit")
    with pytest.raises(InvalidRequest, match="a rejection needs a reason"):
        await review_batch.decide_reviews(client, ["acme.spring.c1-a"], "reject", reason=" ")
    with pytest.raises(InvalidRequest, match="name the reviews: task ids, or at least one filter"):
        await review_batch.select_reviews(client, where=ReviewFilter())
    with pytest.raises(InvalidRequest, match="by task ids or by filters, not both"):
        await review_batch.select_reviews(client, task_ids=["acme.spring.c1-a"], where=ReviewFilter(platform="twitter"))
    with pytest.raises(InvalidRequest, match="unknown platform 'myspace'; one of: twitter, instagram"):
        ReviewFilter(platform="myspace").query()
    with pytest.raises(InvalidRequest, match=r"the confidence range 0.9-0.8 is empty"):
        ReviewFilter(min_confidence=0.9, max_confidence=0.8).query()
    rows = await review_batch.select_reviews(client, task_ids=["acme.nope.c1-x", " acme.nope.c1-x "])
    assert [(r.task_id, r.note) for r in rows] == [("acme.nope.c1-x", "unknown task 'acme.nope.c1-x'")]


# --- by filters and through the CLI, on a dev server ------------------------------------------------


@pytest.fixture(scope="module")
async def dev_env(dev_server_path: str) -> AsyncIterator[WorkflowEnvironment]:
    async with await start_dev_server(dev_server_path) as dev:
        yield dev


runner = CliRunner()


class Cli:
    """`chimera ...` against the dev server, signed as `user`; in a thread (each command runs its own loop)."""

    def __init__(self, client: Client, queue: str, tmp_path: Path, user: str, tenant: str) -> None:
        config = tmp_path / "temporal.yaml"
        config.write_text(yaml.safe_dump({"task_queues": {"planner": queue, "worker": queue, "judge": queue}}))
        self.env = {
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "CHIMERA_TEMPORAL_CONFIG": str(config),
            USER_KEY_ENV: person(user, tenant, "content_reviewer").to_json(),
            "CHIMERA_ACTOR": "",
            "COLUMNS": "250",
        }

    async def __call__(self, *args: str, answer: str | None = None) -> Result:
        return await asyncio.to_thread(runner.invoke, app, list(args), env=self.env, input=answer)


def script_of_two_platforms() -> Script:
    plans = [[post("tw"), ig_post("ig"), reply("r1", "m1"), reply("r2", "m2")]]
    return Script(plans=plans, scores={"tw": scored(0.88), "ig": scored(0.82), "r1": scored(0.85), "r2": scored(0.75)})


async def settled(check: Callable[[], Awaitable[bool]]) -> None:
    async def ok() -> bool | None:
        return True if await check() else None

    await eventually(ok)


async def test_filtered_batches_through_the_cli(
    dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = dev_env.client
    tenant = f"t{uuid.uuid4().hex[:8]}"
    script = script_of_two_platforms()
    one, two = spec(tenant, "spring"), spec(tenant, "summer")
    async with running(client, script) as queue:
        await start(client, queue, one)
        await start(client, queue, two)
        ig1, r1, r2, tw1 = await pending(client, one, 4)  # sorted: c1-ig, c1-r1, c1-r2, c1-tw
        ig2, r1b, r2b, tw2 = await pending(client, two, 4)

        async def all_listed() -> bool:
            return (await reviews.list_reviews(client, tenant, limit=None)).total == 8

        await settled(all_listed)
        cli = Cli(client, queue, tmp_path, "rita", tenant)
        narrow = [
            "--campaign", f"{tenant}/{one.campaign_id}", "--platform", "twitter", "--task-type", "reply",
            "--min-confidence", "0.8", "--max-confidence", "0.9",
        ]  # fmt: skip

        dry = await cli("review", "approve", *narrow, "--dry-run")
        assert dry.exit_code == 0, dry.output
        assert "1 review matching campaign" in dry.stdout and "would be approved" in dry.stdout
        assert r1 in dry.stdout and r2 not in dry.stdout and r1b not in dry.stdout
        assert "dry run: nothing was sent" in dry.stdout
        dry_json = json.loads((await cli("review", "approve", *narrow, "--dry-run", "--json")).stdout)
        assert dry_json["dry_run"] is True and [r["task_id"] for r in dry_json["selected"]] == [r1]
        assert dry_json["results"] == []

        unconfirmed = await cli("review", "approve", *narrow)
        assert unconfirmed.exit_code == 2
        assert "1 review selected: confirm with --yes" in unconfirmed.stderr and r1 in unconfirmed.stdout
        json_unconfirmed = await cli("review", "approve", *narrow, "--json")
        assert json_unconfirmed.exit_code == 2 and "--json cannot ask to confirm; add --yes" in json_unconfirmed.stderr
        monkeypatch.setattr(cli_batch, "interactive", lambda: True)
        declined = await cli("review", "approve", *narrow, answer="n\n")
        assert declined.exit_code == 1 and "approve 1 review?" in declined.stdout
        assert "nothing was decided" in declined.stdout
        assert script.published == [] and script.authorizations == []

        approved = await cli("review", "approve", *narrow, answer="y\n")
        assert approved.exit_code == 0, approved.output
        assert f"accepted {r1}: approve by rita accepted" in approved.stdout
        assert "approve: 1 accepted, 0 refused, 0 failed (of 1 review)" in approved.stdout
        monkeypatch.setattr(cli_batch, "interactive", lambda: False)

        # Across both campaigns: posts (either platform) at 0.85 or more, i.e. the two twitter posts.
        posts = await cli("review", "approve", "--tenant", tenant, "--task-type", "post", "--min-confidence", "0.85",
                          "--yes", "--json")  # fmt: skip
        assert posts.exit_code == 0, posts.output
        report = json.loads(posts.stdout)
        assert sorted(r["task_id"] for r in report["selected"]) == sorted([tw1, tw2])
        assert (report["accepted"], report["refused"], report["failed"]) == (2, 0, 0)

        async def posts_out() -> bool:
            return published(script) == sorted([r1, tw1, tw2])

        await settled(posts_out)

        empty = await cli("review", "approve", "--tenant", tenant, "--platform", "instagram", "--min-confidence", "0.9")
        assert empty.exit_code == 3
        assert f"no pending review matches tenant {tenant}, platform instagram, confidence 0.9-1" in empty.stderr
        assert (await cli("review", "approve", "--platform", "myspace")).exit_code == 2
        both = await cli("review", "approve", r2, "--platform", "twitter")
        assert both.exit_code == 2 and "by task ids or by filters, not both" in both.stderr
        assert "name the reviews" in (await cli("review", "approve")).stderr
        assert "Missing option '--reason'" in (await cli("review", "reject", r2, r2b)).stderr

        # By ids, one of them decided already: that one is refused, the others are rejected; exit 1.
        rejected = await cli("review", "reject", r1, r2, r2b, "--reason", "off brand", "--yes")
        assert rejected.exit_code == 1
        assert f"refused  {r1}: already decided: approved by rita" in rejected.stdout
        assert f"accepted {r2}: reject by rita accepted" in rejected.stdout
        assert f"accepted {r2b}: reject by rita accepted" in rejected.stdout
        assert "reject: 2 accepted, 1 refused, 0 failed (of 3 reviews)" in rejected.stdout
        assert "1 of 3 reviews not rejected: each line says why" in rejected.stderr

        # The one-review form is unchanged: no prompt, the workflow's answer.
        single = await cli("review", "approve", ig2)
        assert single.exit_code == 0 and "accepted: approve by rita accepted" in single.stdout

        for task in (r1, r2, ig2):
            await settled(partial(closed, client, task))
        shown = await cli("review", "show", r1)
        assert shown.exit_code == 0, shown.output
        assert "Published: post p-" in shown.stdout and "sandbox://p" in shown.stdout
        view = ReviewView.model_validate_json((await cli("review", "show", r1, "--json")).stdout)
        assert view.outcome_status == "published" and view.post_url == "sandbox://p" and view.post_id
        assert (await reviews.show_review(client, ig1)).state == "pending"  # matched no batch
        refused_view = await cli("review", "show", r2)
        assert "Decided by rita: off brand" in refused_view.stdout
        assert "Not published: rejected: rejected by rita: off brand" in refused_view.stdout

    # Each accepted decision was authorized once, under its own request id, and recorded as its own review.
    allowed = [req for req, auth in script.authorizations if auth.allowed]
    assert len({req.request_id for req in allowed}) == len(allowed) == 6  # r1, tw1, tw2, r2, r2b, ig2
    assert sorted((r.task_id, r.state) for r in script.reviews if r.state in ("approved", "rejected")) == sorted(
        [(r1, "approved"), (tw1, "approved"), (tw2, "approved"), (ig2, "approved"), (r2, "rejected"), (r2b, "rejected")]
    )
    assert {r.reviewer for r in script.reviews if r.state in ("approved", "rejected")} == {"rita"}
    assert published(script) == sorted([r1, tw1, tw2, ig2])  # ig1, r1b, r2 and r2b never went out


def test_a_filter_becomes_one_visibility_query() -> None:
    where = ReviewFilter(
        campaign="acme/spring", platform="twitter", task_type="reply", min_confidence=0.8, max_confidence=0.9
    )
    assert where.query().endswith(
        "AND TenantId = 'acme' AND CampaignId = 'spring' AND Platform = 'twitter' AND TaskType = 'reply'"
        " AND Confidence >= 0.8 AND Confidence <= 0.9"
    )
    assert where.describe() == "campaign acme/spring, platform twitter, task type reply, confidence 0.8-0.9"
    assert ReviewFilter().is_empty() and not ReviewFilter(max_confidence=0.5).is_empty()
    with pytest.raises(InvalidRequest, match="campaign 'Spring' is not a valid id"):
        ReviewFilter(campaign="Spring").query()
