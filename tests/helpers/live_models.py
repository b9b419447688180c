"""The live provider through the real anthropic and google-genai SDKs, pointed at the loopback fakes
(tests/helpers/fake_llm.py): every tier asked for on one vendor (primary) with the other as its fallback."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from anthropic import AsyncAnthropic
from google import genai
from google.genai import types

from chimera.models.anthropic_chat import AnthropicChat
from chimera.models.catalog import ModelCatalog
from chimera.models.chat import ChatClient
from chimera.models.gemini_chat import GeminiChat
from chimera.models.llm import LlmModelProvider
from chimera.safety.rules import SafetyRules
from schemas.models import ProviderName
from tests.helpers.fake_llm import FakeAnthropic, FakeGemini

DAY = date(2026, 12, 1)


def live_provider(
    fakes: tuple[FakeAnthropic, FakeGemini],
    first: str = "anthropic",
    tiers: Sequence[str] = ("planning", "post", "reply"),
    **tier: Any,
) -> LlmModelProvider:
    a, g = fakes
    claude = {"provider": "anthropic", "model": "claude-haiku-5-5"}
    gemini = {"provider": "gemini", "model": "gemini-4-hydrogen"}
    primary, fallback = (claude, gemini) if first == "anthropic" else (gemini, claude)
    settings = {"primary": primary, "fallback": fallback, "timeout_seconds": 5, **tier}
    catalog = ModelCatalog.load().with_changes({t: settings for t in tiers}, [])
    chats: dict[ProviderName, ChatClient] = {
        "anthropic": AnthropicChat(AsyncAnthropic(api_key=a.api_key, base_url=a.base_url, max_retries=0)),
        "gemini": GeminiChat(
            genai.Client(
                api_key=g.api_key,
                http_options=types.HttpOptions(base_url=g.base_url, retry_options=types.HttpRetryOptions(attempts=1)),
            )
        ),
    }
    return LlmModelProvider(catalog, chats, SafetyRules.default(), max_tool_calls=2, today=lambda: DAY)
