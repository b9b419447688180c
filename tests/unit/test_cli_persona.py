"""`chimera persona check`: line-numbered problems and exit 1, or a one-line OK; --json for tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chimera.cli.app import app

ROOT = Path(__file__).resolve().parents[2]
MIRA = ROOT / "examples" / "personas" / "mira" / "SOUL.md"
FIXTURES = ROOT / "tests" / "fixtures" / "personas"

runner = CliRunner()


def check(*args: str):
    return runner.invoke(app, ["persona", "check", *args])


def test_valid_persona_prints_one_ok_line() -> None:
    result = check(str(MIRA))
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{MIRA}: OK: persona mira-okafor (Mira Okafor)")
    assert "2 handle(s)" in lines[0] and "10 examples" in lines[0]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bad_id.md", [":2: id 'Bad_ID' is not a valid slug"]),
        ("bad_yaml.md", [":5: invalid YAML in front matter"]),
        ("missing_section.md", [":6: missing required section '## Boundaries'"]),
        ("unknown_key.md", [":6: unknown front matter key 'nickname' (did you mean 'name'?)"]),
    ],
)
def test_each_broken_fixture_names_file_and_line(name: str, expected: list[str]) -> None:
    path = FIXTURES / name
    result = check(str(path))
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith(f"{path}{want}"), line


def test_many_errors_are_all_listed_in_line_order() -> None:
    path = FIXTURES / "many_errors.md"
    result = check(str(path))
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    numbers = [int(line.removeprefix(f"{path}:").split(":", 1)[0]) for line in lines]
    assert numbers == [3, 6, 7, 8, 12, 14, 21, 23]
    assert "unknown section '## Boundries' (did you mean '## Boundaries'?)" in lines[5]


def test_json_for_a_broken_file() -> None:
    path = FIXTURES / "missing_section.md"
    result = check(str(path), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["persona_id"] is None
    assert data["issues"] == [
        {"file": str(path), "line": 6, "field": "boundaries", "message": "missing required section '## Boundaries'"}
    ]


def test_json_for_a_valid_file() -> None:
    result = check(str(MIRA), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data == {"file": str(MIRA), "ok": True, "persona_id": "mira-okafor", "name": "Mira Okafor", "issues": []}


def test_missing_file_is_reported_without_a_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.md"
    result = check(str(path))
    assert result.exit_code == 1
    assert result.stdout.startswith(f"{path}: cannot read persona file")
