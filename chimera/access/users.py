"""Managing people: add, list, revoke, rotate. Every change but the very first is an administrator's,
checked with the same rules as a signed request to a workflow (chimera/access/authorize.py) and audited.

The first user of an empty directory is the bootstrap administrator (`chimera user add ... --bootstrap`);
`chimera dev` and `chimera demo` make a local one (`local-admin`, fleet scope) so the quick start needs none.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from chimera.access.authorize import authorize
from chimera.access.credentials import (
    LOCAL_ADMIN,
    UserCredentials,
    local_admin_path,
    read_credentials,
    write_credentials,
)
from chimera.access.signing import new_key_id, new_private_key, public_key_of
from chimera.db import StateStore
from chimera.db.mcp import PLATFORM_TENANT
from chimera.db.users import UnknownUser, UserRecord
from chimera.settings import Settings
from schemas.access import FLEET_SCOPE, Action, Authorization, AuthorizeRequest, Role, Signed

DIRECTORY = "chimera-users"  # the recipient named in user-management checks


class NotAllowed(Exception):
    """The caller may not manage users here (the message says why; the refusal is audited)."""


class _Change(Signed):
    request_id: str
    actor: str
    change: str


def check_authority(
    store: StateStore, creds: UserCredentials, action: Action, tenant_id: str, change: str, *, target: str = DIRECTORY
) -> Authorization:
    """For changes the CLI makes in the store itself (users, MCP pins, tenant budgets): sign a request for
    `action` on `tenant_id` ('*': the fleet) with the caller's key and verify it with the same rules a workflow
    applies; a refusal is audited and raised as NotAllowed. The actor to record is the verified one."""
    request = creds.sign(_Change(request_id=str(uuid.uuid4()), actor=creds.user, change=change), action, target)
    now = datetime.now(UTC)
    assert request.signature is not None
    fleet = tenant_id == FLEET_SCOPE
    check = AuthorizeRequest(
        action=action,
        target=target,
        tenant_id=None if fleet else tenant_id,
        recipient=target,
        request_id=request.request_id,
        body=request.signed_body(),
        signature=request.signature,
        received_at=now.isoformat(),
    )
    auth = authorize(check, store, store, attempt_key=request.request_id, now=now)
    if not auth.allowed:
        detail = {"action": action, "change": change, "reason": auth.reason}
        store.append_audit(PLATFORM_TENANT if fleet else tenant_id, auth.actor, "request_refused", target, detail)
        raise NotAllowed(auth.reason)
    return auth


def check_admin(store: StateStore, creds: UserCredentials, tenant_id: str, change: str) -> Authorization:
    """User management: an administrator of the user's tenant, or of the fleet."""
    return check_authority(store, creds, "user.manage", tenant_id, change)


def add_user(
    store: StateStore, name: str, tenant_id: str, role: Role, *, by: UserCredentials | None, bootstrap: bool = False
) -> UserCredentials:
    """A new user and their first key; `bootstrap` is allowed only while the directory is empty."""
    if bootstrap:
        if store.list_users():
            raise NotAllowed("--bootstrap is only for the first user; sign in as an administrator instead")
        actor = "bootstrap"
    else:
        if by is None:
            raise NotAllowed("adding a user needs an administrator's credentials")
        actor = check_admin(store, by, tenant_id, f"add {name}").actor
    creds = _new_credentials(name, tenant_id, role)
    store.add_user(name, tenant_id, role, creds.key_id, public_key_of(creds.private_key.get_secret_value()), actor)
    return creds


def rotate(store: StateStore, name: str, *, by: UserCredentials) -> UserCredentials:
    """A new key for `name`; the old one is refused from now on. A user may rotate their own key."""
    user = store.get_user(name)
    actor = (
        by.user
        if by.user == name and _holds(store, by)
        else check_admin(store, by, user.tenant_id, f"rotate {name}").actor
    )
    creds = _new_credentials(name, user.tenant_id, user.role)
    store.rotate_key(name, creds.key_id, public_key_of(creds.private_key.get_secret_value()), actor)
    return creds


def revoke(store: StateStore, name: str, *, by: UserCredentials) -> None:
    user = store.get_user(name)
    actor = check_admin(store, by, user.tenant_id, f"revoke {name}").actor
    store.revoke_user(name, actor)


def list_users(store: StateStore, *, by: UserCredentials) -> list[UserRecord]:
    """An administrator sees the users of their tenant (a fleet administrator: everyone)."""
    check_admin(store, by, by.tenant_id, "list")
    return store.list_users(None if by.tenant_id == FLEET_SCOPE else by.tenant_id)


def ensure_local_admin(settings: Settings, store: StateStore) -> UserCredentials:
    """The local administrator of a development machine: made once, its key kept in the state directory."""
    path = local_admin_path(settings)
    existing = read_credentials(path) if path.is_file() else None
    if existing is not None and existing.user == LOCAL_ADMIN and _holds(store, existing):
        return existing
    creds = _new_credentials(LOCAL_ADMIN, FLEET_SCOPE, "administrator")
    public = public_key_of(creds.private_key.get_secret_value())
    try:
        store.get_user(LOCAL_ADMIN)
    except UnknownUser:
        store.add_user(LOCAL_ADMIN, FLEET_SCOPE, "administrator", creds.key_id, public, "chimera dev")
    else:
        store.rotate_key(LOCAL_ADMIN, creds.key_id, public, "chimera dev")
    write_credentials(path, creds)
    return creds


def _holds(store: StateStore, creds: UserCredentials) -> bool:
    """The credentials' key is this user's active key."""
    holder = store.key_holder(creds.key_id)
    return (
        holder is not None
        and holder.user == creds.user
        and holder.key_revoked_at is None
        and holder.user_revoked_at is None
        and public_key_of(creds.private_key.get_secret_value()) == holder.public_key
    )


def _new_credentials(name: str, tenant_id: str, role: Role) -> UserCredentials:
    private = new_private_key()
    return UserCredentials(user=name, tenant_id=tenant_id, role=role, key_id=new_key_id(), private_key=private)
