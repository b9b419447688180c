"""The demo's scripted world: a follower who comes back, and a headline that breaks mid-cycle.

It acts only through the sandbox, as the outside world would: a mention on the persona's account (and pushed to
the campaign, as the platform's webhook would), and an article in the sandbox newsroom. So the demo shows
memory (her follow-up's reply refers back to the first exchange) and breaking news (the next task changes
before the cycle ends) on every run, also when an earlier run already answered the seed mentions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from mcp_servers.news.newsroom import publish_headline
from mcp_servers.social.sandbox import SandboxPlatform
from schemas.events import CampaignStatus, MentionDelivery
from schemas.plan import Mention
from workflows.campaign import CampaignWorkflow

AUTHOR = "thriftqueen_leeds"  # a seed follower of the demo persona
FIRST_QUESTION = "@mira where do you get sashiko thread that isn't shipped halfway round the world?"
FOLLOW_UP = "@mira update: found a tiny shop in Leeds that sells sashiko thread! Which stitch should I start with?"
HEADLINE = "Leeds turns a closed department store into the UK's biggest secondhand clothing hub"
HEADLINE_SUMMARY = "Forty resellers, a repair bar and a swap rail open on Saturday in the former Lewis's building."


class Audience:
    def __init__(self, sandbox_dir: Path, stamp: str, console: Console) -> None:
        self._twitter = SandboxPlatform(sandbox_dir, "twitter")  # the demo persona's own (default) account
        self._sandbox_dir = sandbox_dir
        self._stamp = stamp
        self._console = console
        self._first: str | None = None
        self._followed_up = False
        self._news_sent = False

    def ask_first(self) -> None:
        """Her question: the seed mention if it is still unanswered, else a new one like it."""
        waiting = [m for m in self._twitter.recent_mentions(limit=50, unreplied_only=True) if m["author"] == AUTHOR]
        if waiting:
            self._first = str(waiting[-1]["id"])  # the oldest of hers
            return
        mention = self._twitter.add_mention(AUTHOR, FIRST_QUESTION, mention_id=f"tw-m-demo-{self._stamp}-1")
        self._first = str(mention["id"])
        self._say(f"@{AUTHOR} asks: {FIRST_QUESTION}")

    async def react(self, status: CampaignStatus, handle: WorkflowHandle[CampaignWorkflow, CampaignStatus]) -> None:
        if not self._news_sent and status.cycle >= 1 and status.tasks:
            self._break_news()
        if not self._followed_up and self._first is not None and self._answered(self._first):
            await self._follow_up(handle)

    def _break_news(self) -> None:
        self._news_sent = True
        article = publish_headline(
            self._sandbox_dir, id=f"nw-demo-{self._stamp}", title=HEADLINE, summary=HEADLINE_SUMMARY, topic="retail"
        )
        self._say(f"breaking news: {article['title']}")

    def _answered(self, mention_id: str) -> bool:
        return any(p["reply_to"] == mention_id for p in self._twitter.posts())

    async def _follow_up(self, handle: WorkflowHandle[CampaignWorkflow, CampaignStatus]) -> None:
        """She writes again once answered: on the platform, and pushed to the campaign as a webhook would."""
        self._followed_up = True
        raw = self._twitter.add_mention(AUTHOR, FOLLOW_UP, mention_id=f"tw-m-demo-{self._stamp}-2")
        mention = Mention(
            id=str(raw["id"]), platform="twitter", author=AUTHOR, text=FOLLOW_UP, created_at=str(raw["created_at"])
        )
        self._say(f"@{AUTHOR} follows up: {FOLLOW_UP}")
        delivery = MentionDelivery(
            event_id=f"demo-{mention.id}", mention=mention, received_at=datetime.now(UTC).isoformat()
        )
        try:
            await handle.signal(CampaignWorkflow.mention, delivery)
        except RPCError:
            self._say("(the campaign had ended: her follow-up waits for the next campaign)")

    def _say(self, text: str) -> None:
        self._console.print(f"  [bold blue]{'audience':<24}[/] {escape(text)}")
