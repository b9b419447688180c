"""`chimera user add|list|revoke|rotate|token`: the people who may act, their roles and their keys.

Every command but `add --bootstrap` (the first user) is signed with the caller's credentials and allowed to
administrators only (of the user's tenant, or of the fleet); each change is audited. `add` and `rotate`
write the new credentials to a file only its owner can read: hand it to the person, who points
CHIMERA_CREDENTIALS at it. See specs/access.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from chimera.cli import render
from chimera.cli.ops import db_errors
from chimera.cli.render import JsonFlag
from chimera.settings import Settings
from schemas.access import FLEET_SCOPE, Role

if TYPE_CHECKING:  # the store loads when a command runs (CLI start-up stays fast)
    from chimera.db import StateStore

app = typer.Typer(help="People: users, their roles and their signing keys.", no_args_is_help=True)

USER_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,62}$")
TENANT = re.compile(rf"^(\{FLEET_SCOPE}|[a-z0-9][a-z0-9-]{{1,62}})$")
OutOption = Annotated[
    Path | None, typer.Option("--out", help="Where to write the new credentials (default: ./NAME.credentials.json).")
]


class UserOut(BaseModel):
    name: str
    tenant_id: str
    role: str
    key_id: str | None
    created_at: str
    created_by: str
    revoked_at: str | None


@contextmanager
def _errors() -> Iterator[None]:
    from chimera.access.credentials import NotSignedIn
    from chimera.access.users import NotAllowed
    from chimera.db.users import UnknownUser, UserExists

    with db_errors():
        try:
            yield
        except NotSignedIn as exc:
            render.fail(str(exc), render.EXIT_USAGE)
        except NotAllowed as exc:
            render.fail(f"refused: {exc}")
        except (UnknownUser, UserExists) as exc:
            render.fail(str(exc), render.EXIT_NOT_FOUND if isinstance(exc, UnknownUser) else render.EXIT_FAILED)


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="The user's name (lowercase: letters, digits, . _ @ -).")],
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant they act for; '*' for the fleet's operators.")],
    role: Annotated[
        str, typer.Option("--role", help="content_reviewer, campaign_manager, finance_approver or administrator.")
    ],
    out: OutOption = None,
    bootstrap: Annotated[bool, typer.Option("--bootstrap", help="The first user of an empty directory.")] = False,
) -> None:
    """Add a user and issue their key (written to --out, mode 0600)."""
    from chimera.access.credentials import find_credentials, write_credentials
    from chimera.access.users import add_user

    if not USER_NAME.match(name):
        render.fail(f"user name '{name}' is not valid: lowercase letters, digits and . _ @ -", render.EXIT_USAGE)
    if not TENANT.match(tenant):
        render.fail(f"tenant '{tenant}' is not a tenant id (or '*' for the fleet)", render.EXIT_USAGE)
    if role not in get_args(Role):
        render.fail(f"unknown role '{role}': one of {', '.join(get_args(Role))}", render.EXIT_USAGE)
    settings = Settings()
    target = out or Path(f"{name}.credentials.json")
    with _errors(), _store(settings) as store:
        by = None if bootstrap else find_credentials(settings)
        creds = add_user(store, name, tenant, role, by=by, bootstrap=bootstrap)  # type: ignore[arg-type]
        write_credentials(target, creds)
    render.say(f"added {escape(name)} ({role} of {escape(creds.scope)}), key {creds.key_id}")
    render.say(f"credentials written to {escape(str(target))} (mode 0600): give them to {escape(name)} only")


@app.command("list")
def list_(json_: JsonFlag = False) -> None:
    """The users an administrator may see (of their tenant; a fleet administrator: everyone)."""
    from chimera.access.credentials import load_credentials
    from chimera.access.users import list_users

    settings = Settings()
    with _errors(), _store(settings) as store:
        users = list_users(store, by=load_credentials(settings))
    rows = [
        UserOut(
            name=u.name,
            tenant_id=u.tenant_id,
            role=u.role,
            key_id=u.key_id,
            created_at=u.created_at.isoformat(),
            created_by=u.created_by,
            revoked_at=u.revoked_at.isoformat() if u.revoked_at else None,
        )
        for u in users
    ]
    if json_:
        render.emit_json(rows)
        return
    table = Table("user", "tenant", "role", "key", "added", "revoked")
    for r in rows:
        table.add_row(
            r.name, r.tenant_id, r.role, r.key_id or "-", f"{r.created_at[:16]} by {r.created_by}", r.revoked_at or ""
        )
    render.out().print(table)


@app.command()
def revoke(name: Annotated[str, typer.Argument(help="The user to revoke: their keys stop working at once.")]) -> None:
    """Revoke a user: every request signed with their keys is refused from now on."""
    from chimera.access.credentials import load_credentials
    from chimera.access.users import revoke as revoke_user

    settings = Settings()
    with _errors(), _store(settings) as store:
        revoke_user(store, name, by=load_credentials(settings))
    render.say(f"revoked {escape(name)}: requests signed with their keys are refused")


@app.command()
def rotate(
    name: Annotated[str, typer.Argument(help="The user whose key to replace (yourself, or as an administrator).")],
    out: OutOption = None,
) -> None:
    """Issue a new key; the old one is refused from now on."""
    from chimera.access.credentials import load_credentials, write_credentials
    from chimera.access.users import rotate as rotate_key

    settings = Settings()
    target = out or Path(f"{name}.credentials.json")
    with _errors(), _store(settings) as store:
        creds = rotate_key(store, name, by=load_credentials(settings))
        write_credentials(target, creds)
    render.say(f"new key {creds.key_id} for {escape(name)} written to {escape(str(target))}; the old key is revoked")


@app.command()
def token(
    ttl: Annotated[int, typer.Option("--ttl", min=1, max=12 * 3600, help="Seconds the token is valid.")] = 3600,
) -> None:
    """Print a bearer token for the codec server (fleet operators only): `--codec-auth "Bearer TOKEN"`."""
    from chimera.access.credentials import load_credentials
    from chimera.access.tokens import issue

    with _errors():
        creds = load_credentials(Settings())
        if creds.tenant_id != FLEET_SCOPE:
            render.fail("only the fleet's operators (tenant '*') may decrypt payloads: a history holds every tenant's")
        typer.echo(issue(creds, timedelta(seconds=ttl)))


@contextmanager
def _store(settings: Settings) -> Iterator[StateStore]:
    from chimera.db import StateStore

    settings.ensure_dirs()
    with StateStore.from_settings(settings) as store:
        yield store
