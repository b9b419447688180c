"""How a persona's handle becomes a platform account name, and where that account's credentials are kept.

One spelling everywhere (claims, MCP arguments and resource URIs, sandbox files, secret names): the handle
lower-cased without its leading @, so `@Mira_Threads`, `mira_threads` and ` mira_threads ` are one account
(the same rule as chimera.db.routes.handle_key). Names are also file and URI segments, so only letters, digits,
`_` and `.` pass (X allows `_`, Instagram `.` and `_`), never `..`.
"""

from __future__ import annotations

import re

ACCOUNT_PATTERN = re.compile(r"^[a-z0-9_](?:[a-z0-9_.]{0,62}[a-z0-9_])?$")
PLATFORM_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
SECRET_PREFIX = "platform"


class InvalidAccount(ValueError):
    """A handle or platform that cannot name a platform account."""


def account_name(handle: str) -> str:
    """The account a handle names: lower-case, no leading @. Raises InvalidAccount for anything else."""
    name = handle.strip().lstrip("@").strip().lower()
    if not ACCOUNT_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidAccount(
            f"{handle!r} is not a platform account handle: use letters, digits, '_' and '.' "
            "(at most 64, not starting or ending with '.', no '..'), with or without a leading @"
        )
    return name


def platform_name(platform: str) -> str:
    if not PLATFORM_PATTERN.fullmatch(platform):
        raise InvalidAccount(f"{platform!r} is not a platform name (lower-case letters, digits, '_' or '-')")
    return platform


def secret_name(platform: str, account: str) -> str:
    """The secret holding an account's credentials: `platform/<platform>/<account>`, e.g. platform/twitter/mira."""
    return f"{SECRET_PREFIX}/{platform_name(platform)}/{account_name(account)}"
