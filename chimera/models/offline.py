"""A deterministic, template-based stand-in for an LLM, so Chimera runs (and is tested) with no network.

Nothing here reads a clock or unseeded randomness: every choice is seeded from a hash of the request, so the same
request always gets the same plan or draft, which also keeps Temporal activity retries and replays boring. The
plans come from `offline_planner`, the drafts from `offline_writer`.

Its calls are priced as the tier's primary model would have charged for the same tokens (estimated from the
prompt and output lengths), marked `estimated`: a rehearsal binds its budget as production would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from chimera.models.base import Answered, Ask, CallRecord, ModelError, Planned, Shape, ToolRunner, Written
from chimera.models.catalog import ModelCatalog, price_line, total_usage
from chimera.models.offline_common import MODEL_NAME, estimated_tokens
from chimera.models.offline_planner import OfflinePlanner
from chimera.models.offline_writer import OfflineWriter
from chimera.models.prompts import PLANNER_TASK, WRITER_TASK, Boundary, PromptBuilder
from chimera.models.structured import DraftProposal, PlanProposal
from chimera.safety.rules import SafetyRules
from schemas.models import Authorship, TierName, TokenUsage
from schemas.plan import Usage
from schemas.task import PlanRequest, WriteRequest

# A fixed boundary keeps the estimate (and so the provider) deterministic; it is never sent anywhere.
_BOUNDARY = Boundary("0" * 16)
_SCHEMAS = {
    "plan": json.dumps(PlanProposal.model_json_schema()),
    "draft": json.dumps(DraftProposal.model_json_schema()),
}


class OfflineModelProvider:
    """A ModelProvider with no model behind it: readable plans and persona-built drafts, all deterministic."""

    name = MODEL_NAME

    def __init__(
        self,
        rules: SafetyRules | None = None,
        catalog: ModelCatalog | None = None,
        today: Callable[[], date] | None = None,
    ) -> None:
        # The default rules spot hostile mentions (to deflect them) and judge-bait topics when re-planning.
        rules = rules if rules is not None else SafetyRules.default()
        self._planner = OfflinePlanner(rules)
        self._writer = OfflineWriter(rules)
        self._catalog = catalog or ModelCatalog.load()
        self._prices = self._catalog.price_table()
        self._today = today or (lambda: datetime.now(UTC).date())
        self._prompts = PromptBuilder(rules)

    async def plan(self, request: PlanRequest, *, attempt: int = 1) -> Planned:
        """A cycle's plan, or exactly one replacement task when `request.replan_of` is set (OfflinePlanner.plan)."""
        plan = self._planner.plan(request)
        key = f"plan:{request.campaign_id}:{request.key_prefix}/a{attempt}/c1"
        prompt = self._prompts.system(request.persona, PLANNER_TASK) + self._prompts.plan_turn(request, _BOUNDARY)
        call, usage = self._priced("planning", request.models, key, plan.usage, prompt + _SCHEMAS["plan"])
        return Planned(plan=plan.model_copy(update={"usage": usage}), calls=[call])

    async def write(self, request: WriteRequest, tools: ToolRunner | None = None, *, attempt: int = 1) -> Written:
        """A draft built from the persona's own material (OfflineWriter.write)."""
        draft = await self._writer.write(request, tools)
        tier: TierName = "reply" if request.task.task_type == "reply" else "post"
        key = f"{request.task_id or request.task.key}/a{attempt}/c1"
        prompt = self._prompts.system(request.persona, WRITER_TASK) + self._prompts.write_turn(request, _BOUNDARY)
        offered = json.dumps([t.input_schema for t in tools.tools]) if tools is not None else ""
        call, usage = self._priced(tier, request.models, key, draft.usage, prompt + _SCHEMAS["draft"] + offered)
        author = Authorship(tier=tier, provider="offline", model=MODEL_NAME, probability_source="offline_template")
        return Written(draft=draft.model_copy(update={"usage": usage, "author": author}), calls=[call])

    async def ask(self, ask: Ask, shape: type[Shape], *, attempt: int = 1) -> Answered[Shape]:
        """Templates cannot judge or look at images: the caller's offline checks decide alone."""
        raise ModelError(f"the offline provider has no model for the {ask.tier} tier (set provider credentials)")

    def _priced(
        self, tier: TierName, overrides: dict[str, Any], key: str, raw: Usage, prompt: str
    ) -> tuple[CallRecord, Usage]:
        """The call priced at the list price of the model the tier would have used, for the prompt the live
        provider would have sent (system prompt, user turn, answer schema, tool definitions)."""
        stand_in = self._catalog.tiers.merged(overrides).tier(tier).primary
        tokens = TokenUsage(input_tokens=estimated_tokens(prompt), output_tokens=raw.output_tokens)
        line = price_line(self._prices, key, tier, stand_in.provider, stand_in.model, tokens, self._today())
        line = line.model_copy(update={"estimated": True})
        exchange = {"offline": True, "priced_as": str(stand_in)}
        return CallRecord(line=line, exchange=exchange), total_usage([line], MODEL_NAME, "offline", tier)
