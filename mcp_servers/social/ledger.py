"""Exactly-once publishing on platforms that have no idempotency keys (X, Instagram Graph).

A local SQLite ledger per account (PublishLedger's paths), records every attempt (key, text, start time)
BEFORE the platform is called, and the post id after it answered. When an attempt ends without a known outcome
(a timeout after the request left, a 5xx, a crash), its row stays open; the next attempt under the same key,
and `find_post`, first search the account's own recent posts for the same text published since the attempt
started, and adopt a match instead of posting again. A definite refusal (any 4xx) deletes the open row: nothing
was published, so the next attempt starts afresh.

A lease on the open row keeps two processes from sending the same key at the same time.
"""

from __future__ import annotations

import html
import re
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mcp_servers.common import ToolError, enable_wal, sqlite_connect, sqlite_transaction
from mcp_servers.social.accounts import account_dir
from mcp_servers.social.backend import AlreadyReplied, IdempotencyConflict, Platform, iso

# Platform clocks and ours differ a little; search this much before the attempt started.
CLOCK_SLACK_SECONDS = 120.0
_URL = re.compile(r"https?://\S+")

Kind = Literal["post", "reply"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    idempotency_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    reply_to TEXT,
    text TEXT NOT NULL,
    media_id TEXT,
    started_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    post_id TEXT UNIQUE,
    url TEXT,
    created_at TEXT
)
"""


class OutcomeUnknown(ToolError):
    """The request may have reached the platform, but no answer came back: retry under the same key."""

    def __init__(self, message: str) -> None:
        super().__init__(
            "outcome_unknown",
            f"{message}; the post may or may not exist. Retry with the same idempotency_key: "
            "the next attempt looks for it on the platform before posting again",
        )


class MaybePublished(ToolError):
    """The platform refused in a way that suggests the post already exists (X: duplicate content)."""


@dataclass(frozen=True)
class Attempt:
    idempotency_key: str
    kind: Kind
    reply_to: str | None
    text: str
    media_id: str | None
    started_at: float
    lease_until: float
    post_id: str | None
    url: str | None
    created_at: str | None


@dataclass(frozen=True)
class Published:
    post_id: str
    url: str
    created_at: str


def same_text(published: str, intended: str) -> bool:
    """Whether a platform's copy of a post is the text we sent. X returns text HTML-escaped and shortens links
    to t.co, so entities are unescaped and every URL counts as equal to any other."""

    def norm(value: str) -> str:
        value = unicodedata.normalize("NFC", html.unescape(value))
        return " ".join(_URL.sub("<url>", value).split())

    return norm(published) == norm(intended)


class PublishLedger:
    def __init__(
        self,
        data_dir: Path,
        platform: Platform,
        *,
        account: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """One account's ledger: `<data_dir>/accounts/<platform>/<account>-live-ledger.sqlite3`; without an
        account (the environment's unnamed single account), `<data_dir>/<platform>-live-ledger.sqlite3`."""
        folder = data_dir if account is None else account_dir(data_dir, platform)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / (
            f"{platform}-live-ledger.sqlite3" if account is None else f"{account}-live-ledger.sqlite3"
        )
        self._clock = clock
        enable_wal(self.path)
        conn = self._connect()
        try:
            conn.execute(_SCHEMA)
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite_connect(self.path)

    def _transaction(self, *, write: bool) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite_transaction(self.path, write=write)

    @staticmethod
    def _attempt(row: sqlite3.Row | None) -> Attempt | None:
        if row is None:
            return None
        return Attempt(**{k: row[k] for k in row.keys()})  # noqa: SIM118 (sqlite3.Row is not a mapping)

    def get(self, idempotency_key: str) -> Attempt | None:
        with self._transaction(write=False) as conn:
            row = conn.execute("SELECT * FROM attempts WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
            return self._attempt(row)

    def begin(
        self,
        idempotency_key: str,
        kind: Kind,
        reply_to: str | None,
        text: str,
        media_id: str | None,
        lease_seconds: float,
    ) -> tuple[Literal["new", "open", "done"], Attempt]:
        """Record an attempt before it is sent. "open": an earlier attempt's outcome is unknown (search first);
        "done": it was published."""
        now = self._clock()
        with self._transaction(write=True) as conn:
            row = conn.execute("SELECT * FROM attempts WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
            existing = self._attempt(row)
            if existing is None:
                if reply_to is not None:
                    other = conn.execute(
                        "SELECT post_id FROM attempts WHERE reply_to = ? AND post_id IS NOT NULL", (reply_to,)
                    ).fetchone()
                    if other is not None:
                        raise AlreadyReplied(f"{reply_to!r} was already answered by post {other['post_id']!r}")
                conn.execute(
                    "INSERT INTO attempts (idempotency_key, kind, reply_to, text, media_id, started_at, lease_until)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (idempotency_key, kind, reply_to, text, media_id, now, now + lease_seconds),
                )
                row = conn.execute("SELECT * FROM attempts WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
                created = self._attempt(row)
                assert created is not None
                return "new", created
            if existing.kind != kind or existing.reply_to != reply_to:
                raise IdempotencyConflict(
                    f"idempotency_key {idempotency_key!r} was already used for a different operation"
                )
            if existing.post_id is not None:
                return "done", existing
            if existing.lease_until > now:
                raise ToolError(
                    "publish_in_progress",
                    f"another attempt under idempotency_key {idempotency_key!r} is in flight",
                    round(existing.lease_until - now, 3),
                )
            conn.execute(
                "UPDATE attempts SET lease_until = ? WHERE idempotency_key = ?", (now + lease_seconds, idempotency_key)
            )
            return "open", existing

    def complete(self, idempotency_key: str, published: Published) -> Attempt:
        with self._transaction(write=True) as conn:
            conn.execute(
                "UPDATE attempts SET post_id = ?, url = ?, created_at = ?, lease_until = 0"
                " WHERE idempotency_key = ? AND post_id IS NULL",
                (published.post_id, published.url, published.created_at, idempotency_key),
            )
            row = conn.execute("SELECT * FROM attempts WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
            done = self._attempt(row)
            assert done is not None
            return done

    def release(self, idempotency_key: str) -> None:
        """The outcome is unknown: keep the row open, but let the next attempt in at once."""
        with self._transaction(write=True) as conn:
            conn.execute(
                "UPDATE attempts SET lease_until = 0 WHERE idempotency_key = ? AND post_id IS NULL", (idempotency_key,)
            )

    def forget(self, idempotency_key: str) -> None:
        """The platform definitely published nothing: the key starts afresh next time."""
        with self._transaction(write=True) as conn:
            conn.execute("DELETE FROM attempts WHERE idempotency_key = ? AND post_id IS NULL", (idempotency_key,))

    def claimed(self, post_ids: Sequence[str]) -> set[str]:
        """Which of these platform posts the ledger already attributes to some key."""
        if not post_ids:
            return set()
        marks = ",".join("?" * len(post_ids))
        with self._transaction(write=False) as conn:
            rows = conn.execute(f"SELECT post_id FROM attempts WHERE post_id IN ({marks})", list(post_ids)).fetchall()
            return {row["post_id"] for row in rows}

    def replied_to(self) -> set[str]:
        """Mentions and comments answered through this ledger."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT reply_to FROM attempts WHERE reply_to IS NOT NULL AND post_id IS NOT NULL"
            ).fetchall()
            return {row["reply_to"] for row in rows}


def publish_once(
    ledger: PublishLedger,
    idempotency_key: str,
    kind: Kind,
    reply_to: str | None,
    text: str,
    media_id: str | None,
    *,
    lease_seconds: float,
    send: Callable[[], Published],
    search: Callable[[Attempt], list[Published]],
) -> dict[str, Any]:
    """Publish under `idempotency_key` at most once; answers a receipt {post_id, url, duplicate}."""
    state, attempt = ledger.begin(idempotency_key, kind, reply_to, text, media_id, lease_seconds)
    if state == "done":
        return receipt(attempt, duplicate=True)
    try:
        if state == "open":
            adopted = adopt(ledger, attempt, search)
            if adopted is not None:
                return receipt(adopted, duplicate=True)
        try:
            published = send()
        except MaybePublished:
            adopted = adopt(ledger, attempt, search)
            if adopted is not None:
                return receipt(adopted, duplicate=True)
            ledger.forget(idempotency_key)
            raise
    except (OutcomeUnknown, MaybePublished):
        ledger.release(idempotency_key)
        raise
    except ToolError as exc:
        # A definite answer from the platform (or a local refusal) means nothing was published... unless the
        # failure came from the look-up of an open attempt, whose outcome stays unknown.
        if state == "open" or exc.code in ("unavailable", "publish_in_progress"):
            ledger.release(idempotency_key)
        else:
            ledger.forget(idempotency_key)
        raise
    except BaseException:
        ledger.release(idempotency_key)
        raise
    return receipt(ledger.complete(idempotency_key, published), duplicate=False)


def adopt(ledger: PublishLedger, attempt: Attempt, search: Callable[[Attempt], list[Published]]) -> Attempt | None:
    """Look an open attempt up on the platform; record and return it if it was published after all."""
    candidates = search(attempt)
    taken = ledger.claimed([c.post_id for c in candidates])
    for candidate in candidates:
        if candidate.post_id not in taken:
            return ledger.complete(attempt.idempotency_key, candidate)
    return None


def receipt(attempt: Attempt, *, duplicate: bool) -> dict[str, Any]:
    assert attempt.post_id is not None
    return {"post_id": attempt.post_id, "url": attempt.url or "", "duplicate": duplicate}


def post_record(attempt: Attempt, platform: Platform, account: str) -> dict[str, Any]:
    assert attempt.post_id is not None
    return {
        "post_id": attempt.post_id,
        "url": attempt.url or "",
        "platform": platform,
        "account": account,
        "text": attempt.text,
        "reply_to": attempt.reply_to,
        "idempotency_key": attempt.idempotency_key,
        "created_at": attempt.created_at or iso(attempt.started_at),
        "media_id": attempt.media_id,
    }
