"""Worker-side activities: write a draft with the model and tools, and publish through MCP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

from activities.errors import failure, model_failure, retry_after
from activities.registry import implements
from activities.spend import CallLedger, tool_cost_lines
from activities.state_keys import CONVERSATION, state_keys
from chimera.db import StateStore
from chimera.db.errors import CampaignHalted
from chimera.mcp import CallContext, McpHost, McpToolError
from chimera.mcp.account_binding import McpAccountRefused
from chimera.mcp.toolset import ToolCatalog
from chimera.memory.context import AgentMemory
from chimera.models.base import CallRecord, ModelError, ModelProvider, ToolUseError
from chimera.models.catalog import total_usage
from schemas.activity_table import Activities, Failure
from schemas.memory import ConversationTurn, WritingMemory
from schemas.task import ContentTaskInput, PublishInput, PublishResult, TaskResult, WriteRequest


@dataclass(frozen=True)
class PlatformTools:
    """How a platform's MCP server names its publishing tools and their arguments."""

    post: str
    text_arg: str
    reply: str
    reply_arg: str
    find: str
    media_arg: str | None = None  # a post's image, by media-store id; required where set


PUBLISH_TOOLS = {
    "twitter": PlatformTools("post_tweet", "text", "reply_to_mention", "mention_id", "find_tweet"),
    "instagram": PlatformTools("post", "caption", "reply_to_comment", "comment_id", "find_post", media_arg="media_id"),
}
# A platform's refusals: trying again with the same post cannot succeed (outcome_unknown, unavailable and
# publish_in_progress are retried; the retry looks the key up before posting again).
REFUSALS = frozenset(
    {
        "empty_text",
        "text_too_long",
        "too_many_hashtags",
        "invalid_idempotency_key",
        "idempotency_conflict",
        "not_found",
        "already_replied",
        "media_required",
        "media_not_found",
        "media_invalid",
        "media_too_large",
        "media_bad_dimensions",
        "media_not_supported",
        "media_not_public",
        "media_fetch_failed",
        "duplicate_content",
        "unauthorized",
        "forbidden",
        "invalid_request",
        # The account itself (specs/accounts.md): fixed by an operator, not by trying the same post again.
        "account_mismatch",
        "invalid_account",
        "no_credentials",
        "credentials_invalid",
    }
)
# Memory kinds whose text comes from outside (specs/memory.md): the Judge checks drafts against them.
THIRD_PARTY_KINDS = frozenset({"interaction", "fact"})
# How many strings of tool results the Judge checks for injection echoes (TaskResult.untrusted_inputs).
MAX_UNTRUSTED_STRINGS = 40


class ContentActivities:
    def __init__(
        self,
        store: StateStore,
        mcp: McpHost,
        model: ModelProvider,
        tools: ToolCatalog | None = None,
        memory: AgentMemory | None = None,
    ) -> None:
        self._store = store
        self._mcp = mcp
        self._model = model
        self._tools = tools or ToolCatalog(mcp)
        self._ledger = CallLedger(store)
        self._memory = memory  # None: this process keeps no memory (some tests)

    @implements(Activities.execute_task)
    async def execute_task(self, inp: ContentTaskInput) -> TaskResult:
        """Write the draft with the model and the approved servers' tools; nothing is published here."""
        keys = state_keys(inp.ref.campaign_id, inp.task)
        read_set = await asyncio.to_thread(self._store.read_versions, inp.ref.tenant_id, keys)
        answered = [r.key for r in read_set if r.key.startswith(CONVERSATION) and r.version > 0]
        if answered:  # another task (perhaps another campaign on the account) replied first: no model call
            raise failure(Failure.ALREADY_DONE, f"the mention already has a reply ({answered[0]})")
        # The persona's handles: the host binds platform tools to the account the agent holds, and only if it
        # is the one its persona names.
        context = CallContext(
            tenant_id=inp.ref.tenant_id,
            actor="worker",
            agent_id=inp.ref.agent_id,
            task_id=inp.ref.task_id,
            handles=dict(inp.persona.handles),
        )
        toolset = await self._tools.toolset(context)
        memory = await self._recall(inp)
        request = WriteRequest(
            persona=inp.persona,
            task=inp.task,
            goals=inp.goals,
            task_id=inp.ref.task_id,
            tenant_id=inp.ref.tenant_id,
            models=inp.models,
            memory=memory,
        )
        calls: list[CallRecord] = []
        try:
            written = await self._model.write(request, toolset, attempt=activity.info().attempt)
            calls = written.calls
        except ToolUseError as exc:
            calls = exc.calls
            if exc.retry_after_seconds is not None:
                raise retry_after(Failure.RATE_LIMITED, str(exc), exc.retry_after_seconds) from exc
            raise failure(Failure.TOOL_FAILED, f"a tool the draft needs failed: {exc}") from exc
        except ModelError as exc:
            calls = exc.calls
            raise model_failure(exc, Failure.INVALID_TASK) from exc
        finally:  # what was spent counts, whether or not the draft came out
            tool_lines = tool_cost_lines(inp.ref.task_id, toolset.calls, toolset.results)
            transcript = await self._ledger.keep(inp.ref, calls, inp.timezone, tools=tool_lines)
        draft = written.draft
        lines = [c.line for c in calls] + tool_lines
        usage = total_usage(lines, draft.usage.model, draft.usage.provider, draft.usage.tier)
        untrusted = [inp.task.mention.text] if inp.task.mention else []
        for result in toolset.results:
            untrusted.extend(_strings(result.data, MAX_UNTRUSTED_STRINGS - len(untrusted)))
        recalled = memory.recalled()
        known = {m.id for m in recalled}
        # Conversations and facts quote third parties: a draft obeying a planted memory is caught like one obeying a
        # tool. The persona's own material, its posts and the Judge's lessons are not third-party text.
        third_party = [m.text for m in recalled if m.kind in THIRD_PARTY_KINDS][:MAX_UNTRUSTED_STRINGS]
        return TaskResult(
            text=draft.text,
            platform=inp.task.platform,
            usage=usage,
            model_probability=draft.model_probability,
            read_set=read_set,
            write_keys=keys,
            untrusted_inputs=untrusted,
            recalled_inputs=third_party,
            tool_calls=toolset.calls,
            media_ids=draft.media_ids,
            author=draft.author,
            transcript_ref=transcript,
            memories_used=recalled,
            memories_cited=[i for i in draft.memory_ids if i in known],  # a model cannot cite what it was not given
        )

    async def _recall(self, inp: ContentTaskInput) -> WritingMemory:
        """What the writer is reminded of. A memory backend that fails costs the reminder, not the draft."""
        if self._memory is None:
            return WritingMemory()
        try:
            return await asyncio.to_thread(
                self._memory.for_writing, inp.ref.tenant_id, inp.ref.agent_id, inp.task, inp.memory
            )
        except Exception as exc:  # any backend's failure (files, network, a refused query): write without memory
            activity.logger.warning("task %s: writing without memory: %s", inp.ref.task_id, exc)
            return WritingMemory()

    @implements(Activities.publish)
    async def publish(self, inp: PublishInput) -> PublishResult:
        """Publish exactly once per idempotency key (the task id), from the account the task's agent holds on
        the platform (the host binds it: specs/accounts.md).

        A retry after an attempt with an unknown outcome (a timeout, a killed worker) first looks the key up on
        the platform, and returns what an earlier attempt published instead of posting again.
        """
        tools = PUBLISH_TOOLS.get(inp.platform)
        if tools is None:
            raise failure(Failure.PUBLISH_REFUSED, f"no publishing tool for platform {inp.platform}")
        context = CallContext(
            tenant_id=inp.ref.tenant_id, actor="worker", agent_id=inp.ref.agent_id, task_id=inp.ref.task_id
        )
        try:
            # The stop gate is held from the last check of the stops until the platform answered: a stop recorded
            # meanwhile waits for this post, and no post goes out after a stop (chimera/db/stop_gate.py).
            async with self._store.sending(inp.ref):  # its check covers the campaign's own stop too
                published = await self._earlier_post(inp, tools, context) if activity.info().attempt > 1 else None
                if published is None:
                    tool, args = _publish_call(inp, tools)
                    result = await self._mcp.call_tool(inp.platform, tool, args, context)
                    published = PublishResult.model_validate(result.data)
        except CampaignHalted as exc:
            raise failure(Failure.CAMPAIGN_STOPPED, f"{exc}: nothing more is published") from exc
        except McpAccountRefused as exc:
            raise failure(Failure.PUBLISH_REFUSED, f"{inp.platform}: {exc.message}") from exc
        except McpToolError as exc:
            if exc.code == "rate_limited":
                raise retry_after(Failure.RATE_LIMITED, str(exc), exc.retry_after_seconds or 60.0) from exc
            if exc.retry_after_seconds is not None and exc.code not in REFUSALS:  # e.g. publish_in_progress
                raise retry_after(Failure.RETRY_LATER, str(exc), exc.retry_after_seconds) from exc
            if exc.code == "already_replied":
                raise failure(Failure.ALREADY_DONE, f"{inp.platform}: the mention already has a reply") from exc
            if exc.code in REFUSALS:
                raise failure(Failure.PUBLISH_REFUSED, f"{inp.platform} refused the post: {exc}") from exc
            raise
        await asyncio.to_thread(
            self._store.append_audit,
            inp.ref.tenant_id,
            "worker",
            "publish",
            inp.ref.task_id,
            {"platform": inp.platform, "post_id": published.post_id, "duplicate": published.duplicate},
        )
        await asyncio.to_thread(self._remember, inp, published)
        return published

    def _remember(self, inp: PublishInput, published: PublishResult) -> None:
        """Keep what was published: a reply completes an exchange in the conversation log, a post joins semantic
        memory (both keyed, so a retry stores once). Best effort: the post is out; a memory backend that is down
        must not make publishing fail or repeat."""
        if self._memory is None:
            return
        ref = inp.ref
        try:
            if inp.mention is not None:
                m = inp.mention
                turn = ConversationTurn(
                    platform=m.platform,
                    author=m.author,
                    mention_id=m.id,
                    said=m.text,
                    replied=inp.text,
                    reply_post_id=published.post_id,
                    at=m.created_at or datetime.now(UTC).isoformat(),  # a mention without a time: heard now
                )
                self._memory.remember_exchange(ref.tenant_id, ref.agent_id, turn)
            else:
                self._memory.remember_post(
                    ref.tenant_id,
                    ref.agent_id,
                    text=inp.text,
                    platform=inp.platform,
                    post_id=published.post_id,
                    key=inp.idempotency_key,
                    campaign_id=ref.campaign_id,
                    topic=inp.topic,
                )
        except Exception as exc:  # any backend's failure: the post stands, the memory is lost
            activity.logger.warning("publish %s: not remembered: %s", ref.task_id, exc)

    async def _earlier_post(
        self, inp: PublishInput, tools: PlatformTools, context: CallContext
    ) -> PublishResult | None:
        found = await self._mcp.call_tool(inp.platform, tools.find, {"idempotency_key": inp.idempotency_key}, context)
        post = found.data.get("post")
        if not found.data.get("found") or not isinstance(post, dict):
            return None
        activity.logger.info(
            "publish %s: an earlier attempt already published %s", inp.ref.task_id, post.get("post_id")
        )
        return PublishResult(post_id=str(post["post_id"]), url=str(post.get("url", "")), duplicate=True)


def _publish_call(inp: PublishInput, tools: PlatformTools) -> tuple[str, dict[str, Any]]:
    if inp.reply_to:
        return tools.reply, {tools.reply_arg: inp.reply_to, "text": inp.text, "idempotency_key": inp.idempotency_key}
    args: dict[str, Any] = {tools.text_arg: inp.text, "idempotency_key": inp.idempotency_key}
    if tools.media_arg is not None:
        if not inp.media_ids:
            raise failure(Failure.PUBLISH_REFUSED, f"a {inp.platform} post needs an image and the draft has none")
        args[tools.media_arg] = inp.media_ids[0]
    return tools.post, args


def _strings(value: Any, limit: int) -> list[str]:
    """The text values inside a tool result (what could carry an injection), at most `limit` of them."""
    found: list[str] = []
    stack = [value]
    while stack and len(found) < limit:
        item = stack.pop()
        if isinstance(item, str):
            if len(item) > 3:
                found.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found
