"""`chimera memory tenants|offload|activate|deactivate`: where each tenant's memories are (specs/mcp/memory.md).

They act on the configured backend (CHIMERA_MEMORY_BACKEND, CHIMERA_WEAVIATE_URL, ...). On Weaviate a tenant is
active (served), inactive (on the server's disk, unloaded) or offloaded (in cold storage, the server's offload-s3
module); the embedded backend keeps every tenant on disk and refuses to move one (exit 1). No Temporal, no
database; the memory store loads when a command runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from chimera.cli import render
from chimera.cli.render import JsonFlag
from chimera.settings import Settings

if TYPE_CHECKING:
    from chimera.memory import MemoryStore

app = typer.Typer(
    help="Long-term memory: list tenants, offload them to cold storage, activate them.", no_args_is_help=True
)
TenantArg = Annotated[str, typer.Argument(metavar="TENANT", help="The tenant id.")]
EXIT_FOR = {
    "invalid_id": render.EXIT_USAGE,
    "invalid_status": render.EXIT_USAGE,
    "unknown_tenant": render.EXIT_NOT_FOUND,
}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="memory")


@app.command("tenants")
def tenants(as_json: JsonFlag = False) -> None:
    """Every tenant with memories and where they are: active, inactive or offloaded."""
    with _store() as (backend, store):
        found = store.tenants()
    if as_json:
        render.emit_data({"backend": backend, "tenants": found})
        return
    if not found:
        render.say(f"no tenant has memories yet ({backend} backend)")
        return
    render.say(f"[dim]{backend} backend[/]")
    width = max(len(t) for t in found)
    for tenant, status in found.items():
        render.say(f"{escape(tenant.ljust(width))}  {status}")


@app.command("offload")
def offload(tenant: TenantArg) -> None:
    """Move a tenant's memories to cold storage (Weaviate's offload-s3 module); its queries wait until activated."""
    _set(tenant, "offloaded")


@app.command("activate")
def activate(tenant: TenantArg) -> None:
    """Make a tenant's memories searchable again (from cold storage or from disk)."""
    _set(tenant, "active")


@app.command("deactivate")
def deactivate(tenant: TenantArg) -> None:
    """Unload a tenant's memories, keeping them on the server's disk (no cold storage needed)."""
    _set(tenant, "inactive")


def _set(tenant: str, status: str) -> None:
    """Signed and authorized first (`memory.manage` on the tenant: its administrators, or the fleet's), audited."""
    from chimera.access.credentials import NotSignedIn, load_credentials
    from chimera.access.users import NotAllowed, check_authority
    from chimera.db import StateStore

    settings = Settings()
    with StateStore.from_settings(settings) as state:
        try:
            creds = load_credentials(settings)
            actor = check_authority(state, creds, "memory.manage", tenant, f"memory {status} {tenant}").actor
        except NotSignedIn as exc:
            render.fail(str(exc), render.EXIT_USAGE)
        except NotAllowed as exc:
            render.fail(f"refused: {exc}")
        with _store() as (backend, store):
            store.set_tenant_activity(tenant, status)
        detail = {"status": status, "backend": backend}
        state.append_audit(tenant, actor, "memory.tenant", f"memory/{tenant}", detail)
    render.say(f"[green]done:[/] tenant {escape(tenant)} is {status} ({backend} backend)")


@contextmanager
def _store() -> Iterator[tuple[str, MemoryStore]]:
    """The configured store, its errors as messages and exit codes; closed afterwards."""
    from chimera.memory import MemoryInputError, MemoryUnavailable, memory_backend, memory_store_from_settings

    try:
        backend = memory_backend()
        store = memory_store_from_settings(Settings())
    except ValueError as exc:  # an unknown backend, weaviate without a URL, a bad port
        render.fail(f"memory backend: {exc}", render.EXIT_USAGE)
    try:
        yield backend, store
    except MemoryInputError as exc:  # not_supported (embedded) exits 1
        render.fail(f"{exc.code}: {exc.message}", EXIT_FOR.get(exc.code, render.EXIT_FAILED))
    except MemoryUnavailable as exc:
        render.fail(str(exc), render.EXIT_UNREACHABLE)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
