"""Worker-side activities: write a draft with the model and tools, and publish through MCP."""

from __future__ import annotations

import asyncio
import re

from temporalio import activity

from activities.errors import non_retryable, retry_after
from activities.planning import TREND_RESOURCES
from chimera.db import StateStore
from chimera.mcp_host import McpError, McpHost, McpToolError
from chimera.models.base import ModelError, ModelProvider
from schemas.plan import PlannedTask, Trend
from schemas.task import ContentTaskInput, PublishInput, PublishResult, TaskResult, ToolCall, WriteRequest

# How each platform's MCP server names its publishing tools and their arguments.
PUBLISH_TOOLS = {
    "twitter": ("post_tweet", "text", "reply_to_mention", "mention_id"),
    "instagram": ("post", "caption", "reply_to_comment", "comment_id"),
}
REFUSALS = {"empty_text", "text_too_long", "invalid_idempotency_key", "not_found", "already_replied"}


def state_keys(campaign_id: str, task: PlannedTask) -> list[str]:
    """The versioned state a task depends on and changes: its conversation, or its topic slot.

    Two replies to one mention, or two posts on one topic, conflict; unrelated tasks never do.
    """
    if task.mention is not None:
        return [f"conversation:{task.platform}:{task.mention.id}"]
    subject = task.topic or task.goal or task.key
    slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:60] or task.key
    return [f"topic:{campaign_id}:{task.platform}:{slug}"]


class ContentActivities:
    def __init__(self, store: StateStore, mcp: McpHost, model: ModelProvider) -> None:
        self._store = store
        self._mcp = mcp
        self._model = model

    @activity.defn(name="execute_task")
    async def execute_task(self, inp: ContentTaskInput) -> TaskResult:
        keys = state_keys(inp.ref.campaign_id, inp.task)
        read_set = await asyncio.to_thread(self._store.read_versions, inp.ref.tenant_id, keys)
        trends, calls = await self._trends(inp.task)
        try:
            draft = await self._model.write(
                WriteRequest(persona=inp.persona, task=inp.task, goals=inp.goals, trends=trends)
            )
        except ModelError as exc:
            raise non_retryable("InvalidTask", f"the model could not write this task: {exc}") from exc
        return TaskResult(
            text=draft.text,
            platform=inp.task.platform,
            usage=draft.usage,
            model_probability=draft.model_probability,
            read_set=read_set,
            write_keys=keys,
            untrusted_inputs=[inp.task.mention.text] if inp.task.mention else [],
            tool_calls=calls,
        )

    async def _trends(self, task: PlannedTask) -> tuple[list[Trend], list[ToolCall]]:
        """Posts read the platform's current trends first; a failed read only loses context."""
        uri = TREND_RESOURCES.get(task.platform)
        if task.task_type != "post" or uri is None:
            return [], []
        try:
            raw = await self._mcp.read_resource(task.platform, uri)
            trends = [Trend.model_validate({**t, "platform": task.platform}) for t in raw if isinstance(t, dict)]
            return trends, [ToolCall(server=task.platform, tool=uri, ok=True, summary=f"{len(trends)} trends")]
        except (McpError, ValueError) as exc:
            return [], [ToolCall(server=task.platform, tool=uri, ok=False, summary=str(exc)[:200])]

    @activity.defn(name="publish")
    async def publish(self, inp: PublishInput) -> PublishResult:
        """Publish once per idempotency key; the platform answers a repeat with the first post."""
        if await asyncio.to_thread(self._store.is_stopped, inp.ref.tenant_id, inp.ref.campaign_id):
            raise non_retryable("CampaignStopped", "the campaign was stopped: nothing more is published")
        tools = PUBLISH_TOOLS.get(inp.platform)
        if tools is None:
            raise non_retryable("PublishRefused", f"no publishing tool for platform {inp.platform}")
        post_tool, text_arg, reply_tool, reply_arg = tools
        if inp.reply_to:
            tool, args = reply_tool, {reply_arg: inp.reply_to, "text": inp.text}
        else:
            tool, args = post_tool, {text_arg: inp.text}
        try:
            result = await self._mcp.call_tool(inp.platform, tool, {**args, "idempotency_key": inp.idempotency_key})
        except McpToolError as exc:
            if exc.code == "rate_limited":
                raise retry_after("RateLimited", str(exc), exc.retry_after_seconds or 60.0) from exc
            if exc.code in REFUSALS:
                raise non_retryable("PublishRefused", f"{inp.platform} refused the post: {exc}") from exc
            raise
        published = PublishResult.model_validate(result)
        await asyncio.to_thread(
            self._store.append_audit,
            inp.ref.tenant_id,
            "worker",
            "publish",
            inp.ref.task_id,
            {"platform": inp.platform, "post_id": published.post_id, "duplicate": published.duplicate},
        )
        return published
