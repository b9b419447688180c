"""`chimera review show` says what reviewers' feedback (learning feedback) changed in a draft's verdict.

The review comes from the task's `review` query; here `render.run` hands the command a ReviewView directly, so
what is tested is the command's output, not the connection."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from chimera.cli import render
from chimera.cli.app import app
from schemas.policy import BandCalibration, ConfidenceComponents, JudgePolicy, JudgeScores, Verdict, calibrate, decide
from schemas.review import ReviewView


def verdict(value: float, calibration: BandCalibration | None) -> Verdict:
    c = ConfidenceComponents(model_probability=value, persona_similarity=value, safety=value, historical_success=value)
    return decide(JudgeScores(components=c, reasons=["measured"], calibration=calibration), JudgePolicy())


def show(monkeypatch: pytest.MonkeyPatch, judged: Verdict, *args: str) -> str:
    view = ReviewView(
        task_id="acme.launch.r1",
        campaign_id="launch",
        platform="twitter",
        task_type="reply",
        brief="answer the mention",
        text="thanks!",
        state="pending",
        deadline="2030-01-01T00:00:00+00:00",
        verdict=judged,
    )
    monkeypatch.setattr(render, "run", lambda operation, loaded=None: view)
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["review", "show", "acme.launch.r1", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_show_says_the_feedback_raised_the_bands_and_changed_the_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    raised = calibrate("reply", 0, 4, 16)  # agreement 0.1: approve_at +0.04, escalate_at +0.03
    out = show(monkeypatch, verdict(0.92, raised))
    assert "Feedback from reviewers of this agent's reply drafts:" in out
    assert "bands: approve at 0.90 -> 0.94, escalate at 0.70 -> 0.73" in out
    assert "from 20 recent reviews: 0 approved, 4 edited, 16 rejected" in out
    assert "it changed the decision: approve by the campaign's bands, escalate with the feedback" in out
    assert "feedback: approve_at 0.90 -> 0.94, escalate_at 0.70 -> 0.73 for reply after 20 reviews" in out


def test_show_says_when_the_feedback_did_not_change_the_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    out = show(monkeypatch, verdict(0.8, calibrate("reply", 23, 0, 1)))  # 0.87 / 0.70: still escalated
    assert "bands: approve at 0.90 -> 0.87, escalate at 0.70 (unchanged)" in out
    assert "it did not change the decision" in out
    quiet = show(monkeypatch, verdict(0.8, calibrate("reply", 5, 0, 0)))
    assert "bands: unchanged" in quiet and "5 reviewed escalations, 20 needed" in quiet


def test_show_without_feedback_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "Feedback: none applied" in show(monkeypatch, verdict(0.8, None))
    raw: dict[str, Any] = json.loads(show(monkeypatch, verdict(0.88, calibrate("reply", 23, 0, 1)), "--json"))
    assert raw["verdict"]["decision"] == "approve" and raw["verdict"]["uncalibrated_decision"] == "escalate"
    cal = raw["verdict"]["calibration"]
    assert (cal["approve_shift"], cal["reviews"], cal["bands_after"]["approve_at"]) == (-0.03, 24, 0.87)
