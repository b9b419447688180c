"""The anomaly rules (chimera/alerts/anomaly.py): normal hours, spikes, low volume and short history, for the
spend rate and the rejection rate; and the bucketing of raw events into hour slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chimera.alerts.anomaly import (
    AgentHistory,
    AnomalyThresholds,
    HourBucket,
    anomaly_alert,
    build_history,
    detect,
    rejection_anomaly,
    spend_anomaly,
)
from chimera.settings import Settings

NOW = datetime(2026, 12, 1, 15, 20, tzinfo=UTC)
H = timedelta(hours=1)
T = AnomalyThresholds()


def history(
    hourly: list[tuple[float, int, int]],
    current: tuple[float, int, int],
    *,
    every: int = 1,
) -> AgentHistory:
    """An agent active every `every` hours over the hours before the window: hourly[i] is the i-th such hour,
    counting back from the window; each tuple is (spend USD, judged, rejected)."""
    buckets = [
        HourBucket(start=NOW - H * (1 + (i + 1) * every), spend_usd=usd, judged=j, rejected=r)
        for i, (usd, j, r) in enumerate(hourly)
    ]
    buckets.reverse()
    usd, j, r = current
    return AgentHistory(
        tenant_id="acme",
        agent_id="mira",
        window_end=NOW,
        current=HourBucket(start=NOW - H, spend_usd=usd, judged=j, rejected=r),
        history=buckets,
        first_seen=buckets[0].start if buckets else None,
    )


STEADY = [(0.20, 10, 1)] * 48  # two days of $0.20/h, 10 drafts/h with 1 rejected


# ---- spend -----------------------------------------------------------------------------------


def test_a_normal_hour_does_not_alert() -> None:
    assert detect(history(STEADY, (0.25, 10, 1)), T) == []


def test_a_spend_spike_alerts_with_a_human_sentence() -> None:
    found = spend_anomaly(history(STEADY, (1.20, 10, 1)), T)
    assert found is not None
    assert found.kind == "spend_rate"
    assert found.normal == pytest.approx(0.20)
    assert found.ratio == pytest.approx(6.0)
    assert found.sentence == "spend $1.20 in the last hour, 6.0x the agent's normal $0.20/h"


def test_spend_just_below_the_factor_does_not_alert() -> None:
    hours = [(0.40, 10, 1)] * 48
    assert spend_anomaly(history(hours, (1.19, 10, 1)), T) is None  # 2.98x normal, above the $1 floor
    assert spend_anomaly(history(hours, (1.20, 10, 1)), T) is not None  # exactly 3x


def test_a_tiny_spend_spike_stays_below_the_absolute_floor() -> None:
    hours = [(0.001, 2, 0)] * 48
    assert spend_anomaly(history(hours, (0.004, 2, 0)), T) is None  # 4x, but $0.004 < $1.00/h
    assert spend_anomaly(history(hours, (0.004, 2, 0)), T.model_copy(update={"min_spend_usd_per_hour": 0.0}))


def test_spend_needs_enough_history() -> None:
    short = [(0.20, 10, 1)] * 12  # 12 hours seen, below the 24 required
    assert spend_anomaly(history(short, (5.0, 10, 1)), T) is None
    assert spend_anomaly(history(short, (5.0, 10, 1)), T.model_copy(update={"min_history_hours": 12})) is not None
    few_active = [(0.20, 10, 1)] * 5  # 5 active hours spread over 50 hours: long enough, too few to know normal
    assert spend_anomaly(history(few_active, (5.0, 10, 1), every=10), T) is None
    assert spend_anomaly(history([], (5.0, 10, 1)), T) is None  # a new agent


def test_a_sparse_agent_is_compared_with_its_working_hours() -> None:
    # Works one hour in six ($0.30 then): most hours cost $0, but its normal is $0.30/h, not $0.
    sparse = [(0.30, 10, 1)] * 20
    assert spend_anomaly(history(sparse, (0.60, 10, 1), every=6), T) is None
    found = spend_anomaly(history(sparse, (1.50, 10, 1), every=6), T)
    assert found is not None and found.normal == pytest.approx(0.30)


def test_a_volatile_agent_needs_a_larger_jump() -> None:
    # Median $0.40, but hours swing between $0.10 and $1.60 (MAD $0.30): 3.75x the median ($1.50) is within
    # its spread; the fence is $0.40 + 3 x 1.4826 x $0.30 = $1.73.
    volatile = [(0.10, 5, 0), (0.40, 5, 0), (1.60, 5, 0)] * 16
    assert spend_anomaly(history(volatile, (1.50, 5, 0)), T) is None
    found = spend_anomaly(history(volatile, (2.00, 5, 0)), T)
    assert found is not None and found.threshold == pytest.approx(0.40 + 3 * 1.4826 * 0.30)


def test_past_spikes_do_not_raise_the_normal() -> None:
    with_spikes = [(0.20, 10, 1)] * 45 + [(9.0, 10, 1)] * 3  # a few runaway hours in the history
    found = spend_anomaly(history(with_spikes, (1.00, 10, 1)), T)
    assert found is not None and found.normal == pytest.approx(0.20)


# ---- rejections ------------------------------------------------------------------------------


def test_a_rejection_spike_alerts() -> None:
    found = rejection_anomaly(history(STEADY, (0.20, 10, 6)), T)
    assert found is not None
    assert found.kind == "rejection_rate"
    assert found.normal == pytest.approx(0.10)
    assert found.current == pytest.approx(0.6)
    assert found.sentence == (
        "6 of 10 drafts rejected in the last hour (60%), 6.0x the agent's normal 10% (48 of 480 over 2.0 days)"
    )


def test_a_usual_rejection_rate_does_not_alert() -> None:
    assert rejection_anomaly(history(STEADY, (0.20, 10, 2)), T) is None  # 20%: 2x normal
    assert rejection_anomaly(history(STEADY, (0.20, 40, 11)), T) is None  # 27.5%: below 3x


def test_one_rejection_of_one_is_not_an_anomaly() -> None:
    assert rejection_anomaly(history(STEADY, (0.01, 1, 1)), T) is None  # 100%, but below min_rejections
    assert rejection_anomaly(history(STEADY, (0.01, 2, 2)), T) is None
    assert rejection_anomaly(history(STEADY, (0.01, 3, 3)), T) is not None


def test_rejections_need_enough_judged_history() -> None:
    little = [(0.20, 1, 0)] * 10 + [(0.20, 0, 0)] * 38  # 10 judged over two days: too few
    assert rejection_anomaly(history(little, (0.20, 5, 5)), T) is None
    short = [(0.20, 10, 1)] * 20  # 200 judged, but in 20 hours
    assert rejection_anomaly(history(short, (0.20, 5, 5)), T) is None


def test_an_often_rejected_agent_alerts_when_acceptances_collapse() -> None:
    # Normal 40% rejected: 3x would be 120%; instead its acceptance rate (60%) falling to a third (20%) alerts.
    often = [(0.20, 10, 4)] * 48
    assert rejection_anomaly(history(often, (0.20, 10, 7)), T) is None  # 70% rejected, 30% accepted
    found = rejection_anomaly(history(often, (0.20, 10, 8)), T)
    assert found is not None and found.threshold == pytest.approx(0.8)


def test_an_agent_never_rejected_before() -> None:
    clean = [(0.20, 10, 0)] * 48
    found = rejection_anomaly(history(clean, (0.20, 10, 4)), T)
    assert found is not None and found.ratio is None
    assert "where the agent's normal is 0%" in found.sentence


def test_both_rates_at_once() -> None:
    found = detect(history(STEADY, (2.0, 10, 9)), T)
    assert [a.kind for a in found] == ["spend_rate", "rejection_rate"]


# ---- bucketing and the alert -----------------------------------------------------------------


def test_build_history_cuts_events_into_hour_slots_ending_now() -> None:
    spend = [
        (NOW - timedelta(minutes=5), 0.50),  # the current hour
        (NOW - timedelta(minutes=59), 0.25),  # still the current hour
        (NOW - timedelta(minutes=61), 0.10),  # the hour before
        (NOW - timedelta(minutes=119), 0.05),  # the same hour before
        (NOW - timedelta(days=3), 0.30),  # three days back: the first activity
        (NOW - timedelta(days=9), 100.0),  # before the lookback: ignored
        (NOW + timedelta(minutes=1), 100.0),  # after now: ignored
    ]
    verdicts = [(NOW - timedelta(minutes=10), True), (NOW - timedelta(minutes=20), False), (NOW - 2 * H, True)]
    h = build_history("acme", "mira", NOW, spend=spend, verdicts=verdicts, history_days=7)
    assert h.current == HourBucket(start=NOW - H, spend_usd=0.75, judged=2, rejected=1)
    assert h.history[-1] == HourBucket(start=NOW - 2 * H, spend_usd=0.15, judged=0, rejected=0)
    assert h.history[-2] == HourBucket(start=NOW - 3 * H, spend_usd=0.0, judged=1, rejected=1)
    assert h.history[0].spend_usd == pytest.approx(0.30)
    assert h.first_seen == NOW - timedelta(days=3)
    assert h.history_hours == pytest.approx(71.0)
    assert [b.start for b in h.history] == sorted(b.start for b in h.history)


def test_the_anomaly_alert_is_keyed_by_the_clock_hour() -> None:
    found = spend_anomaly(history(STEADY, (1.20, 10, 1)), T)
    assert found is not None
    alert = anomaly_alert(found, raised_at=NOW.isoformat(), campaign_id="launch")
    assert alert.alert_id == "anomaly:spend_rate:acme:mira:2026-12-01T15Z"
    assert (alert.kind, alert.severity, alert.scope) == ("anomaly", "warning", "agent")
    assert alert.detail == "Spend $1.20 in the last hour, 6.0x the agent's normal $0.20/h."
    later = found.model_copy(update={"window_end": NOW + timedelta(minutes=30)})
    assert anomaly_alert(later, raised_at=NOW.isoformat()).alert_id == alert.alert_id  # 15:50: same hour
    next_hour = found.model_copy(update={"window_end": NOW + H})
    assert anomaly_alert(next_hour, raised_at=NOW.isoformat()).alert_id != alert.alert_id


def test_thresholds_come_from_settings() -> None:
    settings = Settings(anomaly_factor=5.0, anomaly_min_spend_usd_per_hour=0.5, anomaly_min_rejections=2)
    t = AnomalyThresholds.from_settings(settings)
    assert (t.factor, t.min_spend_usd_per_hour, t.min_rejections, t.history_days) == (5.0, 0.5, 2, 7)
    assert spend_anomaly(history(STEADY, (0.80, 10, 1)), t) is None  # 4x: below a factor of 5


def test_a_bucket_cannot_reject_more_than_it_judged() -> None:
    with pytest.raises(ValueError, match="3 rejected of 2 judged"):
        HourBucket(start=NOW, judged=2, rejected=3)
