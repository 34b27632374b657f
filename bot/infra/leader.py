"""Leader election: one instance per database runs the scheduler and the outbox worker.

On PostgreSQL the leader holds a session advisory lock on a connection of its own; when the
process dies the connection closes, the lock is released and another instance takes over.
SQLite is one process's file, so its only instance leads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

# Any fixed 64-bit numbers, the same for every instance of the bot.
LOCK_KEY = 0x6D61726B6574626F  # "marketbo"
# Held by the one instance connected to Discord's gateway: every interaction reaches the
# gateway's session, so a second connection would answer each command twice.
GATEWAY_LOCK_KEY = LOCK_KEY + 1
LEADER_WORK = "the scheduler and the outbox worker"


class Leadership:
    """Try, hold and check the leader lock for one store URL."""

    def __init__(self, url: str, key: int = LOCK_KEY) -> None:
        self.url = url
        self.key = key
        self.is_postgres = url.startswith("postgresql")
        self._conn: Connection | None = None
        self._engine: Any = None

    def try_acquire(self) -> bool:
        """Blocking: take the lock if free. True when this instance leads."""
        if not self.is_postgres:
            return True
        if self._engine is None:
            self._engine = create_engine(self.url, pool_size=1, max_overflow=0)
        try:
            conn = self._engine.connect()
            result = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            got = bool(result.scalar())
        except Exception as exc:
            log.warning("leader lock unavailable: %s", type(exc).__name__)
            return False
        if not got:
            conn.close()
            return False
        conn.commit()
        self._conn = conn
        return True

    def still_held(self) -> bool:
        """Blocking: the lock connection is alive (a dead one means the lock is gone)."""
        if not self.is_postgres:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:
            self._conn = None
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
                self._conn.close()
            except Exception:
                log.debug("leader lock connection already gone")
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


async def lead_when_elected(
    leadership: Leadership,
    leader_work: Callable[[], Coroutine[Any, Any, None]],
    check_seconds: float = 5.0,
    what: str = LEADER_WORK,
) -> None:
    """Wait to lead, run LEADER_WORK while leading, step down if the lock is lost; forever.

    WHAT names the work in the log (this also elects the one Discord gateway connection).
    """
    try:
        while True:
            if not await asyncio.to_thread(leadership.try_acquire):
                await asyncio.sleep(check_seconds)
                continue
            log.info("this instance leads: running %s", what)
            work = asyncio.create_task(leader_work())
            try:
                while not work.done():
                    await asyncio.wait({work}, timeout=check_seconds)
                    if not work.done() and not await asyncio.to_thread(leadership.still_held):
                        log.warning("lost the leader lock; stepping down")
                        break
            finally:
                finished = work.done()
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
            if finished:
                work.result()  # the leader's work ended on its own: pass on its outcome
                return
    finally:
        await asyncio.to_thread(leadership.release)
