"""Which backend a social server runs, from the environment (credentials only ever come from there).

CHIMERA_TWITTER_BACKEND / CHIMERA_INSTAGRAM_BACKEND: "sandbox" (the default) or "live".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mcp_servers.common import DEFAULT_SANDBOX_DIR, SANDBOX_DIR_ENV
from mcp_servers.social import live_instagram, live_twitter
from mcp_servers.social.backend import Platform, SocialBackend
from mcp_servers.social.live_http import DEFAULT_TIMEOUT_SECONDS, env_float
from mcp_servers.social.sandbox import DEFAULT_RATE_LIMIT, DEFAULT_RATE_WINDOW_SECONDS, SandboxPlatform

RATE_LIMIT_ENV = "CHIMERA_SANDBOX_RATE_LIMIT"
RATE_WINDOW_ENV = "CHIMERA_SANDBOX_RATE_WINDOW_SECONDS"


def backend_env(platform: Platform) -> str:
    return f"CHIMERA_{platform.upper()}_BACKEND"


def backend_from_env(platform: Platform, environ: Mapping[str, str] | None = None) -> SocialBackend:
    env: Mapping[str, str] = os.environ if environ is None else environ
    # Sandbox files, the media store and the live ledgers all live in the one state dir the host hands over.
    data_dir = Path(env.get(SANDBOX_DIR_ENV) or DEFAULT_SANDBOX_DIR)
    kind = (env.get(backend_env(platform)) or "sandbox").strip().lower()
    prefix = f"CHIMERA_{platform.upper()}_"
    timeout = env_float(env.get(prefix + "TIMEOUT_SECONDS"), DEFAULT_TIMEOUT_SECONDS)
    if kind == "sandbox":
        return SandboxPlatform(
            data_dir,
            platform,
            rate_limit=int(env.get(RATE_LIMIT_ENV) or DEFAULT_RATE_LIMIT),
            rate_window_seconds=env_float(env.get(RATE_WINDOW_ENV), DEFAULT_RATE_WINDOW_SECONDS),
        )
    if kind != "live":
        raise ValueError(f"{backend_env(platform)} must be 'sandbox' or 'live'; got {kind!r}")
    if platform == "twitter":
        return live_twitter.LiveTwitterBackend(
            env.get(prefix + "BASE_URL") or live_twitter.DEFAULT_BASE_URL,
            env.get(prefix + "ACCESS_TOKEN") or "",
            data_dir,
            app_bearer_token=env.get(prefix + "APP_BEARER_TOKEN") or None,
            woeid=int(env.get(prefix + "TRENDS_WOEID") or live_twitter.WORLDWIDE_WOEID),
            timeout_seconds=timeout,
        )
    return live_instagram.LiveInstagramBackend(
        env.get(prefix + "BASE_URL") or live_instagram.DEFAULT_BASE_URL,
        env.get(prefix + "ACCESS_TOKEN") or "",
        env.get(prefix + "USER_ID") or "",
        data_dir,
        api_version=env.get(prefix + "API_VERSION") or live_instagram.DEFAULT_API_VERSION,
        timeout_seconds=timeout,
    )
