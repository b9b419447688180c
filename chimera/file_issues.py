"""Problems in the files people write (SOUL.md, campaign YAML): every one with its line, phrased for the writer.

`FileIssue` is one problem, `FileFormatError` all of a file's; the helpers read YAML together with the line of
every key and list item (`load_yaml_mapping`, `line_of`) and turn unknown names and pydantic errors into
sentences about what was written (`unknown_name_message`, `describe_validation_error`, `dotted`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic_core import ErrorDetails

YamlPath = tuple[str | int, ...]


@dataclass(frozen=True)
class FileIssue:
    """One problem in a file. `line` is 1-based; None when the problem has no place (e.g. file unreadable).

    `field` names the model field (or unknown key) concerned, when there is one. `file` is set only when the
    problem is in another file than the one being loaded (a campaign's persona), so messages name the right file.
    """

    line: int | None
    field: str | None
    message: str
    file: str | None = None

    def format(self, source: str) -> str:
        where = self.file or source
        return f"{where}:{self.line}: {self.message}" if self.line is not None else f"{where}: {self.message}"


class FileFormatError(ValueError):
    """A file a person wrote is invalid; `errors` holds every problem found, in file and line order."""

    def __init__(self, source: str, errors: Iterable[FileIssue]) -> None:
        self.source = source
        self.errors: list[FileIssue] = list(errors)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(issue.format(self.source) for issue in self.errors)


# -- YAML: values plus the line of every key and list item -----------------------------------------------------

_YAML_QUOTE_HINT = ' (values starting with @, #, `, *, & or ! must be quoted, e.g. twitter: "@handle")'


def load_yaml_mapping(
    text: str, first_line: int, issues: list[FileIssue], what: str
) -> tuple[dict[Any, Any], dict[YamlPath, int]] | None:
    """Parse YAML that must be a mapping; return (data, line of each key path) or None after recording issues.

    `first_line` is the file line of the text's first line, so marks become file lines. An empty document is an
    empty mapping. Duplicate keys are reported (plain safe_load silently keeps the last one).
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + first_line if mark is not None else first_line
        problem = exc.problem or exc.context or "unreadable YAML"
        hint = _YAML_QUOTE_HINT if "cannot start any token" in problem else ""
        issues.append(FileIssue(line, None, f"invalid YAML in {what}: {problem}{hint}"))
        return None
    except yaml.YAMLError as exc:  # unmarked errors are rare (e.g. bad stream); still report, never crash
        issues.append(FileIssue(first_line, None, f"invalid YAML in {what}: {exc}"))
        return None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        issues.append(FileIssue(first_line, None, f"{what} must be a mapping of 'key: value' lines"))
        return None
    lines: dict[YamlPath, int] = {}
    if node is not None:
        _walk_lines(node, (), first_line, lines, issues)
    return data, lines


def _walk_lines(
    node: yaml.Node, path: YamlPath, first_line: int, out: dict[YamlPath, int], issues: list[FileIssue]
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + first_line
            if key in seen:
                dotted = ".".join(str(p) for p in (*path, key))
                issues.append(FileIssue(line, dotted, f"duplicate key '{dotted}' (first given at line {seen[key]})"))
                continue
            seen[key] = line
            out[(*path, key)] = line
            _walk_lines(value_node, (*path, key), first_line, out, issues)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            out[(*path, index)] = item.start_mark.line + first_line
            _walk_lines(item, (*path, index), first_line, out, issues)


def line_of(lines: Mapping[YamlPath, int], path: Iterable[str | int], default: int | None) -> int | None:
    """The line of the deepest known prefix of `path` (a list item, else its key, else its parent...)."""
    parts = tuple(path)
    for end in range(len(parts), 0, -1):
        if parts[:end] in lines:
            return lines[parts[:end]]
    return default


def unknown_name_message(kind: str, name: str, allowed: Iterable[str], shown: str | None = None) -> str:
    """ "unknown front matter key 'nmae' (did you mean 'name'?); allowed: ..." with a close-match suggestion.

    `shown` is how to print the name when it differs from what is matched (e.g. 'review.reviewers').
    """
    allowed = list(allowed)
    close = difflib.get_close_matches(name, allowed, n=1)
    maybe = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {kind} '{shown or name}'{maybe}; allowed: {', '.join(allowed)}"


_SLUG_HELP = "use 2-63 lowercase letters, digits and dashes, starting with a letter or digit"


def describe_validation_error(err: ErrorDetails, label: str) -> str:
    """A pydantic error as a sentence about `label` (the name the person wrote, e.g. 'budget.daily_usd')."""
    kind = err["type"]
    value = err.get("input")
    if kind == "missing":
        return f"missing required key '{label}'"
    if kind == "string_pattern_mismatch" and isinstance(value, str):
        suggestion = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")
        example = f" (e.g. '{suggestion}')" if re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}", suggestion) else ""
        return f"{label} '{value}' is not a valid slug: {_SLUG_HELP}{example}"
    message = err["msg"]
    # Show what was written for scalar mistakes: "got False" explains YAML's `no` -> false surprise.
    if isinstance(value, (str, int, float, bool)) or value is None:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return f"{label}: {message} (got {shown})"
    return f"{label}: {message}"


def dotted(path: Iterable[str | int]) -> str:
    """('handles', 'twitter') -> 'handles.twitter'; ('examples', 2) -> 'examples[2]'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
