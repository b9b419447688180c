"""What an agent remembers and is reminded of: conversation turns, recalled memories, the memory settings.

Memory text is untrusted data (it quotes third parties): it reaches a model only inside a data block, and
nothing here is ever read as an instruction. See specs/memory.md for the flows.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RecallSource = Literal["conversation", "memory", "recent_post", "learning"]
DAY = 86_400


class ConversationTurn(BaseModel):
    """One exchange with an author: what they wrote and what the agent answered (short-term memory)."""

    model_config = ConfigDict(frozen=True)

    platform: str
    author: str = Field(description="the other party's handle, as the platform gives it, without '@'")
    mention_id: str
    said: str = Field(description="what they wrote: untrusted text")
    replied: str = Field("", description="what the agent answered")
    reply_post_id: str | None = None
    at: str = Field(description="ISO 8601 UTC: when they wrote")


class RecalledMemory(BaseModel):
    """A memory put in front of a model, and where it came from: `review show` lists these."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="mem_... for semantic memories; conv:<platform>:<mention id> for turns")
    source: RecallSource
    kind: str
    text: str
    created_at: str
    score: float | None = Field(None, description="the hybrid search's fused score (memory hits only)")
    subject: str = ""


class WritingMemory(BaseModel):
    """What the Worker is reminded of before writing one task."""

    conversation: list[ConversationTurn] = Field(default_factory=list, description="with this author, oldest first")
    memories: list[RecalledMemory] = Field(default_factory=list, description="hybrid search, best first")
    recent_posts: list[RecalledMemory] = Field(
        default_factory=list, description="the agent's own posts within the repeat window, newest first"
    )
    related_id: str | None = Field(None, description="the earlier exchange the new mention follows up, if any")
    related_similarity: float | None = Field(None, description="how close that exchange is (cosine)")

    def related(self) -> RecalledMemory | None:
        return next((m for m in self.recalled() if m.id == self.related_id), None) if self.related_id else None

    def recalled(self) -> list[RecalledMemory]:
        """Everything given to the model, as one list (conversation turns as memories)."""
        turns = [
            RecalledMemory(
                id=turn_id(t.platform, t.mention_id),
                source="conversation",
                kind="interaction",
                text=exchange_text(t),
                created_at=t.at,
                subject=author_subject(t.platform, t.author),
            )
            for t in self.conversation
        ]
        return [*turns, *self.memories, *self.recent_posts]


class MemoryPolicy(BaseModel):
    """A campaign's memory settings (campaign file `memory:`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    short_term_window_seconds: int = Field(
        30 * DAY, ge=60, description="conversation turns older than this move to semantic memory (seed: 1 month)"
    )
    repeat_window_seconds: int = Field(
        14 * DAY, ge=0, description="a post repeating one of the agent's own posts this recent is rejected (0: off)"
    )
    recall_limit: int = Field(5, ge=0, le=20, description="semantic memories given to the Worker per task")
    conversation_limit: int = Field(10, ge=0, le=50, description="latest turns with the author given to the Worker")
    engagement_after_seconds: int = Field(
        3600, ge=0, description="a published post's engagement is read this long after it went out"
    )


def author_subject(platform: str, author: str) -> str:
    """The memory subject naming one author on one platform: `twitter:@ana` (handles compare case-blind)."""
    return f"{platform.lower()}:@{author.lstrip('@').lower()}"


def turn_id(platform: str, mention_id: str) -> str:
    return f"conv:{platform}:{mention_id}"


REPLIED = "\nI replied: "


def exchange_text(turn: ConversationTurn) -> str:
    """One exchange as memory text, the same short-term and archived: `@ana on twitter, 2026-11-30: ...`."""
    text = f"@{turn.author} on {turn.platform}, {turn.at[:10]}: {turn.said}"
    return text + (f"{REPLIED}{turn.replied}" if turn.replied else "")


def said_of(text: str) -> str:
    """What the author said, from an exchange's memory text (any other memory text comes back whole)."""
    head, _, said = text.partition(": ")
    if not (head.startswith("@") and " on " in head and said):
        return text
    return said.split(REPLIED, 1)[0]


class PublishedPost(BaseModel):
    """A post the campaign published, waiting for its engagement to be read."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    key: str
    platform: str
    post_id: str
    text: str
    published_at: str = Field(description="ISO 8601 UTC, the campaign's time of hearing of it")
    topic: str | None = None


class ReflectRequest(BaseModel):
    """The Judge's look back at a cycle's start: engagement of posts now due, and conversations to archive."""

    tenant_id: str
    campaign_id: str
    agent_id: str
    handles: dict[str, str] = Field(default_factory=dict)
    due: list[PublishedPost] = Field(default_factory=list)
    policy: MemoryPolicy = MemoryPolicy()


class Reflection(BaseModel):
    measured: list[str] = Field(default_factory=list, description="task ids done with (measured, or gone)")
    lessons: int = 0
    archived: int = Field(0, description="conversation turns moved to semantic memory")
    errors: list[str] = Field(default_factory=list)
