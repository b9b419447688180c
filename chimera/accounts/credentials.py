"""An account's credentials for the live platform backends, read from a secrets source (chimera.secrets).

Each account's credentials are one secret, `platform/<platform>/<account>` (chimera.accounts.names), holding a
JSON object:
- twitter: {"access_token": "<OAuth 2.0 user-context token>", "app_bearer_token": "<app-only token, optional>"}
- instagram: {"access_token": "<Graph API token>", "ig_user_id": "<the Instagram professional account's id>"}

Errors name the secret and the problem, never a value; the credentials' repr hides the tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chimera.accounts.names import secret_name
from chimera.secrets.base import SecretsError, SecretSource


class CredentialsInvalid(SecretsError):
    """The account's secret exists but is not the JSON object its platform needs."""


@dataclass(frozen=True)
class XCredentials:
    access_token: str = field(repr=False)
    app_bearer_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class InstagramCredentials:
    access_token: str = field(repr=False)
    ig_user_id: str


REQUIRED: dict[str, tuple[str, ...]] = {"twitter": ("access_token",), "instagram": ("access_token", "ig_user_id")}
OPTIONAL: dict[str, tuple[str, ...]] = {"twitter": ("app_bearer_token",), "instagram": ()}


def _fields(source: SecretSource, platform: str, account: str) -> dict[str, str] | None:
    name = secret_name(platform, account)
    raw = source.get(name)
    if raw is None:
        return None
    try:
        value: Any = json.loads(raw)
    except ValueError:
        raise CredentialsInvalid(f"secret '{name}' is not JSON: it must be a JSON object of credentials") from None
    if not isinstance(value, dict):
        raise CredentialsInvalid(f"secret '{name}' must be a JSON object, not a JSON {type(value).__name__}")
    required, optional = REQUIRED[platform], OPTIONAL[platform]
    unknown = sorted(set(value) - set(required) - set(optional))
    if unknown:
        expected = ", ".join((*required, *optional))
        raise CredentialsInvalid(f"secret '{name}' has unknown keys {unknown}; expected {expected}")
    missing = [k for k in required if not isinstance(value.get(k), str) or not value[k].strip()]
    if missing:
        raise CredentialsInvalid(f"secret '{name}' lacks {missing} (non-empty strings)")
    bad = [k for k in optional if k in value and value[k] is not None and not isinstance(value[k], str)]
    if bad:
        raise CredentialsInvalid(f"secret '{name}': {bad} must be strings")
    return {k: str(v).strip() for k, v in value.items() if v is not None}


def x_credentials(source: SecretSource, account: str) -> XCredentials | None:
    """The X account's tokens, or None when the source has no secret for it."""
    found = _fields(source, "twitter", account)
    if found is None:
        return None
    return XCredentials(access_token=found["access_token"], app_bearer_token=found.get("app_bearer_token") or None)


def instagram_credentials(source: SecretSource, account: str) -> InstagramCredentials | None:
    """The Instagram account's token and user id, or None when the source has no secret for it."""
    found = _fields(source, "instagram", account)
    if found is None:
        return None
    return InstagramCredentials(access_token=found["access_token"], ig_user_id=found["ig_user_id"])
