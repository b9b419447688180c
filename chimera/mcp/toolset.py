"""The tools a model may use while it writes: every approved server's tools, minus the ones that publish.

Publishing tools (McpServerConfig.publish_tools) are never offered: content reaches the public only through the
publish activity, after the Judge or a human approved it. Bound arguments (tenant_id, agent_id, account) are removed
from the schemas the model sees and filled from the task, so a model cannot read another tenant's memories nor act
as another agent's platform account (the host binds `account`, chimera.mcp.account_binding). A tool
name offered by two servers is offered by neither (shadowing). Every call goes through McpHost, so it is
pin-checked, schema-checked and audited; failures come back to the model as ToolUseError text, not crashes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chimera.mcp.account_binding import ACCOUNT
from chimera.mcp.errors import McpError, McpToolError
from chimera.mcp.host import CallContext, McpHost, ToolResult, arguments_hash
from chimera.models.base import ToolUseError
from schemas.task import ToolCall

SUMMARY_CHARS = 200
HOST_BOUND = frozenset({ACCOUNT})  # filled by McpHost itself on every call, from the task's agent
# How long discovered tool definitions are reused; each call is still verified against the pin.
CATALOG_TTL_SECONDS = 60.0


class ModelTool(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    server: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=dict)


class Catalog(BaseModel):
    tools: list[ModelTool] = Field(default_factory=list)
    hidden: list[str] = Field(default_factory=list, description="why a server or tool is not offered")


def _without(schema: dict[str, Any], names: list[str]) -> dict[str, Any]:
    if not names:
        return schema
    props = {k: v for k, v in dict(schema.get("properties", {})).items() if k not in names}
    required = [r for r in schema.get("required", []) if r not in names]
    return {**schema, "properties": props, "required": required}


class ToolCatalog:
    """Discovers what approved servers offer (cached briefly) and hands out per-task Toolsets."""

    def __init__(self, host: McpHost, ttl_seconds: float = CATALOG_TTL_SECONDS) -> None:
        self._host = host
        self._ttl = ttl_seconds
        self._cached: tuple[float, Catalog] | None = None
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}  # a lock belongs to one loop

    async def catalog(self) -> Catalog:
        cached = self._fresh()
        if cached is not None:
            return cached
        lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
        async with lock:  # single flight: one listing when the cache is cold or has expired
            cached = self._fresh()
            if cached is not None:
                return cached
            catalog = await self._discover()
            self._cached = (time.monotonic(), catalog)
            return catalog

    def _fresh(self) -> Catalog | None:
        if self._cached is not None and time.monotonic() - self._cached[0] < self._ttl:
            return self._cached[1]
        return None

    async def _discover(self) -> Catalog:
        servers = self._host.server_names
        listed = await asyncio.gather(*(self._host.list_tools(s) for s in servers), return_exceptions=True)
        offered: list[ModelTool] = []
        hidden: list[str] = []
        for server, tools in zip(servers, listed, strict=True):
            if isinstance(tools, McpError):  # unapproved, quarantined or down: its tools are hidden
                hidden.append(f"{server}: {tools.message}")
                continue
            if isinstance(tools, BaseException):
                raise tools
            config = self._host.config(server)
            for tool in tools:
                if tool.name in config.publish_tools:
                    continue
                schema = _without(tool.input_schema, config.bound_arguments)
                offered.append(
                    ModelTool(name=tool.name, server=server, description=tool.description, input_schema=schema)
                )
        owners: dict[str, set[str]] = {}
        for model_tool in offered:
            owners.setdefault(model_tool.name, set()).add(model_tool.server)
        clashing = {name for name, servers in owners.items() if len(servers) > 1}
        for name in sorted(clashing):
            hidden.append(f"{name}: offered by {', '.join(sorted(owners[name]))}; a shadowed name is offered by none")
        return Catalog(tools=[t for t in offered if t.name not in clashing], hidden=hidden)

    async def toolset(self, context: CallContext) -> Toolset:
        return Toolset(self._host, await self.catalog(), context)


class Toolset:
    """One task's tools (a chimera.models.base.ToolRunner); `calls` records each use for workflow history."""

    def __init__(self, host: McpHost, catalog: Catalog, context: CallContext) -> None:
        self._host = host
        self._tools = {t.name: t for t in catalog.tools}
        self._context = context
        self.calls: list[ToolCall] = []
        self.results: list[ToolResult] = []

    @property
    def tools(self) -> list[ModelTool]:
        return list(self._tools.values())

    def has(self, name: str) -> bool:
        return name in self._tools

    def _bound(self, server: str) -> tuple[list[str], dict[str, Any]]:
        """The server's bound argument names, and the values this toolset fills (the host fills `account`)."""
        values = {"tenant_id": self._context.tenant_id, "agent_id": self._context.agent_id}
        bound = self._host.config(server).bound_arguments
        unknown = [name for name in bound if name not in values and name not in HOST_BOUND]
        if unknown:
            known = sorted([*values, *HOST_BOUND])
            raise ToolUseError(f"{server}: cannot bind {unknown}; only {known} can be bound")
        return list(bound), {name: values[name] for name in bound if name in values}

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        tool = self._tools.get(name)
        if tool is None:
            raise ToolUseError(f"no tool named {name!r} is available")
        names, bound = self._bound(tool.server)
        # The model's own values for bound arguments are ignored, never merged.
        args = {**{k: v for k, v in arguments.items() if k not in names}, **bound}
        try:
            result = await self._host.call_tool(tool.server, name, args, self._context)
        except McpError as exc:
            self.calls.append(
                ToolCall(
                    server=tool.server,
                    tool=name,
                    ok=False,
                    summary=exc.message[:SUMMARY_CHARS],
                    args_sha256=arguments_hash(args),
                )
            )
            retry_after = exc.retry_after_seconds if isinstance(exc, McpToolError) else None
            raise ToolUseError(f"{name} failed: {exc.message}", retry_after) from exc
        self.results.append(result)
        self.calls.append(
            ToolCall(
                server=tool.server,
                tool=name,
                ok=True,
                summary=_summary(result),
                args_sha256=arguments_hash(args),
                result_ref=result.ref,
                result_bytes=result.size_bytes,
            )
        )
        return result.data


def _summary(result: ToolResult) -> str:
    if result.ref:
        return f"{result.size_bytes} bytes, kept as {result.ref}"
    keys = ", ".join(sorted(result.data)[:6])
    return f"{result.size_bytes} bytes: {{{keys}}}"[:SUMMARY_CHARS]
