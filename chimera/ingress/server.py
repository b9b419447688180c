"""Serving the ingress with uvicorn: beside the workers (`chimera dev`) or alone (`chimera ingress`).

uvicorn's access log is off: it would print query strings, and Meta's subscription check carries the verify
token in one. The ingress logs its own lines (chimera.ingress), without queries, secrets or bodies. The host
process keeps Ctrl-C and SIGTERM to itself (uvicorn would otherwise take them over) and stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator

from temporalio.client import Client

from chimera import http_serving
from chimera.db import StateStore
from chimera.ingress.app import build_app
from chimera.ingress.credentials import load_secrets, secrets_path
from chimera.ingress.intake import Ingress
from chimera.ingress.signalling import SignalWithStart
from chimera.settings import Settings
from chimera.temporal_config import TemporalConfig

PRUNE_EVERY_SECONDS = 3600.0
logger = logging.getLogger("chimera.ingress")


class IngressError(Exception):
    pass


def log_to_stderr() -> None:
    """Show the ingress's info lines (what each delivery became) on stderr, once per process."""
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s ingress %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@contextlib.asynccontextmanager
async def serving(
    settings: Settings,
    config: TemporalConfig,
    client: Client,
    store: StateStore,
    *,
    host: str | None = None,
    port: int | None = None,
) -> AsyncIterator[str]:
    """Serve the ingress until the block ends; yields its base URL. IngressError if it cannot listen."""
    secrets = await asyncio.to_thread(load_secrets, settings)
    if secrets.from_file:
        logger.info("webhook secrets %s come from %s", ", ".join(secrets.from_file), secrets_path(settings))
    ingress = Ingress(store, SignalWithStart(client, config), settings.ingress_accounts)
    host, port = host or settings.ingress_host, settings.ingress_port if port is None else port
    async with http_serving.serving(
        build_app(ingress, secrets), host=host, port=port, what="the ingress", error=IngressError
    ) as url:
        prune = asyncio.create_task(_prune(ingress))
        try:
            yield url
        finally:
            prune.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await prune


async def _prune(ingress: Ingress) -> None:
    while True:
        try:
            dropped = await ingress.deliveries.forget_old()
            if dropped:
                logger.info("forgot %d delivery claims older than a week", dropped)
        except Exception as exc:  # the database may be down for a while; the next round tries again
            logger.warning("could not prune old delivery claims: %s", exc)
        await asyncio.sleep(PRUNE_EVERY_SECONDS)


async def run_alone(settings: Settings, config: TemporalConfig, client: Client, *, host: str, port: int) -> None:
    """`chimera ingress`: serve until Ctrl-C or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    store = StateStore.from_settings(settings)
    try:
        await asyncio.to_thread(store.ensure_schema)
        async with serving(settings, config, client, store, host=host, port=port) as url:
            print(f"Ingress listening on {url} (POST/GET /webhooks/x, /webhooks/meta); Ctrl-C stops it.", flush=True)
            await stop.wait()
    finally:
        store.close()
