"""The agent-facing memory flows (chimera/memory/context.py) on real parts: the state store's conversation log
(SQLite), the embedded LanceDB memory and the real E5 embedder."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chimera.db import StateStore
from chimera.memory import E5Embedder
from chimera.memory.context import AgentMemory
from chimera.memory.lance import LanceMemoryStore
from schemas.memory import ConversationTurn, MemoryPolicy, author_subject, turn_id
from schemas.plan import Mention, PlannedTask
from tests.helpers import scripted
from tests.unit.test_store import AGENT, TENANT, FakeClock, make_spec, make_store, store_url  # noqa: F401

NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
SASHIKO = "@mira where do you get sashiko thread that isn't shipped halfway round the world?"
FOLLOW_UP = "@mira found a shop in Leeds that sells sashiko thread! Which stitch should I start with?"
SMALL_TALK = "@mira happy friday, hope the weekend is sunny where you are"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def state(make_store: Callable[..., StateStore]) -> StateStore:  # noqa: F811
    s = make_store(FakeClock(NOW))
    s.ensure_campaign(make_spec())
    s.ensure_campaign(make_spec(campaign="second", agent="bo"))
    return s


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def memory(tmp_path: Path, state: StateStore, embedder: E5Embedder, clock: Clock) -> AgentMemory:
    return AgentMemory(LanceMemoryStore(tmp_path / "memory", embedder), state, embedder, clock=clock)


def exchange(
    mention_id: str, said: str, at: datetime, author: str = "thriftqueen", reply: str = ""
) -> ConversationTurn:
    return ConversationTurn(
        platform="twitter", author=author, mention_id=mention_id, said=said, replied=reply, at=at.isoformat()
    )


def reply_to(mention_id: str, text: str, author: str = "thriftqueen") -> PlannedTask:
    mention = Mention(id=mention_id, platform="twitter", author=author, text=text, created_at=NOW.isoformat())
    return PlannedTask(key=f"re-{mention_id}", task_type="reply", platform="twitter", brief="answer", mention=mention)


def test_a_reply_is_given_the_conversation_with_that_author_and_the_exchange_it_follows_up(
    memory: AgentMemory,
) -> None:
    memory.remember_exchange(TENANT, AGENT, exchange("m1", SASHIKO, NOW - timedelta(days=2), reply="Try Leeds Market!"))
    memory.remember_exchange(TENANT, AGENT, exchange("m2", SMALL_TALK, NOW - timedelta(days=1)))
    memory.remember_exchange(TENANT, AGENT, exchange("m3", "@mira your denim post was great", NOW, author="someone"))
    given = memory.for_writing(TENANT, AGENT, reply_to("m9", FOLLOW_UP), MemoryPolicy())
    assert [t.mention_id for t in given.conversation] == ["m1", "m2"]  # hers only, oldest first
    assert given.conversation[0].replied == "Try Leeds Market!"
    assert given.related_id == turn_id("twitter", "m1")  # the sashiko question, not the small talk
    assert given.related_similarity is not None and given.related_similarity >= 0.82
    related = given.related()
    assert related is not None and "sashiko" in related.text and related.source == "conversation"


def test_small_talk_is_not_taken_for_a_follow_up(memory: AgentMemory) -> None:
    memory.remember_exchange(TENANT, AGENT, exchange("m1", SASHIKO, NOW - timedelta(days=2)))
    given = memory.for_writing(TENANT, AGENT, reply_to("m9", SMALL_TALK), MemoryPolicy())
    assert [t.mention_id for t in given.conversation] == ["m1"]
    assert given.related_id is None and given.related_similarity is not None


def test_old_turns_move_to_semantic_memory_and_are_still_recalled(memory: AgentMemory, clock: Clock) -> None:
    policy = MemoryPolicy(short_term_window_seconds=7 * 86_400)
    memory.remember_exchange(TENANT, AGENT, exchange("m1", SASHIKO, NOW - timedelta(days=40), reply="Leeds Market"))
    memory.remember_exchange(TENANT, AGENT, exchange("m2", SMALL_TALK, NOW - timedelta(days=1)))
    assert memory.archive(TENANT, AGENT, policy) == 1
    assert memory.archive(TENANT, AGENT, policy) == 0  # moved once
    given = memory.for_writing(TENANT, AGENT, reply_to("m9", FOLLOW_UP), policy)
    assert [t.mention_id for t in given.conversation] == ["m2"]  # the old one left short-term memory
    archived = [m for m in given.memories if m.kind == "interaction"]
    assert archived and "sashiko" in archived[0].text
    assert archived[0].subject == author_subject("twitter", "thriftqueen")
    assert archived[0].created_at.startswith((NOW - timedelta(days=40)).date().isoformat())  # when it happened
    assert given.related_id == archived[0].id  # the follow-up finds it in semantic memory


def test_agents_never_see_each_others_conversations(memory: AgentMemory) -> None:
    memory.remember_exchange(TENANT, "bo", exchange("m1", SASHIKO, NOW - timedelta(days=1)))
    memory.archive(TENANT, "bo", MemoryPolicy(short_term_window_seconds=60))
    memory.remember_exchange(TENANT, "bo", exchange("m2", SASHIKO + " again", NOW))
    given = memory.for_writing(TENANT, AGENT, reply_to("m9", FOLLOW_UP), MemoryPolicy())
    assert given.conversation == [] and given.related_id is None
    assert not [m for m in given.memories if "sashiko" in m.text]


def test_a_post_sees_its_own_posts_within_the_repeat_window_only(
    memory: AgentMemory, clock: Clock, tmp_path: Path, embedder: E5Embedder
) -> None:
    store = LanceMemoryStore(tmp_path / "memory", embedder)
    store.store(TENANT, AGENT, "Old denim post", "published_post", created_at=NOW - timedelta(days=20))
    store.store(TENANT, AGENT, "Fresh thrift haul post", "published_post", created_at=NOW - timedelta(hours=2))
    memory.remember_post(
        TENANT, AGENT, text="Replied, not posted", platform="twitter", post_id="p9", key="k9", campaign_id="spring"
    )
    clock.now = NOW
    task = PlannedTask(key="post-tw", task_type="post", platform="twitter", brief="a thrift haul post")
    given = memory.for_writing(TENANT, AGENT, task, MemoryPolicy(repeat_window_seconds=14 * 86_400))
    assert [p.text for p in given.recent_posts] == ["Replied, not posted", "Fresh thrift haul post"]  # newest first
    assert all(p.source == "recent_post" for p in given.recent_posts)
    assert memory.for_writing(TENANT, AGENT, task, MemoryPolicy(repeat_window_seconds=0)).recent_posts == []
    assert [m.text for m in memory.own_posts(TENANT, AGENT, 30 * 86_400)][-1] == "Old denim post"


def test_engagement_and_reviews_become_learnings_the_planner_reads(memory: AgentMemory) -> None:
    counts = {"likes": 40, "replies": 9, "reposts": 8, "impressions": 1200, "engagement": 57}
    first = memory.remember_engagement(
        TENANT, AGENT, campaign_id="spring", platform="twitter", post_id="p1", text="Mended jeans!", counts=counts
    )
    assert "engagement 57" in first and "first measured post" in first
    low = {**counts, "engagement": 5, "likes": 5, "replies": 0, "reposts": 0}
    second = memory.remember_engagement(
        TENANT, AGENT, campaign_id="spring", platform="twitter", post_id="p2", text="Meh", counts=low, topic="#Tax"
    )
    assert "below the recent median of 57" in second and 'on "#Tax"' in second
    memory.remember_review(
        TENANT,
        AGENT,
        campaign_id="spring",
        task_id="t3",
        platform="twitter",
        state="rejected",
        draft="Crypto is the new thrift",
        reason="off brand: no crypto",
    )
    _, learnings = memory.for_planning(TENANT, AGENT)
    texts = [m.text for m in learnings]
    assert len(texts) == 3 and all(m.source == "learning" for m in learnings)
    assert any(t.startswith("A reviewer rejected") and "off brand: no crypto" in t for t in texts)
    # Recording the same engagement again changes nothing (keyed by the post).
    memory.remember_engagement(
        TENANT, AGENT, campaign_id="spring", platform="twitter", post_id="p1", text="Mended jeans!", counts=counts
    )
    assert len(memory.for_planning(TENANT, AGENT)[1]) == 3


def test_the_persona_is_indexed_once_as_tier_one_memory(memory: AgentMemory) -> None:
    persona = scripted.persona()
    added = memory.index_persona(TENANT, AGENT, persona)
    assert added == 1 + 2 + len(persona.examples)  # voice, boundaries, banned topics; the examples
    assert memory.index_persona(TENANT, AGENT, persona) == 0
    task = PlannedTask(key="post-tw", task_type="post", platform="twitter", brief="a thrifted blazer post")
    given = memory.for_writing(TENANT, AGENT, task, MemoryPolicy())
    assert any(m.kind == "voice_example" and "blazer" in m.text for m in given.memories)
    assert not any(m.kind == "persona" for m in given.memories)  # the system prompt has those already
