"""Delivery: every alert is written as outbox rows (alert x channel), then a worker sends them.

This is the only way an alert reaches a channel (live runs, `marketbot replay`, tests): a
crash between the write and the send loses nothing (the worker resumes pending rows on
start). The worker owns the sent-log (bot.delivery.sentlog): it notes each attempt before
posting, and a retry of an attempt whose outcome is unknown first asks the notifier to find
its own post in the channel (the key in the Discord embed footer, in the Slack message
metadata) and records it instead of posting again; Discord's nonce covers the first minutes
too. Rows are claimed with `SELECT ... FOR UPDATE SKIP LOCKED` and a lease, so several
workers never send one row twice. Payloads are versioned JSON (bot.delivery.payload).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlalchemy import func, or_, select, update

from bot.app import AppContext, Finder, MultiPart, Notifier
from bot.charts import draw_chart
from bot.delivery import sentlog
from bot.delivery.pacing import Pacer, default_pacers
from bot.delivery.payload import PayloadError, decode, encode
from bot.delivery.tables import OutboxAlertRow, OutboxRow
from bot.infra.store import Store
from handlers.models import Alert, Delivery
from handlers.render import Message, render_alert

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Blocking (run in a thread): an alert's chart as PNG bytes, or None when there is none.
ChartDrawer = Callable[[Alert], bytes | None]
Payload = tuple[Alert, Message]


def wall_clock() -> datetime:
    return datetime.now(UTC)


def delivery_key(alert_id: str) -> str:
    """The idempotency key a notifier sends under (Discord's nonce seed and embed footer,
    Slack's message metadata): the alert id, which with the channel names one delivery."""
    return alert_id


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
                payload = encode(alert, render_alert(alert))
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


def load_payload(store: Store, alert_id: str) -> Payload | str:
    """The alert and message of ALERT_ID, or why they cannot be read (logged)."""
    with store.session() as s:
        row = s.get(OutboxAlertRow, alert_id)
        if row is None:
            return "alert payload missing"
        payload = row.payload
    try:
        alert, message = decode(payload)
    except PayloadError as exc:
        log.error("outbox alert %s cannot be read: %s", alert_id, exc)
        return f"alert payload unreadable: {exc}"
    if alert.id != alert_id:
        log.error("outbox alert %s holds alert %s", alert_id, alert.id)
        return f"alert payload unreadable: it holds alert {alert.id}"
    return alert, message


def stored_alert(store: Store, alert_id: str) -> Alert | None:
    """The alert of an outbox row, or None (for notifiers that print the whole alert)."""
    payload = load_payload(store, alert_id)
    return None if isinstance(payload, str) else payload[0]


# (outbox row id, delivery, platform message id, when): one post that went out.
Sent = tuple[int, sentlog.Target, str, datetime]


def mark_sent(store: Store, done: Sequence[Sent]) -> None:
    """Each row is done and the sent-log has its message: one transaction for the batch."""
    with store.session() as s:
        for row_id, target, message_id, now in done:
            sentlog.record_in(s, target, message_id, now)
            row = s.get(OutboxRow, row_id)
            if row is not None:
                row.status, row.sent_at, row.claimed_until = "sent", now, None
                row.attempts += 1


def mark_failed(
    store: Store,
    row_id: int,
    error: str,
    now: datetime,
    policy: OutboxPolicy,
    give_up: bool = False,
) -> str:
    """Schedule a retry with backoff, or give up (after max_attempts, or at once when GIVE_UP:
    a retry cannot help); returns the new status."""
    with store.session() as s:
        row = s.get(OutboxRow, row_id)
        if row is None:
            return "gone"
        row.attempts += 1
        row.last_error = error[:500]
        row.claimed_until = None
        if give_up or row.attempts >= policy.max_attempts:
            row.status = "failed"
        else:
            delay = min(policy.first_retry * 2 ** (row.attempts - 1), policy.max_retry)
            row.next_attempt_at = now + delay
        return row.status


@dataclass
class OutboxWorker:
    """Sends claimed rows through the platform notifiers; one per leader process (or one for
    a replay). It owns the sent-log, on its one clock, and draws each alert's chart once.

    Each send first waits for its turn in the platform's pacer (none for other platforms), so
    a fan-out goes out just under the platform's global and per-channel limits.
    """

    store: Store
    notifiers: Mapping[str, Notifier]
    # Draws an alert's chart (in a thread), attached to the message as it is sent.
    charts: ChartDrawer | None = None
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
    _sentlog: sentlog.SentLog = field(init=False)
    # mark_sent for concurrent sends: posts that finish together share one transaction.
    _mark_sent: sentlog.Coalescing[Sent, None] = field(init=False)

    def __post_init__(self) -> None:
        self._sentlog = sentlog.SentLog(self.store)
        self._mark_sent = sentlog.Coalescing(self._mark_all_sent)

    def _mark_all_sent(self, done: list[Sent]) -> list[None]:
        mark_sent(self.store, done)
        return [None] * len(done)  # Coalescing hands each caller its own result

    @classmethod
    def of(
        cls,
        ctx: AppContext,
        *,
        pacers: Mapping[str, Pacer] | None = None,
        platforms: frozenset[str] | None = None,
        clock: Clock = wall_clock,
        policy: OutboxPolicy | None = None,
    ) -> OutboxWorker:
        """The worker for an app: its store, its notifiers (as they register) and charts."""
        return cls(
            ctx.store,
            ctx.notifiers,
            ctx.charts.for_alert if ctx.charts is not None else None,
            policy or OutboxPolicy(),
            clock,
            pacers=default_pacers() if pacers is None else pacers,
            platforms=platforms,
        )

    def wake(self) -> None:
        """New rows were written: send them now rather than at the next poll."""
        self._wake.set()

    async def run_once(self) -> int:
        """Claim and send one batch; returns how many rows were handled."""
        claimed = await asyncio.to_thread(
            claim, self.store, self.name, self.clock(), self.policy, self.platforms
        )
        if not claimed:
            return 0
        payloads: dict[str, Payload | str] = {}
        for row in claimed:
            if row.alert_id not in payloads:
                payloads[row.alert_id] = await asyncio.to_thread(
                    load_payload, self.store, row.alert_id
                )
        charts: dict[str, asyncio.Task[bytes | None]] = {}
        limit = asyncio.Semaphore(self.policy.concurrency)

        async def send(row: Claimed) -> None:
            pacer = self.pacers.get(row.platform)
            if pacer is not None:
                await pacer.key_ready(row.channel)  # a busy channel must not hold a slot
            async with limit:
                await self._deliver(row, payloads[row.alert_id], charts)

        await asyncio.gather(*(send(r) for r in claimed))
        return len(claimed)

    async def drain(self) -> int:
        """Send every row due now (retries wait for their time); returns the rows handled."""
        total = 0
        while handled := await self.run_once():
            total += handled
        return total

    async def _deliver(
        self, row: Claimed, payload: Payload | str, charts: dict[str, asyncio.Task[bytes | None]]
    ) -> None:
        notifier = self.notifiers.get(row.platform)
        if isinstance(payload, str):  # it will not read better next time
            await self._failed(row, payload, give_up=True)
            return
        if notifier is None:
            await self._failed(row, f"no {row.platform} adapter")
            return
        target = (row.alert_id, row.platform, row.channel)
        try:
            state = await self._sentlog.start(target, self.clock())
            message_id = await self._post(notifier, row, state, payload, charts)
        except Exception as exc:
            await self._failed(row, f"{type(exc).__name__}: {exc}")
            return
        await self._mark_sent((row.row_id, target, message_id, self.clock()))
        self.sent += 1

    async def _post(
        self,
        notifier: Notifier,
        row: Claimed,
        state: str,
        payload: Payload,
        charts: dict[str, asyncio.Task[bytes | None]],
    ) -> str:
        """The id of the message carrying the row's alert: found, or posted now."""
        where = f"{row.platform}:{row.channel}"
        key = delivery_key(row.alert_id)
        if state == "sent":
            log.info("alert %s already posted to %s; not posting again", row.alert_id, where)
            return ""
        if state == "unknown":
            found = await self._find(notifier, row.channel, key)
            if found is not None:
                log.info("alert %s was already posted to %s (%s): recorded", key, where, found)
                return found
        alert, message = payload
        png = await self._chart(alert, charts)
        if png is not None:
            message = dataclasses.replace(message, chart=png)
        pacer = self.pacers.get(row.platform)
        if pacer is not None:
            parts = notifier.messages_in(message) if isinstance(notifier, MultiPart) else 1
            await pacer.acquire(row.channel, parts)
        return await notifier.send(message, row.channel, key)

    async def _find(self, notifier: Notifier, channel: str, key: str) -> str | None:
        """Our post under KEY in CHANNEL's recent history, if the platform can tell; when it
        cannot, the post is sent again: at least once beats never."""
        if not isinstance(notifier, Finder):
            return None
        try:
            return await notifier.find(channel, key)
        except Exception as exc:
            log.warning("could not look for alert %s in %s: %s", key, channel, exc)
            return None

    async def _chart(
        self, alert: Alert, charts: dict[str, asyncio.Task[bytes | None]]
    ) -> bytes | None:
        """The alert's chart, drawn once per batch however many channels it goes to."""
        if self.charts is None:
            return None
        task = charts.get(alert.id)
        if task is None:
            draw = partial(self.charts, alert)  # a problem only costs the picture (logged)
            task = charts[alert.id] = asyncio.create_task(
                draw_chart(draw, f"alert {alert.id}", logger=log)
            )
        return await task

    async def _failed(self, row: Claimed, error: str, give_up: bool = False) -> None:
        status = await asyncio.to_thread(
            mark_failed, self.store, row.row_id, error, self.clock(), self.policy, give_up
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


def outbox_counts(store: Store) -> dict[str, int]:
    """Outbox deliveries by status (pending, sent, failed)."""
    with store.session() as s:
        rows = s.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status))
        return {status: int(n) for status, n in rows}


def last_delivery_error(store: Store) -> str:
    """The error of the most recent delivery that had one, or ''."""
    with store.session() as s:
        last = s.scalar(
            select(OutboxRow.last_error)
            .where(OutboxRow.last_error != "")
            .order_by(OutboxRow.id.desc())
            .limit(1)
        )
    return last or ""
