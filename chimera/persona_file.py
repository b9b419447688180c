"""SOUL.md: a persona written by a campaign manager -> schemas.persona.Persona (see specs/soul-md.md).

A SOUL.md is YAML front matter between `---` lines, then markdown `## ` sections:

    front matter key    -> Persona field        section            -> Persona field
    id                  -> id                   ## Voice           -> voice (prose)
    name                -> name                 ## Boundaries      -> boundaries ("- " bullets)
    handles             -> handles              ## Examples        -> examples ("- " bullets, quotes stripped)
    language            -> language             ## Bio             -> bio (prose)
    tone_words          -> tone_words           ## Backstory       -> bio (prose, appended after ## Bio)
    banned_topics       -> banned_topics        ## Hashtags        -> hashtags ("- " bullets)
    hashtags            -> hashtags             (hashtags go in the front matter or the section, not both)

Unknown keys and unknown sections are errors, not warnings: a typo such as `## Boundries` would otherwise
silently drop the rules the agent must never break. Every problem is collected with its line number, so a
single run of the checker lists everything to fix.

The error types and YAML helpers it reports with are chimera.file_issues, shared with chimera.campaign_file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

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
from schemas.persona import Persona


class PersonaFileError(FileFormatError):
    """A SOUL.md file is invalid."""


FRONT_MATTER_KEYS: tuple[str, ...] = ("id", "name", "handles", "language", "tone_words", "banned_topics", "hashtags")
REQUIRED_FRONT_MATTER_KEYS: tuple[str, ...] = ("id", "name", "handles")
# Section title (as written, case-insensitive) -> Persona field.
SECTIONS: dict[str, str] = {
    "Voice": "voice",
    "Boundaries": "boundaries",
    "Examples": "examples",
    "Bio": "bio",
    "Backstory": "bio",
    "Hashtags": "hashtags",
}
REQUIRED_SECTIONS: tuple[str, ...] = ("Voice", "Boundaries", "Examples")
_LIST_SECTIONS = frozenset({"Boundaries", "Examples", "Hashtags"})
_SECTION_BY_KEY = {title.lower(): title for title in SECTIONS}

_H2 = re.compile(r"^##\s+(?P<title>.+?)\s*#*\s*$")
_H1 = re.compile(r"^#\s+\S")
_BULLET = re.compile(r"^[-*](?:\s+(?P<text>.*))?$")
_HASHTAG = re.compile(r"^#\w+$")
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}


@dataclass
class _Section:
    title: str
    heading_line: int
    body: list[tuple[int, str]] = field(default_factory=list)


def parse_persona(text: str, source: str) -> Persona:
    """Parse SOUL.md text; `source` names the file in messages. Raises PersonaFileError listing every problem."""
    persona, issues = persona_issues(text)
    if persona is None or issues:
        raise PersonaFileError(source, issues)
    return persona


def load_persona(path: Path) -> Persona:
    """Read and parse a SOUL.md file. Raises PersonaFileError (also for a missing or unreadable file)."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PersonaFileError(source, [FileIssue(None, None, f"cannot read persona file: {exc}")]) from exc
    return parse_persona(text, source)


def check_persona(path: Path) -> list[FileIssue]:
    """Every problem in a SOUL.md file; an empty list means it loads."""
    try:
        load_persona(path)
    except PersonaFileError as exc:
        return exc.errors
    return []


def persona_issues(text: str) -> tuple[Persona | None, list[FileIssue]]:
    """The persona (None if invalid) and every problem found, sorted by line. Used by campaign_file too."""
    issues: list[FileIssue] = []
    lines = text.removeprefix("\ufeff").splitlines()

    front, key_lines, front_ok, anchor, body_start = _split_front_matter(lines, issues)
    data: dict[str, Any] = {}
    field_lines: dict[YamlPath, int] = {}
    # Fields with a problem already reported: pydantic would only repeat it less clearly.
    reported: set[str] = set()

    for key, value in front.items():
        name = str(key)
        if name in FRONT_MATTER_KEYS:
            data[name] = value
            continue
        line = key_lines.get((name,))
        if name.lower() in _SECTION_BY_KEY:
            title = _SECTION_BY_KEY[name.lower()]
            message = f"'{name}' is not a front matter key: write it in a '## {title}' section below the front matter"
        else:
            message = unknown_name_message("front matter key", name, FRONT_MATTER_KEYS)
        issues.append(FileIssue(line, name, message))
    field_lines.update({path: line for path, line in key_lines.items() if path and path[0] in FRONT_MATTER_KEYS})
    if isinstance(data.get("hashtags"), list):
        tag_lines = [key_lines.get(("hashtags", i)) for i in range(len(data["hashtags"]))]
        data["hashtags"] = _hashtags(data["hashtags"], tag_lines, issues, reported)

    sections = _split_sections(lines, body_start, issues)
    for title in REQUIRED_SECTIONS:
        if title not in sections:
            issues.append(FileIssue(anchor, SECTIONS[title], f"missing required section '## {title}'"))
            reported.add(SECTIONS[title])

    bio_parts: dict[str, str] = {}
    for title, section in sections.items():
        target = SECTIONS[title]
        if title in _LIST_SECTIONS:
            items = _bullets(section, issues)
            if not items:
                reported.add(target)
                continue
            values = [_unquote(text) for _, text in items] if title == "Examples" else [text for _, text in items]
            item_lines = [line for line, _ in items]
            if title == "Boundaries":
                values = _boundaries(values, item_lines, data, issues)
            if title == "Hashtags":
                if "hashtags" in front:
                    issues.append(
                        FileIssue(
                            section.heading_line,
                            "hashtags",
                            f"hashtags are given twice: in the front matter (line {key_lines.get(('hashtags',))}) "
                            "and in '## Hashtags'; keep one",
                        )
                    )
                    reported.add("hashtags")
                    continue
                values = _hashtags(values, item_lines, issues, reported)
            data[target] = values
            field_lines[(target,)] = section.heading_line
            field_lines.update({(target, i): line for i, line in enumerate(item_lines)})
        else:
            prose = _prose(section)
            if not prose:
                issues.append(FileIssue(section.heading_line, target, f"section '## {title}' is empty"))
                reported.add(target)
                continue
            if target == "bio":
                bio_parts[title] = prose
            else:
                data[target] = prose
            field_lines.setdefault((target,), section.heading_line)
    if bio_parts:
        # Bio first whatever the order in the file: it is the public summary, the backstory adds to it.
        data["bio"] = "\n\n".join(bio_parts[t] for t in ("Bio", "Backstory") if t in bio_parts)

    persona: Persona | None = None
    try:
        persona = Persona.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = err["loc"]
            top = str(loc[0]) if loc else ""
            if top in reported or (not front_ok and top in FRONT_MATTER_KEYS):
                continue
            label = dotted(loc)
            if err["type"] == "missing":
                message = f"missing required front matter key '{label}'"
            else:
                message = describe_validation_error(err, label)
            issues.append(FileIssue(line_of(field_lines, loc, anchor), top or None, message))
    issues.sort(key=lambda issue: issue.line or 0)
    return (persona if not issues else None), issues


def _split_front_matter(
    lines: list[str], issues: list[FileIssue]
) -> tuple[dict[Any, Any], dict[YamlPath, int], bool, int, int]:
    """(front matter, key lines, usable?, line to report missing things at, index where the body starts)."""
    if not lines or lines[0].strip() != "---":
        issues.append(
            FileIssue(
                1,
                None,
                "missing YAML front matter: the file must start with a '---' line, then id, name, "
                "handles..., then a closing '---' line",
            )
        )
        return {}, {}, False, 1, 0
    close = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if close is None:
        issues.append(FileIssue(1, None, "front matter is not closed: add a '---' line after its last key"))
        # Still check the sections, which start at the first heading.
        body = next((i for i, line in enumerate(lines) if _H2.match(line) and not line.startswith("###")), len(lines))
        return {}, {}, False, 1, body
    parsed = load_yaml_mapping("\n".join(lines[1:close]), 2, issues, "front matter")
    if parsed is None:
        return {}, {}, False, close + 1, close + 1
    front, key_lines = parsed
    return front, key_lines, True, close + 1, close + 1


def _split_sections(lines: list[str], start: int, issues: list[FileIssue]) -> dict[str, _Section]:
    """Group body lines under their `## ` heading; report stray text, unknown and repeated sections."""
    sections: dict[str, _Section] = {}
    current: _Section | None = None
    skipping = False  # inside an unknown or repeated section: its lines were reported via the heading
    for index in range(start, len(lines)):
        number, line = index + 1, lines[index]
        heading = None if line.startswith("###") else _H2.match(line)
        if heading:
            written = heading["title"]
            title = _SECTION_BY_KEY.get(" ".join(written.split()).lower())
            current, skipping = None, True
            if title is None:
                issues.append(
                    FileIssue(
                        number, None, unknown_name_message("section", f"## {written}", [f"## {t}" for t in SECTIONS])
                    )
                )
            elif title in sections:
                first = sections[title].heading_line
                issues.append(
                    FileIssue(number, SECTIONS[title], f"section '## {title}' is repeated (first at line {first})")
                )
            else:
                current, skipping = _Section(title, number), False
                sections[title] = current
        elif current is not None:
            current.body.append((number, line))
        elif not skipping and line.strip() and not _H1.match(line):
            issues.append(
                FileIssue(
                    number,
                    None,
                    "text before the first '## ' section: only a '# Title' line may go there; "
                    "move it into a section such as '## Bio'",
                )
            )
    return sections


def _prose(section: _Section) -> str:
    return "\n".join(line for _, line in section.body).strip()


def _bullets(section: _Section, issues: list[FileIssue]) -> list[tuple[int, str]]:
    """`- item` lines (indented lines continue the previous item); report anything else in a list section."""
    items: list[tuple[int, str]] = []
    for number, line in section.body:
        if not line.strip():
            continue
        bullet = _BULLET.match(line)
        if bullet:
            text = (bullet["text"] or "").strip()
            if not text:
                issues.append(FileIssue(number, SECTIONS[section.title], f"empty bullet item in '## {section.title}'"))
            items.append((number, text))
        elif line[0].isspace() and items:
            # Markdown soft wrap: a long item may continue on indented lines.
            first_line, text = items[-1]
            items[-1] = (first_line, f"{text} {line.strip()}".strip())
        else:
            issues.append(
                FileIssue(
                    number,
                    SECTIONS[section.title],
                    f"'## {section.title}' must be a list of '- ' bullet items, found: {line.strip()[:40]!r}",
                )
            )
    if not items:
        issues.append(
            FileIssue(
                section.heading_line,
                SECTIONS[section.title],
                f"section '## {section.title}' is empty: add '- ' bullet items",
            )
        )
    return [(number, text) for number, text in items if text]


_WATCH = re.compile(r"\s*\[watch:(?P<terms>[^\]]*)\]\s*$", re.IGNORECASE)


def _boundaries(values: list[str], lines: Sequence[int], data: dict[str, Any], issues: list[FileIssue]) -> list[str]:
    """Split a trailing `[watch: term, term]` off each boundary into `boundary_terms` (see specs/soul-md.md)."""
    texts: list[str] = []
    terms: dict[str, list[str]] = {}
    for value, line in zip(values, lines, strict=True):
        match = _WATCH.search(value)
        if match is None:
            texts.append(value)
            continue
        text = value[: match.start()].strip()
        words = [t.strip().lower() for t in match["terms"].split(",") if t.strip()]
        if not words:
            issues.append(FileIssue(line, "boundaries", "'[watch: ...]' needs at least one term, e.g. [watch: cures]"))
        if not text:
            issues.append(FileIssue(line, "boundaries", "a boundary needs its rule before '[watch: ...]'"))
        texts.append(text)
        terms[text] = words
    if terms:
        data["boundary_terms"] = terms
    return texts


def _unquote(text: str) -> str:
    """Examples are often written as quotes; the quote marks are not part of the post."""
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        return text[1:-1].strip()
    return text


def _hashtags(values: list[Any], lines: Sequence[int | None], issues: list[FileIssue], reported: set[str]) -> list[Any]:
    """Add the missing '#' (front matter hashtags cannot start with an unquoted '#': YAML reads a comment)."""
    out: list[Any] = []
    for value, line in zip(values, lines, strict=True):
        if not isinstance(value, str):
            out.append(value)  # pydantic reports the wrong type at this item's line
            continue
        tag = value.strip()
        tag = tag if tag.startswith("#") else f"#{tag}"
        if not _HASHTAG.match(tag):
            issues.append(FileIssue(line, "hashtags", f"hashtag {value!r} must be one word of letters, digits or '_'"))
            reported.add("hashtags")
        out.append(tag)
    return out
