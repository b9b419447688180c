"""What the offline planner and writer share: the model's name, its usage accounting, its reading of a
mention as hostile, and one way to shorten text."""

from __future__ import annotations

import json

from chimera.safety.rules import SafetyRules
from schemas.persona import Persona
from schemas.plan import Mention, Usage

MODEL_NAME = "offline-template-v1 (offline, no LLM)"


def hostile_rules(rules: SafetyRules, persona: Persona, mention: Mention) -> list[str]:
    """The rules the mention's text breaks as untrusted input (injection, abuse): a reason to deflect it."""
    return [f.rule for f in rules.evaluate(persona, "", [mention.text]) if f.where == "input"]


def render(value: object) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)


CHARS_PER_TOKEN = 4  # the vendors' rule of thumb for English text


def usage(output: str) -> Usage:
    """The output's estimated tokens; the provider adds the prompt's (chimera/models/offline.py), measured on
    the prompt a live model would get."""
    return Usage(model=MODEL_NAME, output_tokens=estimated_tokens(output))


def estimated_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


def shorten(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
