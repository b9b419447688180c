"""What every secrets source answers: a secret's value by name, or None when it has no such secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class SecretsError(Exception):
    """A secret that must exist is missing, or a source cannot be read (the message names which, never a value)."""


class SecretSource(Protocol):
    def get(self, name: str) -> str | None:
        """The secret called `name` (e.g. "codec-keys", "platform/twitter/mira"), or None if this source has none."""
        ...


def require(source: SecretSource, name: str) -> str:
    value = source.get(name)
    if value is None:
        raise SecretsError(f"secret '{name}' is not set in any configured secrets source")
    return value


class StaticSecrets:
    """Secrets held in memory: for tests, and for values a process generated itself."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def __repr__(self) -> str:
        return f"StaticSecrets({len(self._values)} secrets)"
