"""Which ModelProvider a process runs: the live one (Anthropic and Gemini) or the offline one.

`model_provider = auto` (the default) goes live when Anthropic or Gemini credentials are in the environment
and stays offline otherwise, so the quick start needs no accounts and a deployment with keys needs no switch.
"""

from __future__ import annotations

from typing import Literal

from chimera.models import credentials
from chimera.models.base import ModelProvider
from chimera.models.catalog import ModelCatalog
from chimera.models.chat import ChatClient
from chimera.models.offline import OfflineModelProvider
from chimera.safety.rules import SafetyRules
from chimera.settings import Settings
from schemas.models import ProviderName


def load_catalog(settings: Settings) -> ModelCatalog:
    """The catalog file with the settings' tier changes and extra prices (raises CatalogError or ValueError)."""
    return ModelCatalog.load(settings.model_catalog).with_changes(settings.model_tiers, settings.model_prices)


def chat_clients() -> dict[ProviderName, ChatClient]:
    """The SDK adapters; imported here, so an offline process never loads the SDKs."""
    from chimera.models.anthropic_chat import AnthropicChat
    from chimera.models.gemini_chat import GeminiChat

    return {"anthropic": AnthropicChat(), "gemini": GeminiChat()}


def resolve_mode(settings: Settings) -> Literal["offline", "live"]:
    if settings.model_provider == "auto":
        return "live" if credentials.any_present() else "offline"
    return settings.model_provider


def build_model_provider(settings: Settings, rules: SafetyRules) -> ModelProvider:
    catalog = load_catalog(settings)
    if resolve_mode(settings) == "offline":
        return OfflineModelProvider(rules=rules, catalog=catalog)
    from chimera.models.llm import LlmModelProvider

    return LlmModelProvider(catalog, chat_clients(), rules, max_tool_calls=settings.max_tool_calls)
