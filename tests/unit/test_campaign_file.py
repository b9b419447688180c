"""Campaign files and durations: the example loads, each problem is reported at its line, persona errors included."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from chimera.campaign_file import CampaignFileError, check_campaign, load_campaign, parse_campaign
from chimera.durations import format_duration, parse_duration
from chimera.file_issues import FileIssue
from chimera.temporal_config import TemporalConfig
from schemas.policy import ConfidenceBands, JudgePolicy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "campaign.yaml"
BROKEN = ROOT / "tests" / "fixtures" / "campaigns" / "broken.yaml"
PERSONAS = ROOT / "tests" / "fixtures" / "personas"
BUILT_IN = TemporalConfig()  # temporal.yaml's defaults when there is no temporal.yaml
# A temporal.yaml whose judge and review deadline differ from the built-in ones (and from the example's).
TEMPORAL_YAML = TemporalConfig(
    judge=JudgePolicy(bands=ConfidenceBands(approve_at=0.97, escalate_at=0.6)), review_deadline_seconds=600
)

# Lines: 1 tenant, 2 id, 3 name, 4 persona, 5 goals, 6 item, 7 platforms, 8 budget, 9 daily_usd.
MINIMAL = """\
tenant: acme-agency
id: spring-thrift
name: Spring
persona: personas/mira/SOUL.md
goals:
  - Promote the challenge
platforms: [twitter, instagram]
budget:
  daily_usd: 5
"""


def issues_of(text: str, base_dir: Path = ROOT / "examples") -> list[FileIssue]:
    with pytest.raises(CampaignFileError) as caught:
        parse_campaign(text, "campaign.yaml", base_dir, BUILT_IN)
    return caught.value.errors


def at(issues: list[FileIssue]) -> list[tuple[int | None, str | None]]:
    return [(i.line, i.field) for i in issues]


# --- durations ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("15m", 900),
        ("90s", 90),
        ("1h30m", 5400),
        ("72h", 259_200),
        ("2d", 172_800),
        ("1d 12h", 129_600),
        ("1h0m5s", 3605),
        ("3600", 3600),
        (" 45s ", 45),
        (3600, 3600),
        (0, 0),
    ],
)
def test_parse_duration_accepts(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "bad", ["", " ", "1 hour", "1.5h", "-5", "-5m", "1H", "30m1h", "1h1h", "h", "1x", "1h30", True, -1, 1.5, None]
)
def test_parse_duration_rejects(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("seconds", [0, 59, 60, 3600, 5400, 86_400 + 61])
def test_format_duration_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds
    assert format_duration(5400) == "1h30m"


# --- the example -------------------------------------------------------------------------------------------------


def test_example_campaign_loads() -> None:
    spec = load_campaign(EXAMPLE, BUILT_IN)
    assert (spec.tenant_id, spec.campaign_id) == ("acme-agency", "spring-thrift")
    assert spec.persona.id == "mira-okafor"
    assert 2 <= len(spec.goals) <= 3
    assert spec.platforms == ["twitter", "instagram"]
    assert spec.daily_budget_usd == 5
    assert spec.timezone == "Europe/Berlin"
    assert spec.cycle_interval_seconds == 3600
    assert spec.max_tasks_per_cycle == 5 and spec.max_replans == 2
    assert spec.review_deadline_seconds == 72 * 3600
    assert check_campaign(EXAMPLE) == []


def test_minimal_campaign_gets_defaults() -> None:
    spec = parse_campaign(MINIMAL, "campaign.yaml", ROOT / "examples", BUILT_IN)
    assert spec.timezone == "UTC"
    assert spec.cycle_interval_seconds == 3600 and spec.review_deadline_seconds == 72 * 3600
    assert spec.judge.bands.approve_at == 0.90


def test_temporal_yaml_fills_the_judge_and_deadline_the_file_leaves_out() -> None:
    spec = parse_campaign(MINIMAL, "campaign.yaml", ROOT / "examples", TEMPORAL_YAML)
    assert spec.judge == TEMPORAL_YAML.judge and spec.review_deadline_seconds == 600
    # The example writes review.deadline (72h) and leaves judge out.
    spec = load_campaign(EXAMPLE, TEMPORAL_YAML)
    assert spec.judge == TEMPORAL_YAML.judge and spec.review_deadline_seconds == 72 * 3600
    # An empty `review:` group sets no deadline; a `judge:` group with only bands is the file's own judge.
    text = MINIMAL + "review: {}\njudge:\n  bands: {approve_at: 0.8, escalate_at: 0.5}\n"
    spec = parse_campaign(text, "campaign.yaml", ROOT / "examples", TEMPORAL_YAML)
    assert spec.review_deadline_seconds == 600
    assert spec.judge == JudgePolicy(bands=ConfidenceBands(approve_at=0.8, escalate_at=0.5))


def test_judge_overrides_are_applied() -> None:
    text = MINIMAL + (
        "judge:\n"
        "  weights: {model_probability: 0.25, persona_similarity: 0.25, safety: 0.25, historical_success: 0.25}\n"
        "  bands: {approve_at: 0.95, escalate_at: 0.5}\n"
    )
    spec = parse_campaign(text, "campaign.yaml", ROOT / "examples", TEMPORAL_YAML)  # the file's judge wins
    assert spec.judge.weights.safety == 0.25
    assert (spec.judge.bands.approve_at, spec.judge.bands.escalate_at) == (0.95, 0.5)


def test_model_tier_overrides_are_kept_and_merge_into_the_tiers() -> None:
    text = MINIMAL + "models:\n  post:\n    primary: {model: gemini-3.8-flash}\n    effort: low\n"
    spec = parse_campaign(text, "campaign.yaml", ROOT / "examples", BUILT_IN)
    assert spec.models == {"post": {"primary": {"model": "gemini-3.8-flash"}, "effort": "low"}}
    assert spec.model_overrides()["post"]["effort"] == "low"


def test_bad_model_overrides_are_named_at_their_line() -> None:
    text = MINIMAL + "models:\n  post:\n    max_tokns: 3\n  reply:\n    fallback: {provider: anthropic}\n"
    issues = issues_of(text)
    messages = " | ".join(i.message for i in issues)
    assert (12, "models.post.max_tokns") in at(issues) and "did you mean 'max_tokens'" in messages
    # reply's primary is Claude by default: an Anthropic fallback would not be on the other provider
    text = MINIMAL + "models:\n  reply:\n    fallback: {provider: anthropic, model: claude-opus-5-5}\n"
    assert "the fallback must be on the other provider" in " | ".join(i.message for i in issues_of(text))


# --- the broken fixture: every problem, at its line --------------------------------------------------------------


def test_broken_campaign_reports_everything_at_its_line() -> None:
    issues = check_campaign(BROKEN)
    assert at(issues) == [
        (1, "tenant_id"),
        (4, "persona"),
        (5, "goals"),
        (6, "platforms"),
        (8, "daily_budget_usd"),
        (9, "timezone"),
        (11, "cycle_interval_seconds"),
        (12, "max_tasks_per_cycle"),
        (15, "review.reviewers"),
        (2, "id"),  # the persona's own error, after the campaign's
    ]
    persona_path = os.path.normpath(BROKEN.parent / "../personas/bad_id.md")
    assert [i.file for i in issues] == [None] * 9 + [persona_path]
    messages = [i.message for i in issues]
    assert "(e.g. 'acme-agency')" in messages[0]
    assert "(got 'tiktok')" in messages[3]
    assert "did you mean 'Europe/Berlin'?" in messages[5]
    assert "invalid duration '1 hour'" in messages[6]
    assert messages[8] == "unknown key 'review.reviewers'; allowed: deadline"


def test_broken_campaign_str_names_both_files() -> None:
    with pytest.raises(CampaignFileError) as caught:
        load_campaign(BROKEN, BUILT_IN)
    lines = str(caught.value).splitlines()
    assert lines[0].startswith(f"{BROKEN}:1: tenant 'Acme Agency' is not a valid slug")
    assert lines[-1].startswith(f"{os.path.normpath(PERSONAS / 'bad_id.md')}:2: id 'Bad_ID'")


# --- rules, one at a time ----------------------------------------------------------------------------------------


def test_persona_path_is_relative_to_the_campaign_file() -> None:
    issues = issues_of(MINIMAL, base_dir=ROOT)
    assert at(issues) == [(4, "persona")]
    assert issues[0].message.startswith("persona file not found:")


def test_platform_without_a_handle(tmp_path: Path) -> None:
    soul = (ROOT / "examples/personas/mira/SOUL.md").read_text(encoding="utf-8")
    (tmp_path / "SOUL.md").write_text(soul.replace("  instagram: mira.threads\n", ""), encoding="utf-8")
    issues = issues_of(MINIMAL.replace("personas/mira/SOUL.md", "SOUL.md"), base_dir=tmp_path)
    assert at(issues) == [(7, "platforms")]
    assert "platform 'instagram' has no handle in persona 'mira-okafor' (handles: twitter)" in issues[0].message


def test_platform_listed_twice() -> None:
    issues = issues_of(MINIMAL.replace("[twitter, instagram]", "\n  - twitter\n  - twitter"))
    assert [(i.line, i.message) for i in issues] == [(9, "platform 'twitter' is listed twice")]


def test_missing_required_key_is_reported_at_line_1() -> None:
    issues = issues_of(MINIMAL.replace("budget:\n  daily_usd: 5\n", ""))
    assert [(i.line, i.message) for i in issues] == [(1, "missing required key 'budget.daily_usd'")]


def test_group_must_be_a_mapping() -> None:
    issues = issues_of(MINIMAL.replace("budget:\n  daily_usd: 5\n", "budget: 5\n"))
    assert (8, "budget") in at(issues)
    assert any(i.message == "'budget' must be a mapping with keys: daily_usd" for i in issues)


def test_weights_must_sum_to_one_reported_at_weights() -> None:
    issues = issues_of(MINIMAL + "judge:\n  weights:\n    safety: 0.5\n")
    assert at(issues) == [(11, "judge")]
    assert "confidence weights must sum to 1.0" in issues[0].message


def test_unknown_nested_judge_key() -> None:
    issues = issues_of(MINIMAL + "judge:\n  bands:\n    approve: 0.9\n")
    assert at(issues) == [(12, "judge.bands.approve")]
    assert "(did you mean 'approve_at'?)" in issues[0].message


def test_yaml_syntax_error_line() -> None:
    issues = issues_of(MINIMAL.replace("name: Spring", "name: [Spring"))
    assert len(issues) == 1 and issues[0].line in (3, 4)
    assert issues[0].message.startswith("invalid YAML in campaign file")


def test_duplicate_key() -> None:
    issues = issues_of(MINIMAL + "id: other\n")
    assert [(i.line, i.message) for i in issues] == [(10, "duplicate key 'id' (first given at line 2)")]


def test_bad_deadline_and_timezone_are_both_reported() -> None:
    issues = issues_of(MINIMAL + "timezone: Mars/Olympus\nreview:\n  deadline: soon\n")
    assert at(issues) == [(10, "timezone"), (12, "review_deadline_seconds")]


def test_a_file_that_is_not_a_mapping() -> None:
    issues = issues_of("- just\n- a list\n")
    assert [(i.line, i.message) for i in issues] == [(1, "campaign file must be a mapping of 'key: value' lines")]


# --- memory and news ---------------------------------------------------------------------------------------------


def test_memory_and_news_sections_take_durations() -> None:
    text = MINIMAL + (
        "memory:\n  short_term_window: 7d\n  repeat_window: 2d12h\n  recall: 3\n  conversation_turns: 4\n"
        "  engagement_after: 30m\n"
        "news:\n  topics: [thrifting, repair café]\n  check_every: 90s\n"
    )
    spec = parse_campaign(text, "campaign.yaml", ROOT / "examples", BUILT_IN)
    m = spec.memory
    assert (m.short_term_window_seconds, m.repeat_window_seconds, m.engagement_after_seconds) == (
        604_800,
        216_000,
        1800,
    )
    assert (m.recall_limit, m.conversation_limit) == (3, 4)
    assert spec.news.topics == ["thrifting", "repair café"] and spec.news.check_every_seconds == 90


def test_without_memory_or_news_the_defaults_hold() -> None:
    spec = parse_campaign(MINIMAL, "campaign.yaml", ROOT / "examples", BUILT_IN)
    assert spec.memory.short_term_window_seconds == 30 * 86_400 and spec.memory.repeat_window_seconds == 14 * 86_400
    assert spec.news.topics == [] and spec.news.check_every_seconds == 300


def test_bad_memory_and_news_values_are_named_as_the_file_writes_them() -> None:
    text = MINIMAL + "memory:\n  short_term_window: soon\n  recall: 99\n  forget: yes\nnews:\n  check_every: -5\n"
    issues = issues_of(text)
    messages = " | ".join(i.message for i in issues)
    assert (13, "memory.forget") in at(issues)  # an unknown key, at its line
    assert (11, "memory") in at(issues) and "memory.short_term_window: invalid duration 'soon'" in messages
    assert (15, "news") in at(issues) and "news.check_every: duration must not be negative" in messages
    text = MINIMAL + "memory:\n  recall: 99\n"
    [issue] = issues_of(text)
    assert issue.line == 11 and "memory.recall" in issue.message and "20" in issue.message
