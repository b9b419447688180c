"""`chimera persona check FILE`: every problem in a SOUL.md, with its line, before a campaign uses it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from chimera.cli import render
from chimera.cli.render import JsonFlag
from chimera.file_issues import FileIssue

app = typer.Typer(help="Check persona files (SOUL.md).", no_args_is_help=True)


class IssueOut(BaseModel):
    file: str
    line: int | None
    field: str | None
    message: str


class PersonaCheck(BaseModel):
    """`persona check --json`: ok, the persona's id and name when it loads, else every issue."""

    file: str
    ok: bool
    persona_id: str | None = None
    name: str | None = None
    issues: list[IssueOut] = []


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="The SOUL.md file (see specs/soul-md.md).")],
    json_: JsonFlag = False,
) -> None:
    """Print `FILE:LINE: message` for every problem and exit 1, or a one-line summary."""
    from chimera.persona_file import PersonaFileError, load_persona  # only this command needs the loader

    source = str(file)
    issues: list[FileIssue] = []
    try:
        persona = load_persona(file)
    except PersonaFileError as exc:
        persona, issues = None, exc.errors
    if json_:
        render.emit_json(
            PersonaCheck(
                file=source,
                ok=persona is not None,
                persona_id=persona.id if persona else None,
                name=persona.name if persona else None,
                issues=[IssueOut(file=i.file or source, line=i.line, field=i.field, message=i.message) for i in issues],
            )
        )
    elif persona is None:
        render.print_issues(source, issues)
    else:
        typer.echo(
            f"{source}: OK: persona {persona.id} ({persona.name}), {len(persona.handles)} handle(s), "
            f"{len(persona.boundaries)} boundaries, {len(persona.examples)} examples"
        )
    if persona is None:
        raise typer.Exit(render.EXIT_FAILED)
