"""Short-term memory: the recent exchanges of an agent with each author (`conversation_turns`).

The worker reads the conversation so far with an author before it replies; turns older than the campaign's
window are archived to semantic memory by the caller and then forgotten here. Every function runs inside a
tenant's transaction (StateStore), so row security on PostgreSQL confines it to that tenant; the agent is
named in every query as well, so one agent never reads another's conversations.

Texts are untrusted data: stored and returned as given, never interpreted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chimera.db.models import CONVERSATION_TEXT_MAX, ConversationTurnRow
from chimera.db.routes import handle_key
from schemas.memory import ConversationTurn

MAX_LIMIT = 1000  # turns one read may return
PLATFORM_MAX = 32
ID_MAX = 255  # mention ids, reply post ids and handles (the columns' widths)
_DELETE_CHUNK = 500  # mention ids per DELETE: well under SQLite's bound-parameter limit


def author_key(author: str) -> str:
    """How authors compare: `@Ana`, `ana` and ` ana ` are one author (the rule of chimera.db.routes.handle_key)."""
    return handle_key(author)


def platform_key(platform: str) -> str:
    """A platform name as stored: trimmed, lower-case; refused when empty or wider than its column."""
    name = platform.strip().lower()
    if not name or len(name) > PLATFORM_MAX:
        raise ValueError(f"platform {platform!r} must be a name of 1 to {PLATFORM_MAX} characters")
    return name


def parse_at(at: str) -> datetime:
    """A turn's `at`: ISO 8601 with a UTC offset (or Z), as an aware UTC datetime; ValueError otherwise."""
    try:
        parsed = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise ValueError(
            f"conversation turn time {at!r} is not ISO 8601 (expected e.g. 2026-03-09T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"conversation turn time {at!r} has no UTC offset: add Z or +00:00")
    return parsed.astimezone(UTC)


def format_at(at: datetime) -> str:
    """ISO 8601 UTC, fixed width (the form chimera.memory uses for created_at)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 0 to {MAX_LIMIT}, not {limit!r}")
    return limit


def _values(tenant_id: str, agent_id: str, turn: ConversationTurn, now: datetime) -> dict[str, Any]:
    """The row of a turn, every field checked (a clear ValueError rather than a database error)."""
    for name in ("platform", "author", "mention_id", "said", "replied", "reply_post_id"):
        if "\x00" in (getattr(turn, name) or ""):  # PostgreSQL text cannot hold NUL; SQLite would, so refuse both
            raise ValueError(f"conversation turn {turn.mention_id!r}: `{name}` contains a NUL character")
    author = turn.author.strip().lstrip("@").strip()
    key = author_key(author)
    if not key or max(len(author), len(key)) > ID_MAX:
        raise ValueError(f"author {turn.author!r} must be a handle of 1 to {ID_MAX} characters")
    mention_id = turn.mention_id  # the platform's id, exactly
    if not mention_id.strip() or len(mention_id) > ID_MAX:
        raise ValueError(f"mention id {turn.mention_id!r} must be 1 to {ID_MAX} characters")
    if turn.reply_post_id is not None and not (turn.reply_post_id.strip() and len(turn.reply_post_id) <= ID_MAX):
        raise ValueError(f"reply post id {turn.reply_post_id!r} must be 1 to {ID_MAX} characters (or None)")
    for name, text in (("said", turn.said), ("replied", turn.replied)):
        if len(text) > CONVERSATION_TEXT_MAX:
            raise ValueError(
                f"conversation turn {mention_id!r}: `{name}` has {len(text)} characters, "
                f"more than the {CONVERSATION_TEXT_MAX} kept"
            )
    return {
        "tenant_id": tenant_id,
        "agent_id": agent_id,
        "platform": platform_key(turn.platform),
        "mention_id": mention_id,
        "author": author,
        "author_key": key,
        "said": turn.said,
        "replied": turn.replied,
        "reply_post_id": turn.reply_post_id,
        "at": parse_at(turn.at),
        "recorded_at": now,
    }


def record(session: Session, tenant_id: str, agent_id: str, turn: ConversationTurn, now: datetime) -> bool:
    """Keep the turn once per (tenant, agent, platform, mention id); True when it is new.

    Recording a kept turn again (a retry, or the same mention after its reply was published) only fills in
    `replied` and `reply_post_id` where they are still empty; what the author wrote and when stay as first kept.
    Each statement is atomic, so racing records of one mention keep one row and lose no reply."""
    values = _values(tenant_id, agent_id, turn, now)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (
        insert(ConversationTurnRow)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["tenant_id", "agent_id", "platform", "mention_id"])
        .returning(ConversationTurnRow.mention_id)  # a row back only when this insert made it
    )
    if session.execute(stmt).first() is not None:
        return True
    t = ConversationTurnRow
    row = [t.tenant_id == tenant_id, t.agent_id == agent_id, t.platform == values["platform"]]
    row.append(t.mention_id == values["mention_id"])
    if values["replied"]:
        session.execute(update(t).where(*row, t.replied == "").values(replied=values["replied"]))
    if values["reply_post_id"] is not None:
        session.execute(update(t).where(*row, t.reply_post_id.is_(None)).values(reply_post_id=values["reply_post_id"]))
    return False


def to_turn(row: ConversationTurnRow) -> ConversationTurn:
    return ConversationTurn(
        platform=row.platform,
        author=row.author,
        mention_id=row.mention_id,
        said=row.said,
        replied=row.replied,
        reply_post_id=row.reply_post_id,
        at=format_at(row.at),
    )


def with_author(
    session: Session, tenant_id: str, agent_id: str, platform: str, author: str, limit: int
) -> list[ConversationTurn]:
    """The newest `limit` turns of the agent with `author` on `platform`, oldest first (by at, then mention id)."""
    if check_limit(limit) == 0:
        return []
    t = ConversationTurnRow
    stmt = (
        select(t)
        .where(
            t.tenant_id == tenant_id,
            t.agent_id == agent_id,
            t.platform == platform_key(platform),
            t.author_key == author_key(author),
        )
        .order_by(t.at.desc(), t.mention_id.desc())
        .limit(limit)
    )
    return [to_turn(row) for row in reversed(list(session.execute(stmt).scalars()))]


def before(session: Session, tenant_id: str, agent_id: str, cutoff: datetime, limit: int) -> list[ConversationTurn]:
    """The agent's turns written strictly before `cutoff` (aware), oldest first: what is due for archiving."""
    if cutoff.tzinfo is None or cutoff.utcoffset() is None:
        raise ValueError(f"`before` {cutoff.isoformat()} is naive: it must be timezone-aware")
    if check_limit(limit) == 0:
        return []
    t = ConversationTurnRow
    stmt = (
        select(t)
        .where(t.tenant_id == tenant_id, t.agent_id == agent_id, t.at < cutoff)
        .order_by(t.at, t.platform, t.mention_id)
        .limit(limit)
    )
    return [to_turn(row) for row in session.execute(stmt).scalars()]


def forget(session: Session, tenant_id: str, agent_id: str, platform: str, mention_ids: Sequence[str]) -> int:
    """Delete the agent's turns of those mentions on `platform`; returns how many were deleted."""
    if isinstance(mention_ids, str):  # a str is a Sequence[str]: its characters are not mention ids
        raise TypeError(f"mention_ids must be a sequence of mention ids, not the string {mention_ids!r}")
    ids = sorted(set(mention_ids))
    t = ConversationTurnRow
    where = [t.tenant_id == tenant_id, t.agent_id == agent_id, t.platform == platform_key(platform)]
    deleted = 0
    for start in range(0, len(ids), _DELETE_CHUNK):
        result = session.execute(delete(t).where(*where, t.mention_id.in_(ids[start : start + _DELETE_CHUNK])))
        deleted += int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult of a DELETE
    return deleted
