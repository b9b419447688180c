"""`chimera ingress`: the webhook ingress as a process of its own (its options are in processes.py)."""

from __future__ import annotations

from temporalio.client import Client

from chimera.cli import render
from chimera.settings import Settings
from chimera.temporal_config import TemporalConfig


def run_ingress(host: str | None, port: int | None) -> None:
    from chimera.db import StoreError
    from chimera.ingress.server import IngressError, log_to_stderr, run_alone

    settings = Settings()
    settings.ensure_dirs()
    log_to_stderr()

    async def serve(client: Client, config: TemporalConfig) -> None:
        await run_alone(
            settings,
            config,
            client,
            host=host or settings.ingress_host,
            port=settings.ingress_port if port is None else port,
        )

    try:
        render.run(serve)
    except (IngressError, StoreError) as exc:
        render.fail(str(exc))
