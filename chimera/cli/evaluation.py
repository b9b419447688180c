"""`chimera eval judge`: a labelled corpus of mentions through Planner -> Worker -> Judge (specs/cli.md).

No Temporal and no platforms: the activities run in-process on a throw-away store (chimera/evaluation). The
evaluation modules load only when the command runs, so CLI start-up stays fast.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from chimera.cli import render
from chimera.cli.render import JsonFlag

app = typer.Typer(help="Measure Chimera on labelled data.", no_args_is_help=True)
DEFAULT_CAMPAIGN = Path("examples/campaign.yaml")


@app.command("judge")
def judge(
    corpus: Annotated[Path, typer.Option("--corpus", help="a JSONL corpus of mentions (benchmarks/data/judge/)")],
    campaign: Annotated[Path, typer.Option("--campaign", help="the persona and judge policy")] = DEFAULT_CAMPAIGN,
    split: Annotated[str | None, typer.Option("--split", help="only train, dev or heldout")] = None,
    json_: JsonFlag = False,
) -> None:
    """Print benign auto-approve, escalation, warm replies to hostile mentions and hijacked drafts published."""
    from chimera.campaign_file import CampaignFileError, load_campaign
    from chimera.evaluation.corpus import CorpusError, load_corpus, select
    from chimera.evaluation.report import as_json, evaluate, lines
    from chimera.temporal_config import load_temporal_config

    try:
        items = select(load_corpus(corpus), split)
        spec = load_campaign(campaign, load_temporal_config(Path("temporal.yaml")))
    except (CorpusError, CampaignFileError, ValueError) as exc:
        render.fail(str(exc), render.EXIT_USAGE)
    if not items:
        render.fail(f"{corpus}: no mentions{f' in split {split}' if split else ''}", render.EXIT_USAGE)
    results = asyncio.run(evaluate(items, spec))
    if json_:
        print(json.dumps(as_json(results), indent=2))
        return
    for line in lines(results, corpus):
        render.say(line)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="eval")
