"""The `chimera` command (see specs/cli.md). This module only assembles the app.

Command groups live beside it: campaign.py, review.py, persona.py; render.py holds what they share.

Top-level commands owned by other modules (`dev`, `worker`, `demo` in processes.py) register themselves: such a
module defines `def register(app: typer.Typer) -> None` (e.g. `app.command("dev")(dev)`) and is
wired in below with two lines: its import at the top, and a `register(app)` call in the marked block.
"""

from __future__ import annotations

import os
import sys

import typer

from chimera.cli import campaign, codec, mcp, memory, payments, persona, processes, review, sandbox, stops, users
from chimera.cli import evaluation as eval_commands
from chimera.cli import models as models_commands
from chimera.cli import ops as ops_commands

app = typer.Typer(
    name="chimera",
    help="Durable, human-supervised AI influencer campaigns on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(campaign.app, name="campaign")
app.add_typer(review.app, name="review")
app.add_typer(persona.app, name="persona")
app.add_typer(users.app, name="user")
app.add_typer(payments.app, name="payment")

# --- top-level commands from other modules: one `<module>.register(app)` line each -------------
processes.register(app)  # chimera dev | worker | ingress | demo (imported when they run)
ops_commands.register(app)  # chimera db | budget | audit (the state store)
mcp.register(app)  # chimera mcp list | approve | call
sandbox.register(app)  # chimera sandbox mention
models_commands.register(app)  # chimera models list | check
eval_commands.register(app)  # chimera eval judge
stops.register(app)  # chimera stop | resume agent|tenant|fleet
codec.register(app)  # chimera codec keygen | rotate | activate | retire | serve
memory.register(app)  # chimera memory tenants | offload | activate | deactivate


def main() -> None:
    """Run the CLI, then leave through os._exit: temporalio's runtime can abort the interpreter
    at exit (rc 134, sdk-python issue #300) after all work is done and printed."""
    code = 0
    try:
        app()
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is not None:
            print(exc.code, file=sys.stderr)
            code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
