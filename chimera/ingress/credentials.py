"""The webhook secrets: from the environment (CHIMERA_X_CONSUMER_SECRET, CHIMERA_META_APP_SECRET,
CHIMERA_META_VERIFY_TOKEN, or `.env`), else from one file generated once in the state directory.

The file (`<state_dir>/ingress-secrets.json`, mode 0600) is what lets the ingress and the sandbox, two
processes on one machine with no configuration, sign and check the same webhooks. It is written to a temporary
name and linked into place, so a process starting at the same moment reads a whole file, never half of one.
Secrets never go into code, logs or workflow payloads; `repr()` of the loaded secrets shows none of them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from chimera.settings import Settings

SECRETS_FILE = "ingress-secrets.json"
NAMES = ("x_consumer_secret", "meta_app_secret", "meta_verify_token")
logger = logging.getLogger("chimera.ingress")


class CredentialsError(Exception):
    pass


@dataclass(frozen=True, repr=False)
class WebhookSecrets:
    x_consumer_secret: str
    meta_app_secret: str
    meta_verify_token: str
    from_file: tuple[str, ...] = ()  # which ones came from the generated file (embedded defaults)

    def __repr__(self) -> str:
        return f"WebhookSecrets(from_file={self.from_file!r})"


def secrets_path(settings: Settings) -> Path:
    return settings.state_dir / SECRETS_FILE


def load_secrets(settings: Settings) -> WebhookSecrets:
    """Each secret from the settings (environment) when set, else from the state-dir file (made if missing)."""
    configured: dict[str, SecretStr | None] = {name: getattr(settings, name) for name in NAMES}
    given = {name: value.get_secret_value() for name, value in configured.items() if value and value.get_secret_value()}
    missing = [name for name in NAMES if name not in given]
    stored = _stored_secrets(secrets_path(settings)) if missing else {}
    values = {**{name: stored[name] for name in missing}, **given}
    return WebhookSecrets(**values, from_file=tuple(missing))


def _stored_secrets(path: Path) -> dict[str, str]:
    for _ in range(3):
        found = _read(path)
        if found is not None and all(isinstance(found.get(n), str) and found[n] for n in NAMES):
            return {n: str(found[n]) for n in NAMES}
        if found is not None:  # an older or damaged file: replace it whole
            logger.warning("%s lacks some webhook secrets: generating new ones", path)
            path.unlink(missing_ok=True)
        _create(path)
    raise CredentialsError(f"could not create the webhook secrets file {path}")


def _read(path: Path) -> dict[str, object] | None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning("%s was readable by others: restricting it to its owner (0600)", path)
        path.chmod(0o600)
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read the webhook secrets file {path}: {exc}") from exc
    return found if isinstance(found, dict) else {}


def _create(path: Path) -> None:
    """Write new secrets under a temporary name (0600), then link it into place unless another process won."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({name: secrets.token_urlsafe(32) for name in NAMES}, out)
        with contextlib.suppress(FileExistsError):  # another process linked its file first: use that one
            os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
