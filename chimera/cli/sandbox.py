"""`chimera sandbox mention`: rehearse a pushed mention end to end on the sandbox platforms (specs/cli.md).

The mention is added to the sandbox platform (so polling sees it as well), then the signed webhook the real
platform would send is delivered to the ingress. The sandbox and ingress modules load when the command runs.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from chimera.cli import render
from chimera.cli.ops import db_errors
from chimera.cli.render import JsonFlag
from chimera.settings import Settings

if TYPE_CHECKING:
    from chimera.ingress.sandbox import PushedReport

app = typer.Typer(help="The sandbox platforms: rehearse what real accounts would receive.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="sandbox")


@app.command("mention")
def mention(
    platform: Annotated[Literal["twitter", "instagram"], typer.Option("--platform", help="which sandbox account")],
    author: Annotated[str, typer.Option("--author", help="who mentions the account (a username)")],
    text: Annotated[str, typer.Option("--text", help="what they write")],
    to: Annotated[
        str | None,
        typer.Option("--to", help="the handle mentioned; default: the one handle campaigns have on the platform"),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a mention to the sandbox and deliver its signed webhook to the ingress, as the platform would."""
    if not author.strip() or not text.strip():
        render.fail("--author and --text must not be blank", render.EXIT_USAGE)
    settings = Settings()
    settings.ensure_dirs()
    account = to.strip() if to and to.strip() else _only_handle(settings, platform)
    report = asyncio.run(_push(settings, platform, account, author.strip(), text))
    _show(report, platform, as_json)


def _only_handle(settings: Settings, platform: str) -> str:
    from chimera.db import StateStore

    with db_errors():
        store = StateStore.from_settings(settings)
        try:
            handles = store.routed_handles(platform)
        finally:
            store.close()
    if len(handles) == 1:
        return handles[0]
    if not handles:
        render.fail(f"no campaign has a {platform} handle yet: say which with --to HANDLE", render.EXIT_USAGE)
    render.fail(
        f"campaigns have several {platform} handles ({', '.join(handles)}): choose one with --to", render.EXIT_USAGE
    )


async def _push(
    settings: Settings, platform: Literal["twitter", "instagram"], account: str, author: str, text: str
) -> PushedReport:
    import httpx2 as httpx

    from chimera.ingress.credentials import load_secrets
    from chimera.ingress.sandbox import ingress_url, push_mention, sandbox_platform

    async with httpx.AsyncClient() as http:
        return await push_mention(
            sandbox_platform(settings, platform),
            account,
            author,
            text,
            http=http,
            base_url=ingress_url(settings),
            secrets=load_secrets(settings),
        )


def _show(report: PushedReport, platform: str, as_json: bool) -> None:
    delivery = report.delivery
    if as_json:
        data = {"mention": report.mention, "account": report.account, "delivery": delivery.__dict__}
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        m = report.mention
        lines = [f"mention {m['id']} from {m['author']} to {report.account} added to the sandbox {platform}"]
        if delivery.status is not None:
            lines.append(f"webhook POST {delivery.url} -> {delivery.status}")
        for event in delivery.events:
            campaign = f" campaign {event['campaign']}" if event.get("campaign") else ""
            detail = f" ({event['detail']})" if event.get("detail") else ""
            lines.append(f"  event {event.get('event_id')}: {event.get('outcome')}{campaign}{detail}")
        for line in lines:
            render.say(escape(line))  # authors and texts are anyone's: never rich markup
    if delivery.status is None:
        render.fail(
            f"the ingress is not reachable at {delivery.url} ({delivery.error}): is `chimera dev` or "
            "`chimera ingress` running? The mention stays in the sandbox: the campaign's next cycle answers it "
            "(polling).",
            render.EXIT_UNREACHABLE,
        )
    if delivery.status != 200:
        render.fail(f"the ingress refused the webhook ({delivery.status}): {delivery.error}")
