"""A deterministic, template-based stand-in for an LLM, so Chimera runs (and is tested) with no network.

Nothing here reads a clock or unseeded randomness: every choice is seeded from a hash of the request, so the same
request always gets the same plan or draft, which also keeps Temporal activity retries and replays boring. The
plans come from `offline_planner`, the drafts from `offline_writer`.
"""

from __future__ import annotations

from chimera.models.base import ToolRunner
from chimera.models.offline_common import MODEL_NAME
from chimera.models.offline_planner import OfflinePlanner
from chimera.models.offline_writer import OfflineWriter
from chimera.safety.rules import SafetyRules
from schemas.plan import TaskPlan
from schemas.task import Draft, PlanRequest, WriteRequest


class OfflineModelProvider:
    """A ModelProvider with no model behind it: readable plans and persona-built drafts, all deterministic."""

    name = MODEL_NAME

    def __init__(self, rules: SafetyRules | None = None) -> None:
        # The default rules spot hostile mentions (to deflect them) and judge-bait topics when re-planning.
        rules = rules if rules is not None else SafetyRules.default()
        self._planner = OfflinePlanner(rules)
        self._writer = OfflineWriter(rules)

    async def plan(self, request: PlanRequest) -> TaskPlan:
        """A cycle's plan, or exactly one replacement task when `request.replan_of` is set (OfflinePlanner.plan)."""
        return self._planner.plan(request)

    async def write(self, request: WriteRequest, tools: ToolRunner | None = None) -> Draft:
        """A draft built from the persona's own material (OfflineWriter.write)."""
        return await self._writer.write(request, tools)
