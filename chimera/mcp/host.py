"""The only way Chimera reaches MCP servers.

What a security reviewer checks, and where it happens:
- Only allowlisted servers (chimera.settings.McpServerConfig) are ever started or contacted (`config`).
- A server's tools are used only after an operator approved them: `approve` pins their definitions by hash.
  Every session lists the tools first and compares them with the pin (`_verify`); if they changed, the server
  is quarantined (an audit entry, every call refused, its tools hidden from the model) until approved again.
- Approval is refused when a tool would shadow another approved server's tool of the same name.
- Arguments are checked against the pinned input schema before they are sent; results are size-capped,
  parsed as JSON only, and checked against the pinned output schema (chimera.mcp.results). Results are data,
  never instructions.
- A result larger than `inline_result_bytes` is kept in the state store and referenced by key, so it never
  enters workflow history.
- Every call has a timeout and is audited: server, tool, arguments hash, duration, outcome.
- A server that binds `account` (the social servers) acts, for a tenant's call, only for the platform account
  the call's agent holds (its claim, chimera.accounts): the host sets the tool argument and checks the resource
  URI, and refuses a call that names any other account (chimera.mcp.account_binding, specs/accounts.md).

Sessions are kept open and reused (chimera.mcp.pool), so a call costs a request, not a process; every
operation still lists the tools first and checks them against the pin (`_run`), so a server that changes
its definitions mid-session is quarantined at its next call just as a restarted one is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO, TypeVar

import anyio
from mcp.client.session import ClientSession
from mcp.types import CallToolResult, TextResourceContents
from pydantic import BaseModel, ConfigDict, Field

from chimera.accounts import AccountError, AccountLookup, InvalidAccount
from chimera.db.mcp import PLATFORM_TENANT, PinRecord
from chimera.mcp.account_binding import ACCOUNT, McpAccountRefused, bind_arguments, bind_uri
from chimera.mcp.definitions import ToolInfo, as_json, changes, definitions_hash, shadowed
from chimera.mcp.errors import (
    McpArgumentsInvalid,
    McpError,
    McpNotAllowed,
    McpNotApproved,
    McpQuarantined,
    McpResultInvalid,
    McpShadowing,
    McpToolError,
    McpUnavailable,
)
from chimera.mcp.pool import SessionPool
from chimera.mcp.results import check_size, parse_json, schema_problem, single_text, tool_error
from chimera.mcp.sessions import innermost, map_error, offered_tools
from chimera.settings import McpServerConfig, Settings
from schemas.alerts import Alert, mcp_quarantined_alert

T = TypeVar("T")
PinState = Literal["approved", "quarantined", "unapproved", "unavailable"]


class CallContext(BaseModel):
    """On whose behalf a call is made: the audit entry's tenant and actor, and the bound arguments."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str = PLATFORM_TENANT
    actor: str = "operator"
    agent_id: str | None = None
    task_id: str | None = None
    handles: dict[str, str] = Field(
        default_factory=dict, description="the persona's handles (platform -> handle): its claims must hold them"
    )


class ToolResult(BaseModel):
    """A checked tool result. `data` is the whole result, for use inside an activity; when `ref` is set the
    result was too large for workflow history and is kept in the state store under that key."""

    data: dict[str, Any]
    size_bytes: int
    ref: str | None = None


@dataclass
class _Audit:
    result: ToolResult | None = None
    account: str | None = None  # the platform account the call was bound to
    target: str | None = None  # what was called, once bound (a resource's concrete URI)
    arguments: dict[str, Any] | None = None  # the arguments sent, once bound


class ServerStatus(BaseModel):
    name: str
    transport: str
    endpoint: str
    state: PinState
    tools: list[str] = Field(default_factory=list)
    pinned_hash: str | None = None
    offered_hash: str | None = None
    changes: dict[str, list[str]] = Field(default_factory=dict)
    approved_by: str | None = None
    error: str | None = None


class McpRegistry(Protocol):
    """Where pins, audit entries and kept results live (chimera.db.StateStore)."""

    def mcp_pin(self, server: str) -> PinRecord | None: ...

    def mcp_pins(self) -> list[PinRecord]: ...

    def approve_mcp_server(self, server: str, digest: str, tools: list[dict[str, Any]], actor: str) -> PinRecord: ...

    def quarantine_mcp_server(
        self, server: str, digest: str, tools: list[dict[str, Any]], changes: dict[str, Any]
    ) -> PinRecord | None: ...

    def append_audit(self, tenant_id: str, actor: str, action: str, subject: str, detail: dict[str, Any]) -> None: ...

    def keep_result(self, tenant_id: str, server: str, tool: str, body: dict[str, Any]) -> tuple[str, int]: ...


def arguments_hash(arguments: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()


class McpHost:
    def __init__(
        self,
        servers: dict[str, McpServerConfig],
        sandbox_dir: Path,
        registry: McpRegistry,
        *,
        timeout_seconds: float = 30.0,
        max_result_bytes: int = 256 * 1024,
        inline_result_bytes: int = 8 * 1024,
        errlog: TextIO | None = None,
        pool: SessionPool | None = None,
        accounts: AccountLookup | None = None,
        alert: Callable[[Alert], Awaitable[None]] | None = None,
    ) -> None:
        """`accounts` finds a call's platform account (default: the claims in `registry`, when it is the
        StateStore); without one, tenants' calls to servers that bind `account` are refused. `alert` is told
        when a server is quarantined (chimera/alerts)."""
        self._alert = alert
        self._servers = dict(servers)
        self._sandbox_dir = sandbox_dir
        self._registry = registry
        self._timeout_seconds = timeout_seconds
        self._max_result_bytes = max_result_bytes
        self._inline_result_bytes = inline_result_bytes
        self._errlog = errlog  # where children's stderr goes; None means our stderr at call time
        self._pool = pool or SessionPool()
        self._accounts = accounts if accounts is not None else _claims_of(registry)

    @classmethod
    def from_settings(
        cls, settings: Settings, registry: McpRegistry, *, alert: Callable[[Alert], Awaitable[None]] | None = None
    ) -> McpHost:
        return cls(
            alert=alert,
            servers=settings.mcp_servers,
            sandbox_dir=settings.sandbox_dir,
            registry=registry,
            timeout_seconds=settings.mcp_timeout_seconds,
            max_result_bytes=settings.mcp_max_result_bytes,
            inline_result_bytes=settings.mcp_inline_result_bytes,
            pool=SessionPool(
                max_sessions=settings.mcp_max_sessions_per_server, idle_seconds=settings.mcp_session_idle_seconds
            ),
        )

    @property
    def sandbox_dir(self) -> Path:
        return self._sandbox_dir

    @property
    def server_names(self) -> list[str]:
        return sorted(self._servers)

    def config(self, server: str) -> McpServerConfig:
        config = self._servers.get(server)
        if config is None:
            raise McpNotAllowed(server, "not on the MCP server allowlist")
        return config

    # -- approval -----------------------------------------------------------------------------

    async def status(self, server: str) -> ServerStatus:
        """Connect, list the offered tools and compare them with the pin (quarantining on a change)."""
        config = self.config(server)
        endpoint = config.url if config.transport == "http" else " ".join([config.command or "", *config.args])
        base = ServerStatus(name=server, transport=config.transport, endpoint=str(endpoint), state="unavailable")
        pin = await asyncio.to_thread(self._registry.mcp_pin, server)
        if pin is not None:
            base = base.model_copy(update={"pinned_hash": pin.pinned_hash, "approved_by": pin.approved_by})
        try:
            offered = await self._offered(server, verify=False)
        except McpError as exc:
            state: PinState = "unavailable" if pin is None or pin.state == "approved" else "quarantined"
            return base.model_copy(update={"state": state, "error": exc.message})
        digest = definitions_hash(offered)
        names = sorted(t.name for t in offered)
        update: dict[str, Any] = {"tools": names, "offered_hash": digest}
        if pin is None:
            return base.model_copy(update={**update, "state": "unapproved"})
        try:
            await self._verify(server, offered)
        except McpQuarantined:
            diff = changes(pin.pinned_tools, as_json(offered))
            return base.model_copy(update={**update, "state": "quarantined", "changes": diff})
        return base.model_copy(update={**update, "state": "approved"})

    async def approve(self, server: str, actor: str) -> PinRecord:
        """Pin the tools the server offers now. Refused if one would shadow another approved server's tool."""
        offered = await self._offered(server, verify=False)
        others = {
            pin.server: [str(t.get("name")) for t in pin.pinned_tools]
            for pin in await asyncio.to_thread(self._registry.mcp_pins)
            if pin.server != server and pin.server in self._servers
        }
        clashes = shadowed([t.name for t in offered], others)
        if clashes:
            named = ", ".join(f"{tool} (already {owner}'s)" for tool, owner in sorted(clashes.items()))
            raise McpShadowing(server, f"not approved: its tools would shadow other servers' tools: {named}")
        return await asyncio.to_thread(
            self._registry.approve_mcp_server, server, definitions_hash(offered), as_json(offered), actor
        )

    async def _verify(self, server: str, offered: list[ToolInfo]) -> PinRecord:
        pin = await asyncio.to_thread(self._registry.mcp_pin, server)
        if pin is None:
            raise McpNotApproved(server, f"its tools are not approved yet: run `chimera mcp approve {server}`")
        digest = definitions_hash(offered)
        if digest != pin.pinned_hash:
            diff = changes(pin.pinned_tools, as_json(offered))
            await asyncio.to_thread(self._registry.quarantine_mcp_server, server, digest, as_json(offered), diff)
            if self._alert is not None:
                raised = datetime.now(UTC).isoformat()
                await self._alert(
                    mcp_quarantined_alert(
                        server=server, offered_hash=digest, pinned_hash=pin.pinned_hash, raised_at=raised
                    )
                )
            summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in diff.items() if v) or "definitions reordered"
            raise McpQuarantined(
                server,
                f"quarantined: it offers tool definitions other than the approved ones ({summary}); "
                f"review them and run `chimera mcp approve {server}`",
            )
        if pin.state == "quarantined":
            raise McpQuarantined(server, f"quarantined until an operator runs `chimera mcp approve {server}`")
        return pin

    # -- operations ---------------------------------------------------------------------------

    async def list_tools(self, server: str) -> list[ToolInfo]:
        """The approved server's tools (as pinned; an unapproved or quarantined server raises)."""
        return await self._offered(server, verify=True)

    async def call_tool(
        self, server: str, tool: str, arguments: dict[str, Any], context: CallContext | None = None
    ) -> ToolResult:
        """Call a tool; its result must be one JSON object. A failed call raises McpToolError."""
        ctx = context or CallContext()
        async with self._audited(ctx, "mcp_call", server, tool, arguments) as audit:
            account = await self.account(server, ctx)
            if account is not None:
                arguments = bind_arguments(server, arguments, account)
                audit.account, audit.arguments = account, arguments
            audit.result = await self._call_tool(server, tool, arguments, ctx)
            return audit.result

    async def read_resource(self, server: str, uri: str, context: CallContext | None = None) -> Any:
        """Read a resource whose content is JSON text; returns the parsed JSON value. On a server that binds
        `account`, `{account}` in the URI becomes the call's account, and only that account's URIs are read."""
        ctx = context or CallContext()
        async with self._audited(ctx, "mcp_read", server, uri, {}) as audit:
            account = await self.account(server, ctx)
            uri = bind_uri(server, uri, account, bound=ACCOUNT in self.config(server).bound_arguments)
            audit.account, audit.target = account, uri
            result, _ = await self._run(server, lambda session, _tools: session.read_resource(uri))
            if len(result.contents) != 1 or not isinstance(result.contents[0], TextResourceContents):
                raise McpResultInvalid(server, f"resource {uri} must have exactly one text content")
            text = result.contents[0].text
            check_size(server, text, self._max_result_bytes)
            return parse_json(server, text)

    async def account(self, server: str, context: CallContext) -> str | None:
        """The platform account a call to `server` acts for: the one the context's agent holds on the platform
        the server is named for (McpAccountRefused when it holds none that fits). None when the server binds
        no account, or for the operator (the platform scope), who names it or gets the server's default."""
        if ACCOUNT not in self.config(server).bound_arguments or context.tenant_id == PLATFORM_TENANT:
            return None
        if self._accounts is None:
            raise McpAccountRefused(server, "no account claims to bind the call to: the host has no account lookup")
        lookup = self._accounts
        try:
            return await asyncio.to_thread(
                lookup.account_for, context.tenant_id, context.agent_id, server, context.handles.get(server)
            )
        except (AccountError, InvalidAccount) as exc:
            raise McpAccountRefused(server, str(exc)) from None

    async def _call_tool(self, server: str, tool: str, arguments: dict[str, Any], ctx: CallContext) -> ToolResult:
        async def op(session: ClientSession, tools: dict[str, ToolInfo]) -> CallToolResult:
            info = tools.get(tool)
            if info is None:
                raise McpToolError(server, "unknown_tool", f"{server} has no approved tool named {tool!r}")
            problem = schema_problem(info.input_schema, arguments)
            if problem:
                raise McpArgumentsInvalid(server, f"arguments for {tool} do not match its schema: {problem}")
            result = await session.call_tool(tool, arguments)
            if not isinstance(result, CallToolResult):
                raise McpResultInvalid(server, f"{tool} returned {type(result).__name__}, not a tool result")
            return result

        result, tools = await self._run(server, op)
        info = tools.get(tool)
        text = single_text(server, result.content, what=f"tool {tool}", max_bytes=self._max_result_bytes)
        if result.is_error:
            raise tool_error(server, text)
        payload = result.structured_content if result.structured_content is not None else parse_json(server, text)
        if not isinstance(payload, dict):
            raise McpResultInvalid(server, f"tool {tool} returned JSON {type(payload).__name__}, expected an object")
        if info is not None and info.output_schema is not None:
            problem = schema_problem(info.output_schema, payload)
            if problem:
                raise McpResultInvalid(server, f"tool {tool} result does not match its pinned output schema: {problem}")
        size = len(json.dumps(payload).encode())
        ref = None
        if size > self._inline_result_bytes:
            ref, _ = await asyncio.to_thread(self._registry.keep_result, ctx.tenant_id, server, tool, payload)
        return ToolResult(data=payload, size_bytes=size, ref=ref)

    @asynccontextmanager
    async def _audited(
        self, ctx: CallContext, action: str, server: str, target: str, arguments: dict[str, Any]
    ) -> AsyncIterator[_Audit]:
        """Audit the operation in the block, however it ends: its outcome is "ok", the McpError's code, or
        "cancelled"; a tool result set on the yielded record adds its size and kept-result key."""
        started = time.monotonic()
        record = _Audit()
        outcome = "ok"
        try:
            yield record
        except McpError as exc:
            outcome = exc.code
            raise
        except BaseException:
            outcome = "cancelled"
            raise
        finally:
            detail: dict[str, Any] = {
                "server": server,
                "tool" if action == "mcp_call" else "uri": record.target or target,
                "args_sha256": arguments_hash(arguments if record.arguments is None else record.arguments),
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                "outcome": outcome,
            }
            if ctx.task_id:
                detail["task_id"] = ctx.task_id
            if record.account is not None:
                detail["account"] = record.account
            if record.result is not None:
                detail["result_bytes"] = record.result.size_bytes
                if record.result.ref:
                    detail["result_ref"] = record.result.ref
            # Shielded: a cancelled activity's call is still recorded.
            with anyio.CancelScope(shield=True):
                await asyncio.to_thread(self._registry.append_audit, ctx.tenant_id, ctx.actor, action, server, detail)

    # -- session plumbing ---------------------------------------------------------------------

    async def _run(
        self,
        server: str,
        op: Callable[[ClientSession, dict[str, ToolInfo]], Awaitable[T]],
        *,
        verify: bool = True,
    ) -> tuple[T, dict[str, ToolInfo]]:
        """Run one operation on a pooled session under the host timeout, mapping failures to McpError.

        The tools are listed first, every time, and verified against the pin unless verify=False; a reused
        session that turns out dead at that point (its server crashed) is replaced once by a fresh one, which
        is safe because nothing was sent yet. Returns op's result and the tools the server offered."""
        config = self.config(server)  # refuses an unlisted server
        timeout = config.timeout_seconds or self._timeout_seconds
        try:
            with anyio.fail_after(timeout):
                done = await self._attempt(server, config, timeout, op, verify=verify, fresh=False)
                if done is None:  # a pooled session whose server has gone
                    done = await self._attempt(server, config, timeout, op, verify=verify, fresh=True)
                if done is None:
                    raise McpUnavailable(server, "the server's connection closed as the session opened")
                return done
        except BaseException as exc:
            inner = innermost(exc)
            mapped = map_error(server, inner, timeout)
            if mapped is None:
                raise  # cancellation and other BaseExceptions are not ours to translate
            if mapped is inner:
                raise mapped from None  # already an McpError; drop the task-group wrappers
            raise mapped from inner

    async def _attempt(
        self,
        server: str,
        config: McpServerConfig,
        timeout_seconds: float,
        op: Callable[[ClientSession, dict[str, ToolInfo]], Awaitable[T]],
        *,
        verify: bool,
        fresh: bool,
    ) -> tuple[T, dict[str, ToolInfo]] | None:
        """One try on one session; None when a reused session proved dead before anything was sent."""
        async with self._pool.lease(
            server, config, self._sandbox_dir, read_timeout_seconds=timeout_seconds, errlog=self._errlog, fresh=fresh
        ) as lease:
            try:
                offered = await offered_tools(server, lease.session)
            except Exception as exc:
                mapped = map_error(server, innermost(exc), timeout_seconds)
                if lease.reused and mapped is not None and not mapped.session_sound:
                    lease.keep = False
                    return None
                raise
            if verify:
                await self._verify(server, offered)
            by_name = {t.name: t for t in offered}
            return await op(lease.session, by_name), by_name

    async def aclose(self) -> None:
        """Close the pooled sessions (stdio children exit). Workers and the CLI call it on the way out."""
        await self._pool.close()

    async def _offered(self, server: str, *, verify: bool) -> list[ToolInfo]:
        _, tools = await self._run(server, _nothing, verify=verify)
        return list(tools.values())


async def _nothing(_session: ClientSession, _tools: dict[str, ToolInfo]) -> None:
    """An operation that only opens (and verifies) a session, for the tools it lists."""


def _claims_of(registry: McpRegistry) -> AccountLookup | None:
    """The platform account claims kept in the registry, when it is the state store."""
    from chimera.accounts.directory import AccountDirectory
    from chimera.db import StateStore

    return AccountDirectory.of(registry) if isinstance(registry, StateStore) else None
