"""Which backend a social server runs, from its environment, and each account's credentials.

CHIMERA_TWITTER_BACKEND / CHIMERA_INSTAGRAM_BACKEND: "sandbox" (the default) or "live".

Live, an account's credentials come from the secrets source (chimera.secrets.secret_source: CHIMERA_SECRET_*
variables, mounted files, AWS Secrets Manager), as the JSON secret `platform/<platform>/<account>`
(chimera.accounts.credentials), and are checked to belong to that account before first use. The older
single-account variables (CHIMERA_<PLATFORM>_ACCESS_TOKEN, ..._APP_BEARER_TOKEN, ..._USER_ID) remain a
fallback for one account: the one CHIMERA_<PLATFORM>_ACCOUNT names (checked the same way), or, when that is
unset, only calls that name no account (an operator's `chimera mcp call`), unchecked, as before accounts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from chimera.accounts.credentials import CredentialsInvalid, instagram_credentials, x_credentials
from chimera.accounts.names import secret_name
from chimera.secrets.base import SecretSource, StaticSecrets
from mcp_servers.common import DEFAULT_SANDBOX_DIR, SANDBOX_DIR_ENV, ToolError
from mcp_servers.social import live_instagram, live_twitter
from mcp_servers.social.accounts import DEFAULT_ACCOUNTS, AccountBackends, check_account
from mcp_servers.social.backend import Platform, SocialBackend
from mcp_servers.social.live_http import DEFAULT_TIMEOUT_SECONDS, env_float
from mcp_servers.social.sandbox import DEFAULT_RATE_LIMIT, DEFAULT_RATE_WINDOW_SECONDS, SandboxPlatform

RATE_LIMIT_ENV = "CHIMERA_SANDBOX_RATE_LIMIT"
RATE_WINDOW_ENV = "CHIMERA_SANDBOX_RATE_WINDOW_SECONDS"
# The live default when CHIMERA_<PLATFORM>_ACCOUNT names none; no call can name it (not an account name).
UNNAMED = "@environment"
ENV_CREDENTIALS: dict[Platform, str] = {
    "twitter": "CHIMERA_TWITTER_ACCESS_TOKEN",
    "instagram": "CHIMERA_INSTAGRAM_ACCESS_TOKEN and CHIMERA_INSTAGRAM_USER_ID",
}


def backend_env(platform: Platform) -> str:
    return f"CHIMERA_{platform.upper()}_BACKEND"


def account_env(platform: Platform) -> str:
    return f"CHIMERA_{platform.upper()}_ACCOUNT"


def backends_from_env(
    platform: Platform, environ: Mapping[str, str] | None = None, secrets: SecretSource | None = None
) -> AccountBackends:
    """The server's accounts. Live, `secrets` defaults to chimera.secrets.secret_source over the process's
    settings, made when the first account is opened (a sandbox server never needs one)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    # Sandbox files, the media store and the live ledgers all live in the one state dir the host hands over.
    data_dir = Path(env.get(SANDBOX_DIR_ENV) or DEFAULT_SANDBOX_DIR)
    kind = (env.get(backend_env(platform)) or "sandbox").strip().lower()
    if kind == "sandbox":
        rate_limit = int(env.get(RATE_LIMIT_ENV) or DEFAULT_RATE_LIMIT)
        window = env_float(env.get(RATE_WINDOW_ENV), DEFAULT_RATE_WINDOW_SECONDS)

        def sandbox(account: str) -> SocialBackend:
            return SandboxPlatform(
                data_dir, platform, account=account, rate_limit=rate_limit, rate_window_seconds=window
            )

        return AccountBackends(platform, sandbox, default_account=DEFAULT_ACCOUNTS[platform], kind="sandbox")
    if kind != "live":
        raise ValueError(f"{backend_env(platform)} must be 'sandbox' or 'live'; got {kind!r}")
    named = (env.get(account_env(platform)) or "").strip()
    env_account = check_account(named) if named else None
    found: list[SecretSource] = [] if secrets is None else [secrets]

    def live(account: str) -> SocialBackend:
        if not found:
            found.append(default_secrets())
        return _live(platform, env, data_dir, account, env_account, found[0])

    return AccountBackends(platform, live, default_account=env_account or UNNAMED, kind="live")


def backend_from_env(platform: Platform, environ: Mapping[str, str] | None = None) -> SocialBackend:
    """The default account's backend (as before accounts: one backend per server)."""
    return backends_from_env(platform, environ).get(None)


def default_secrets() -> SecretSource:
    """chimera.secrets.secret_source over this process's settings (its CHIMERA_* environment)."""
    try:
        from chimera.secrets import secret_source
        from chimera.settings import Settings

        return secret_source(Settings())
    except Exception as exc:  # a broken secrets setup must not take the server down; each call says why
        print(f"social server: no secrets source: {type(exc).__name__}: {exc}", file=sys.stderr)
        return StaticSecrets({})


def _live(
    platform: Platform,
    env: Mapping[str, str],
    data_dir: Path,
    account: str,
    env_account: str | None,
    source: SecretSource,
) -> SocialBackend:
    prefix = f"CHIMERA_{platform.upper()}_"
    unnamed = account == UNNAMED
    # The single-account variables serve the account CHIMERA_<PLATFORM>_ACCOUNT names, or the unnamed default.
    env_token = (env.get(prefix + "ACCESS_TOKEN") or "") if unnamed or account == env_account else ""
    named = None if unnamed else account
    timeout = env_float(env.get(prefix + "TIMEOUT_SECONDS"), DEFAULT_TIMEOUT_SECONDS)
    try:
        if platform == "twitter":
            x = None if unnamed else x_credentials(source, account)
            token = x.access_token if x else env_token
            if token:
                return live_twitter.LiveTwitterBackend(
                    env.get(prefix + "BASE_URL") or live_twitter.DEFAULT_BASE_URL,
                    token,
                    data_dir,
                    account=named,
                    # App-only (trends): the app's, shared by its accounts, unless the account's secret has one.
                    app_bearer_token=(x.app_bearer_token if x else None) or env.get(prefix + "APP_BEARER_TOKEN"),
                    woeid=int(env.get(prefix + "TRENDS_WOEID") or live_twitter.WORLDWIDE_WOEID),
                    timeout_seconds=timeout,
                )
        else:
            ig = None if unnamed else instagram_credentials(source, account)
            token = ig.access_token if ig else env_token
            user_id = ig.ig_user_id if ig else (env.get(prefix + "USER_ID") or "")
            if token and user_id:
                return live_instagram.LiveInstagramBackend(
                    env.get(prefix + "BASE_URL") or live_instagram.DEFAULT_BASE_URL,
                    token,
                    user_id,
                    data_dir,
                    account=named,
                    api_version=env.get(prefix + "API_VERSION") or live_instagram.DEFAULT_API_VERSION,
                    timeout_seconds=timeout,
                )
    except CredentialsInvalid as exc:
        raise ToolError("credentials_invalid", str(exc)) from None
    variables = ENV_CREDENTIALS[platform]
    if unnamed:
        raise ToolError(
            "no_credentials",
            f"this {platform} server has no default account: name the account, or set {variables} "
            f"(and {account_env(platform)} to name the account they belong to)",
        )
    raise ToolError(
        "no_credentials",
        f"no credentials for {platform} account @{account}: set the secret '{secret_name(platform, account)}' "
        f"(JSON, specs/accounts.md) in a secrets source, or {account_env(platform)}={account} with {variables}",
    )
