"""`chimera dev`, `chimera worker`, `chimera ingress` and `chimera demo`: the commands that run Chimera's processes.

Only their options live here; the implementations (chimera/cli/runtime.py, chimera/cli/demo.py) import the
workers, the dev server and every adapter, so they load when one of these commands runs, not for every
`chimera` command (read commands start in well under a second).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

EXAMPLE = Path("examples/campaign.yaml")


def register(app: typer.Typer) -> None:
    @app.command("dev")
    def dev(
        headless: Annotated[bool, typer.Option("--headless", help="no Web UI")] = False,
    ) -> None:
        """Start the Temporal dev server (unless one answers) and workers of every role."""
        from chimera.cli.runtime import run_dev

        run_dev(ui=not headless)

    @app.command("worker")
    def worker(
        role: Annotated[
            Literal["planner", "worker", "judge", "all"], typer.Option("--role", help="which task queue(s) to poll")
        ] = "all",
    ) -> None:
        """Run workers of one role (or all) against the configured Temporal server."""
        from chimera.cli.runtime import run_worker

        run_worker(role)

    @app.command("ingress")
    def ingress(
        host: Annotated[str | None, typer.Option("--host", help="address to listen on (CHIMERA_INGRESS_HOST)")] = None,
        port: Annotated[
            int | None, typer.Option("--port", min=1, max=65535, help="port (CHIMERA_INGRESS_PORT, 8789)")
        ] = None,
    ) -> None:
        """Run the webhook ingress alone: X and Meta webhooks become mention signals (specs/ingress.md)."""
        from chimera.cli.ingress import run_ingress

        run_ingress(host, port)

    @app.command("demo")
    def demo(
        campaign: Annotated[Path, typer.Option(help="campaign file")] = EXAMPLE,
        cycles: Annotated[int, typer.Option(min=1, help="cycles to run")] = 3,
        cycle_seconds: Annotated[int, typer.Option(min=1, help="seconds between cycles")] = 5,
    ) -> None:
        """Run the example campaign on embedded defaults and show it live."""
        from chimera.cli.demo import run_demo

        run_demo(campaign, cycles, cycle_seconds)
