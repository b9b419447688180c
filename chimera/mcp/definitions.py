"""Tool definitions as Chimera pins them: what a server offers, hashed, compared, and checked for shadowing.

The hash covers everything a model reads or a host relies on (name, title, description, input and output
schema, annotations), so a changed description (tool poisoning) quarantines a server as surely as a changed
schema does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from mcp.types import Tool
from pydantic import BaseModel, ConfigDict, Field


class ToolInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    title: str | None = None
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    annotations: dict[str, Any] | None = None

    @classmethod
    def from_tool(cls, tool: Tool) -> ToolInfo:
        return cls(
            name=tool.name,
            title=tool.title,
            description=tool.description or "",
            input_schema=dict(tool.input_schema),
            output_schema=None if tool.output_schema is None else dict(tool.output_schema),
            annotations=None if tool.annotations is None else tool.annotations.model_dump(exclude_none=True),
        )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def as_json(tools: Iterable[ToolInfo]) -> list[dict[str, Any]]:
    """The definitions in a stable order, as stored in a pin."""
    return [t.model_dump(mode="json") for t in sorted(tools, key=lambda t: t.name)]


def definitions_hash(tools: Iterable[ToolInfo]) -> str:
    return hashlib.sha256(_canonical(as_json(tools)).encode()).hexdigest()


def changes(pinned: list[dict[str, Any]], offered: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Which tools were added, removed or changed: what an operator reviews before approving again."""
    before = {str(t.get("name")): _canonical(t) for t in pinned}
    after = {str(t.get("name")): _canonical(t) for t in offered}
    return {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": sorted(n for n in before.keys() & after.keys() if before[n] != after[n]),
    }


def shadowed(tools: Iterable[str], others: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """{tool: other server} for each tool name another server already offers."""
    owner = {name: server for server, names in others.items() for name in names}
    return {name: owner[name] for name in tools if name in owner}
