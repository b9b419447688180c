"""A person's signing credentials on their own machine: which user, which key, and the private key.

`chimera user add` writes them once (mode 0600) for the person to keep; the CLI signs every change with
them. Where the CLI looks, first found wins:

1. CHIMERA_USER_KEY: the credentials JSON itself (for automation, from a secrets manager);
2. CHIMERA_CREDENTIALS: the path of a credentials file;
3. ~/.config/chimera/credentials.json;
4. <state_dir>/local-admin.json: the local administrator `chimera dev` and `chimera demo` create.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, SecretStr, ValidationError

from chimera.access.signing import sign
from chimera.settings import Settings
from schemas.access import FLEET_SCOPE, Action, Role, Signed

S = TypeVar("S", bound=Signed)

USER_KEY_ENV = "CHIMERA_USER_KEY"
CREDENTIALS_ENV = "CHIMERA_CREDENTIALS"
LOCAL_ADMIN = "local-admin"
LOCAL_ADMIN_FILE = "local-admin.json"


class NotSignedIn(Exception):
    """No credentials were found, or they cannot be read (the message says where the CLI looked)."""


class UserCredentials(BaseModel):
    user: str = Field(min_length=1)
    tenant_id: str = Field(min_length=1)
    role: Role
    key_id: str = Field(min_length=1)
    private_key: SecretStr

    def sign(self, request: S, action: Action, target: str, *, now: datetime | None = None) -> S:
        """`request` with this user's signature for `action` on `target`, and this user as its actor."""
        named = _named(request, self.user)
        issued = (now or datetime.now(UTC)).isoformat()
        key = self.private_key.get_secret_value()
        signature = sign(key, self.key_id, issued, action, target, named.signed_body())
        return named.model_copy(update={"signature": signature})

    @property
    def scope(self) -> str:
        return "the fleet" if self.tenant_id == FLEET_SCOPE else f"tenant {self.tenant_id}"

    def to_json(self) -> str:
        data = self.model_dump(mode="json")
        data["private_key"] = self.private_key.get_secret_value()
        return json.dumps(data, indent=2) + "\n"


def _named(request: S, user: str) -> S:
    fields: dict[str, Any] = {}
    if "actor" in type(request).model_fields:
        fields["actor"] = user
    if "reviewer" in type(request).model_fields:
        fields["reviewer"] = user
    if "approver" in type(request).model_fields:
        fields["approver"] = user
    return request.model_copy(update=fields)


def write_credentials(path: Path, creds: UserCredentials) -> None:
    """Create the file readable by its owner only (never world-readable, not even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(creds.to_json())
    os.chmod(path, 0o600)


def local_admin_path(settings: Settings) -> Path:
    return settings.state_dir / LOCAL_ADMIN_FILE


def read_credentials(path: Path) -> UserCredentials:
    return _parse(path.read_text(), str(path))


def find_credentials(settings: Settings) -> UserCredentials | None:
    inline = os.environ.get(USER_KEY_ENV, "").strip()
    if inline:
        return _parse(inline, USER_KEY_ENV)
    named = os.environ.get(CREDENTIALS_ENV, "").strip()
    if named and not Path(named).expanduser().is_file():
        raise NotSignedIn(f"{CREDENTIALS_ENV}={named}: no such file")
    for path in _paths(settings):
        if path.is_file():
            return read_credentials(path)
    return None


def load_credentials(settings: Settings) -> UserCredentials:
    creds = find_credentials(settings)
    if creds is None:
        looked = ", ".join(str(p) for p in _paths(settings))
        raise NotSignedIn(
            f"no user credentials: set {USER_KEY_ENV} or {CREDENTIALS_ENV}, or put them at one of {looked} "
            "(`chimera user add` issues them; `chimera dev` makes a local administrator)"
        )
    return creds


def _paths(settings: Settings) -> list[Path]:
    paths = []
    if os.environ.get(CREDENTIALS_ENV, "").strip():
        paths.append(Path(os.environ[CREDENTIALS_ENV]).expanduser())
    paths.append(Path("~/.config/chimera/credentials.json").expanduser())
    paths.append(local_admin_path(settings))
    return paths


def _parse(text: str, where: str) -> UserCredentials:
    try:
        return UserCredentials.model_validate_json(text)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "the file" for e in exc.errors())
        raise NotSignedIn(f"{where}: not valid Chimera credentials ({fields})") from None
