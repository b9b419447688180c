"""Which account a social server's call acts for, and where each account keeps its state.

Every tool and resource of the twitter and instagram servers takes an `account` (a handle without @,
chimera.accounts.names). The Chimera host binds it from the task's agent and never lets a model choose it
(specs/accounts.md); a call without one acts for the server's default account (an operator's call).

State is per account, so one account's posts, mentions, rate limit and idempotency keys never touch another's:
`<data dir>/accounts/<platform>/<account>.sqlite3` for the sandbox and `...-live-ledger.sqlite3` for the live
ledger. The default sandbox accounts, the demo persona's (examples/personas/mira), keep the files they always
had, `<data dir>/<platform>.sqlite3`, and are the only ones seeded with mentions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from chimera.accounts.names import InvalidAccount, account_name
from mcp_servers.common import ToolError
from mcp_servers.social.backend import Platform, SocialBackend

# The demo persona's handles (examples/personas/mira/SOUL.md): what the sandbox serves when a call names none.
DEFAULT_ACCOUNTS: dict[Platform, str] = {"twitter": "mira_threads", "instagram": "mira.threads"}


def check_account(account: str) -> str:
    """The account name as the servers use it; ToolError("invalid_account") for anything that is not one."""
    try:
        name = account_name(account)
    except InvalidAccount as exc:
        raise ToolError("invalid_account", str(exc)) from None
    if name != account:
        raise ToolError("invalid_account", f"account {account!r} must be spelled {name!r} (lower-case, no @)")
    return name


def account_dir(data_dir: Path, platform: Platform) -> Path:
    """Where the accounts of a platform keep their files."""
    return data_dir / "accounts" / platform


class AccountBackends:
    """One backend per account, opened on first use and kept for the server's life (thread-safe: the server
    runs its blocking backends in worker threads)."""

    def __init__(
        self, platform: Platform, open_backend: Callable[[str], SocialBackend], *, default_account: str, kind: str
    ) -> None:
        self.platform: Platform = platform
        self.default_account = default_account
        self.kind = kind  # "sandbox" or "live", for the server's instructions
        self._open = open_backend
        self._open_lock = threading.Lock()
        self._backends: dict[str, SocialBackend] = {}

    @classmethod
    def single(cls, backend: SocialBackend, account: str, kind: str = "sandbox") -> AccountBackends:
        """A server of one backend, for one account only (tests that wrap a platform)."""

        def only(name: str) -> SocialBackend:
            if name != account:
                raise ToolError("unknown_account", f"this server serves only the account {account!r}")
            return backend

        return cls(backend.platform, only, default_account=account, kind=kind)

    def get(self, account: str | None) -> SocialBackend:
        """The backend of `account`, or of the default account when None."""
        name = self.default_account if account is None else check_account(account)
        backend = self._backends.get(name)
        if backend is not None:
            return backend
        with self._open_lock:
            backend = self._backends.get(name)
            if backend is None:
                backend = self._open(name)
                if backend.platform != self.platform:
                    raise ValueError(f"a {backend.platform} backend cannot serve {self.platform}")
                self._backends[name] = backend
            return backend
