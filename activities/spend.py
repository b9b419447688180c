"""Recording what a step's calls cost: each model call's priced line, each paid tool call's reported cost,
and the prompts and responses themselves (kept tenant-scoped in the state store, referenced by key).

Everything is keyed by the call (task or plan id, attempt, call number; a tool call by its arguments' hash),
so a retried activity records nothing twice, while a failed attempt's calls still count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from chimera.db import StateStore
from chimera.mcp.host import ToolResult
from chimera.models.base import CallRecord
from schemas.models import CostLine
from schemas.task import TaskRef, ToolCall

TRANSCRIPTS = ("models", "transcript")  # how kept transcripts are filed among kept results (server, tool)


class CallLedger:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def keep(
        self,
        ref: TaskRef,
        calls: Sequence[CallRecord],
        timezone: str,
        *,
        tools: Sequence[CostLine] = (),
        settle: bool = False,
    ) -> str | None:
        """Keep the calls' transcript and record their lines (and `tools`' lines) against `ref.task_id`.
        With `settle`, the spend is also settled at once (planning, which reserves and settles in one step).
        Returns the transcript's key."""
        if not calls and not tools:
            return None
        key = None
        if calls:
            transcript = {"owner": ref.task_id, "calls": [c.exchange for c in calls]}
            key, _ = await asyncio.to_thread(self._store.keep_result, ref.tenant_id, *TRANSCRIPTS, transcript)
        lines = [c.line.model_copy(update={"transcript_ref": key}) for c in calls] + list(tools)
        if settle:
            await asyncio.to_thread(self._store.charge, ref, lines, timezone)
        else:
            await asyncio.to_thread(self._store.record_costs, ref, ref.task_id, lines, timezone)
        return key


def tool_cost_lines(task_id: str, calls: Sequence[ToolCall], results: Sequence[ToolResult]) -> list[CostLine]:
    """Lines for the paid tool calls among a task's calls: those whose result reports a cost (`cost_usd`, or
    `estimated_cost_usd` from a sandbox or a list-price estimate). Successful calls pair with results in order."""
    lines = []
    for call, result in zip((c for c in calls if c.ok), results, strict=False):
        data = result.data
        reported = data.get("cost_usd", data.get("estimated_cost_usd"))
        if not isinstance(reported, int | float) or isinstance(reported, bool) or reported <= 0:
            continue
        lines.append(
            CostLine(
                key=f"{task_id}/tool/{call.server}.{call.tool}/{call.args_sha256[:16]}",
                kind="tool",
                tier=f"{call.server}.{call.tool}",
                provider=call.server,
                model=str(data.get("backend") or call.tool),
                cost_usd=float(reported),
                estimated="cost_usd" not in data,
                basis="tool_reported",
            )
        )
    return lines
