"""The agent-facing memory flows (specs/memory.md): what the Planner, the Worker and the Judge read and write.

Two tiers, as in the seed (3.1):
- short-term: the conversation turns with each author, rows in the state store (`ConversationLog`), read
  whole for a reply;
- semantic (tier 1): everything else in the `MemoryStore` (LanceDB embedded, Weaviate in production),
  searched by hybrid search: archived conversations, campaign learnings, posts with their engagement, the
  persona's SOUL.md and brand voice examples.

Every call names its tenant and agent, and both stores answer from that agent's memories only. Memory text is
untrusted: it reaches a model inside data blocks, and the Judge checks drafts against it as it checks anything
else the task read. All methods block (embedding, files, database): activities call them in a thread.
"""

from __future__ import annotations

import hashlib
import re
import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np

from chimera.memory.embedder import Embedder
from chimera.memory.models import Memory, MemoryHit, MetadataValue
from chimera.memory.store import MemoryStore
from schemas.memory import (
    ConversationTurn,
    MemoryPolicy,
    RecalledMemory,
    RecallSource,
    WritingMemory,
    author_subject,
    exchange_text,
    said_of,
    turn_id,
)
from schemas.persona import Persona
from schemas.plan import PlannedTask

# What a Worker's hybrid search looks in: the persona's own sections are in its system prompt already.
RECALL_KINDS = ("interaction", "fact", "lesson", "published_post", "voice_example")
# The earlier exchange a reply may refer back to must be at least this close to the new mention (cosine of E5
# embeddings, handles and links removed: on the tuning pairs, follow-ups scored 0.84-0.88 and unrelated messages
# of one author 0.77-0.82). Chosen on benchmarks/data/memory_tuning.json only; the benchmark's held-out
# conversations measure it (benchmarks/memory_recall.py).
RELATED_MIN_SIMILARITY = 0.83
_NOISE = re.compile(r"(?<!\w)@\w+|https?://\S+")  # whose handle and links say nothing of what was said
AUTHOR_HISTORY_LIMIT = 3  # archived exchanges with the author, beside the short-term ones
PLAN_RECENT_LIMIT = 8
PLAN_LEARNINGS_LIMIT = 8
RECENT_POSTS_LIMIT = 20
ENGAGEMENT_HISTORY = 50  # lessons the "above/below the median" comparison looks at
ARCHIVE_BATCH = 200
EXCERPT_CHARS = 400  # a memory shown to a model or a reviewer


class ConversationLog(Protocol):
    """Short-term conversation turns (StateStore implements it: chimera/db/conversations.py)."""

    def record_exchange(self, tenant_id: str, agent_id: str, turn: ConversationTurn) -> bool: ...

    def conversation(
        self, tenant_id: str, agent_id: str, platform: str, author: str, limit: int = 10
    ) -> list[ConversationTurn]: ...

    def turns_before(
        self, tenant_id: str, agent_id: str, before: datetime, limit: int = 200
    ) -> list[ConversationTurn]: ...

    def forget_turns(self, tenant_id: str, agent_id: str, platform: str, mention_ids: Sequence[str]) -> int: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AgentMemory:
    def __init__(
        self,
        store: MemoryStore,
        log: ConversationLog,
        embedder: Embedder,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._log = log
        self._embedder = embedder
        self._clock = clock

    # --- reading ---------------------------------------------------------------------------

    def for_writing(self, tenant_id: str, agent_id: str, task: PlannedTask, policy: MemoryPolicy) -> WritingMemory:
        """The conversation with the mention's author, the memories most relevant to the task (hybrid search),
        the agent's own posts within the repeat window, and which earlier exchange the new mention follows up."""
        conversation: list[ConversationTurn] = []
        author_history: list[MemoryHit] = []
        mention = task.mention
        if mention is not None:
            subject = author_subject(mention.platform, mention.author)
            if policy.conversation_limit:
                earlier = self._log.conversation(
                    tenant_id, agent_id, mention.platform, mention.author, limit=policy.conversation_limit + 1
                )
                conversation = [t for t in earlier if t.mention_id != mention.id][-policy.conversation_limit :]
            author_history = self._store.search(
                tenant_id, agent_id, _gist(mention.text), limit=AUTHOR_HISTORY_LIMIT, kinds=["interaction"],
                subject=subject,
            )  # fmt: skip
        # One query text for every search of the task (its embedding is computed once): what was said, without
        # handles and links, for a reply; the brief and topic for a post.
        query = _gist(mention.text) if mention is not None else " ".join(p for p in [task.brief, task.topic or ""] if p)
        memories = [_recalled(h, "memory") for h in author_history]
        if policy.recall_limit:
            seen = {m.id for m in memories}
            hits = self._store.search(tenant_id, agent_id, query[:1000], limit=policy.recall_limit, kinds=RECALL_KINDS)
            memories += [_recalled(h, "memory") for h in hits if h.id not in seen]
        memories = memories[: max(policy.recall_limit, len(author_history))]
        recent_posts: list[RecalledMemory] = []
        if policy.repeat_window_seconds and task.task_type == "post":  # replies are never checked for repeats
            since = self._clock() - timedelta(seconds=policy.repeat_window_seconds)
            posts = self._store.recent(tenant_id, agent_id, RECENT_POSTS_LIMIT, kinds=["published_post"], since=since)
            recent_posts = [_recalled(p, "recent_post") for p in posts]
        related_id, similarity = (None, None)
        if mention is not None:
            related_id, similarity = self._related(mention.text, conversation, author_history)
        return WritingMemory(
            conversation=conversation,
            memories=memories,
            recent_posts=recent_posts,
            related_id=related_id,
            related_similarity=similarity,
        )

    def _related(
        self, said: str, turns: Sequence[ConversationTurn], history: Sequence[MemoryHit]
    ) -> tuple[str | None, float | None]:
        """The earlier exchange (short-term or archived) closest in meaning to what the author says now."""
        candidates = [(turn_id(t.platform, t.mention_id), t.said) for t in turns]
        candidates += [(h.id, said_of(h.text)) for h in history]
        if not candidates:
            return None, None
        query = self._embedder.embed_query(_gist(said))
        vectors = self._embedder.embed_documents([_gist(text) for _, text in candidates])
        scores = vectors @ query
        best = int(np.argmax(scores))
        score = float(scores[best])
        if score < RELATED_MIN_SIMILARITY:
            return None, round(score, 4)
        return candidates[best][0], round(score, 4)

    def for_planning(self, tenant_id: str, agent_id: str) -> tuple[list[RecalledMemory], list[RecalledMemory]]:
        """(recent memories, campaign learnings), newest first: what the Planner reads before planning."""
        recent = self._store.recent(
            tenant_id, agent_id, PLAN_RECENT_LIMIT, kinds=["published_post", "interaction", "fact"]
        )
        lessons = self._store.recent(tenant_id, agent_id, PLAN_LEARNINGS_LIMIT, kinds=["lesson"])
        return [_recalled(m, "memory") for m in recent], [_recalled(m, "learning") for m in lessons]

    def own_posts(self, tenant_id: str, agent_id: str, window_seconds: int) -> list[Memory]:
        """The agent's posts published within the window, newest first (the Judge's repeat check)."""
        since = self._clock() - timedelta(seconds=window_seconds)
        return self._store.recent(tenant_id, agent_id, RECENT_POSTS_LIMIT, kinds=["published_post"], since=since)

    # --- writing ---------------------------------------------------------------------------

    def remember_post(
        self,
        tenant_id: str,
        agent_id: str,
        *,
        text: str,
        platform: str,
        post_id: str,
        key: str,
        campaign_id: str,
        topic: str | None = None,
    ) -> None:
        """A published post (keyed by its idempotency key: a retry stores it once)."""
        metadata: dict[str, MetadataValue] = {"platform": platform, "post_id": post_id, "campaign_id": campaign_id}
        if topic:
            metadata["topic"] = topic[:200]
        self._store.store(
            tenant_id,
            agent_id,
            text,
            "published_post",
            idempotency_key=_key("post", key),
            metadata=metadata,
            subject=f"campaign:{campaign_id}",
        )

    def remember_exchange(self, tenant_id: str, agent_id: str, turn: ConversationTurn) -> bool:
        """A mention and the reply to it, in the short-term conversation log."""
        return self._log.record_exchange(tenant_id, agent_id, turn)

    def remember_review(
        self,
        tenant_id: str,
        agent_id: str,
        *,
        campaign_id: str,
        task_id: str,
        platform: str,
        state: str,
        draft: str,
        reason: str | None,
        edited: str | None = None,
    ) -> None:
        """What a human rejected (or rewrote), and why: a campaign learning the Planner reads."""
        why = (reason or "no reason given").strip()
        if state == "rejected":
            text = f"A reviewer rejected this {platform} draft because: {why}. The draft: {draft}"
        else:
            text = f"A reviewer rewrote this {platform} draft ({why}). Draft: {draft} Published instead: {edited}"
        self._store.store(
            tenant_id,
            agent_id,
            text[:8000],
            "lesson",
            idempotency_key=_key("review", task_id),
            metadata={"signal": f"human_{state}", "platform": platform, "reason": why[:300], "task_id": task_id},
            subject=f"campaign:{campaign_id}",
        )

    def remember_engagement(
        self,
        tenant_id: str,
        agent_id: str,
        *,
        campaign_id: str,
        platform: str,
        post_id: str,
        text: str,
        counts: dict[str, int],
        topic: str | None = None,
    ) -> str:
        """How a post did, against the agent's recent median: what worked, for the Planner. Returns the lesson."""
        engagement = counts.get("engagement", 0)
        earlier = [
            m.metadata.get("engagement")
            for m in self._store.recent(tenant_id, agent_id, ENGAGEMENT_HISTORY, kinds=["lesson"])
            if m.metadata.get("signal") == "engagement"
        ]
        values = [float(v) for v in earlier if isinstance(v, int | float) and not isinstance(v, bool)]
        median = statistics.median(values) if values else None
        if median is None:
            versus = "the first measured post"
        elif engagement > median:
            versus = f"above the recent median of {median:g}: more like this"
        elif engagement < median:
            versus = f"below the recent median of {median:g}"
        else:
            versus = f"at the recent median of {median:g}"
        parts = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("likes", "replies", "reposts", "impressions"))
        on = f' on "{topic}"' if topic else ""
        lesson = f"A {platform} post{on} got engagement {engagement} ({parts}), {versus}. The post: {text}"
        metadata: dict[str, MetadataValue] = {
            "signal": "engagement",
            "platform": platform,
            "post_id": post_id,
            **{k: int(counts.get(k, 0)) for k in ("likes", "replies", "reposts", "impressions", "engagement")},
        }
        if topic:
            metadata["topic"] = topic[:200]
        if median is not None:
            metadata["median"] = median
        self._store.store(
            tenant_id,
            agent_id,
            lesson[:8000],
            "lesson",
            idempotency_key=_key("engagement", post_id),
            metadata=metadata,
            subject=f"campaign:{campaign_id}",
        )
        return lesson

    def archive(self, tenant_id: str, agent_id: str, policy: MemoryPolicy) -> int:
        """Move conversation turns older than the short-term window into semantic memory; returns how many.
        Each is stored first (idempotent by mention), then forgotten, so a crash in between loses nothing."""
        before = self._clock() - timedelta(seconds=policy.short_term_window_seconds)
        turns = self._log.turns_before(tenant_id, agent_id, before, limit=ARCHIVE_BATCH)
        for t in turns:
            text = exchange_text(t)
            self._store.store(
                tenant_id,
                agent_id,
                text[:8000],
                "interaction",
                idempotency_key=_key("conv", f"{t.platform}:{t.mention_id}"),
                metadata={"platform": t.platform, "author": t.author, "mention_id": t.mention_id},
                subject=author_subject(t.platform, t.author),
                created_at=t.at,
            )
        forgotten = 0
        for platform in sorted({t.platform for t in turns}):
            ids = [t.mention_id for t in turns if t.platform == platform]
            forgotten += self._log.forget_turns(tenant_id, agent_id, platform, ids)
        return forgotten

    def index_persona(self, tenant_id: str, agent_id: str, persona: Persona) -> int:
        """SOUL.md's sections (kind persona) and brand voice examples (kind voice_example), tier 1 of the seed.
        Keyed by content, so re-indexing an unchanged persona stores nothing; returns how many were new."""
        sections = [
            f"{persona.name}: {persona.bio}" if persona.bio else "",
            f"Voice of {persona.name}: {persona.voice}"
            + (f" ({', '.join(persona.tone_words)})" if persona.tone_words else ""),
            f"Boundaries of {persona.name}: " + "; ".join(persona.boundaries),
            f"Topics {persona.name} never posts about: " + ", ".join(persona.banned_topics)
            if persona.banned_topics
            else "",
        ]
        stored = 0
        items = [(s, "persona") for s in sections if s] + [(e, "voice_example") for e in persona.examples]
        for text, kind in items:
            result = self._store.store(
                tenant_id,
                agent_id,
                text[:8000],
                kind,
                idempotency_key=_key(kind, hashlib.sha256(text.encode()).hexdigest()[:32]),
                metadata={"persona": persona.id},
                subject="persona",
            )
            stored += not result.duplicate
        return stored


def _recalled(memory: Memory, source: RecallSource) -> RecalledMemory:
    text = memory.text if len(memory.text) <= EXCERPT_CHARS else memory.text[: EXCERPT_CHARS - 1] + "…"
    return RecalledMemory(
        id=memory.id,
        source=source,
        kind=memory.kind,
        text=text,
        created_at=memory.created_at,
        score=memory.score if isinstance(memory, MemoryHit) else None,
        subject=memory.subject,
    )


def _gist(text: str) -> str:
    return " ".join(_NOISE.sub(" ", text).split()) or text


def _key(kind: str, value: str) -> str:
    """A memory idempotency key (`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`): long values keep a hash."""
    raw = f"{kind}:{value}"
    if len(raw) <= 128 and all(c.isalnum() or c in "_.:-" for c in raw):
        return raw
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:40]}"
