"""The images ledger: one SQLite file, `<sandbox_dir>/images.sqlite3`, shared by every images server process.

It makes `generate_image` idempotent and bills each key once: a call first reserves its idempotency key
(a "pending" row, inside a `BEGIN IMMEDIATE` transaction, so two processes cannot both reserve it), then
generates outside the transaction, then completes the row with the result. A second call with the key gets
the stored result; one arriving while the first is still generating waits for it. A reservation whose process
died is taken over at once when that process is known to be gone (same host, its pid no longer exists), and
otherwise once it is older than `stale_after_seconds`.

It also keeps the sandbox's per-account sliding-window rate limit, checked in the same transaction.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcp_servers.common import ToolError, check_rate, enable_wal, sqlite_connect, sqlite_transaction

LEDGER_FILE = "images.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    idempotency_key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    account TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done')),
    reserved_at REAL NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    completed_at REAL,
    media_id TEXT,
    cost_usd REAL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS generations_done ON generations (status, completed_at);
-- Sliding-window log of generations per account, pruned as the window moves.
CREATE TABLE IF NOT EXISTS rate_events (
    account TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_events_account_at ON rate_events (account, at);
"""


class IdempotencyConflict(ToolError):
    def __init__(self, message: str) -> None:
        super().__init__("idempotency_conflict", message)


@dataclass(frozen=True)
class Pending:
    """Another call holds the key and is still generating."""

    reserved_at: float


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_gone(owner: str) -> bool:
    """True only when the reserving process certainly no longer exists (it ran on this host)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: an existence check, nothing is sent
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists but is not ours to signal
    return False


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Ledger:
    def __init__(
        self,
        sandbox_dir: Path,
        *,
        account: str,
        rate_limit: int | None,
        rate_window_seconds: float,
        stale_after_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate_limit is not None and rate_limit < 1:
            raise ValueError("the rate limit must allow at least one image per window")
        if rate_window_seconds <= 0:
            raise ValueError("the rate window must be positive")
        self.account = account
        self.rate_limit = rate_limit  # None: no local limit (the live service enforces its own)
        self.rate_window_seconds = rate_window_seconds
        self.stale_after_seconds = stale_after_seconds
        self._clock = clock
        sandbox_dir.mkdir(parents=True, exist_ok=True)
        self.path = sandbox_dir / LEDGER_FILE
        enable_wal(self.path)  # readers never block the one writer
        with self._transaction() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        return sqlite_connect(self.path)

    def _transaction(self, *, write: bool = True) -> AbstractContextManager[sqlite3.Connection]:
        return sqlite_transaction(self.path, write=write)

    def reserve(self, key: str, fingerprint: str, precheck: Callable[[], None]) -> dict[str, Any] | Pending | None:
        """The stored result if `key` already generated, Pending if another call is generating under it, or
        None once the key is reserved for this call (after `precheck` and the rate limit passed)."""
        with self._transaction() as conn:
            row = conn.execute("SELECT * FROM generations WHERE idempotency_key = ?", (key,)).fetchone()
            now = self._clock()
            if row is not None:
                # Checked before the rules and the rate limit, so a retry after success always succeeds.
                if row["fingerprint"] != fingerprint:
                    raise IdempotencyConflict(f"idempotency_key {key!r} was already used for a different image request")
                if row["status"] == "done":
                    result: dict[str, Any] = json.loads(row["result"])
                    return result
                # A host that times out ends the stdio child mid-call; its reservation must not block retries.
                stale = now - row["reserved_at"] >= self.stale_after_seconds or _owner_gone(row["owner"])
                if not stale:
                    return Pending(row["reserved_at"])
            precheck()
            self._check_rate(conn, now)
            conn.execute(
                "INSERT OR REPLACE INTO generations (idempotency_key, fingerprint, account, status, reserved_at, owner)"
                " VALUES (?, ?, ?, 'pending', ?, ?)",
                (key, fingerprint, self.account, now, process_owner()),
            )
            if self.rate_limit is not None:
                conn.execute("INSERT INTO rate_events (account, at) VALUES (?, ?)", (self.account, now))
            return None

    def complete(self, key: str, result: dict[str, Any], *, media_id: str, cost_usd: float) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE generations SET status = 'done', completed_at = ?, media_id = ?, cost_usd = ?, result = ?"
                " WHERE idempotency_key = ?",
                (self._clock(), media_id, cost_usd, json.dumps(result), key),
            )

    def release(self, key: str) -> None:
        """Give a reservation back after a failed generation, so the key can be retried."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM generations WHERE idempotency_key = ? AND status = 'pending'", (key,))

    def _check_rate(self, conn: sqlite3.Connection, now: float) -> None:
        if self.rate_limit is not None:
            check_rate(conn, self.account, self.rate_limit, self.rate_window_seconds, now, "generate images")

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """Completed generations, newest first, each its result plus idempotency_key and created_at."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT idempotency_key, completed_at, result FROM generations WHERE status = 'done'"
                " ORDER BY completed_at DESC, rowid DESC LIMIT ?",
                (max(limit, 0),),
            ).fetchall()
        items = []
        for row in rows:
            result = json.loads(row["result"])
            result.pop("duplicate", None)
            items.append({**result, "idempotency_key": row["idempotency_key"], "created_at": _iso(row["completed_at"])})
        return items

    def usage(self) -> dict[str, Any]:
        now = self._clock()
        with self._transaction(write=False) as conn:
            totals = conn.execute(
                "SELECT COUNT(*) AS n, COALESCE(SUM(cost_usd), 0) AS cost FROM generations"
                " WHERE status = 'done' AND account = ?",
                (self.account,),
            ).fetchone()
            in_window = conn.execute(
                "SELECT COUNT(*) AS n FROM rate_events WHERE account = ? AND at > ?",
                (self.account, now - self.rate_window_seconds),
            ).fetchone()
        return {
            "account": self.account,
            "images_generated": int(totals["n"]),
            "estimated_cost_usd": round(float(totals["cost"]), 4),
            "rate_limit": self.rate_limit,
            "rate_window_seconds": self.rate_window_seconds if self.rate_limit is not None else None,
            "used_in_window": int(in_window["n"]) if self.rate_limit is not None else None,
        }
