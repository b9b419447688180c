"""Which image generator the images server runs, from the environment (the API key only ever comes from there).

CHIMERA_IMAGES_BACKEND: "sandbox" (the default) or "live" (Ideogram 3.0).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mcp_servers.common import DEFAULT_SANDBOX_DIR, SANDBOX_DIR_ENV
from mcp_servers.images.ideogram import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, IdeogramGenerator
from mcp_servers.images.ledger import Ledger
from mcp_servers.images.sandbox import SandboxGenerator
from mcp_servers.images.service import RENDERING_SPEED_ENV, ImageGenerator, ImagesService
from mcp_servers.media import MediaStore

BACKEND_ENV = "CHIMERA_IMAGES_BACKEND"
ACCOUNT_ENV = "CHIMERA_IMAGES_ACCOUNT"
RATE_LIMIT_ENV = "CHIMERA_IMAGES_RATE_LIMIT"
RATE_WINDOW_ENV = "CHIMERA_IMAGES_RATE_WINDOW_SECONDS"

DEFAULT_ACCOUNT = "mira"  # the demo persona, as on the social sandboxes
DEFAULT_RATE_LIMIT = 20
DEFAULT_RATE_WINDOW_SECONDS = 60.0


def backend_from_env(environ: Mapping[str, str] | None = None) -> ImagesService:
    env: Mapping[str, str] = os.environ if environ is None else environ
    sandbox_dir = Path(env.get(SANDBOX_DIR_ENV) or DEFAULT_SANDBOX_DIR)
    account = env.get(ACCOUNT_ENV) or DEFAULT_ACCOUNT
    speed = env.get(RENDERING_SPEED_ENV) or "DEFAULT"
    kind = (env.get(BACKEND_ENV) or "sandbox").strip().lower()
    generator: ImageGenerator
    if kind == "sandbox":
        generator = SandboxGenerator(speed)
        rate_limit: int | None = int(env.get(RATE_LIMIT_ENV) or DEFAULT_RATE_LIMIT)
    elif kind == "live":
        generator = IdeogramGenerator(
            env.get(BASE_URL_ENV) or DEFAULT_BASE_URL, env.get(API_KEY_ENV) or "", rendering_speed=speed
        )
        rate_limit = None  # Ideogram enforces its own and answers 429
    else:
        raise ValueError(f"{BACKEND_ENV} must be 'sandbox' or 'live'; got {kind!r}")
    ledger = Ledger(
        sandbox_dir,
        account=account,
        rate_limit=rate_limit,
        rate_window_seconds=float(env.get(RATE_WINDOW_ENV) or DEFAULT_RATE_WINDOW_SECONDS),
    )
    return ImagesService(MediaStore(sandbox_dir), ledger, generator)
