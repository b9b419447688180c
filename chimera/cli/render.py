"""What the commands share: connecting, error -> exit code, `--json`, and rich formatting helpers.

Exit codes (specs/cli.md): 0 done; 1 refused, failed or an invalid file; 2 usage error (including a
request the workflow would reject as malformed, e.g. a rejection without a reason); 3 not found;
4 delivered but not confirmed (no worker answered); 5 Temporal unreachable.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from temporalio.client import Client
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError, RPCStatusCode

from chimera.codec.errors import CodecError
from chimera.control.connection import open_client
from chimera.control.errors import ControlError, InvalidRequest, NotConfirmed, NotFound, NotSignedIn, Unreachable
from chimera.control.listing import Page
from chimera.file_issues import FileIssue
from chimera.secrets.base import SecretsError
from chimera.settings import Settings
from chimera.temporal_config import ConfigError, TemporalConfig, load_temporal_config
from schemas.policy import Verdict
from schemas.review import Ack

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_NOT_CONFIRMED = 4
EXIT_UNREACHABLE = 5

# Shared option types, so every command spells them the same way.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


# Listings (campaign list, review list): pages, filters and `--check`.
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=1000, help="Rows a page shows (at most 1000).")]
PageOption = Annotated[
    str | None,
    typer.Option("--page", metavar="TOKEN", help="The page that the last line of the previous page names."),
]
AllFlag = Annotated[bool, typer.Option("--all", help="Every row at once (one visibility call per 1000 rows).")]


PIPED_WIDTH = 160  # output to a file or pipe has no terminal width; 80 columns would crush the tables


def out() -> Console:
    # Made per call: CliRunner and pytest swap sys.stdout, and COLUMNS may change between calls.
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(highlight=False, width=PIPED_WIDTH)
    return console


def err() -> Console:
    return Console(stderr=True, highlight=False)


def say(message: str) -> None:
    """One line for people; soft_wrap keeps rich from breaking long ids across lines."""
    out().print(message, soft_wrap=True)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    err().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def emit_json(value: BaseModel | Sequence[BaseModel]) -> None:
    """The one way commands print JSON: pydantic's JSON mode, indented, on stdout."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else [v.model_dump(mode="json") for v in value]
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def emit_data(data: Any) -> None:
    """JSON already in JSON mode (e.g. model_dump(mode="json") with fields added), formatted as emit_json does."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_issues(source: str, issues: Sequence[FileIssue]) -> None:
    """`FILE:LINE: message`, one a line, as compilers do (plain text: editors parse it)."""
    for issue in issues:
        typer.echo(issue.format(source))


# --- running an operation against Temporal ---------------------------------------------------


def load_config() -> TemporalConfig:
    path = Settings().temporal_config
    try:
        config = load_temporal_config(path)
        config.runtime_options()  # validates the activity names now, not at the first start
    except (ConfigError, ValueError) as exc:
        fail(f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
    return config


@contextmanager
def reported_errors(config: TemporalConfig | None = None) -> Iterator[None]:
    """Turn control errors (and an unreachable server) into a message and an exit code."""
    try:
        yield
    except Unreachable as exc:
        fail(str(exc), EXIT_UNREACHABLE)
    except InvalidRequest as exc:
        fail(str(exc), EXIT_USAGE)
    except NotFound as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except NotConfirmed as exc:
        fail(str(exc), EXIT_NOT_CONFIRMED)
    except NotSignedIn as exc:
        fail(str(exc), EXIT_USAGE)
    except ControlError as exc:  # Refused, CampaignExists and the rest
        fail(str(exc), EXIT_FAILED)
    except RPCError as exc:
        if exc.status == RPCStatusCode.UNAVAILABLE:
            address = config.connection()[0] if config else "the configured address"
            fail(f"cannot reach Temporal at {address}: is `chimera dev` running?", EXIT_UNREACHABLE)
        fail(f"Temporal refused the request: {exc.message}", EXIT_FAILED)
    except (CodecError, SecretsError) as exc:  # a key ring or a secret the client needs is missing or bad
        fail(str(exc), EXIT_FAILED)
    except TemporalError as exc:  # e.g. a query handler that failed: a message, not a traceback
        fail(f"Temporal: {exc}", EXIT_FAILED)


def run(operation: Callable[[Client, TemporalConfig], Awaitable[T]], loaded: TemporalConfig | None = None) -> T:
    """Connect with temporal.yaml (`loaded` if the command has read it already) and TEMPORAL_* env, run one
    operation, report its errors."""
    config = load_config() if loaded is None else loaded

    async def connected() -> T:
        client = await open_client(config)
        return await operation(client, config)

    with reported_errors(config):
        return asyncio.run(connected())
    raise AssertionError("unreachable")  # reported_errors either returns or exits; mypy cannot tell


def exclusive(page: str | None, all_: bool) -> None:
    if page and all_:
        fail("--page and --all exclude each other", EXIT_USAGE)


def page_footer(page: Page[Any], noun: str, order: str, command: str, options: dict[str, str | bool | None]) -> None:
    """Which rows these are of how many, in what order, and the command that prints the next page."""
    if not page.rows:
        return
    first, last = page.offset + 1, page.offset + len(page.rows)
    of = f" of {page.total:,}" if page.total is not None else ""
    say(f"[dim]{noun} {first:,}-{last:,}{of} · {escape(order)}[/]")
    if page.next_page:
        flags = "".join(f" {name}" if value is True else f" {name} {value}" for name, value in options.items() if value)
        say(f"next page: `chimera {command}{flags} --page {page.next_page}` (or `--all`)")


def row_notes(note: str | None, check_error: str | None) -> None:
    """What a listed row could not establish: said in the row, never left blank."""
    console = out()
    if note:
        console.print(f"   [dim]{escape(note)}[/]", soft_wrap=True)
    if check_error:
        console.print(f"   [yellow]not checked:[/] {escape(check_error)}", soft_wrap=True)


def exit_if_unchecked(check_errors: Iterable[str | None]) -> None:
    """After the rows are printed: exit 4 when `--check` could not ask some of them."""
    failed = sum(1 for e in check_errors if e)
    if failed:
        fail(f"{failed} row(s) could not be checked (said in each row)", EXIT_NOT_CONFIRMED)


def report_ack(ack: Ack) -> None:
    """Print what the workflow accepted; a refusal exits 1 with the workflow's reason."""
    if not ack.accepted:
        fail(f"refused: {ack.message}", EXIT_FAILED)
    say(f"[green]accepted:[/] {escape(ack.message)}")


# --- formatting --------------------------------------------------------------------------------

STATE_STYLE = {
    "running": "green",
    "paused": "yellow",
    "stopped": "red",
    "completed": "blue",
    "pending": "yellow",
    "pending_review": "yellow",
    "published": "green",
    "approved": "green",
    "edited": "green",
    "rejected": "red",
    "failed": "red",
    "expired": "red",
    "cancelled": "dim",
    "budget_exhausted": "magenta",
    "terminated": "red",
    "timed_out": "red",
    "canceled": "dim",
}


def styled(state: str | None) -> str:
    if state is None:
        return "[dim]-[/]"
    style = STATE_STYLE.get(state)
    return f"[{style}]{escape(state)}[/]" if style else escape(state)


def id_column(table: Table, header: str) -> None:
    """Ids are copied into the next command: keep each whole on one line; the other columns give way."""
    table.add_column(header, no_wrap=True, overflow="fold")


def confidence(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def flags(verdict: Verdict | None) -> str:
    if verdict is None or not verdict.flags:
        return "none"
    return ", ".join(f"{f.rule} ({f.severity})" for f in verdict.flags)


def first_line(text: str, width: int = 60) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _moment(iso: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def until(iso: str | None, now: datetime | None = None) -> str:
    """'in 71h', 'in 12m' or 'overdue': how long a review can still wait."""
    moment = _moment(iso) if iso else None
    if moment is None:
        return iso or "-"
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    if seconds <= 0:
        return "overdue"
    return f"in {seconds / 3600:.0f}h" if seconds >= 3600 else f"in {max(1, round(seconds / 60))}m"


def when(iso: str | None, now: datetime | None = None) -> str:
    """'2026-03-04 10:00 UTC (in 71h)' from a workflow's ISO timestamp."""
    moment = _moment(iso) if iso else None
    if moment is None:
        return iso or "-"
    return f"{moment:%Y-%m-%d %H:%M} UTC ({until(iso, now)})"


def started(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "-"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """'3h ago', '12m ago', '2d ago': how long something has waited."""
    if moment is None:
        return "-"
    seconds = max(0.0, ((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f}d ago"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f}h ago"
    return f"{max(1, round(seconds / 60))}m ago"
