"""Benchmark: does the agent remember? Scripted conversations replayed over cycles, and a run of posts.

Replies. Each conversation of benchmarks/data/memory_conversations.json is one author writing once a cycle,
interleaved with the other authors. Every message goes through the real memory flows (chimera/memory/context.py:
the state store's conversation log on SQLite, the embedded LanceDB memory, the E5 embedder) and the offline
writer; the reply is then remembered as a published reply would be. Cycles are `--days-per-cycle` apart and the
short-term window is `--window-days`, so early exchanges are archived to semantic memory before their follow-ups
arrive: both tiers are measured. Printed per split (`tuning` chose RELATED_MIN_SIMILARITY, `held_out` never
chose anything):
- recall: follow-ups whose reply refers back to the right earlier message (it cites it, and names words of it),
  by tier (short-term, archived);
- precision: citations that name the right message; false callbacks: messages that follow nothing up, yet cite.

Posts. `--posts` cycles of the example persona posting on rotating trends, one a day, with memory (the writer is
shown its posts within the repeat window and the Judge's check turns a repeat down) and without (no memory):
prints how many posts repeat an earlier one within the window (chimera/memory/repeats.py).

    .venv/bin/python benchmarks/memory_recall.py [--window-days 7] [--days-per-cycle 4] [--posts 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chimera.campaign_file import load_campaign  # noqa: E402
from chimera.db import StateStore  # noqa: E402
from chimera.memory import default_embedder  # noqa: E402
from chimera.memory.context import AgentMemory  # noqa: E402
from chimera.memory.lance import LanceMemoryStore  # noqa: E402
from chimera.memory.repeats import Earlier, repeated  # noqa: E402
from chimera.models.offline_writer import OfflineWriter  # noqa: E402
from chimera.safety.rules import SafetyRules  # noqa: E402
from chimera.temporal_config import TemporalConfig  # noqa: E402
from schemas.campaign import CampaignSpec  # noqa: E402
from schemas.memory import ConversationTurn, MemoryPolicy, said_of  # noqa: E402
from schemas.plan import Mention, PlannedTask  # noqa: E402
from schemas.task import WriteRequest  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "memory_conversations.json"
START = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
TRENDS = ["#ThriftFlip", "#RepairCafe", "#SlowFashion", "#Sashiko", "#ClothesSwap", "#VisibleMending"]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Tally:
    follow_ups: dict[str, int] = field(default_factory=lambda: {"short-term": 0, "archived": 0})
    recalled: dict[str, int] = field(default_factory=lambda: {"short-term": 0, "archived": 0})
    citations: int = 0
    right_citations: int = 0
    plain: int = 0  # messages that follow nothing up
    false_callbacks: int = 0
    misses: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def _memory(tmp: Path, spec: CampaignSpec, clock: Clock) -> tuple[AgentMemory, StateStore]:
    state = StateStore(f"sqlite:///{tmp / 'state.db'}", clock=clock)
    state.ensure_schema()
    state.ensure_campaign(spec)
    embedder = default_embedder()
    return AgentMemory(LanceMemoryStore(tmp / "memory", embedder), state, embedder, clock=clock), state


async def replies(split: list[dict[str, Any]], spec: CampaignSpec, args: argparse.Namespace) -> Tally:
    tally = Tally()
    clock = Clock(START)
    policy = MemoryPolicy(short_term_window_seconds=int(args.window_days * 86_400))
    writer = OfflineWriter(SafetyRules.default())
    with tempfile.TemporaryDirectory() as tmp:
        memory, _ = _memory(Path(tmp), spec, clock)
        tenant, agent = spec.tenant_id, spec.agent_id
        rounds = max(len(c["turns"]) for c in split)
        sent: dict[tuple[str, int], datetime] = {}
        for cycle in range(rounds):
            memory.archive(tenant, agent, policy)  # the Judge's reflection at the start of a cycle
            for conv in split:
                if cycle >= len(conv["turns"]):
                    continue
                author, message = conv["author"], conv["turns"][cycle]
                mention = Mention(
                    id=f"{author}-{cycle}", platform="twitter", author=author, text=message["said"],
                    created_at=clock.now.isoformat(),
                )  # fmt: skip
                slug = author.replace("_", "-")
                task = PlannedTask(
                    key=f"re-{slug}-{cycle}", task_type="reply", platform="twitter", brief="answer", mention=mention
                )
                started = time.perf_counter()
                given = memory.for_writing(tenant, agent, task, policy)
                draft = await writer.write(
                    WriteRequest(persona=spec.persona, task=task, goals=spec.goals, memory=given)
                )
                tally.seconds.append(time.perf_counter() - started)
                _score(tally, conv, cycle, given.recalled(), draft.memory_ids, draft.text, sent, clock.now, policy)
                memory.remember_exchange(
                    tenant,
                    agent,
                    ConversationTurn(
                        platform="twitter",
                        author=author,
                        mention_id=mention.id,
                        said=message["said"],
                        replied=draft.text,
                        at=clock.now.isoformat(),
                    ),
                )
                sent[(author, cycle)] = clock.now
            clock.now += timedelta(days=args.days_per_cycle)
    return tally


def _score(
    tally: Tally,
    conv: dict[str, Any],
    cycle: int,
    recalled: list[Any],
    cited: list[str],
    text: str,
    sent: dict[tuple[str, int], datetime],
    now: datetime,
    policy: MemoryPolicy,
) -> None:
    follows = conv["turns"][cycle]["follows"]
    by_id = {m.id: m for m in recalled}
    cited_said = [said_of(by_id[i].text) for i in cited if i in by_id]
    if follows is None:
        tally.plain += 1
        tally.false_callbacks += bool(cited)
        tally.citations += len(cited)
        return
    earlier = conv["turns"][follows]["said"]
    age = now - sent[(conv["author"], follows)]
    tier = "archived" if age > timedelta(seconds=policy.short_term_window_seconds) else "short-term"
    tally.follow_ups[tier] += 1
    tally.citations += len(cited)
    right = [s for s in cited_said if s == earlier]
    tally.right_citations += len(right)
    named = "Last time you" in text
    if right and named:
        tally.recalled[tier] += 1
    else:
        tally.misses.append(f"{conv['author']} #{cycle} ({tier}): cited {cited_said or 'nothing'}")


async def posts(spec: CampaignSpec, args: argparse.Namespace, with_memory: bool) -> tuple[int, int, int, int]:
    """(posts, repeats of an earlier post within the window, drafts the Judge's check turned down, days without a
    post because every draft repeated: the campaign gives a task up after its re-plans)."""
    clock = Clock(START)
    policy = MemoryPolicy()
    window = timedelta(seconds=policy.repeat_window_seconds)
    writer = OfflineWriter(SafetyRules.default())
    published: list[tuple[datetime, str]] = []
    turned_down = skipped = 0
    with tempfile.TemporaryDirectory() as tmp:
        memory, _ = _memory(Path(tmp), spec, clock)
        for day in range(args.posts):
            topic = TRENDS[day % len(TRENDS)]
            goal = spec.goals[day % len(spec.goals)]
            for attempt in range(1 + spec.max_replans):  # a turned-down draft is re-planned under a new key
                task = PlannedTask(
                    key=f"c{day}r{attempt}-post", task_type="post", platform="twitter", brief="a post", goal=goal,
                    topic=topic,
                )  # fmt: skip
                given = memory.for_writing(spec.tenant_id, spec.agent_id, task, policy) if with_memory else None
                request = WriteRequest(persona=spec.persona, task=task, goals=spec.goals)
                if given is not None:
                    request = request.model_copy(update={"memory": given})
                draft = await writer.write(request)
                own = memory.own_posts(spec.tenant_id, spec.agent_id, policy.repeat_window_seconds)
                if with_memory and repeated(draft.text, [Earlier(p.id, p.text, p.created_at) for p in own]):
                    turned_down += 1  # the Judge's repeat check
                    continue
                break
            else:
                skipped += 1  # every attempt repeated: the task is given up, nothing is posted today
                clock.now += timedelta(days=1)
                continue
            published.append((clock.now, draft.text))
            memory.remember_post(
                spec.tenant_id, spec.agent_id, text=draft.text, platform="twitter", post_id=f"p{day}",
                key=task.key, campaign_id=spec.campaign_id,
            )  # fmt: skip
            clock.now += timedelta(days=1)
    repeats = sum(
        1
        for i, (at, text) in enumerate(published)
        if repeated(text, [Earlier(str(j), t, "") for j, (when, t) in enumerate(published[:i]) if at - when <= window])
    )
    return len(published), repeats, turned_down, skipped


def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} = {100 * part / whole:.0f}%" if whole else "n/a"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window-days", type=float, default=7.0, help="short-term window")
    parser.add_argument("--days-per-cycle", type=float, default=4.0)
    parser.add_argument("--posts", type=int, default=20)
    args = parser.parse_args()
    spec = load_campaign(ROOT / "examples" / "campaign.yaml", TemporalConfig())
    data = json.loads(DATA.read_text(encoding="utf-8"))
    print(f"memory recall · short-term window {args.window_days:g} d · {args.days_per_cycle:g} d between cycles")
    for split in ("tuning", "held_out"):
        t = await replies(data[split], spec, args)
        follow_ups = sum(t.follow_ups.values())
        recalled = sum(t.recalled.values())
        print(f"\n[{split}] {len(data[split])} authors, {follow_ups + t.plain} messages, {follow_ups} follow-ups")
        print(f"  recall: {_pct(recalled, follow_ups)}", end="")
        print(" · " + ", ".join(f"{k} {_pct(t.recalled[k], v)}" for k, v in t.follow_ups.items()))
        print(f"  precision of citations: {_pct(t.right_citations, t.citations)}")
        print(f"  false callbacks (cited though it follows nothing up): {_pct(t.false_callbacks, t.plain)}")
        ms = sorted(s * 1000 for s in t.seconds)
        print(f"  recall + write per reply: p50 {ms[len(ms) // 2]:.0f} ms, p95 {ms[int(len(ms) * 0.95) - 1]:.0f} ms")
        for miss in t.misses:
            print(f"  missed: {miss}")
    print(
        f"\nposts · {args.posts} days, one post a day, repeat window {MemoryPolicy().repeat_window_seconds // 86_400} d"
    )
    for with_memory in (False, True):
        n, repeats, turned_down, skipped = await posts(spec, args, with_memory)
        label = "with memory" if with_memory else "no memory  "
        extra = f" · drafts turned down as repeats: {turned_down}, days given up: {skipped}" if with_memory else ""
        print(f"  {label}: posts repeating one within the window: {_pct(repeats, n)}{extra}")


if __name__ == "__main__":
    asyncio.run(main())
