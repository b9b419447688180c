"""The live ModelProvider: the Planner and the Worker on real models, tiered, priced and kept out of history.

One `_Session` is one activity attempt's work on one tier: it picks the model (the tier's primary, or its
fallback from attempt `primary_attempts + 1` on, or at once when the primary has no credentials), makes the
calls, prices each (catalog.price_line), and asks once for a repair when an answer does not validate.
Every call it made travels with the result, or with the error, so the activity records all of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from chimera.models.base import (
    Answered,
    Ask,
    CallRecord,
    ModelError,
    Planned,
    Shape,
    ToolRunner,
    ToolUseError,
    Written,
)
from chimera.models.catalog import ModelCatalog, PriceTable, price_line, total_usage
from chimera.models.chat import (
    ChatClient,
    ChatReply,
    ChatRequest,
    ChatTool,
    ErrorKind,
    ModelCallError,
    ToolOutcome,
    Turn,
)
from chimera.models.prompts import PLANNER_TASK, WRITER_TASK, Boundary, PromptBuilder
from chimera.models.structured import (
    DraftProposal,
    InvalidAnswer,
    PlanProposal,
    brief_probability,
    final_text,
    parse_answer,
    to_plan,
)
from chimera.safety.rules import SafetyRules
from schemas.models import Authorship, ModelChoice, ProbabilitySource, ProviderName, TierName, TierSettings
from schemas.plan import TaskPlan, Usage
from schemas.task import Draft, PlanRequest, WriteRequest

IMAGE_TOOL = "generate_image"
Result = TypeVar("Result")


class LlmModelProvider:
    """Planner and Worker on Anthropic and Gemini (chimera.models.anthropic_chat / gemini_chat)."""

    name = "live"

    def __init__(
        self,
        catalog: ModelCatalog,
        chats: Mapping[ProviderName, ChatClient],
        rules: SafetyRules,
        max_tool_calls: int = 4,
        today: Callable[[], date] | None = None,
    ) -> None:
        self._catalog = catalog
        self._prices = catalog.price_table()
        self._chats = dict(chats)
        self._prompts = PromptBuilder(rules)
        self._max_tool_calls = max_tool_calls
        self._today = today or (lambda: datetime.now(UTC).date())

    def _session(self, tier: TierName, overrides: dict[str, Any], attempt: int, key: str) -> _Session:
        try:
            settings = self._catalog.tiers.merged(overrides).tier(tier)
        except ValueError as exc:
            raise ModelCallError("config", f"the campaign's models settings: {exc}", provider="-", model="-") from exc
        return _Session(tier, settings, self._chats, self._prices, attempt, key, self._today())

    async def plan(self, request: PlanRequest, *, attempt: int = 1) -> Planned:
        session = self._session("planning", request.models, attempt, f"plan:{request.campaign_id}:{request.key_prefix}")
        system = self._prompts.system(request.persona, PLANNER_TASK)
        turns = [Turn(role="user", text=self._prompts.plan_turn(request, Boundary.new()))]

        def convert(proposal: PlanProposal) -> TaskPlan:
            return to_plan(proposal, request, session.usage())

        plan, _ = await session.answer(system, turns, PlanProposal, convert)
        # The usage is final only now (a repair adds a call).
        return Planned(plan=plan.model_copy(update={"usage": session.usage()}), calls=session.calls)

    async def write(self, request: WriteRequest, tools: ToolRunner | None = None, *, attempt: int = 1) -> Written:
        tier: TierName = "reply" if request.task.task_type == "reply" else "post"
        session = self._session(tier, request.models, attempt, request.task_id or request.task.key)
        system = self._prompts.system(request.persona, WRITER_TASK)
        turns = [Turn(role="user", text=self._prompts.write_turn(request, Boundary.new()))]
        runner = _ToolLoop(tools, self._prompts, self._max_tool_calls)
        try:
            proposal, reply = await session.answer(system, turns, DraftProposal, lambda p: p, runner)
            media_ids = await _images(request, proposal, tools)
        except ToolUseError as exc:  # the attempt fails on a tool, but its model calls were made
            raise exc.with_calls(session.calls) from None
        probability = math.exp(reply.logprob) if reply.logprob is not None else brief_probability(proposal)
        draft = Draft(
            text=final_text(proposal),
            model_probability=min(max(probability, 0.0), 1.0),
            usage=session.usage(),
            media_ids=media_ids,
            author=session.author(reply),
            memory_ids=proposal.memory_ids,
        )
        return Written(draft=draft, calls=session.calls)

    async def ask(self, ask: Ask, shape: type[Shape], *, attempt: int = 1) -> Answered[Shape]:
        session = self._session(ask.tier, ask.models, attempt, ask.key)
        boundary = Boundary.new()
        blocks = [self._prompts.block(boundary, source, content) for source, content in ask.data]
        text = "\n".join([boundary.note(), ask.instructions.strip(), *blocks, "Answer with the JSON."])
        turns = [Turn(role="user", text=text, images=ask.images)]
        answer, reply = await session.answer(self._prompts.system(ask.persona, ask.task), turns, shape, lambda a: a)
        return Answered(answer=answer, author=session.author(reply), usage=session.usage(), calls=session.calls)


class _ToolLoop:
    """The writer's tools, bounded: at most `limit` calls a task; results go back as data blocks."""

    def __init__(self, tools: ToolRunner | None, prompts: PromptBuilder, limit: int) -> None:
        self.tools = tools
        self._prompts = prompts
        self._limit = limit
        self.used = 0
        # Rounds allowed before the model must answer: the call limit, plus one to hear "limit reached".
        self.rounds = limit + 1

    def definitions(self) -> tuple[ChatTool, ...]:
        if self.tools is None or self._limit == 0:
            return ()
        return tuple(ChatTool(t.name, t.description, t.input_schema or {"type": "object"}) for t in self.tools.tools)

    async def run(self, reply: ChatReply) -> Turn:
        boundary = Boundary.new()
        outcomes = []
        for req in reply.tool_requests:
            outcomes.append(await self._one(req.id, req.name, req.arguments, boundary))
        # The note rides in the first result: this turn's blocks have a boundary token of their own.
        first = outcomes[0]
        outcomes[0] = ToolOutcome(first.id, first.name, f"{boundary.note()}\n{first.content}", first.is_error)
        return Turn(role="tool_results", tool_outcomes=tuple(outcomes))

    async def _one(self, call_id: str, name: str, arguments: dict[str, Any], boundary: Boundary) -> ToolOutcome:
        if self.tools is None or not self.tools.has(name):
            return ToolOutcome(call_id, name, f"no tool named {name!r} is available", is_error=True)
        if self.used >= self._limit:
            return ToolOutcome(call_id, name, "the tool-call limit for this task is reached: answer now", True)
        self.used += 1
        try:
            result = await self.tools.call(name, arguments)
        except ToolUseError as exc:
            if exc.retry_after_seconds is not None:
                raise  # rate limited: the whole attempt waits and retries (activities/content.py)
            return ToolOutcome(call_id, name, str(exc), is_error=True)
        return ToolOutcome(call_id, name, self._prompts.block(boundary, f"tool {name}", result))


class _Session:
    def __init__(
        self,
        tier: TierName,
        settings: TierSettings,
        chats: Mapping[ProviderName, ChatClient],
        prices: PriceTable,
        attempt: int,
        key: str,
        day: date,
    ) -> None:
        self.tier = tier
        self.settings = settings
        self._prices = prices
        self._key = f"{key}/a{attempt}"
        self._day = day
        self.calls: list[CallRecord] = []
        self.choice, self.fallback, self.chat = _pick(tier, settings, chats, attempt)

    def usage(self) -> Usage:
        return total_usage([c.line for c in self.calls], self.choice.model, self.choice.provider, self.tier)

    def author(self, reply: ChatReply) -> Authorship:
        """Who answered, and where model_probability comes from: the answer's log-probabilities where the
        provider gave them, else the model's self-assessment."""
        source: ProbabilitySource = "logprobs" if reply.logprob is not None else "self_assessment"
        return Authorship(
            tier=self.tier,
            provider=self.choice.provider,
            model=self.choice.model,
            fallback=self.fallback,
            probability_source=source,
        )

    async def call(
        self, system: str, turns: Sequence[Turn], tools: tuple[ChatTool, ...], schema: dict[str, Any]
    ) -> ChatReply:
        request = ChatRequest(self.tier, self.choice, self.settings, system, tuple(turns), tools, schema)
        try:
            reply = await self.chat.complete(request)
        except ModelError as exc:
            raise exc.with_calls(self.calls) from None
        line = price_line(
            self._prices,
            f"{self._key}/c{len(self.calls) + 1}",
            self.tier,
            self.choice.provider,
            self.choice.model,
            reply.tokens,
            self._day,
        )
        self.calls.append(CallRecord(line=line, exchange=reply.exchange))
        if reply.stop == "refusal":
            raise self._failed("refused", f"declined the task ({reply.text or 'refusal'})")
        return reply

    async def answer(
        self,
        system: str,
        turns: list[Turn],
        shape: type[BaseModel],
        convert: Callable[[Any], Result],
        tools: _ToolLoop | None = None,
    ) -> tuple[Result, ChatReply]:
        """Call (running tool calls until the model answers), parse, and repair once if the answer is invalid."""
        schema = shape.model_json_schema()
        definitions = tools.definitions() if tools else ()
        rounds = 0
        repaired = False
        while True:
            reply = await self.call(system, turns, definitions, schema)
            if reply.tool_requests and tools is not None:
                rounds += 1
                if rounds > tools.rounds:
                    raise self._failed("invalid_output", "kept calling tools instead of answering")
                turns = [*turns, reply.as_turn(), await tools.run(reply)]
                continue
            try:
                return convert(parse_answer(shape, reply.text)), reply
            except InvalidAnswer as exc:
                if repaired:
                    why = f"the answer did not validate, even after a repair request: {exc}"
                    raise self._failed("invalid_output", why) from None
                repaired = True
                turns = [*turns, reply.as_turn(), Turn(role="user", text=_repair_request(exc))]

    def _failed(self, kind: ErrorKind, why: str) -> ModelCallError:
        """A failure after calls were made: it carries them, so their spend is recorded."""
        return ModelCallError(
            kind,
            f"{self.choice} ({self.tier} tier): {why}",
            provider=self.choice.provider,
            model=self.choice.model,
        ).with_calls(self.calls)


def _repair_request(exc: InvalidAnswer) -> str:
    return (
        "Your answer could not be used: "
        + json.dumps(str(exc))
        + ". Answer again with only the JSON, following the schema exactly, and fix just that."
    )


def _pick(
    tier: TierName, settings: TierSettings, chats: Mapping[ProviderName, ChatClient], attempt: int
) -> tuple[ModelChoice, bool, ChatClient]:
    """(model, is it the fallback, its client). The fallback runs from attempt primary_attempts + 1 on, or at
    once when the primary's provider has no credentials here."""
    primary, fallback = settings.primary, settings.fallback
    usable = [
        c for c in (primary, fallback) if c is not None and c.provider in chats and chats[c.provider].has_credentials()
    ]
    wanted = fallback if fallback is not None and attempt > settings.primary_attempts else primary
    if wanted in usable:
        choice = wanted
    elif usable:
        choice = usable[0]
    else:
        names = " or ".join(
            chats[c.provider].credential_source() if c.provider in chats else c.provider
            for c in (primary, fallback)
            if c is not None
        )
        raise ModelCallError(
            "no_credentials",
            f"the {tier} tier has no model with credentials here ({primary}"
            + (f", fallback {fallback}" if fallback else "")
            + f"): set {names}",
            provider=primary.provider,
            model=primary.model,
        )
    return choice, choice != primary, chats[choice.provider]


async def _images(request: WriteRequest, proposal: DraftProposal, tools: ToolRunner | None) -> list[str]:
    """The draft's image: the model's first media request (an Instagram post always gets one), made with the
    images tool under the task's key, so a retried attempt gets the same image and is billed once."""
    task = request.task
    wants = proposal.media_requests[:1]
    if not wants and not (task.platform == "instagram" and task.task_type == "post"):
        return []
    if tools is None or not tools.has(IMAGE_TOOL):
        return []
    description = wants[0].description if wants else (task.topic or task.brief)
    prompt = f"{request.persona.name}: {description}. Photo, no text in the image."[:400]
    arguments = {"prompt": prompt, "idempotency_key": request.task_id or task.key, "aspect_ratio": "4x5"}
    result = await tools.call(IMAGE_TOOL, arguments)
    media_id = result.get("media_id")
    if not isinstance(media_id, str) or not media_id:
        raise ToolUseError(f"{IMAGE_TOOL} returned no media_id")
    return [media_id]
