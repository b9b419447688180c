"""Replay every recorded history against today's workflow code.

A failure here means a workflow change would break workflows already running in production: guard
the change with workflow.patched() (see histories/README.md), then re-record.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

with workflow.unsafe.imports_passed_through():
    from schemas.activity_table import Activities
    from schemas.campaign_run import CampaignInput, ObserveRequest
    from schemas.events import CampaignStatus
    from schemas.task import ContentTaskInput, TaskOutcome

from workflows.calls import run_activity
from workflows.campaign import CampaignWorkflow
from workflows.content_task import ContentTaskWorkflow
from workflows.payment import PaymentWorkflow
from workflows.scope_stop import ScopeStopWorkflow

HISTORIES = Path(__file__).parent / "histories"
# What scripts/record_histories.py writes; a missing one is a failure, not a skipped test.
EXPECTED = frozenset(
    {
        "campaign_one_cycle_approved_with_dependency",
        "campaign_rejection_replanned",
        "campaign_paused_and_resumed",
        "campaign_goals_and_budget_changed",
        "campaign_emergency_stop_with_pending_review",
        "campaign_continued_as_new_run1",
        "campaign_continued_as_new_run2",
        "content_task_approved",
        "content_task_rejected_by_judge",
        "content_task_escalated_approved",
        "content_task_escalated_edited",
        "content_task_edit_blocked_then_edited",
        "content_task_review_expired",
        "content_task_stopped_mid_review",
        "scope_stop_fleet",
        "campaign_stopped_by_fleet_stop",
        "campaign_pushed_mention_answered",
        "campaign_breaking_news_replanned",
        "campaign_reflected_on_engagement",
        "campaign_bought_premium_news",
        "payment_x402",
        "payment_approved",
        "payment_escalated_approved",
        "payment_escalated_rejected",
        "payment_rejected",
    }
)
WORKFLOW_TYPES = ("CampaignWorkflow", "ContentTaskWorkflow", "ScopeStopWorkflow", "PaymentWorkflow")


def recorded() -> list[Path]:
    """The current histories, and those kept from before a patch (v1/, ...): all must replay."""
    return sorted(HISTORIES.rglob("*.json"))


def current() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    raw = json.loads(path.read_text())
    started = raw["events"][0]["workflowExecutionStartedEventAttributes"]
    return WorkflowHistory.from_json(started.get("workflowId", path.stem), raw)


def activity_types(history: WorkflowHistory) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


def replayer(*workflows: type) -> Replayer:
    """Through the payload codec, as production replays: the recorded (plain) histories pass through it, and
    tests/replay/test_replay_encrypted.py covers encrypted ones. The key is made here, for tests only."""
    import os

    from chimera.codec import KeyRing
    from chimera.secrets import StaticSecrets
    from chimera.settings import Settings
    from chimera.temporal_config import data_converter

    ring = KeyRing(active="replay-test", keys={"replay-test": os.urandom(32)})
    converter = data_converter(Settings(payload_encryption="on"), StaticSecrets({"codec-keys": ring.to_json()}))
    assert converter is not pydantic_data_converter  # the codec is really in the path
    return Replayer(workflows=list(workflows), data_converter=converter)


# --- deliberately changed copies, registered under the real workflow names -----------------


async def _extra_observe(inp: ContentTaskInput) -> None:
    request = ObserveRequest(tenant_id=inp.ref.tenant_id, campaign_id=inp.ref.campaign_id, platforms=[])
    await run_activity(Activities.observe, request, inp.runtime, "a new first step")


@workflow.defn(name="ContentTaskWorkflow")
class ContentTaskWithNewStep(ContentTaskWorkflow):
    """A new activity before the budget reservation, not guarded: running tasks cannot replay it."""

    @workflow.run
    async def run(self, inp: ContentTaskInput) -> TaskOutcome:
        await _extra_observe(inp)
        return await super().run(inp)


@workflow.defn(name="ContentTaskWorkflow")
class ContentTaskWithPatchedStep(ContentTaskWorkflow):
    """The same new step behind workflow.patched(): old histories take the old path."""

    @workflow.run
    async def run(self, inp: ContentTaskInput) -> TaskOutcome:
        if workflow.patched("content-task-extra-observe"):
            await _extra_observe(inp)
        return await super().run(inp)


@workflow.defn(name="CampaignWorkflow")
class CampaignWithDelayedCycle(CampaignWorkflow):
    """A timer before each cycle's observe: the recorded cycles scheduled the activity first."""

    @workflow.run
    async def run(self, inp: CampaignInput) -> CampaignStatus:
        return await super().run(inp)

    async def _start_cycle(self) -> None:
        await workflow.sleep(1)
        await super()._start_cycle()


# --- tests -------------------------------------------------------------------------------


def test_every_scenario_has_a_history() -> None:
    names = {p.stem for p in current()}
    missing = sorted(EXPECTED - names)
    assert not missing, f"missing histories {missing}: run .venv/bin/python scripts/record_histories.py"
    types = {workflow_type(load(p)) for p in recorded()}
    assert types == set(WORKFLOW_TYPES)


@pytest.mark.parametrize("path", recorded(), ids=lambda p: str(p.relative_to(HISTORIES).with_suffix("")))
async def test_history_replays_on_current_code(path: Path) -> None:
    history = load(path)
    assert workflow_type(history) in WORKFLOW_TYPES
    replaying = replayer(CampaignWorkflow, ContentTaskWorkflow, ScopeStopWorkflow, PaymentWorkflow)
    result = await replaying.replay_workflow(history)
    assert result.replay_failure is None


@pytest.mark.parametrize(
    ("history_name", "changed"),
    [
        ("content_task_approved", ContentTaskWithNewStep),
        ("content_task_escalated_approved", ContentTaskWithNewStep),
        ("campaign_one_cycle_approved_with_dependency", CampaignWithDelayedCycle),
        ("campaign_continued_as_new_run2", CampaignWithDelayedCycle),
    ],
)
async def test_an_unpatched_change_fails_replay(history_name: str, changed: type) -> None:
    history = load(HISTORIES / f"{history_name}.json")
    other = ContentTaskWorkflow if changed is CampaignWithDelayedCycle else CampaignWorkflow
    with pytest.raises(workflow.NondeterminismError, match="Nondeterminism error"):
        await replayer(changed, other).replay_workflow(history)


async def test_the_same_change_behind_patched_replays() -> None:
    history = load(HISTORIES / "content_task_escalated_approved.json")
    result = await replayer(ContentTaskWithPatchedStep, CampaignWorkflow).replay_workflow(history)
    assert result.replay_failure is None


@pytest.mark.parametrize("name", ["content_task_approved", "content_task_escalated_approved"])
def test_tasks_judged_before_the_verdict_audit_keep_their_path(name: str) -> None:
    """v1 holds tasks recorded before `audit-verdict-as-decided`: they replay without record_verdict (their
    judge activity audited), while tasks recorded since audit the applied verdict right after judging."""
    before, after = (
        activity_types(load(HISTORIES / "v1" / f"{name}.json")),
        activity_types(load(HISTORIES / f"{name}.json")),
    )
    assert "record_verdict" not in before
    assert after[after.index("judge_result") + 1] == "record_verdict"
    assert [a for a in after if a not in ("record_verdict", "authorize")] == before


def test_cycles_recorded_before_memory_and_news_keep_their_path() -> None:
    """v5 holds runs recorded before `memory-reflect-and-breaking-news`: a cycle began with observe. Since the patch
    it begins with the Judge's reflection, and the news watch may re-plan between cycles."""
    for name in ("campaign_one_cycle_approved_with_dependency", "campaign_paused_and_resumed"):
        before = activity_types(load(HISTORIES / "v5" / f"{name}.json"))
        after = activity_types(load(HISTORIES / f"{name}.json"))
        assert "reflect" not in before and "watch_news" not in before
        assert after.count("reflect") == after.count("observe") >= 1
        assert [a for a in after if a not in ("reflect", "watch_news")] == before
    news = activity_types(load(HISTORIES / "campaign_breaking_news_replanned.json"))
    assert news.count("watch_news") >= 2 and news.count("plan") == 2  # the cycle's plan, then the news re-plan
    assert news.index("plan", news.index("watch_news")) > news.index("watch_news")


def test_requests_applied_before_signed_requests_keep_their_path() -> None:
    """v4 holds runs recorded before `signed-requests`: a person's change applied as sent. Since the patch each
    one is checked by the `authorize` activity first, and an unsigned one is refused (paused_and_resumed)."""
    for name in ("content_task_escalated_approved", "campaign_paused_and_resumed"):
        before = activity_types(load(HISTORIES / "v4" / f"{name}.json"))
        after = activity_types(load(HISTORIES / f"{name}.json"))
        assert "authorize" not in before and "authorize" in after
        assert [a for a in after if a not in ("authorize", "reflect", "watch_news")] == before
    paused = activity_types(load(HISTORIES / "campaign_paused_and_resumed.json"))
    assert paused.count("authorize") == 4  # the unsigned pause, the pause, the refused second pause, the resume


def test_edits_decided_before_judge_human_edits_keep_their_path() -> None:
    """v3 holds an edit recorded before `judge-human-edits`: published without judging the edit; since the
    patch an edit is judged (and its verdict audited) before it is accepted, and a blocked one is judged again."""
    before = activity_types(load(HISTORIES / "v3" / "content_task_escalated_edited.json"))
    after = activity_types(load(HISTORIES / "content_task_escalated_edited.json"))
    blocked = activity_types(load(HISTORIES / "content_task_edit_blocked_then_edited.json"))
    assert before.count("judge_result") == 1
    assert after.count("judge_result") == 2 and after.count("record_verdict") == 2
    assert blocked.count("judge_result") == 3  # the draft, the blocked edit, the accepted edit


def test_only_campaigns_that_buy_premium_news_take_the_purchase_path() -> None:
    """`premium-news-purchase` is taken only by a campaign whose news watch names a premium service: a cycle then
    starts a PaymentWorkflow child between observe and plan; every other campaign's history is unchanged."""
    bought = load(HISTORIES / "campaign_bought_premium_news.json")
    children = [
        e.start_child_workflow_execution_initiated_event_attributes.workflow_type.name
        for e in bought.events
        if e.HasField("start_child_workflow_execution_initiated_event_attributes")
    ]
    assert children[0] == "PaymentWorkflow"
    steps = activity_types(bought)
    assert steps.index("observe") < steps.index("plan")
    patches = [
        e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
        for e in bought.events
        if e.HasField("marker_recorded_event_attributes")
    ]
    assert any(b"premium-news-purchase" in p for p in patches)
    plain = load(HISTORIES / "campaign_one_cycle_approved_with_dependency.json")
    assert not any(
        e.HasField("start_child_workflow_execution_initiated_event_attributes")
        and e.start_child_workflow_execution_initiated_event_attributes.workflow_type.name == "PaymentWorkflow"
        for e in plain.events
    )


def test_recorded_histories_hold_no_key_material() -> None:
    """No private key, keystore or signing secret in any recorded history: a 32-byte hex string that is a valid
    key would give the address it controls, so every one found is checked against the addresses in the file."""
    from eth_account import Account

    hex32 = re.compile(r"(?<![0-9a-fA-F])(?:0x)?([0-9a-fA-F]{64})(?![0-9a-fA-F])")
    for path in recorded():
        text = path.read_text()
        assert not re.search(r"private[_ ]?key|ciphertext|\"kdfparams\"|mnemonic", text, re.IGNORECASE), path
        addresses = {a.lower() for a in re.findall(r"0x[0-9a-fA-F]{40}", text)}
        for candidate in set(hex32.findall(text)):
            try:
                derived = Account.from_key(bytes.fromhex(candidate)).address.lower()
            except ValueError:
                continue
            assert derived not in addresses, f"{path.name}: a private key of {derived}"
