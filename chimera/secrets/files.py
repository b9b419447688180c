"""Secrets from mounted files, laid out as a Kubernetes secret volume lays them out: one file per key.

Kubernetes keys may only hold `[-._a-zA-Z0-9]`, so a `/` in a secret name becomes `.` in the file name:
"platform/twitter/mira" is the file `platform.twitter.mira`. Files are read at each get, because Kubernetes
replaces a mounted secret in place (an atomic swap of its `..data` symlink) when the Secret changes.
"""

from __future__ import annotations

import re
from pathlib import Path

from chimera.secrets.base import SecretsError

# One segment of a name: what a Kubernetes key allows, not starting with a dot (no "..", no "..data").
_SEGMENT = re.compile(r"^[-_a-zA-Z0-9][-._a-zA-Z0-9]*$")


def file_name(name: str) -> str:
    """The file that holds secret `name`, or SecretsError for a name that could not be one safely."""
    segments = name.split("/")
    if not all(_SEGMENT.match(segment) for segment in segments):
        raise SecretsError(
            f"secret name {name!r} cannot be a secret file: each '/'-separated part must be letters, digits, "
            "'-', '_' or '.', not starting with '.'"
        )
    return ".".join(segments)


class FileSecrets:
    kind = "files"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def get(self, name: str) -> str | None:
        path = self.directory / file_name(name)
        if not self.directory.is_dir():
            raise SecretsError(f"secrets directory {self.directory} does not exist (setting secrets_dir)")
        # Kubernetes keys are symlinks into ..data/ inside the volume; one pointing elsewhere is refused.
        if path.exists() and not path.resolve().is_relative_to(self.directory.resolve()):
            raise SecretsError(f"secret file for {name!r} points outside {self.directory}")
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecretsError(f"cannot read the secret file for {name!r} in {self.directory}: {exc.strerror}") from exc
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretsError(f"secret file for {name!r} in {self.directory} is not UTF-8 text") from None
        value = value.removesuffix("\n").removesuffix("\r")  # one trailing newline, as `echo` or an editor adds
        return value or None

    def __repr__(self) -> str:
        return f"FileSecrets({str(self.directory)!r})"
