"""A programmable safety rule engine: rules in YAML, `SafetyFlag`s out.

A rules file (see chimera/defaults/safety_rules.yaml) holds `version: 1`, optional `anchors` (named lists that
rules reuse through YAML anchors) and `rules`, each with:

    id           slug naming the rule in flags and errors
    description  what the rule is for, in a sentence
    severity     low (a human should look) | high (reject)
    scope        input (untrusted texts the task read) | output (what the task wrote)
    kind         regex         `patterns`, case-insensitive regular expressions
                 phrases       `phrases`, case-insensitive whole words or phrases
                 banned_topic  the persona's banned_topics, plus `synonyms` (topic -> words), whole words,
                               plurals, and CamelCase hashtags split into words (#CryptoCrash -> crypto crash)
                 boundary      the watch terms of the persona's boundaries (SOUL.md `[watch: a, b]`), as above
                 system_leak   7-word fragments of the persona's system prompt (her public examples excluded),
                               plus `phrases` such as "as an AI language model"
    unless       optional regexes: when one matches the same text, the rule does not fire
    enabled      optional, default true

Everything is compiled once, when the file is loaded; per-persona matchers are compiled on first use and cached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chimera.safety.normalize import readings, written
from schemas.persona import Persona
from schemas.policy import SafetyFlag, Severity

RuleKind = Literal["regex", "phrases", "banned_topic", "boundary", "system_leak"]
Scope = Literal["input", "output"]

SNIPPET_CHARS = 40  # flags quote what matched, never replay hostile input at length
LEAK_SHINGLE_WORDS = 7  # long enough that a boundary sentence said in passing is not a "leak"
LOW_FLAG_COST = 0.25
_WORDS = re.compile(r"[a-z0-9']+")
_HASHTAG = re.compile(r"#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z0-9])|(?<=[0-9])(?=[A-Za-z])|(?<=[A-Z])(?=[A-Z][a-z])")


class SafetyRulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the rule."""


class RuleSpec(BaseModel):
    """One rule as written in the YAML file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str = Field(min_length=1)
    severity: Severity
    scope: Scope
    kind: RuleKind
    patterns: list[str] = Field(default_factory=list)
    phrases: list[str] = Field(default_factory=list)
    synonyms: dict[str, list[str]] = Field(default_factory=dict)
    unless: list[str] = Field(default_factory=list)
    enabled: bool = True

    @field_validator("patterns", "unless")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} does not compile: {exc}") from exc
        return patterns

    @field_validator("phrases")
    @classmethod
    def _phrases_not_blank(cls, phrases: list[str]) -> list[str]:
        if any(not p.strip() for p in phrases):
            raise ValueError("phrases must not be blank")
        return phrases

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> RuleSpec:
        if self.kind == "regex" and not self.patterns:
            raise ValueError("a regex rule needs at least one pattern")
        if self.kind == "phrases" and not self.phrases:
            raise ValueError("a phrases rule needs at least one phrase")
        if self.patterns and self.kind != "regex":
            raise ValueError(f"'patterns' only applies to kind regex, not {self.kind}")
        if self.phrases and self.kind not in ("phrases", "system_leak"):
            raise ValueError(f"'phrases' only applies to kinds phrases and system_leak, not {self.kind}")
        if self.synonyms and self.kind != "banned_topic":
            raise ValueError(f"'synonyms' only applies to kind banned_topic, not {self.kind}")
        return self


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    anchors: dict[str, Any] = Field(default_factory=dict, description="named lists for YAML anchors; ignored")
    rules: list[Any] = Field(min_length=1)


@dataclass(frozen=True)
class _Hit:
    snippet: str
    note: str = ""  # e.g. which banned topic a synonym belongs to

    def describe(self) -> str:
        return f'{self.note}: "{self.snippet}"' if self.note else f'matched "{self.snippet}"'


def _snippet(text: str) -> str:
    text = " ".join(text.split()).replace('"', "'")
    text = "".join(ch for ch in text if ch.isprintable())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1].rstrip() + "…"


def _phrase_regex(phrases: Iterable[str], plurals: bool = False) -> re.Pattern[str]:
    """Whole-word, case-insensitive alternation; inner spaces, '-' and '_' may vary or vanish inside hashtags."""
    bodies = []
    for phrase in sorted({p.strip() for p in phrases if p.strip()}, key=lambda p: (-len(p), p)):  # longest first
        body = r"[\s_-]*".join(re.escape(w) for w in re.split(r"[\s_-]+", phrase))
        bodies.append(body + ("(?:s|es)?" if plurals else ""))
    return re.compile(r"(?<!\w)(?:" + "|".join(bodies) + r")(?!\w)", re.IGNORECASE)


def _with_split_hashtags(text: str) -> str:
    """Append the words of CamelCase hashtags: '#ElectionNight2026' also reads as 'election night 2026'."""
    words = [_CAMEL.sub(" ", tag) for tag in _HASHTAG.findall(text)]
    return text if not words else text + "\n" + "\n".join(words)


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower().replace("\u2019", "'"))  # curly apostrophes read as straight ones


def _shingles(words: Sequence[str], n: int = LEAK_SHINGLE_WORDS) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class _Rule:
    """A compiled rule. Persona-dependent matchers are built on first use and cached by their inputs."""

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self._patterns = [re.compile(p, re.IGNORECASE) for p in spec.patterns]
        self._unless = [re.compile(p, re.IGNORECASE) for p in spec.unless]
        self._phrases = _phrase_regex(spec.phrases) if spec.phrases else None
        self._topic_cache: dict[tuple[str, ...], list[tuple[str, re.Pattern[str]]]] = {}
        self._leak_cache: dict[str, set[tuple[str, ...]]] = {}

    @property
    def patterns(self) -> list[re.Pattern[str]]:
        return self._patterns

    def find(self, text: str, persona: Persona) -> _Hit | None:
        """The first hit in any reading of the text (as written, then with obfuscation undone)."""
        if not text.strip():
            return None
        for reading in readings(text):
            hit = self._find(reading, persona)
            if hit is not None and not any(p.search(reading) for p in self._unless):
                return hit
        return None

    def _find(self, text: str, persona: Persona) -> _Hit | None:
        for pattern in self._patterns:
            if m := pattern.search(text):
                return _Hit(_snippet(m.group(0)))
        if self._phrases is not None and (m := self._phrases.search(text)):
            return _Hit(_snippet(m.group(0)))
        if self.spec.kind == "banned_topic":
            return self._find_topic(text, persona)
        if self.spec.kind == "system_leak":
            return self._find_leak(text, persona)
        if self.spec.kind == "boundary":
            return self._find_boundary(text, persona)
        return None

    def _find_boundary(self, text: str, persona: Persona) -> _Hit | None:
        """A watch term of one of the persona's boundaries (SOUL.md `[watch: ...]`) appears in the text."""
        expanded = _with_split_hashtags(text)
        for boundary, terms in sorted(persona.boundary_terms.items()):
            if not terms:
                continue
            key = (boundary, *terms)
            if key not in self._topic_cache:
                self._topic_cache[key] = [(boundary, _phrase_regex(terms, plurals=True))]
            for _, regex in self._topic_cache[key]:
                if m := regex.search(expanded):
                    return _Hit(_snippet(m.group(0)), note=f"boundary '{_snippet(boundary)}'")
        return None

    def _find_topic(self, text: str, persona: Persona) -> _Hit | None:
        key = tuple(persona.banned_topics)
        if key not in self._topic_cache:
            self._topic_cache[key] = [(topic, self.topic_regex(topic)) for topic in key if topic.strip()]
        expanded = _with_split_hashtags(text)
        for topic, regex in self._topic_cache[key]:
            if m := regex.search(expanded):
                return _Hit(_snippet(m.group(0)), note=f"banned topic '{_snippet(topic)}'")
        return None

    def topic_regex(self, topic: str) -> re.Pattern[str]:
        topic_words = set(_words(topic))
        terms = [topic]
        for name, synonyms in self.spec.synonyms.items():
            # "politics" also covers a banned topic written as "US politics"
            if set(_words(name)) <= topic_words:
                terms += [name, *synonyms]
        return _phrase_regex(terms, plurals=True)

    def _find_leak(self, text: str, persona: Persona) -> _Hit | None:
        prompt = persona.system_prompt()
        if prompt not in self._leak_cache:
            self._leak_cache[prompt] = self._leak_shingles(persona, prompt)
        shingles = self._leak_cache[prompt]
        words = _words(text)
        for i in range(len(words) - LEAK_SHINGLE_WORDS + 1):
            if (gram := tuple(words[i : i + LEAK_SHINGLE_WORDS])) in shingles:
                return _Hit(_snippet(" ".join(gram)), note="repeats its system prompt")
        return None

    @staticmethod
    def _leak_shingles(persona: Persona, prompt: str) -> set[tuple[str, ...]]:
        # Her examples are public posts: echoing them is her voice, not a leak.
        public: set[tuple[str, ...]] = set()
        for example in sorted(persona.examples, key=len, reverse=True):
            prompt = prompt.replace(example, "\n")
            public |= _shingles(_words(example))
        return _shingles(_words(prompt)) - public


class SafetyRules:
    """A loaded, compiled rule set. Build it with `default()`, `from_file()` or `from_yaml()`."""

    def __init__(self, specs: Sequence[RuleSpec]) -> None:
        self._rules = [_Rule(s) for s in specs if s.enabled]
        self.specs: tuple[RuleSpec, ...] = tuple(specs)

    @classmethod
    def default(cls) -> SafetyRules:
        """The embedded rules (chimera/defaults/safety_rules.yaml), loaded and compiled once per process."""
        return _default_rules()

    @classmethod
    def from_file(cls, path: str | Path) -> SafetyRules:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SafetyRulesError(f"{path}: cannot read safety rules: {exc}") from exc
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def load(cls, path: str | Path | None) -> SafetyRules:
        """`from_file(path)` when a path is configured (Settings.safety_rules), else `default()`."""
        return cls.from_file(path) if path is not None else cls.default()

    @classmethod
    def from_yaml(cls, text: str, source: str = "<rules>") -> SafetyRules:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SafetyRulesError(f"{source}: not valid YAML: {exc}") from exc
        try:
            document = _RulesFile.model_validate(data)
        except ValidationError as exc:
            raise SafetyRulesError(f"{source}: {_errors(exc)}") from exc
        specs: list[RuleSpec] = []
        for index, raw in enumerate(document.rules, start=1):
            name = raw.get("id") if isinstance(raw, dict) else None
            label = f"rule '{name}'" if isinstance(name, str) and name else f"rule #{index}"
            try:
                spec = RuleSpec.model_validate(raw)
            except ValidationError as exc:
                raise SafetyRulesError(f"{source}: {label}: {_errors(exc)}") from exc
            if any(s.id == spec.id for s in specs):
                raise SafetyRulesError(f"{source}: {label}: duplicate rule id")
            specs.append(spec)
        return cls(specs)

    @property
    def rule_ids(self) -> list[str]:
        return [r.spec.id for r in self._rules]

    def input_markers(self, text: str) -> list[tuple[int, int, str]]:
        """Where the input-scope pattern rules match in an untrusted text: (start, end, rule id), in order and
        not overlapping, on the text as normalised (NFKC, no zero-width characters). Prompts mark these spans
        for the model instead of deleting them (chimera/models/prompts.py)."""
        text = written(text)
        spans: list[tuple[int, int, str]] = []
        for rule in self._rules:
            if rule.spec.scope != "input" or rule.spec.kind != "regex":
                continue
            for pattern in rule.patterns:
                spans.extend((m.start(), m.end(), rule.spec.id) for m in pattern.finditer(text) if m.end() > m.start())
        kept: list[tuple[int, int, str]] = []
        for span in sorted(spans):
            if not kept or span[0] >= kept[-1][1]:
                kept.append(span)
        return kept

    def named_topic(self, text: str, topics: Sequence[str]) -> str | None:
        """The first of `topics` the text names, matched as banned topics are (whole words, plurals, CamelCase
        hashtags, and the banned-topic rule's synonyms), or None. Breaking news uses it for a campaign's topics
        and its persona's banned topics alike, so both are recognised the same way."""
        rule = next((r for r in self._rules if r.spec.kind == "banned_topic"), None)
        expanded = _with_split_hashtags(written(text))
        for topic in topics:
            if not topic.strip():
                continue
            regex = rule.topic_regex(topic) if rule is not None else _phrase_regex([topic], plurals=True)
            if regex.search(expanded):
                return topic
        return None

    def evaluate(self, persona: Persona, output_text: str, untrusted_inputs: list[str]) -> list[SafetyFlag]:
        """One flag per rule that fires, in file order; the detail quotes at most SNIPPET_CHARS of what matched."""
        flags: list[SafetyFlag] = []
        for rule in self._rules:
            spec = rule.spec
            if spec.scope == "output":
                if hit := rule.find(output_text, persona):
                    detail = hit.describe()
                    flags.append(SafetyFlag(rule=spec.id, severity=spec.severity, where="output", detail=detail))
                continue
            hits = [(i, h) for i, text in enumerate(untrusted_inputs, start=1) if (h := rule.find(text, persona))]
            if hits:
                first, hit = hits[0]
                more = f" (+{len(hits) - 1} more)" if len(hits) > 1 else ""
                detail = f"{hit.describe()} in input {first}{more}"
                flags.append(SafetyFlag(rule=spec.id, severity=spec.severity, where="input", detail=detail))
        return flags


def safety_score(flags: Iterable[SafetyFlag]) -> float:
    """1.0 with no flag; each low flag costs 0.25; any high flag makes it 0.0. Never below 0."""
    flags = list(flags)
    if any(f.severity == "high" for f in flags):
        return 0.0
    return max(0.0, 1.0 - LOW_FLAG_COST * sum(1 for f in flags if f.severity == "low"))


MAX_REASON_CHARS = 240  # a model's reason for a flag, as kept in the flag's detail


def model_reason(text: str) -> str:
    """A model's stated reason for a flag, on one line and bounded."""
    return " ".join(text.split())[:MAX_REASON_CHARS] or "no reason given"


def strongest_per_rule(flags: Iterable[SafetyFlag]) -> list[SafetyFlag]:
    """One flag per rule, the highest severity kept, in first-seen order: a model that repeats itself adds no risk."""
    best: dict[str, SafetyFlag] = {}
    for f in flags:
        if f.rule not in best or (f.severity == "high" and best[f.rule].severity == "low"):
            best[f.rule] = f
    return list(best.values())


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


@cache
def _default_rules() -> SafetyRules:
    text = resources.files("chimera").joinpath("defaults/safety_rules.yaml").read_text(encoding="utf-8")
    return SafetyRules.from_yaml(text, source="chimera/defaults/safety_rules.yaml")
