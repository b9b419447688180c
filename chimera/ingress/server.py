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
import socket
import sys
from collections.abc import AsyncIterator, Iterator

import uvicorn
from temporalio.client import Client

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


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the host process owns the signals and sets should_exit


def log_to_stderr() -> None:
    """Show the ingress's info lines (what each delivery became) on stderr, once per process."""
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s ingress %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise IngressError(f"the ingress cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


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
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    server = _Server(
        uvicorn.Config(
            build_app(ingress, secrets), lifespan="off", access_log=False, log_config=None, log_level="warning"
        )
    )
    serve = asyncio.create_task(server.serve(sockets=[sock]))
    prune = asyncio.create_task(_prune(ingress))
    try:
        while not server.started:  # listening before the caller announces the URL
            if serve.done():
                serve.result()
                raise IngressError("the ingress stopped while starting")
            await asyncio.sleep(0.02)
        yield f"http://{host}:{bound_port}"
    finally:
        prune.cancel()
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(serve, prune, return_exceptions=True)
        sock.close()


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
