"""A sandbox social platform with real persistence: one SQLite file per platform account.

Each account (mcp_servers.social.accounts) has its own file, so its posts, mentions, rate limit and
idempotency keys are its own. Several MCP server processes (one per host call) may open the same file at once, so every
write runs in a `BEGIN IMMEDIATE` transaction (one writer at a time, readers unaffected under
WAL) and every check-then-insert (idempotency, rate limit) happens inside that transaction.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, get_args

from mcp_servers.common import SEED_DIR, check_rate, enable_wal, sqlite_connect, sqlite_transaction
from mcp_servers.media import MediaStore
from mcp_servers.social.accounts import DEFAULT_ACCOUNTS, account_dir, check_account
from mcp_servers.social.audience import Engagement, simulate
from mcp_servers.social.backend import (
    AlreadyReplied,
    IdempotencyConflict,
    NotFound,
    Platform,
    iso,
    parse_time,
    post_metric,
)
from mcp_servers.social.rules import (
    IG_MAX_CAPTION_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    TWEET_MAX_CHARS,
    InvalidRequest,
    check_instagram_image,
    check_key,
    check_post_ids,
    check_text,
)

__all__ = [
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "AlreadyReplied",
    "IdempotencyConflict",
    "InvalidRequest",
    "NotFound",
    "Platform",
    "SandboxPlatform",
]

DEFAULT_RATE_LIMIT = 50
DEFAULT_RATE_WINDOW_SECONDS = 15 * 60.0


@dataclass(frozen=True)
class PlatformRules:
    max_text_chars: int
    followers: int
    id_prefix: str
    url_template: str  # formatted with account= and post_id=


RULES: dict[str, PlatformRules] = {
    "twitter": PlatformRules(
        max_text_chars=TWEET_MAX_CHARS,
        followers=12_840,
        id_prefix="tw-p-",
        url_template="https://sandbox.twitter.local/{account}/status/{post_id}",
    ),
    "instagram": PlatformRules(
        max_text_chars=IG_MAX_CAPTION_CHARS,
        followers=48_210,
        id_prefix="ig-p-",
        url_template="https://sandbox.instagram.local/p/{post_id}",
    ),
}


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS posts (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    text TEXT NOT NULL,
    reply_to TEXT,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    media_id TEXT
);
CREATE TABLE IF NOT EXISTS mentions (
    id TEXT PRIMARY KEY,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    replied_post_id TEXT
);
CREATE TABLE IF NOT EXISTS trends (
    topic TEXT PRIMARY KEY,
    volume INTEGER NOT NULL
);
-- Sliding-window log of post events per account, pruned as the window moves.
CREATE TABLE IF NOT EXISTS rate_events (
    account TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_events_account_at ON rate_events (account, at);
-- Engagement a test, benchmark or demo scripted with set_metrics: it wins over the simulated audience.
CREATE TABLE IF NOT EXISTS scripted_metrics (
    post_id TEXT PRIMARY KEY REFERENCES posts (id),
    likes INTEGER NOT NULL,
    replies INTEGER NOT NULL,
    reposts INTEGER NOT NULL,
    impressions INTEGER NOT NULL,
    set_at TEXT NOT NULL
);
"""


_iso = iso


class SandboxPlatform:
    """One account on a sandbox platform ("twitter" or "instagram"), stored in
    `<data_dir>/accounts/<platform>/<account>.sqlite3`; the default account (the demo persona's, used when
    `account` is None) in `<data_dir>/<platform>.sqlite3`, as before accounts existed.

    Seeding adds the seed trends to every account and the seed mentions (addressed to the demo persona) to the
    default account only. Safe to use from several threads (each operation opens its own connection) and from
    several processes at once (SQLite locking). Engagement comes from a simulated audience (`audience`), driven
    by the injected clock, unless a post's counts were scripted (`set_metrics`).
    """

    def __init__(
        self,
        data_dir: Path,
        platform: Platform,
        seed: bool = True,
        *,
        account: str | None = None,
        rate_limit: int = DEFAULT_RATE_LIMIT,
        rate_window_seconds: float = DEFAULT_RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if platform not in get_args(Platform):
            raise ValueError(f"unknown platform {platform!r}")
        if rate_limit < 1 or rate_window_seconds <= 0:
            raise ValueError("rate limit must allow at least one post in a positive window")
        self.platform: Platform = platform
        self.rules = RULES[platform]
        default = DEFAULT_ACCOUNTS[platform]
        self.account = default if account is None else check_account(account)
        self.rate_limit = rate_limit
        self.rate_window_seconds = rate_window_seconds
        self._clock = clock
        self.is_default = self.account == default
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        if self.is_default:
            self.path = data_dir / f"{platform}.sqlite3"
        else:
            account_dir(data_dir, platform).mkdir(parents=True, exist_ok=True)
            self.path = account_dir(data_dir, platform) / f"{self.account}.sqlite3"
        # The same store the images server writes to: `<sandbox dir>/media`.
        self.media = MediaStore(data_dir)
        self._init_db(seed)

    def for_account(self, account: str) -> SandboxPlatform:
        """The same sandbox platform (dir, rate limit, clock, and class: a test double stays one), another account."""
        return type(self)(
            self.data_dir,
            self.platform,
            account=account,
            rate_limit=self.rate_limit,
            rate_window_seconds=self.rate_window_seconds,
            clock=self._clock,
        )

    # -- storage plumbing ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        return sqlite_connect(self.path)

    def _transaction(self, *, write: bool) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite_transaction(self.path, write=write)

    def _init_db(self, seed: bool) -> None:
        enable_wal(self.path)
        with self._transaction(write=True) as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            # Files made before posts carried media lack the column (CREATE IF NOT EXISTS keeps the old table).
            if "media_id" not in self._columns(conn, "posts"):
                conn.execute("ALTER TABLE posts ADD COLUMN media_id TEXT")
            # Nor do files made before a mention could answer a post (its replies count in post_metrics).
            if "in_reply_to" not in self._columns(conn, "mentions"):
                conn.execute("ALTER TABLE mentions ADD COLUMN in_reply_to TEXT")
            conn.execute("CREATE INDEX IF NOT EXISTS mentions_in_reply_to ON mentions (in_reply_to)")
            seeded = conn.execute("SELECT 1 FROM meta WHERE key = 'seeded'").fetchone()
            if seed and not seeded:
                self._seed(conn)
                conn.execute("INSERT INTO meta (key, value) VALUES ('seeded', ?)", (_iso(self._clock()),))

    @staticmethod
    def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
        return {row["name"] for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}

    def _seed(self, conn: sqlite3.Connection) -> None:
        now = self._clock()
        # The seed mentions are addressed to the demo persona: only its account receives them.
        mentions = json.loads((SEED_DIR / f"{self.platform}_mentions.json").read_text(encoding="utf-8"))
        mentions = mentions if self.is_default else []
        for m in mentions:
            conn.execute(
                "INSERT OR IGNORE INTO mentions (id, author, text, created_at) VALUES (?, ?, ?, ?)",
                (m["id"], m["author"], m["text"], _iso(now - 60.0 * float(m.get("minutes_ago", 0)))),
            )
        trends = json.loads((SEED_DIR / f"{self.platform}_trends.json").read_text(encoding="utf-8"))
        for t in trends:
            conn.execute("INSERT OR REPLACE INTO trends (topic, volume) VALUES (?, ?)", (t["topic"], int(t["volume"])))

    # -- validation -----------------------------------------------------------------------

    def _check_text(self, text: str) -> str:
        return check_text(self.platform, text, self.rules.max_text_chars)

    def _check_media(self, media_id: str | None) -> None:
        """Instagram posts are one image from the media store; the twitter sandbox publishes text only."""
        if self.platform == "twitter":
            if media_id is not None:
                raise InvalidRequest("media_not_supported", "the twitter server publishes text only")
            return
        if not media_id:
            raise InvalidRequest("media_required", "an Instagram post is an image: pass a media_id")
        check_instagram_image(self.media, media_id)

    def _check_rate(self, conn: sqlite3.Connection, now: float) -> None:
        check_rate(conn, self.account, self.rate_limit, self.rate_window_seconds, now, "post")

    # -- writes ---------------------------------------------------------------------------

    def post(self, text: str, idempotency_key: str, media_id: str | None = None) -> dict[str, Any]:
        """Publish a top-level post (on Instagram: the image `media_id` with `text` as its caption).
        The same idempotency key never publishes twice."""
        return self._publish(text, idempotency_key, reply_to=None, media_id=media_id)

    def reply(self, mention_id: str, text: str, idempotency_key: str) -> dict[str, Any]:
        """Reply to a mention (a comment on Instagram) and mark it replied."""
        return self._publish(text, idempotency_key, reply_to=mention_id, media_id=None)

    def _publish(self, text: str, idempotency_key: str, reply_to: str | None, media_id: str | None) -> dict[str, Any]:
        check_key(idempotency_key)
        with self._transaction(write=True) as conn:
            existing = conn.execute(
                "SELECT id, reply_to FROM posts WHERE idempotency_key = ?", (idempotency_key,)
            ).fetchone()
            if existing is not None:
                # Checked before anything else so a retry after success always succeeds, even when
                # the text would now fail validation or the account is rate limited.
                if existing["reply_to"] != reply_to:
                    raise IdempotencyConflict(
                        f"idempotency_key {idempotency_key!r} was already used for a different operation"
                    )
                return self._receipt(existing["id"], duplicate=True)
            normalized = self._check_text(text)
            if reply_to is None:
                self._check_media(media_id)
            if reply_to is not None:
                mention = conn.execute("SELECT replied_post_id FROM mentions WHERE id = ?", (reply_to,)).fetchone()
                if mention is None:
                    raise NotFound(f"no mention or comment with id {reply_to!r}")
                if mention["replied_post_id"] is not None:
                    raise AlreadyReplied(f"{reply_to!r} was already answered by post {mention['replied_post_id']!r}")
            now = self._clock()
            self._check_rate(conn, now)
            post_id = self.rules.id_prefix + secrets.token_hex(6)
            conn.execute(
                "INSERT INTO posts (id, account, text, reply_to, idempotency_key, created_at, media_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (post_id, self.account, normalized, reply_to, idempotency_key, _iso(now), media_id),
            )
            conn.execute("INSERT INTO rate_events (account, at) VALUES (?, ?)", (self.account, now))
            if reply_to is not None:
                conn.execute("UPDATE mentions SET replied_post_id = ? WHERE id = ?", (post_id, reply_to))
            return self._receipt(post_id, duplicate=False)

    def add_mention(
        self, author: str, text: str, mention_id: str | None = None, *, in_reply_to: str | None = None
    ) -> dict[str, Any]:
        """Simulate an incoming mention/comment (for tests and demos). `in_reply_to`: the account's post it
        answers (a reply to a tweet, a comment on an Instagram post); it counts in that post's replies."""
        prefix = "tw-m-" if self.platform == "twitter" else "ig-c-"
        new_id = mention_id or prefix + secrets.token_hex(6)
        with self._transaction(write=True) as conn:
            if in_reply_to is not None:
                self._own_post(conn, in_reply_to)
            conn.execute(
                "INSERT INTO mentions (id, author, text, created_at, in_reply_to) VALUES (?, ?, ?, ?, ?)",
                (new_id, author, text, _iso(self._clock()), in_reply_to),
            )
            row = conn.execute("SELECT * FROM mentions WHERE id = ?", (new_id,)).fetchone()
            return self._mention(row)

    def set_metrics(self, post_id: str, *, likes: int, replies: int, reposts: int, impressions: int) -> None:
        """Script a post's engagement (for tests, benchmarks and demos; not a tool): post_metrics answers these
        counts for it from now on, instead of the simulated audience's. Kept in the account's file."""
        counts = {"likes": likes, "replies": replies, "reposts": reposts, "impressions": impressions}
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
        with self._transaction(write=True) as conn:
            self._own_post(conn, post_id)
            conn.execute(
                "INSERT OR REPLACE INTO scripted_metrics (post_id, likes, replies, reposts, impressions, set_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (post_id, likes, replies, reposts, impressions, _iso(self._clock())),
            )

    def _own_post(self, conn: sqlite3.Connection, post_id: str) -> None:
        if conn.execute("SELECT 1 FROM posts WHERE id = ?", (post_id,)).fetchone() is None:
            raise NotFound(f"account {self.account!r} has no post with id {post_id!r}")

    # -- reads ----------------------------------------------------------------------------

    def find_post(self, idempotency_key: str) -> dict[str, Any] | None:
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT * FROM posts WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
            return None if row is None else self._post(row)

    def posts(self) -> list[dict[str, Any]]:
        with self._transaction(write=False) as conn:
            rows = conn.execute("SELECT * FROM posts ORDER BY created_at, rowid").fetchall()
            return [self._post(row) for row in rows]

    def recent_mentions(self, limit: int = 20, unreplied_only: bool = False) -> list[dict[str, Any]]:
        """Newest first."""
        where = "WHERE replied_post_id IS NULL" if unreplied_only else ""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                f"SELECT * FROM mentions {where} ORDER BY created_at DESC, rowid DESC LIMIT ?", (max(limit, 0),)
            ).fetchall()
            return [self._mention(row) for row in rows]

    def profile_stats(self) -> dict[str, Any]:
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT SUM(reply_to IS NULL) AS posts, SUM(reply_to IS NOT NULL) AS replies"
                " FROM posts WHERE account = ?",
                (self.account,),
            ).fetchone()
        return {
            "platform": self.platform,
            "account": self.account,
            "followers": self.rules.followers,
            "post_count": int(row["posts"] or 0),
            "reply_count": int(row["replies"] or 0),
        }

    def post_metrics(self, post_ids: list[str]) -> dict[str, Any]:
        """The engagement of the account's posts now (mcp_servers.social.backend): the scripted counts where
        set_metrics set them, otherwise the simulated audience's (mcp_servers.social.audience) at the post's age,
        with each mention answering the post (add_mention(in_reply_to=...)) counted as one more reply."""
        ids = check_post_ids(post_ids)
        now = self._clock()
        marks = ",".join("?" * len(ids))
        with self._transaction(write=False) as conn:
            posts = {
                row["id"]: row
                for row in conn.execute(
                    # The file is the account's: every post in it is the account's own.
                    f"SELECT id, text, reply_to, created_at FROM posts WHERE id IN ({marks})",
                    ids,
                )
            }
            scripted = {
                row["post_id"]: row
                for row in conn.execute(f"SELECT * FROM scripted_metrics WHERE post_id IN ({marks})", ids)
            }
            answers = {
                row["in_reply_to"]: int(row["n"])
                for row in conn.execute(
                    f"SELECT in_reply_to, COUNT(*) AS n FROM mentions WHERE in_reply_to IN ({marks})"
                    " GROUP BY in_reply_to",
                    ids,
                )
            }
        measured_at = _iso(now)
        metrics = []
        for post_id in (i for i in ids if i in posts):
            if post_id in scripted:
                row = scripted[post_id]
                counts = Engagement(row["likes"], row["replies"], row["reposts"], row["impressions"])
            else:
                post = posts[post_id]
                created = parse_time(post["created_at"])
                counts = simulate(
                    self.platform,
                    post["text"],
                    age_seconds=0.0 if created is None else now - created,
                    followers=self.rules.followers,
                    is_reply=post["reply_to"] is not None,
                )
                counts = replace(counts, replies=counts.replies + answers.get(post_id, 0))
            metrics.append(
                post_metric(
                    post_id,
                    likes=counts.likes,
                    replies=counts.replies,
                    reposts=counts.reposts,
                    impressions=counts.impressions,
                    measured_at=measured_at,
                )
            )
        return {"metrics": metrics, "missing": [i for i in ids if i not in posts]}

    def trends(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Highest volume first; all of them unless `limit` is given."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT topic, volume FROM trends ORDER BY volume DESC, topic LIMIT ?",
                (-1 if limit is None else limit,),  # SQLite: a negative LIMIT means no limit
            ).fetchall()
            return [{"platform": self.platform, "topic": r["topic"], "volume": int(r["volume"])} for r in rows]

    # -- row shapes -----------------------------------------------------------------------

    def _url(self, post_id: str) -> str:
        return self.rules.url_template.format(account=self.account, post_id=post_id)

    def _receipt(self, post_id: str, *, duplicate: bool) -> dict[str, Any]:
        return {"post_id": post_id, "url": self._url(post_id), "duplicate": duplicate}

    def _post(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "post_id": row["id"],
            "url": self._url(row["id"]),
            "platform": self.platform,
            "account": row["account"],
            "text": row["text"],
            "reply_to": row["reply_to"],
            "idempotency_key": row["idempotency_key"],
            "created_at": row["created_at"],
            "media_id": row["media_id"],
        }

    def _mention(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "platform": self.platform,
            "author": row["author"],
            "text": row["text"],
            "created_at": row["created_at"],
            "replied": row["replied_post_id"] is not None,
        }
