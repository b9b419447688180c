"""What the offline planner and writer share: the model's name, its usage accounting, its reading of a
mention as hostile, and one way to shorten text."""

from __future__ import annotations

import json

from pydantic import BaseModel

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


def usage(persona: Persona, request: BaseModel, output: str) -> Usage:
    """Estimated tokens of the prompt a real model would get (system prompt + request) and of the output.
    The offline provider prices them at the tier's list price (chimera/models/offline.py)."""
    prompt = persona.system_prompt() + "\n\n" + render(request.model_dump(mode="json", exclude={"persona"}))
    return Usage(
        model=MODEL_NAME,
        input_tokens=-(-len(prompt) // CHARS_PER_TOKEN),
        output_tokens=-(-len(output) // CHARS_PER_TOKEN),
        cost_usd=0.0,
    )


def shorten(text: str | None, limit: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
