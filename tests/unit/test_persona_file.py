"""SOUL.md parsing: the example loads, every broken file gives its specific error at the right line."""

from __future__ import annotations

from pathlib import Path

import pytest

from chimera.file_issues import FileIssue
from chimera.persona_file import (
    PersonaFileError,
    check_persona,
    load_persona,
    parse_persona,
)

ROOT = Path(__file__).resolve().parents[2]
MIRA = ROOT / "examples" / "personas" / "mira" / "SOUL.md"
FIXTURES = ROOT / "tests" / "fixtures" / "personas"

VALID = """\
---
id: test-persona
name: Test Persona
handles:
  twitter: "@test"
---

## Voice

Plain and friendly.

## Boundaries

- No politics.

## Examples

- "Hello."
"""


def issues_of(text: str) -> list[FileIssue]:
    with pytest.raises(PersonaFileError) as caught:
        parse_persona(text, "SOUL.md")
    return caught.value.errors


def lines_and_messages(issues: list[FileIssue]) -> list[tuple[int | None, str]]:
    return [(i.line, i.message) for i in issues]


# --- the example -------------------------------------------------------------------------------------------------


def test_mira_example_loads_with_every_field_mapped() -> None:
    persona = load_persona(MIRA)
    assert persona.id == "mira-okafor"
    assert persona.name == "Mira Okafor"
    assert persona.handles == {"twitter": "@mira_threads", "instagram": "mira.threads"}
    assert persona.language == "en"
    assert set(persona.banned_topics) == {"politics", "crypto", "gambling", "diet pills"}
    assert "warm" in persona.tone_words and "witty" in persona.tone_words
    assert persona.voice.startswith("Warm, witty")
    # Bio then Backstory, one blank line apart.
    assert persona.bio.startswith("Thrift-store treasure hunter")
    assert "\n\nMira grew up in Manchester" in persona.bio
    assert all(tag.startswith("#") for tag in persona.hashtags) and "#thriftflip" in persona.hashtags
    assert any("#ad" in b for b in persona.boundaries)
    assert any("politic" in b.lower() for b in persona.boundaries)


def test_mira_examples_are_posts_without_their_quotes() -> None:
    persona = load_persona(MIRA)
    assert 8 <= len(persona.examples) <= 12
    for example in persona.examples:
        assert len(example) < 280, example
        assert not example.startswith('"') and not example.endswith('"'), example
        assert "#" in example, example


def test_check_persona_is_empty_for_the_example() -> None:
    assert check_persona(MIRA) == []


def test_minimal_file_uses_defaults() -> None:
    persona = parse_persona(VALID, "SOUL.md")
    assert persona.language == "en" and persona.bio == "" and persona.hashtags == []
    assert persona.examples == ["Hello."]


# --- the broken fixtures -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "line", "field", "fragment"),
    [
        ("bad_yaml.md", 5, None, "found character '@' that cannot start any token"),
        ("missing_section.md", 6, "boundaries", "missing required section '## Boundaries'"),
        ("bad_id.md", 2, "id", "id 'Bad_ID' is not a valid slug"),
        ("unknown_key.md", 6, "nickname", "unknown front matter key 'nickname' (did you mean 'name'?)"),
    ],
)
def test_broken_fixture_gives_one_specific_error(name: str, line: int, field: str | None, fragment: str) -> None:
    issues = check_persona(FIXTURES / name)
    assert len(issues) == 1, issues
    assert issues[0].line == line
    assert issues[0].field == field
    assert fragment in issues[0].message


def test_unknown_key_lists_the_allowed_keys() -> None:
    (issue,) = check_persona(FIXTURES / "unknown_key.md")
    assert "allowed: id, name, handles, language, tone_words, banned_topics, hashtags" in issue.message


def test_all_errors_are_collected_in_line_order() -> None:
    issues = check_persona(FIXTURES / "many_errors.md")
    assert [(i.line, i.field) for i in issues] == [
        (3, "name"),
        (6, "tone_words"),
        (7, "hashtags"),
        (8, "boundaries"),  # missing section: the closing '---' line
        (12, "voice"),  # empty section: its heading
        (14, None),  # unknown '## Boundries'
        (21, "examples"),  # stray text in a list
        (23, "examples"),  # repeated section
    ]
    assert "did you mean '## Boundaries'?" in issues[5].message
    assert "repeated (first at line 18)" in issues[7].message


def test_error_str_lists_file_line_message() -> None:
    path = FIXTURES / "bad_id.md"
    with pytest.raises(PersonaFileError) as caught:
        load_persona(path)
    assert str(caught.value) == f"{path}:2: {caught.value.errors[0].message}"
    assert isinstance(caught.value, ValueError)


def test_missing_file_is_a_persona_file_error(tmp_path: Path) -> None:
    with pytest.raises(PersonaFileError) as caught:
        load_persona(tmp_path / "nope.md")
    assert caught.value.errors[0].line is None
    assert str(caught.value).startswith(f"{tmp_path / 'nope.md'}: cannot read persona file")


# --- rules, one at a time ----------------------------------------------------------------------------------------


def test_missing_front_matter_is_line_1_and_sections_are_still_checked() -> None:
    body = VALID.split("---\n", 2)[2]
    assert lines_and_messages(issues_of(body))[0][0] == 1
    assert len(issues_of(body)) == 1  # no noise about the missing id/name/handles
    broken = body.replace("## Voice\n\nPlain and friendly.\n", "## Voice\n")
    assert [(i.line, i.field) for i in issues_of(broken)] == [
        (1, None),
        (2, "voice"),
    ]  # the body starts with a blank line


def test_unclosed_front_matter() -> None:
    issues = issues_of(VALID.replace("---\n\n## Voice", "\n## Voice", 1))
    assert [(i.line, i.message) for i in issues] == [
        (1, "front matter is not closed: add a '---' line after its last key")
    ]


def test_missing_required_key_is_reported_at_the_closing_line() -> None:
    issues = issues_of(VALID.replace("name: Test Persona\n", ""))
    assert lines_and_messages(issues) == [(5, "missing required front matter key 'name'")]


def test_yaml_error_line_is_offset_into_the_file() -> None:
    issues = issues_of(VALID.replace("name: Test Persona", "name: [unclosed"))
    assert len(issues) == 1 and issues[0].line in (3, 4)
    assert issues[0].message.startswith("invalid YAML in front matter")


def test_nested_value_error_points_at_the_nested_key() -> None:
    issues = issues_of(VALID.replace('twitter: "@test"', 'twitter: "@test"\n  instagram: 42'))
    assert [(i.line, i.field) for i in issues] == [(6, "handles")]
    assert issues[0].message.startswith("handles.instagram: Input should be a valid string")


def test_duplicate_key() -> None:
    issues = issues_of(VALID.replace("name: Test Persona\n", "name: Test Persona\nname: Other\n"))
    assert lines_and_messages(issues) == [(4, "duplicate key 'name' (first given at line 3)")]


def test_section_written_as_front_matter_key_gets_a_hint() -> None:
    issues = issues_of(VALID.replace("name: Test Persona\n", "name: Test Persona\nvoice: chatty\n"))
    assert [(i.line, i.field) for i in issues] == [(4, "voice")]
    assert "'## Voice' section" in issues[0].message


def test_empty_list_section_is_reported_at_its_heading() -> None:
    issues = issues_of(VALID.replace("- No politics.\n", ""))
    assert [(i.line, i.field) for i in issues] == [(12, "boundaries")]
    assert "is empty" in issues[0].message


def test_text_before_the_first_section() -> None:
    issues = issues_of(VALID.replace("\n## Voice", "# Title\nA stray paragraph.\n\n## Voice", 1))
    assert [i.line for i in issues] == [8]
    assert "text before the first '## ' section" in issues[0].message


def test_bullets_wrap_quotes_strip_and_headings_are_case_insensitive() -> None:
    text = VALID.replace(
        '## Examples\n\n- "Hello."\n', "## examples\n\n- \u201cA long post\n  that wraps.\u201d\n* 'Star item'\n"
    )
    persona = parse_persona(text, "SOUL.md")
    assert persona.examples == ["A long post that wraps.", "Star item"]


def test_hashtags_get_their_hash_and_may_come_from_a_section() -> None:
    front = parse_persona(VALID.replace("---\n\n", 'hashtags: [thriftflip, "#rewear"]\n---\n\n', 1), "SOUL.md")
    assert front.hashtags == ["#thriftflip", "#rewear"]
    section = parse_persona(VALID + "\n## Hashtags\n\n- #thriftflip\n- rewear\n", "SOUL.md")
    assert section.hashtags == ["#thriftflip", "#rewear"]


def test_hashtags_in_both_places_is_an_error() -> None:
    text = VALID.replace("---\n\n", "hashtags: [a]\n---\n\n", 1) + "\n## Hashtags\n\n- b\n"
    issues = issues_of(text)
    assert len(issues) == 1 and issues[0].field == "hashtags"
    assert "given twice" in issues[0].message and "(line 6)" in issues[0].message


def test_yaml_boolean_surprise_shows_the_value() -> None:
    issues = issues_of(VALID.replace("---\n\n", "language: no\n---\n\n", 1))
    assert issues[0].line == 6 and "(got False)" in issues[0].message


def test_bio_comes_before_backstory_whatever_their_order() -> None:
    text = VALID + "\n## Backstory\n\nGrew up sewing.\n\n## Bio\n\nThrifter.\n"
    assert parse_persona(text, "SOUL.md").bio == "Thrifter.\n\nGrew up sewing."
    assert parse_persona(VALID + "\n## Backstory\n\nGrew up sewing.\n", "SOUL.md").bio == "Grew up sewing."


def test_boundary_watch_terms_are_split_off_and_checked(tmp_path: Path) -> None:
    mira = MIRA.read_text()
    persona = parse_persona(mira, "SOUL.md")
    giveaways = next(b for b in persona.boundaries if b.startswith("Do not promise giveaways"))
    assert "[watch:" not in giveaways and giveaways.endswith("has not approved.")
    assert persona.boundary_terms[giveaways] == ["giveaway", "prize", "discount code", "promo code"]

    broken = mira.replace("[watch: giveaway, prize, discount code, promo code]", "[watch: ]")
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "[watch: ]" in text)
    path = tmp_path / "SOUL.md"
    path.write_text(broken)
    issues = check_persona(path)
    assert [(i.line, i.message) for i in issues] == [
        (line, "'[watch: ...]' needs at least one term, e.g. [watch: cures]")
    ]
