"""Secrets from environment variables: "platform/twitter/mira" is CHIMERA_SECRET_PLATFORM_TWITTER_MIRA."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

PREFIX = "CHIMERA_SECRET_"
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def env_name(name: str) -> str:
    """The variable that holds secret `name`: upper-cased, every non-alphanumeric character made `_`.

    Names that differ only in punctuation ("a/b", "a.b", "a_b") share one variable."""
    return PREFIX + _NOT_ALNUM.sub("_", name).upper()


class EnvSecrets:
    kind = "env"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        # None: the live process environment, read at each get (a test's monkeypatch shows at once).
        self._environ = environ

    def get(self, name: str) -> str | None:
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(env_name(name))
        return value or None  # an empty variable is unset, as `VAR= cmd` means in a shell

    def __repr__(self) -> str:
        return "EnvSecrets()"
