"""The wallet's idempotency ledger: one SQLite file per sandbox dir (specs/mcp/wallet.md).

A row is written, with the signed raw transaction and its hash, BEFORE the transaction is broadcast. A retry
after an unknown outcome finds the row and rebroadcasts the same bytes (same nonce, same hash), so one
idempotency key is never two transfers. The raw transaction is signed data, public once broadcast; no key.

x402 payments (x402_payer.py) have their own table, `x402_payments`, in the same file: they have no raw
transaction of the agent's (a facilitator submits the agent's signed authorization), so no `transfers` row fits.
`CREATE TABLE IF NOT EXISTS` adds it to a ledger file from before x402 without touching `transfers`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp_servers.common import enable_wal, sqlite_transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    to_address TEXT NOT NULL,
    amount TEXT NOT NULL,
    asset TEXT NOT NULL,
    reference TEXT,
    memo TEXT,
    nonce INTEGER NOT NULL,
    tx_hash TEXT NOT NULL UNIQUE,
    raw_tx BLOB NOT NULL,
    status TEXT NOT NULL,
    block_number INTEGER,
    created_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, idempotency_key)
)
"""

# An x402 payment: the request (url, max_amount, pay_to), the signed authorization sent (payment_header, the
# PAYMENT-SIGNATURE value: signed data, no key) with its EIP-3009 nonce, and once settled the tx and the body.
_X402_SCHEMA = """
CREATE TABLE IF NOT EXISTS x402_payments (
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    url TEXT NOT NULL,
    max_amount TEXT NOT NULL,
    pay_to TEXT NOT NULL,
    amount TEXT NOT NULL,
    asset TEXT NOT NULL,
    token TEXT NOT NULL,
    network TEXT NOT NULL,
    sender TEXT NOT NULL,
    auth_nonce TEXT NOT NULL,
    valid_before INTEGER NOT NULL,
    payment_header TEXT NOT NULL,
    from_block INTEGER NOT NULL,
    status TEXT NOT NULL,
    tx_hash TEXT,
    block_number INTEGER,
    content_type TEXT,
    body TEXT,
    content_lost INTEGER NOT NULL,
    error TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, agent_id, idempotency_key)
)
"""


@dataclass(frozen=True)
class Entry:
    """One ledger row. `amount` is stored as text: token units can exceed SQLite's 64-bit integers."""

    tenant_id: str
    agent_id: str
    idempotency_key: str
    kind: str
    sender: str
    to_address: str
    amount: int
    asset: str
    reference: str | None
    memo: str | None
    nonce: int
    tx_hash: str
    raw_tx: bytes
    status: str
    block_number: int | None
    created_at: float

    def same_request(self, kind: str, to_address: str, amount: int, reference: str | None, memo: str | None) -> bool:
        return (self.kind, self.to_address, self.amount, self.reference, self.memo) == (
            kind,
            to_address,
            amount,
            reference,
            memo,
        )


@dataclass(frozen=True)
class X402Entry:
    """One x402 payment. `status`: pending (sent or about to be, outcome unknown), confirmed (the authorization
    is used on chain, `tx_hash` is its settlement), refused (the resource said 402 and the chain shows the
    authorization unused: nothing moved, a retry may pay)."""

    tenant_id: str
    agent_id: str
    idempotency_key: str
    url: str
    max_amount: int
    pay_to: str
    amount: int
    asset: str
    token: str
    network: str
    sender: str
    auth_nonce: str
    valid_before: int
    payment_header: str
    from_block: int
    status: str
    tx_hash: str | None
    block_number: int | None
    content_type: str | None
    body: str | None
    content_lost: bool
    error: str | None
    created_at: float

    def same_request(self, url: str, max_amount: int, pay_to: str) -> bool:
        return (self.url, self.max_amount, self.pay_to) == (url, max_amount, pay_to)


def _x402_entry(row: sqlite3.Row) -> X402Entry:
    values = dict(row)
    for name in ("max_amount", "amount"):
        values[name] = int(values[name])
    values["content_lost"] = bool(values["content_lost"])
    return X402Entry(**values)


def _entry(row: sqlite3.Row) -> Entry:
    values = dict(row)
    values["amount"] = int(values["amount"])
    values["raw_tx"] = bytes(values["raw_tx"])
    return Entry(**values)


class Ledger:
    """The ledger file at `path` (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        enable_wal(path)
        with sqlite_transaction(path, write=True) as conn:
            conn.execute(_SCHEMA)
            conn.execute(_X402_SCHEMA)

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: lookup, nonce choice and insert are atomic across server processes."""
        with sqlite_transaction(self.path, write=True) as conn:
            yield conn

    @staticmethod
    def find(conn: sqlite3.Connection, tenant_id: str, agent_id: str, key: str) -> Entry | None:
        row = conn.execute(
            "SELECT * FROM transfers WHERE tenant_id = ? AND agent_id = ? AND idempotency_key = ?",
            (tenant_id, agent_id, key),
        ).fetchone()
        return None if row is None else _entry(row)

    @staticmethod
    def highest_unmined_nonce(conn: sqlite3.Connection, sender: str) -> int | None:
        row = conn.execute(
            "SELECT MAX(nonce) AS n FROM transfers WHERE sender = ? AND status = 'pending'", (sender,)
        ).fetchone()
        return None if row["n"] is None else int(row["n"])

    @staticmethod
    def insert(conn: sqlite3.Connection, entry: Entry) -> None:
        conn.execute(
            "INSERT INTO transfers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.tenant_id,
                entry.agent_id,
                entry.idempotency_key,
                entry.kind,
                entry.sender,
                entry.to_address,
                str(entry.amount),
                entry.asset,
                entry.reference,
                entry.memo,
                entry.nonce,
                entry.tx_hash,
                entry.raw_tx,
                entry.status,
                entry.block_number,
                entry.created_at,
            ),
        )

    def get(self, tenant_id: str, agent_id: str, *, key: str | None = None, tx_hash: str | None = None) -> Entry | None:
        """This agent's entry by idempotency key or by transaction hash (another agent's is never found)."""
        column, value = ("idempotency_key", key) if key is not None else ("tx_hash", (tx_hash or "").lower())
        with sqlite_transaction(self.path, write=False) as conn:
            row = conn.execute(
                f"SELECT * FROM transfers WHERE tenant_id = ? AND agent_id = ? AND {column} = ?",
                (tenant_id, agent_id, value),
            ).fetchone()
        return None if row is None else _entry(row)

    def unmined_before(self, sender: str, nonce: int) -> list[Entry]:
        """The sender's signed, not yet mined transfers with a lower nonce, lowest first."""
        with sqlite_transaction(self.path, write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM transfers WHERE sender = ? AND status = 'pending' AND nonce < ? ORDER BY nonce",
                (sender, nonce),
            ).fetchall()
        return [_entry(r) for r in rows]

    def recent(self, tenant_id: str, agent_id: str, limit: int) -> list[Entry]:
        with sqlite_transaction(self.path, write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM transfers WHERE tenant_id = ? AND agent_id = ? ORDER BY created_at DESC, nonce DESC "
                "LIMIT ?",
                (tenant_id, agent_id, limit),
            ).fetchall()
        return [_entry(r) for r in rows]

    def set_tx_hash(self, tenant_id: str, agent_id: str, key: str, tx_hash: str) -> None:
        """A backend whose signer answers with the hash (CDP) records it once known, in place of its placeholder."""
        with sqlite_transaction(self.path, write=True) as conn:
            conn.execute(
                "UPDATE transfers SET tx_hash = ? WHERE tenant_id = ? AND agent_id = ? AND idempotency_key = ?",
                (tx_hash.lower(), tenant_id, agent_id, key),
            )

    def forget(self, tenant_id: str, agent_id: str, key: str) -> None:
        """Drop a pending row whose only send was refused outright: nothing was sent, and its nonce is free again."""
        with sqlite_transaction(self.path, write=True) as conn:
            conn.execute(
                "DELETE FROM transfers WHERE tenant_id = ? AND agent_id = ? AND idempotency_key = ? "
                "AND status = 'pending'",
                (tenant_id, agent_id, key),
            )

    def set_status(self, tx_hash: str, status: str, block_number: int | None) -> None:
        with sqlite_transaction(self.path, write=True) as conn:
            conn.execute(
                "UPDATE transfers SET status = ?, block_number = ? WHERE tx_hash = ?", (status, block_number, tx_hash)
            )

    # -- x402 payments ---------------------------------------------------------------------------------

    @staticmethod
    def key_used(conn: sqlite3.Connection, tenant_id: str, agent_id: str, key: str) -> str | None:
        """Which table already holds this agent's key ("transfers" or "x402_payments"), if any: one key, one
        payment, whatever its kind."""
        for table in ("transfers", "x402_payments"):
            found = conn.execute(
                f"SELECT 1 FROM {table} WHERE tenant_id = ? AND agent_id = ? AND idempotency_key = ?",
                (tenant_id, agent_id, key),
            ).fetchone()
            if found is not None:
                return table
        return None

    @staticmethod
    def find_x402(conn: sqlite3.Connection, tenant_id: str, agent_id: str, key: str) -> X402Entry | None:
        row = conn.execute(
            "SELECT * FROM x402_payments WHERE tenant_id = ? AND agent_id = ? AND idempotency_key = ?",
            (tenant_id, agent_id, key),
        ).fetchone()
        return None if row is None else _x402_entry(row)

    @staticmethod
    def insert_x402(conn: sqlite3.Connection, entry: X402Entry) -> None:
        values = _x402_values(entry)
        conn.execute(
            f"INSERT INTO x402_payments ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            tuple(values.values()),
        )

    def save_x402(self, entry: X402Entry) -> None:
        """Rewrite the entry's row (same tenant, agent and key) with its new state."""
        values = _x402_values(entry)
        with sqlite_transaction(self.path, write=True) as conn:
            conn.execute(
                f"UPDATE x402_payments SET {', '.join(f'{k} = ?' for k in values)} "
                "WHERE tenant_id = ? AND agent_id = ? AND idempotency_key = ?",
                (*values.values(), entry.tenant_id, entry.agent_id, entry.idempotency_key),
            )

    def get_x402(
        self, tenant_id: str, agent_id: str, *, key: str | None = None, tx_hash: str | None = None
    ) -> X402Entry | None:
        column, value = ("idempotency_key", key) if key is not None else ("tx_hash", (tx_hash or "").lower())
        with sqlite_transaction(self.path, write=False) as conn:
            row = conn.execute(
                f"SELECT * FROM x402_payments WHERE tenant_id = ? AND agent_id = ? AND {column} = ?",
                (tenant_id, agent_id, value),
            ).fetchone()
        return None if row is None else _x402_entry(row)

    def recent_x402(self, tenant_id: str, agent_id: str, limit: int) -> list[X402Entry]:
        with sqlite_transaction(self.path, write=False) as conn:
            rows = conn.execute(
                "SELECT * FROM x402_payments WHERE tenant_id = ? AND agent_id = ? ORDER BY created_at DESC LIMIT ?",
                (tenant_id, agent_id, limit),
            ).fetchall()
        return [_x402_entry(r) for r in rows]


def _x402_values(entry: X402Entry) -> dict[str, Any]:
    values = dict(entry.__dict__)
    for name in ("max_amount", "amount"):
        values[name] = str(values[name])  # token units can exceed SQLite's 64-bit integers
    values["content_lost"] = int(entry.content_lost)
    return values


def now() -> float:
    return time.time()
