"""The stop gate: no post or payment goes out once a stop is recorded, not even one already under way.

A publish (or a payment) holds the gate shared from its last check of the stops until the platform has
answered; recording a stop takes it exclusive, so the stop waits for the sends already past their check and
every later send sees the stop. "After the stop" is therefore exact: nothing is sent after the stop's record.

PostgreSQL: a transaction-scoped advisory lock (shared / exclusive) on one key. SQLite (one machine): flock on
a file beside the database, shared / exclusive, across threads and processes alike.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from chimera.db.engine import Database, lock_key

GATE = "chimera-stop-gate"
STOP_WAIT_SECONDS = 30.0  # a stop waits at most this long for sends in flight (a publish's own timeout)


class GateBusy(Exception):
    """Sends in flight did not finish within the wait; the stop is recorded anyway and says so."""


def gate_file(db: Database) -> Path | None:
    """The lock file of a SQLite database (None on PostgreSQL)."""
    if db.dialect != "sqlite":
        return None
    database = db.engine.url.database or "chimera.db"
    return Path(database).with_suffix(".stop-gate")


@asynccontextmanager
async def held_shared(db: Database, check: Callable[[Session], None]) -> AsyncIterator[None]:
    """Hold the gate shared while the block sends; `check` (run under the gate) raises to refuse the send."""
    path = gate_file(db)
    if path is not None:
        handle = await asyncio.to_thread(_flock, path, fcntl.LOCK_SH, None)
        try:
            await asyncio.to_thread(_check_once, db, check)
            yield
        finally:
            handle.close()  # closing the file releases the flock
        return
    holder = _PgShared(db, check)
    await asyncio.to_thread(holder.enter)
    try:
        yield
    finally:
        await asyncio.to_thread(holder.exit)


@contextmanager
def held_exclusive(db: Database, wait_seconds: float | None = None) -> Iterator[Callable[[Session], bool]]:
    """For recording a stop: `with held_exclusive(db) as lock, db.transaction(...) as s: quiet = lock(s)`.

    `lock(s)` waits (at most `wait_seconds`) for sends in flight and says whether they all finished. On SQLite
    the file lock is taken before the write transaction begins: a send in flight may still write its audit
    entry, which needs the database's write lock."""
    wait = STOP_WAIT_SECONDS if wait_seconds is None else wait_seconds
    path = gate_file(db)
    if path is not None:
        try:
            handle: IO[bytes] | None = _flock(path, fcntl.LOCK_EX, wait)
        except GateBusy:
            handle = None
        try:
            yield lambda _session: handle is not None
        finally:
            if handle is not None:
                handle.close()
        return
    yield lambda session: _pg_exclusive(session, wait)


def _pg_exclusive(session: Session, wait_seconds: float) -> bool:
    session.execute(text(f"SET LOCAL lock_timeout = '{int(wait_seconds * 1000)}ms'"))
    try:
        with session.begin_nested():
            session.execute(select(func.pg_advisory_xact_lock(lock_key(GATE))))
        acquired = True
    except OperationalError as exc:  # lock_not_available: the savepoint rolled back, the transaction goes on
        if "lock" not in str(exc).lower():
            raise
        acquired = False
    session.execute(text("SET LOCAL lock_timeout = 0"))
    return acquired


def _check_once(db: Database, check: Callable[[Session], None]) -> None:
    from chimera.db.mcp import PLATFORM_TENANT

    with db.transaction(PLATFORM_TENANT, write=False) as s:
        check(s)


class _PgShared:
    """A platform transaction kept open (on a worker thread) while the send runs, holding the shared lock."""

    def __init__(self, db: Database, check: Callable[[Session], None]) -> None:
        self._db, self._check = db, check
        self._cm: AbstractContextManager[Session] | None = None

    def enter(self) -> None:
        from chimera.db.mcp import PLATFORM_TENANT

        cm = self._db.transaction(PLATFORM_TENANT, write=False)
        session = cm.__enter__()
        try:
            session.execute(select(func.pg_advisory_xact_lock_shared(lock_key(GATE))))
            self._check(session)
        except BaseException as exc:
            cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._cm = cm

    def exit(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)


def _flock(path: Path, mode: int, wait_seconds: float | None) -> IO[bytes]:
    handle = open(path, "ab")  # noqa: SIM115  # the open file is the lock; closed by the caller
    os.chmod(path, 0o600)
    if wait_seconds is None:
        fcntl.flock(handle, mode)
        return handle
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise GateBusy(f"sends still in flight after {wait_seconds:g}s") from None
            time.sleep(0.05)
