"""Delivery outbox: alerts and per-channel rows written before sending, then sent by a worker.

A crash between the write and the send loses nothing (the worker resumes pending rows on
start); a crash between the send and the "sent" mark is covered by the adapters: each notes
an attempt before posting, and a retry of an attempt whose outcome is unknown first looks
for the bot's own post in the channel's history (the alert id in the Discord embed footer,
in the Slack message metadata) and records it instead of posting again; Discord's nonce
covers the first minutes too. Rows are claimed with
`SELECT ... FOR UPDATE SKIP LOCKED` and a lease, so several workers never send one row twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import socket
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update

from bot.app import AppContext
from bot.delivery.pacing import Pacer, default_pacers
from bot.infra.store import OutboxAlertRow, OutboxRow, Store
from handlers.models import Alert, Delivery
from handlers.render import Message, render_alert

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OutboxPolicy:
    """How hard to try: lease on a claimed row, retry backoff, and when to give up."""

    lease: timedelta = timedelta(seconds=60)
    first_retry: timedelta = timedelta(seconds=2)
    max_retry: timedelta = timedelta(minutes=10)
    max_attempts: int = 8
    batch: int = 100
    concurrency: int = 20


@dataclass(frozen=True)
class Claimed:
    row_id: int
    alert_id: str
    platform: str
    channel: str
    attempts: int


def enqueue(store: Store, deliveries: Sequence[Delivery], now: datetime) -> int:
    """Record the alert log and write outbox rows, all in one transaction. Returns rows added."""
    added = 0
    with store.session() as s:
        store.record_in(s, deliveries)
        for delivery in deliveries:
            alert = delivery.alert
            if s.get(OutboxAlertRow, alert.id) is None:
                payload = pickle.dumps((alert, render_alert(alert)), protocol=5)
                s.add(OutboxAlertRow(alert_id=alert.id, created_at=now, payload=payload))
                s.flush()
            # One query for the rows this alert already has: a 1,000-channel fan-out must not
            # cost 1,000 round trips.
            rows = s.execute(
                select(OutboxRow.platform, OutboxRow.channel).where(OutboxRow.alert_id == alert.id)
            )
            have = {(platform, channel) for platform, channel in rows}
            for dest in delivery.destinations:
                if (dest.platform, dest.channel) in have:
                    continue
                have.add((dest.platform, dest.channel))
                s.add(
                    OutboxRow(
                        alert_id=alert.id,
                        platform=dest.platform,
                        channel=dest.channel,
                        next_attempt_at=now,
                    )
                )
                added += 1
    return added


def claim(
    store: Store,
    worker: str,
    now: datetime,
    policy: OutboxPolicy,
    platforms: Collection[str] | None = None,
) -> list[Claimed]:
    """Take up to a batch of due rows that nobody holds, under a lease (only rows for
    PLATFORMS when given: the others stay pending for an instance that runs them).

    Candidates are locked with SKIP LOCKED where the database has it (PostgreSQL); the
    conditional update with a one-off token makes the claim atomic on SQLite too.
    """
    token = f"{worker[:40]}:{uuid.uuid4().hex[:16]}"
    free = or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now)
    with store.session() as s:
        due = [OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now, free]
        if platforms is not None:
            due.append(OutboxRow.platform.in_(sorted(platforms)))
        candidates = (
            select(OutboxRow.id)
            .where(*due)
            .order_by(OutboxRow.id)
            .limit(policy.batch)
            .with_for_update(skip_locked=True)
        )
        ids = list(s.scalars(candidates))
        if not ids:
            return []
        s.execute(
            update(OutboxRow)
            .where(OutboxRow.id.in_(ids), OutboxRow.status == "pending", free)
            .values(claimed_until=now + policy.lease, claimed_by=token)
        )
        rows = s.scalars(select(OutboxRow).where(OutboxRow.claimed_by == token))
        return [Claimed(r.id, r.alert_id, r.platform, r.channel, r.attempts) for r in rows]


def release_claims(store: Store) -> int:
    """Free every pending row's lease: called by a new leader, whose predecessor is gone."""
    with store.session() as s:
        result = s.execute(
            update(OutboxRow)
            .where(OutboxRow.status == "pending", OutboxRow.claimed_until.is_not(None))
            .values(claimed_until=None, claimed_by="")
        )
        return int(getattr(result, "rowcount", 0) or 0)


def load_payload(store: Store, alert_id: str) -> tuple[Alert, Message] | None:
    with store.session() as s:
        row = s.get(OutboxAlertRow, alert_id)
        if row is None:
            return None
        try:
            alert, message = pickle.loads(row.payload)
        except Exception as exc:  # written by another version of the bot
            log.error("outbox alert %s cannot be read (%s)", alert_id, exc)
            return None
        return alert, message


def mark_sent(store: Store, row_id: int, now: datetime) -> None:
    with store.session() as s:
        row = s.get(OutboxRow, row_id)
        if row is not None:
            row.status, row.sent_at, row.claimed_until = "sent", now, None
            row.attempts += 1


def mark_failed(store: Store, row_id: int, error: str, now: datetime, policy: OutboxPolicy) -> str:
    """Schedule a retry with backoff, or give up after max_attempts; returns the new status."""
    with store.session() as s:
        row = s.get(OutboxRow, row_id)
        if row is None:
            return "gone"
        row.attempts += 1
        row.last_error = error[:500]
        row.claimed_until = None
        if row.attempts >= policy.max_attempts:
            row.status = "failed"
        else:
            delay = min(policy.first_retry * 2 ** (row.attempts - 1), policy.max_retry)
            row.next_attempt_at = now + delay
        return row.status


@dataclass
class OutboxWorker:
    """Sends claimed rows through the platform notifiers; one per leader process.

    Each send first waits for its turn in the platform's pacer (none for other platforms), so
    a fan-out goes out just under the platform's global and per-channel limits.
    """

    ctx: AppContext
    policy: OutboxPolicy = field(default_factory=OutboxPolicy)
    clock: Clock = wall_clock
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}")
    pacers: Mapping[str, Pacer] = field(default_factory=default_pacers)
    # Only these platforms' rows are claimed (None: all); set to the platforms this run serves.
    platforms: frozenset[str] | None = None
    sent: int = 0
    failed: int = 0
    last_error: str | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        """New rows were written: send them now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim and send one batch; returns how many rows were handled."""
        store = self.ctx.store
        claimed = await asyncio.to_thread(
            claim, store, self.name, self.clock(), self.policy, self.platforms
        )
        if not claimed:
            return 0
        payloads: dict[str, tuple[Alert, Message] | None] = {}
        for row in claimed:
            if row.alert_id not in payloads:
                payloads[row.alert_id] = await asyncio.to_thread(load_payload, store, row.alert_id)
        limit = asyncio.Semaphore(self.policy.concurrency)

        async def send(row: Claimed) -> None:
            pacer = self.pacers.get(row.platform)
            if pacer is not None:
                await pacer.key_ready(row.channel)  # a busy channel must not hold a slot
            async with limit:
                await self._send(row, payloads[row.alert_id])

        await asyncio.gather(*(send(r) for r in claimed))
        return len(claimed)

    async def _send(self, row: Claimed, payload: tuple[Alert, Message] | None) -> None:
        store = self.ctx.store
        notifier = self.ctx.notifiers.get(row.platform)
        if payload is None or notifier is None:
            why = "alert payload unreadable" if payload is None else f"no {row.platform} adapter"
            await self._failed(row, why)
            return
        alert, message = payload
        pacer = self.pacers.get(row.platform)
        if pacer is not None:
            await pacer.acquire(row.channel)
        try:
            await notifier.deliver(alert, message, [row.channel])
        except Exception as exc:
            await self._failed(row, f"{type(exc).__name__}: {exc}")
            return
        await asyncio.to_thread(mark_sent, store, row.row_id, self.clock())
        self.sent += 1

    async def _failed(self, row: Claimed, error: str) -> None:
        status = await asyncio.to_thread(
            mark_failed, self.ctx.store, row.row_id, error, self.clock(), self.policy
        )
        self.last_error = error
        if status == "failed":
            self.failed += 1
            log.error(
                "gave up on alert %s to %s:%s after %d attempts: %s",
                row.alert_id,
                row.platform,
                row.channel,
                row.attempts + 1,
                error,
            )
        else:
            log.warning(
                "alert %s to %s:%s failed (%s); will retry",
                row.alert_id,
                row.platform,
                row.channel,
                error,
            )

    async def run_forever(self, idle_seconds: float = 1.0) -> None:
        """Send until cancelled; sleeps when there is nothing due, wakes on new rows."""
        while True:
            try:
                handled = await self.run_once()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("outbox worker error")
                handled = 0
            if handled:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), idle_seconds)
