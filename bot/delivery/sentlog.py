"""The sent-log: the one place that says whether a delivery is "sent", "unknown" or "new".

Before a post goes out its attempt is noted durably; after it, the platform's message id is
recorded. An attempt with no message recorded is "unknown": a crash or a dropped connection
came between, so the worker looks for its own post in the channel before posting again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.delivery.tables import DeliveryAttemptRow, SentRow
from bot.infra.store import Store

# (alert id, platform, channel): one delivery.
Target = tuple[str, str, str]
T = TypeVar("T")
R = TypeVar("R")


def start_many(store: Store, targets: Sequence[Target], at: datetime) -> dict[Target, str]:
    """Per target "sent" (it has its message), "unknown" (a post was started and never
    recorded: look for it before posting again) or "new" (noted as started now), in one
    transaction for them all."""
    wanted = list(dict.fromkeys(targets))
    if not wanted:
        return {}
    key = tuple_(SentRow.alert_id, SentRow.platform, SentRow.channel)
    with store.session() as s:
        sent = {
            (a, p, c)
            for a, p, c in s.execute(
                select(SentRow.alert_id, SentRow.platform, SentRow.channel).where(key.in_(wanted))
            )
        }
        fresh = [t for t in wanted if t not in sent]
        new = _note_attempts(store, s, fresh, at) if fresh else set()
    return {t: "sent" if t in sent else "new" if t in new else "unknown" for t in wanted}


def _note_attempts(store: Store, s: Session, targets: list[Target], at: datetime) -> set[Target]:
    """Insert attempt rows for TARGETS where none exist; returns the targets inserted."""
    rows = [{"alert_id": a, "platform": p, "channel": c, "started_at": at} for a, p, c in targets]
    insert = sqlite_insert if store.engine.dialect.name == "sqlite" else pg_insert
    statement = (
        insert(DeliveryAttemptRow)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(
            DeliveryAttemptRow.alert_id, DeliveryAttemptRow.platform, DeliveryAttemptRow.channel
        )
    )
    return {(a, p, c) for a, p, c in s.execute(statement)}


def record_in(s: Session, target: Target, message_id: str, at: datetime) -> None:
    """Remember the platform message that carried TARGET's alert (idempotent; an empty id
    never overwrites a known one)."""
    row = s.get(SentRow, target)
    if row is None:
        alert_id, platform, channel = target
        s.add(
            SentRow(
                alert_id=alert_id, platform=platform, channel=channel, message_id=message_id, at=at
            )
        )
    else:
        row.message_id = message_id or row.message_id


def was_sent(store: Store, alert_id: str, platform: str, channel: str) -> bool:
    """True when this alert already has a message in this channel."""
    with store.session() as s:
        return s.get(SentRow, (alert_id, platform, channel)) is not None


def message_id(store: Store, alert_id: str, platform: str, channel: str) -> str | None:
    """The platform id of the message that carried ALERT_ID to CHANNEL, if any."""
    with store.session() as s:
        row = s.get(SentRow, (alert_id, platform, channel))
        return row.message_id if row else None


class Coalescing(Generic[T, R]):
    """A blocking batch call (run in a thread) that concurrent callers share: those that call
    at the same moment (a fan-out) go in one batch, so a burst is not spread out by one
    database commit per message. RUN returns one result per item, in order."""

    def __init__(self, run: Callable[[list[T]], Sequence[R]]) -> None:
        self._run = run
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the other callers of this moment queue theirs
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await asyncio.to_thread(self._run, [item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class SentLog:
    """start_many for concurrent sends, which share one transaction (see Coalescing)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._start: Coalescing[tuple[Target, datetime], str] = Coalescing(self._start_all)

    async def start(self, target: Target, at: datetime) -> str:
        return await self._start((target, at))

    def _start_all(self, asked: list[tuple[Target, datetime]]) -> list[str]:
        states = start_many(self.store, [t for t, _ in asked], asked[0][1])
        return [states[t] for t, _ in asked]
