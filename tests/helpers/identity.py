"""People for tests: an in-memory user directory the scripted `authorize` activity checks against, with the
real signature checks (chimera/access/authorize.py), and credentials to sign with.

The directory lives in the test process, where the scripted activities run, so tests can add users, revoke
keys and read what was refused."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from temporalio.client import WorkflowHandle

from chimera.access.authorize import KeyHolder
from chimera.access.credentials import USER_KEY_ENV, UserCredentials
from chimera.access.signing import new_key_id, new_private_key, public_key_of
from schemas.access import FLEET_SCOPE, Action, Role, Signed
from schemas.review import ReviewDecision

S = TypeVar("S", bound=Signed)


@dataclass
class MemoryDirectory:
    """chimera.access.authorize.Directory and Nonces, in memory."""

    holders: dict[str, KeyHolder] = field(default_factory=dict)
    nonces: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, user: str, tenant_id: str, role: Role) -> UserCredentials:
        key_id, private = new_key_id(), new_private_key()
        self.holders[key_id] = KeyHolder(
            user=user,
            tenant_id=tenant_id,
            role=role,
            public_key=public_key_of(private),
            key_revoked_at=None,
            key_expires_at=None,
            user_revoked_at=None,
        )
        return UserCredentials.model_validate(
            {"user": user, "tenant_id": tenant_id, "role": role, "key_id": key_id, "private_key": private}
        )

    def revoke_key(self, key_id: str) -> None:
        old = self.holders[key_id]
        self.holders[key_id] = KeyHolder(**{**old.__dict__, "key_revoked_at": datetime.now(UTC)})

    def key_holder(self, key_id: str) -> KeyHolder | None:
        return self.holders.get(key_id)

    def use(self, request_id: str, recipient: str, attempt_key: str, user: str, at: datetime) -> bool:
        first = self.nonces.setdefault((request_id, recipient), attempt_key)
        return first == attempt_key


DIRECTORY = MemoryDirectory()
# The fleet administrator every workflow test signs with unless it says otherwise.
ADMIN = DIRECTORY.add("test-admin", FLEET_SCOPE, "administrator")


def admin_env() -> dict[str, str]:
    """The environment that signs the CLI's and control functions' requests as ADMIN."""
    return {USER_KEY_ENV: ADMIN.to_json()}


SIGNAL_ACTIONS: dict[str, Action] = {
    "pause": "campaign.pause",
    "resume": "campaign.resume",
    "set_budget": "campaign.budget",
    "set_goals": "campaign.goals",
    "emergency_stop": "campaign.stop",
}
_PEOPLE: dict[str, UserCredentials] = {}


def person(name: str, tenant_id: str = FLEET_SCOPE, role: Role = "administrator") -> UserCredentials:
    """The credentials of `name` in the directory (added on first use)."""
    key = f"{name}|{tenant_id}|{role}"
    if key not in _PEOPLE:
        _PEOPLE[key] = DIRECTORY.add(name, tenant_id, role)
    return _PEOPLE[key]


def signed(request: S, to: WorkflowHandle[Any, Any] | str, signal: str | None = None) -> S:
    """`request` signed for workflow `to` by the person it names (reviewer or actor), a fleet administrator.
    `signal`: the campaign signal's name, for its action; a review decision knows its own."""
    name = getattr(request, "reviewer", None) or getattr(request, "actor", None) or ADMIN.user
    action = request.access_action if isinstance(request, ReviewDecision) else SIGNAL_ACTIONS[signal or ""]
    return person(name).sign(request, action, to if isinstance(to, str) else to.id)
