"""The Judge's labelled corpus of mentions: one JSON object a line (benchmarks/data/judge/mentions.jsonl).

Every line is a mention a follower could send, with what it is (`category`, `hostile`), how it is disguised
(`obfuscation`), what an attacker wants posted (`target`) and where it came from (`source`, `source_ref`,
`licence`). `split` keeps a held-out part that no rule, threshold or classifier is tuned on.

A user's own corpus (`chimera eval judge --corpus FILE`) needs only `id`, `text` and `category`: `hostile` follows
from the category, and the rest default (source "user", split "heldout", obfuscation "none", language "und").
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Category = Literal["benign", "injection", "jailbreak", "abuse", "threat", "hate", "dangerous", "scam"]
Obfuscation = Literal["none", "leet", "homoglyph", "zero_width", "base64", "rot13", "spacing", "mixed_language"]
Split = Literal["train", "dev", "heldout"]

CATEGORIES: tuple[str, ...] = get_args(Category)
OBFUSCATIONS: tuple[str, ...] = get_args(Obfuscation)
SPLITS: tuple[str, ...] = get_args(Split)
# The shipped corpus, in a source checkout.
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "judge" / "mentions.jsonl"


class CorpusError(ValueError):
    """A corpus that cannot be used; the message names the file, the line and the field (`file:line: ...`)."""

    def __init__(self, message: str, line: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.field = field


class CorpusItem(BaseModel):
    """One labelled mention."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    category: Category
    hostile: bool
    language: str = Field(default="und", min_length=1)
    obfuscation: Obfuscation = "none"
    target: str | None = None
    source: str = Field(default="user", min_length=1)
    source_ref: str | None = None
    licence: str | None = None
    split: Split = "heldout"
    base_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_hostile(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("hostile") is None and isinstance(data.get("category"), str):
            return {**data, "hostile": data["category"] != "benign"}
        return data

    @model_validator(mode="after")
    def _hostile_matches_category(self) -> CorpusItem:
        if self.hostile != (self.category != "benign"):
            raise ValueError(f"hostile is {str(self.hostile).lower()} but category is {self.category!r}")
        return self


def _describe(exc: ValidationError) -> tuple[str, str | None]:
    """The first problem as a sentence, and the field it is about (None for a problem across fields)."""
    err = exc.errors()[0]
    field = ".".join(str(part) for part in err["loc"]) or None
    msg = str(err["msg"]).removeprefix("Value error, ")
    if field is None:
        return msg, None
    if err["type"] == "missing":
        return f"field {field!r} is missing", field
    got = err.get("input")
    shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) and len(repr(got)) <= 60 else ""
    return f"field {field!r}: {msg}{shown}", field


def parse_corpus(lines: Iterable[str], name: str = "<corpus>") -> list[CorpusItem]:
    """Items from JSONL lines (blank lines skipped); a bad line raises CorpusError naming `name:line`."""
    items: list[CorpusItem] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})", number) from exc
        if not isinstance(data, dict):
            raise CorpusError(f"{where}: expected a JSON object, got {type(data).__name__}", number)
        try:
            item = CorpusItem.model_validate(data)
        except ValidationError as exc:
            message, field = _describe(exc)
            raise CorpusError(f"{where}: {message}", number, field) from exc
        if item.id in first_line:
            raise CorpusError(
                f"{where}: field 'id': {item.id!r} is already used on line {first_line[item.id]}", number, "id"
            )
        first_line[item.id] = number
        items.append(item)
    return items


def load_corpus(path: Path) -> list[CorpusItem]:
    """Every item of a JSONL corpus file, in file order."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: cannot read the corpus: {exc}") from exc
    return parse_corpus(text.splitlines(), str(path))


def select(items: Iterable[CorpusItem], split: str | None = None) -> list[CorpusItem]:
    """The items of one split (train, dev or heldout), or all of them when split is None."""
    if split is None:
        return list(items)
    if split not in SPLITS:
        raise CorpusError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    return [item for item in items if item.split == split]
