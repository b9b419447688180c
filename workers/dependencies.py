"""Everything activities need, built once per worker process."""

from __future__ import annotations

from dataclasses import dataclass

from activities.alerting import AlertSender
from chimera.alerts.anomaly import AnomalyThresholds
from chimera.alerts.dispatch import AlertDispatcher, notifiers_from
from chimera.db import StateStore
from chimera.db.alerts import SqlDeliveryStore
from chimera.mcp import McpHost
from chimera.memory import default_embedder, memory_store_from_settings
from chimera.memory.context import AgentMemory
from chimera.models.base import ModelProvider
from chimera.models.factory import build_model_provider
from chimera.persona_similarity import EmbeddingPersonaSimilarity
from chimera.safety.classifier import HarmClassifier
from chimera.safety.rules import SafetyRules
from chimera.secrets import secret_source
from chimera.settings import Settings
from chimera.similarity import PersonaSimilarity


@dataclass
class Dependencies:
    settings: Settings
    store: StateStore
    mcp: McpHost
    model: ModelProvider
    rules: SafetyRules
    similarity: PersonaSimilarity
    classifier: HarmClassifier
    alerts: AlertSender
    memory: AgentMemory

    @classmethod
    def build(cls, settings: Settings) -> Dependencies:
        settings.ensure_dirs()
        rules = SafetyRules.load(settings.safety_rules)
        store = StateStore.from_settings(settings)
        # A notifier whose secret is missing stops the worker now, naming it, instead of losing its alerts later.
        notifiers = notifiers_from(settings.notifiers, secret_source(settings))
        dispatcher = AlertDispatcher(notifiers, SqlDeliveryStore(store.database))
        alerts = AlertSender(dispatcher, store, AnomalyThresholds.from_settings(settings))
        embedder = default_embedder()  # one per process: memory, persona similarity and the classifier share it
        memory = AgentMemory(memory_store_from_settings(settings, embedder=embedder), store, embedder)
        return cls(
            settings=settings,
            store=store,
            mcp=McpHost.from_settings(settings, store, alert=alerts.send_async),
            model=build_model_provider(settings, rules),
            rules=rules,
            similarity=EmbeddingPersonaSimilarity.default(),  # the process-wide embedder, on first use
            # The weights load now (a missing file stops the worker with the fix); the embedding model on first use.
            classifier=HarmClassifier.default(),
            alerts=alerts,
            memory=memory,
        )

    async def aclose(self) -> None:
        """Close the pooled MCP sessions (stdio servers exit), then the store."""
        await self.mcp.aclose()
        self.store.close()
