"""`chimera dev` and `chimera worker`: processes that keep Chimera running."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from temporalio.client import Client

from chimera.access.credentials import LOCAL_ADMIN, local_admin_path
from chimera.access.users import ensure_local_admin
from chimera.devserver import DevServer, dev_server
from chimera.mcp import McpError
from chimera.settings import Settings
from chimera.temporal_config import TemporalConfig, connect, ensure_search_attributes, load_temporal_config
from schemas.activity_table import ROLES, Role
from workers.dependencies import Dependencies
from workers.roles import run_workers

console = Console()


@dataclass
class Runtime:
    settings: Settings
    config: TemporalConfig
    server: DevServer
    client: Client
    deps: Dependencies


@contextlib.asynccontextmanager
async def embedded(ui: bool = True, rehearsal: bool = False) -> AsyncIterator[Runtime]:
    """The dev server (started here unless one answers) and a client, with dependencies built once.
    A rehearsal (the demo) stays on the offline models unless CHIMERA_MODEL_PROVIDER=live says otherwise,
    so API keys in the shell never make the quick start spend money."""
    settings = Settings()
    if rehearsal and settings.model_provider == "auto":
        settings = settings.model_copy(update={"model_provider": "offline"})
    settings.ensure_dirs()
    config = load_temporal_config(settings.temporal_config)
    address = config.connection()[0]
    async with dev_server(config, address, settings.state_dir, ui=ui) as server:
        client = await connect(config)
        await ensure_search_attributes(client, config)
        deps = Dependencies.build(settings)
        try:
            await approve_on_first_use(deps)
            await asyncio.to_thread(ensure_local_admin, settings, deps.store)  # the quick start needs no account
            yield Runtime(settings=settings, config=config, server=server, client=client, deps=deps)
        finally:
            await deps.aclose()


async def approve_on_first_use(deps: Dependencies) -> None:
    """The embedded stack approves the allowlisted servers nobody has approved yet, as an operator would with
    `chimera mcp approve`; a quarantined server stays quarantined. `chimera worker` never does this."""
    for name in deps.mcp.server_names:
        if await asyncio.to_thread(deps.store.mcp_pin, name) is not None:
            continue
        try:
            pin = await deps.mcp.approve(name, actor="chimera (first use)")
        except McpError as exc:
            console.print(f"[yellow]MCP server {name} is not approved:[/] {exc.message}")
            continue
        console.print(f"approved MCP server {name} on first use ({len(pin.pinned_tools)} tools pinned)")


def stop_on_signals() -> asyncio.Event:
    """An event set by Ctrl-C or SIGTERM, so shutdown is graceful instead of a traceback."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _dev(ui: bool) -> None:
    async with embedded(ui=ui) as rt:
        where = "started" if rt.server.started_here else "already running, reused"
        console.print(f"[bold]Temporal[/] at {rt.server.address} ({where}), namespace {rt.config.namespace}")
        if rt.server.ui_url:
            console.print(f'[bold]Web UI[/]    {rt.server.ui_url}  (filter: ReviewState="pending")')
        console.print(f"[bold]State[/]     {rt.settings.state_dir.resolve()}")
        admin = local_admin_path(rt.settings)
        console.print(f"[bold]Signed in[/] as {LOCAL_ADMIN} (fleet administrator): {admin.resolve()}")
        console.print(f"[bold]Workers[/]   {', '.join(ROLES)} on {', '.join(_queues(rt.config))}")
        async with ingress_beside(rt) as url:
            if url:
                console.print(f"[bold]Ingress[/]   {url}/webhooks/x, {url}/webhooks/meta")
            console.print("Press Ctrl-C to stop.")
            await run_workers(rt.client, ROLES, rt.deps, rt.config.task_queues, stop_on_signals())
        console.print("Workers stopped; stopping Temporal." if rt.server.started_here else "Workers stopped.")


@contextlib.asynccontextmanager
async def ingress_beside(rt: Runtime) -> AsyncIterator[str | None]:
    """The webhook ingress in this process (its base URL), or None with a warning when it cannot listen:
    pushed mentions then wait for polling, and the workers run all the same."""
    from chimera.ingress.server import IngressError, log_to_stderr, serving

    log_to_stderr()
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(serving(rt.settings, rt.config, rt.client, rt.deps.store))
        except IngressError as exc:
            console.print(
                f"[yellow]Ingress not started:[/] {exc}; set CHIMERA_INGRESS_PORT. Mentions wait for polling."
            )
            url = None
        yield url


async def _worker(roles: Sequence[Role]) -> None:
    settings = Settings()
    config = load_temporal_config(settings.temporal_config)
    client = await connect(config)
    deps = Dependencies.build(settings)
    try:
        console.print(f"Workers {', '.join(roles)} polling {config.connection()[0]}; Ctrl-C stops them.")
        await run_workers(client, roles, deps, config.task_queues, stop_on_signals())
    finally:
        await deps.aclose()


def _queues(config: TemporalConfig) -> list[str]:
    return [getattr(config.task_queues, role) for role in ROLES]


def run_dev(ui: bool) -> None:
    asyncio.run(_dev(ui=ui))


def run_worker(role: Role | Literal["all"]) -> None:
    asyncio.run(_worker(ROLES if role == "all" else (role,)))
