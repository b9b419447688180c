"""A campaign YAML file -> schemas.campaign.CampaignSpec, with its SOUL.md persona loaded (see specs/campaign-file.md).

    file key                        -> CampaignSpec field
    tenant                          -> tenant_id
    id                              -> campaign_id
    name                            -> name
    persona (path to SOUL.md)       -> persona (loaded; the path is relative to the campaign file)
    goals                           -> goals
    platforms                       -> platforms
    budget.daily_usd                -> daily_budget_usd
    timezone                        -> timezone (an IANA name, checked with zoneinfo)
    schedule.cycle_interval         -> cycle_interval_seconds (a duration: "1h", "15m", "90s" or seconds)
    schedule.max_tasks_per_cycle    -> max_tasks_per_cycle
    schedule.max_replans            -> max_replans
    review.deadline                 -> review_deadline_seconds (a duration)
    judge.weights.* / judge.bands.* -> judge (schemas.policy.JudgePolicy overrides)
    memory.short_term_window        -> memory.short_term_window_seconds (a duration), and likewise
    memory.repeat_window / .engagement_after (durations), memory.recall, memory.conversation_turns
    news.topics / news.check_every  -> news.topics, news.check_every_seconds (a duration; 0 turns it off)

`judge` and `review.deadline` may be left out: temporal.yaml's `judge` and `review_deadline_seconds`
(the `defaults` every loader takes) stand in for them.

Like SOUL.md, unknown keys are errors and every problem is collected with its line; the persona's own
problems are included, named with the persona file's path.
"""

from __future__ import annotations

import difflib
import os
import zoneinfo
from functools import cache
from pathlib import Path
from typing import Any, get_args

from pydantic import ValidationError

from chimera.durations import parse_duration
from chimera.file_issues import (
    FileFormatError,
    FileIssue,
    YamlPath,
    describe_validation_error,
    dotted,
    line_of,
    load_yaml_mapping,
    unknown_name_message,
)
from chimera.persona_file import persona_issues
from chimera.temporal_config import TemporalConfig
from schemas.campaign import CampaignSpec, Platform
from schemas.models import TIER_NAMES, TierSettings
from schemas.persona import Persona
from schemas.policy import ConfidenceBands, ConfidenceWeights, ContentPolicy


class CampaignFileError(FileFormatError):
    """A campaign file (or the persona it names) is invalid."""


# Allowed keys: None is a leaf value, a dict is a nested mapping with its own allowed keys.
KEYS: dict[str, Any] = {
    "tenant": None,
    "id": None,
    "name": None,
    "persona": None,
    "goals": None,
    "platforms": None,
    "budget": {"daily_usd": None},
    "timezone": None,
    "schedule": {"cycle_interval": None, "max_tasks_per_cycle": None, "max_replans": None},
    "review": {"deadline": None},
    "judge": {
        "weights": dict.fromkeys(ConfidenceWeights.model_fields),
        "bands": dict.fromkeys(ConfidenceBands.model_fields),
    },
    "content": dict.fromkeys(ContentPolicy.model_fields),
    "memory": dict.fromkeys(["short_term_window", "repeat_window", "recall", "conversation_turns", "engagement_after"]),
    "news": {"topics": None, "check_every": None, "premium_url": None, "premium_max_usdc": None},
    # What the campaign's agent may pay, and to whom (specs/payments.md); the daily caps are the tenant's.
    "payments": dict.fromkeys(
        [
            "per_payment_usdc",
            "review_above_usdc",
            "counterparties",
            "agents",
            "anomaly_factor",
            "anomaly_history",
            "approval_deadline",
            "confirmations",
        ]
    ),
    # Per-tier model changes (specs/models.md), merged into the process's tiers.
    "models": {
        tier: {
            **dict.fromkeys(TierSettings.model_fields),
            "primary": {"provider": None, "model": None},
            "fallback": {"provider": None, "model": None},
        }
        for tier in TIER_NAMES
    },
}

# CampaignSpec field -> where it is written in the file.
FIELD_PATHS: dict[str, YamlPath] = {
    "tenant_id": ("tenant",),
    "campaign_id": ("id",),
    "name": ("name",),
    "persona": ("persona",),
    "goals": ("goals",),
    "platforms": ("platforms",),
    "daily_budget_usd": ("budget", "daily_usd"),
    "timezone": ("timezone",),
    "cycle_interval_seconds": ("schedule", "cycle_interval"),
    "max_tasks_per_cycle": ("schedule", "max_tasks_per_cycle"),
    "max_replans": ("schedule", "max_replans"),
    "review_deadline_seconds": ("review", "deadline"),
    "judge": ("judge",),
    "models": ("models",),
    "content": ("content",),
    "memory": ("memory",),
    "news": ("news",),
    "payments": ("payments",),
}
# Sections whose file keys differ from their model's fields: file key -> (field, is a duration).
SECTION_KEYS: dict[str, dict[str, tuple[str, bool]]] = {
    "memory": {
        "short_term_window": ("short_term_window_seconds", True),
        "repeat_window": ("repeat_window_seconds", True),
        "recall": ("recall_limit", False),
        "conversation_turns": ("conversation_limit", False),
        "engagement_after": ("engagement_after_seconds", True),
    },
    "news": {"topics": ("topics", False), "check_every": ("check_every_seconds", True)},
    "payments": {"approval_deadline": ("approval_deadline_seconds", True)},
}
_DURATION_FIELDS = frozenset({"cycle_interval_seconds", "review_deadline_seconds"})
_PLATFORMS: tuple[str, ...] = get_args(Platform)


def load_campaign(path: Path, defaults: TemporalConfig) -> CampaignSpec:
    """Read a campaign file and the SOUL.md it names; `defaults` (temporal.yaml) fills what the file leaves
    out. Raises CampaignFileError listing every problem."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignFileError(source, [FileIssue(None, None, f"cannot read campaign file: {exc}")]) from exc
    return parse_campaign(text, source, path.parent, defaults)


def check_campaign(path: Path) -> list[FileIssue]:
    """Every problem in a campaign file and its persona; an empty list means it loads."""
    try:
        load_campaign(path, TemporalConfig())  # what temporal.yaml fills in cannot make a file invalid
    except CampaignFileError as exc:
        return exc.errors
    return []


def parse_campaign(text: str, source: str, base_dir: Path, defaults: TemporalConfig) -> CampaignSpec:
    """Parse campaign YAML; `persona` paths resolve against `base_dir`; temporal.yaml (`defaults`) gives the
    judge policy and review deadline the file leaves out. Raises CampaignFileError."""
    issues: list[FileIssue] = []
    persona_problems: list[FileIssue] = []
    parsed = load_yaml_mapping(text.removeprefix("\ufeff"), 1, issues, "campaign file")
    if parsed is None:
        raise CampaignFileError(source, issues)
    raw, lines = parsed
    _check_keys(raw, KEYS, (), lines, issues)

    data: dict[str, Any] = {}
    reported: set[str] = set()  # fields already explained; pydantic would only repeat them
    for field, path in FIELD_PATHS.items():
        found, value = _get(raw, path)
        if not found:
            continue
        line = line_of(lines, path, 1)
        label = dotted(path)
        if field in _DURATION_FIELDS:
            try:
                value = parse_duration(value)
            except ValueError as exc:
                issues.append(FileIssue(line, field, f"{label}: {exc}"))
                reported.add(field)
                continue
        elif (field == "timezone" and not _valid_timezone(value, line, issues)) or (
            field == "models" and not _valid_models(value, lines, issues)
        ):
            reported.add(field)
            continue
        elif field in SECTION_KEYS:
            section = _section(field, value, lines, issues)
            if section is None:
                reported.add(field)
                continue
            value = section
        elif field == "persona":
            persona = _load_persona(value, base_dir, line, issues, persona_problems)
            if persona is None:
                reported.add(field)
                continue
            value = persona
        data[field] = value

    persona_value = data.get("persona")
    if isinstance(persona_value, Persona) and isinstance(data.get("platforms"), list):
        _check_handles(persona_value, data["platforms"], lines, issues)

    spec: CampaignSpec | None = None
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"]
            field = str(loc[0]) if loc else ""
            if field in reported:
                continue
            path = (*FIELD_PATHS.get(field, (field,)), *_file_keys(field, loc[1:]))
            issues.append(
                FileIssue(line_of(lines, path, 1), field or None, describe_validation_error(err, dotted(path)))
            )
    issues.sort(key=lambda issue: issue.line or 0)
    if spec is None or issues or persona_problems:
        raise CampaignFileError(source, [*issues, *persona_problems])
    # Not in `data` means not in the file (a key written with a problem has raised above).
    unset: dict[str, Any] = {}
    if "judge" not in data:
        unset["judge"] = defaults.judge
    if "review_deadline_seconds" not in data:
        unset["review_deadline_seconds"] = defaults.review_deadline_seconds
    return spec.model_copy(update=unset)


def _section(field: str, value: Any, lines: dict[YamlPath, int], issues: list[FileIssue]) -> dict[str, Any] | None:
    """A `memory:`, `news:` or `payments:` section with its keys as the model's fields and its durations in seconds."""
    if not isinstance(value, dict):
        return None  # _check_keys has said it must be a mapping
    out: dict[str, Any] = {}
    ok = True
    for key, item in value.items():
        name, is_duration = SECTION_KEYS[field].get(str(key), (str(key), False))
        if is_duration:
            try:
                item = parse_duration(item)
            except ValueError as exc:
                issues.append(FileIssue(line_of(lines, (field, str(key)), 1), field, f"{field}.{key}: {exc}"))
                ok = False
                continue
        out[name] = item
    return out if ok else None


def _file_keys(field: str, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """A section field's location as the file names it (`memory.recall_limit` -> `memory.recall`)."""
    names = {f: key for key, (f, _) in SECTION_KEYS.get(field, {}).items()}
    return tuple(names.get(str(part), part) for part in loc)


def _get(raw: dict[Any, Any], path: YamlPath) -> tuple[bool, Any]:
    value: Any = raw
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _check_keys(
    raw: dict[Any, Any], allowed: dict[str, Any], path: YamlPath, lines: dict[YamlPath, int], issues: list[FileIssue]
) -> None:
    """Unknown keys anywhere are errors; a group such as `budget:` must be a mapping."""
    for key, value in raw.items():
        name = str(key)
        here = (*path, name)
        line = line_of(lines, here, 1)
        if name not in allowed:
            issues.append(FileIssue(line, dotted(here), unknown_name_message("key", name, allowed, dotted(here))))
            continue
        sub = allowed[name]
        if sub is None:
            continue
        if isinstance(value, dict):
            _check_keys(value, sub, here, lines, issues)
        else:
            issues.append(
                FileIssue(line, dotted(here), f"'{dotted(here)}' must be a mapping with keys: {', '.join(sub)}")
            )


def _valid_models(value: Any, lines: dict[YamlPath, int], issues: list[FileIssue]) -> bool:
    """The tier changes merge into the embedded tiers and still make valid tiers (a known provider, a fallback
    on the other provider, limits in range)."""
    from chimera.models.catalog import ModelCatalog  # the catalog only when a file has a models section

    if not isinstance(value, dict):
        return True  # _check_keys has said it must be a mapping
    try:
        ModelCatalog.load().tiers.merged(value)
    except ValidationError as exc:
        for err in exc.errors():
            path = ("models", *(str(p) for p in err["loc"]))
            issues.append(FileIssue(line_of(lines, path, 1), "models", describe_validation_error(err, dotted(path))))
        return False
    except ValueError as exc:
        issues.append(FileIssue(line_of(lines, ("models",), 1), "models", f"models: {exc}"))
        return False
    return True


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _valid_timezone(value: Any, line: int | None, issues: list[FileIssue]) -> bool:
    if isinstance(value, str) and value.strip():
        try:
            zoneinfo.ZoneInfo(value)
            return True
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    close = difflib.get_close_matches(str(value), sorted(_timezones()), n=1)
    maybe = f" (did you mean '{close[0]}'?)" if close else ""
    issues.append(
        FileIssue(
            line, "timezone", f"unknown timezone {value!r}{maybe}: use an IANA name such as 'Europe/Berlin' or 'UTC'"
        )
    )
    return False


def _load_persona(
    value: Any, base_dir: Path, line: int | None, issues: list[FileIssue], persona_problems: list[FileIssue]
) -> Persona | None:
    if not isinstance(value, str) or not value.strip():
        issues.append(FileIssue(line, "persona", f"persona must be the path of a SOUL.md file, not {value!r}"))
        return None
    path = base_dir / value
    name = os.path.normpath(path)  # "campaigns/../personas/x.md" reads badly in messages
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        issues.append(FileIssue(line, "persona", f"persona file not found: {name} (paths are relative to this file)"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(FileIssue(line, "persona", f"cannot read persona file {name}: {exc}"))
        return None
    persona, problems = persona_issues(text)
    if problems:
        count = f"{len(problems)} error{'s' if len(problems) != 1 else ''}"
        issues.append(FileIssue(line, "persona", f"persona {name} is invalid ({count}, listed below)"))
        persona_problems.extend(FileIssue(p.line, p.field, p.message, file=p.file or name) for p in problems)
    return persona


def _check_handles(persona: Persona, platforms: list[Any], lines: dict[YamlPath, int], issues: list[FileIssue]) -> None:
    """The agent cannot post where its persona has no account; a platform listed twice is a typo."""
    seen: set[str] = set()
    for index, platform in enumerate(platforms):
        if not isinstance(platform, str):
            continue  # pydantic reports the type
        line = line_of(lines, ("platforms", index), 1)
        if platform in seen:
            issues.append(FileIssue(line, "platforms", f"platform '{platform}' is listed twice"))
        seen.add(platform)
        if platform in _PLATFORMS and platform not in persona.handles:
            have = ", ".join(persona.handles) or "none"
            issues.append(
                FileIssue(
                    line,
                    "platforms",
                    f"platform '{platform}' has no handle in persona '{persona.id}' (handles: {have}); "
                    f"add '{platform}:' under 'handles:' in its SOUL.md",
                )
            )
