"""The contract every social backend keeps, sandbox or live, and the errors they share.

Shapes (plain dicts, so the server serializes them as they are):
- receipt: {post_id, url, duplicate}
- post: {post_id, url, platform, account, text, reply_to, idempotency_key, created_at, media_id}
- mention (a comment on Instagram): {id, platform, author, text, created_at, replied}
- profile stats: {platform, account, followers, post_count, reply_count}
- trend: {platform, topic, volume}
- post metrics: {metrics: [{post_id, likes, replies, reposts, impressions, engagement, measured_at}], missing: [id]}
  for 1 to 100 post ids (duplicates dropped), `metrics` in the order asked; `engagement` is likes + replies +
  reposts (X: reposts are retweets + quotes; Instagram: shares), `measured_at` when the platform was read.
  `missing` holds the ids the account has no such post for (unknown, deleted, or another account's).
Timestamps are UTC ISO-8601 strings of one fixed width ("2026-11-24T08:00:00.000000Z"), so they sort as time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from mcp_servers.common import ToolError

Platform = Literal["twitter", "instagram"]


class SocialBackend(Protocol):
    platform: Platform

    def post(self, text: str, idempotency_key: str, media_id: str | None = None) -> dict[str, Any]:
        """Publish a top-level post (on Instagram: the image `media_id` with `text` as its caption).
        The same idempotency key never publishes twice; a repeat answers the first receipt with duplicate=true."""
        ...

    def reply(self, mention_id: str, text: str, idempotency_key: str) -> dict[str, Any]:
        """Reply to a mention (a comment on Instagram), at most once per idempotency key."""
        ...

    def find_post(self, idempotency_key: str) -> dict[str, Any] | None:
        """The post published under the key, or None if nothing was."""
        ...

    def recent_mentions(self, limit: int = 20, unreplied_only: bool = False) -> list[dict[str, Any]]:
        """Newest first."""
        ...

    def profile_stats(self) -> dict[str, Any]: ...

    def trends(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Highest volume first."""
        ...

    def post_metrics(self, post_ids: list[str]) -> dict[str, Any]:
        """Engagement of the account's own posts, as of now (shape above); InvalidRequest("invalid_request")
        unless 1 to 100 ids are given."""
        ...


class NotFound(ToolError):
    def __init__(self, message: str) -> None:
        super().__init__("not_found", message)


class AlreadyReplied(ToolError):
    """A second reply (under a different idempotency key) to one mention: almost surely a bug upstream."""

    def __init__(self, message: str) -> None:
        super().__init__("already_replied", message)


class IdempotencyConflict(ToolError):
    """The key was already used for a different operation (a post vs a reply, or another mention)."""

    def __init__(self, message: str) -> None:
        super().__init__("idempotency_conflict", message)


def post_metric(
    post_id: str, *, likes: int, replies: int, reposts: int, impressions: int, measured_at: str
) -> dict[str, Any]:
    """One entry of `metrics`, with engagement = likes + replies + reposts."""
    return {
        "post_id": post_id,
        "likes": likes,
        "replies": replies,
        "reposts": reposts,
        "impressions": impressions,
        "engagement": likes + replies + reposts,
        "measured_at": measured_at,
    }


def iso(ts: float) -> str:
    # Fixed width, so string order is time order.
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: object) -> float | None:
    """Epoch seconds from the platforms' timestamps: X "2026-11-24T08:00:00.000Z", Graph "2026-11-24T08:00:00+0000"."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
