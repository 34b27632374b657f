"""The delivery outbox: written before sending, sent once, retried, resumed, shared by workers."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import Notifier, replay_context
from bot.delivery import sentlog
from bot.delivery.outbox import OutboxPolicy, OutboxWorker, enqueue, outbox_counts
from bot.infra.store import Store
from bot.runner import process_tick
from config.settings import load_settings
from handlers.models import Alert, Delivery, Destination, WatchEntry
from handlers.render import Message
from tests.conftest import DEMO_BARS, DEMO_NEWS
from tests.helpers import at

CHINA = ["BABA", "JD", "TCEHY", "PDD", "BIDU"]


class Recorder:
    """A notifier that records (key, channel) and can fail the first N sends."""

    platform = "test"

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.sent: list[tuple[str, str]] = []
        self.messages: list[Message] = []
        self.fail_first = fail_first
        self.calls = 0
        self.delay = delay

    async def send(self, message: Message, channel: str, key: str) -> str:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.calls <= self.fail_first:
            raise ConnectionError("503 from the platform")
        assert message.title
        self.sent.append((key, channel))
        self.messages.append(message)
        return f"m{len(self.sent)}"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _alert_deliveries(store: Store, channels: int) -> list[Delivery]:
    """The real NPC-day alert from the pipeline, addressed to CHANNELS channels."""
    settings = load_settings(db_url="sqlite://")
    ctx, replay, _ = replay_context(settings, Store("sqlite://"), [DEMO_BARS], DEMO_NEWS)
    entries = [WatchEntry("test", f"c{i}", s, 5.0) for i in range(channels) for s in CHINA]
    now = at("2025-03-05", "16:00")
    quotes = replay.quotes([*CHINA, "KWEB", "SPY"], now)
    result = ctx.engine.process_tick(quotes, entries, {}, store, now, ctx.news)
    assert len(result.deliveries) == 1
    return result.deliveries


def _worker(store: Store, notifier: Notifier, **kw: object) -> OutboxWorker:
    return OutboxWorker(store, {"test": notifier}, **kw)  # type: ignore[arg-type]


async def test_written_first_then_sent_once(store: Store) -> None:
    deliveries = _alert_deliveries(store, channels=3)
    assert enqueue(store, deliveries, datetime.now(UTC)) == 3
    assert enqueue(store, deliveries, datetime.now(UTC)) == 0  # idempotent
    assert outbox_counts(store) == {"pending": 3}
    assert len(store.recent_alerts(at("2025-03-04"))) == 3 * 5  # logged with the rows
    notifier = Recorder()
    worker = _worker(store, notifier)
    assert await worker.run_once() == 3
    assert await worker.run_once() == 0
    assert sorted(c for _, c in notifier.sent) == ["c0", "c1", "c2"]
    assert outbox_counts(store) == {"sent": 3}


async def test_retry_with_backoff_then_give_up(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    enqueue(store, _alert_deliveries(store, channels=1), datetime.now(UTC))
    clock = FakeClock()
    policy = OutboxPolicy(first_retry=timedelta(seconds=10), max_attempts=3)
    notifier = Recorder(fail_first=99)
    worker = _worker(store, notifier, clock=clock, policy=policy)
    clock.now = datetime.now(UTC)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # not due before the backoff
    clock.now += timedelta(seconds=11)
    assert await worker.run_once() == 1
    clock.now += timedelta(seconds=15)
    assert await worker.run_once() == 0  # the second wait is 20 s
    clock.now += timedelta(seconds=10)
    with caplog.at_level(logging.ERROR):
        assert await worker.run_once() == 1
    assert outbox_counts(store) == {"failed": 1}
    assert "gave up on alert" in caplog.text and "503 from the platform" in caplog.text
    assert notifier.sent == []


async def test_a_transient_failure_is_retried_and_delivered(store: Store) -> None:
    enqueue(store, _alert_deliveries(store, channels=2), datetime.now(UTC))
    clock = FakeClock()
    clock.now = datetime.now(UTC)
    notifier = Recorder(fail_first=1)
    worker = _worker(store, notifier, clock=clock, policy=OutboxPolicy(concurrency=1))
    await worker.run_once()
    clock.now += timedelta(minutes=1)
    await worker.run_once()
    assert len(notifier.sent) == 2
    assert outbox_counts(store) == {"sent": 2}


async def test_pending_rows_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    first = Store(url)
    enqueue(first, _alert_deliveries(first, channels=4), datetime.now(UTC))
    first.close()  # the process died before sending anything
    notifier = Recorder()
    worker = _worker(Store(url), notifier)
    assert await worker.run_once() == 4
    assert len(set(notifier.sent)) == 4


async def test_expired_lease_is_taken_over(store: Store) -> None:
    enqueue(store, _alert_deliveries(store, channels=1), datetime.now(UTC))
    clock = FakeClock()
    clock.now = datetime.now(UTC)
    crashed = _worker(store, Recorder(), clock=clock)
    from bot.delivery.outbox import claim

    assert len(claim(store, "crashed", clock.now, crashed.policy)) == 1  # then it died
    survivor = _worker(store, Recorder(), clock=clock)
    assert await survivor.run_once() == 0  # still leased
    clock.now += crashed.policy.lease + timedelta(seconds=1)
    assert await survivor.run_once() == 1


async def test_three_workers_on_postgresql_send_each_row_once(pg_url: str) -> None:
    store = Store(pg_url)
    deliveries = _alert_deliveries(store, channels=60)
    enqueue(store, deliveries, datetime.now(UTC))
    notifiers = [Recorder(delay=0.002) for _ in range(3)]
    policy = OutboxPolicy(batch=7, concurrency=4)
    workers = [_worker(Store(pg_url), n, policy=policy) for n in notifiers]

    async def drain(worker: OutboxWorker) -> None:
        while await worker.run_once():
            await asyncio.sleep(0)

    await asyncio.gather(*(drain(w) for w in workers))
    sent = Counter(c for n in notifiers for _, c in n.sent)
    assert len(sent) == 60
    assert set(sent.values()) == {1}
    assert sum(1 for n in notifiers if n.sent) >= 2  # the work was really shared
    assert outbox_counts(store) == {"sent": 60}


async def test_runner_with_outbox_enqueues_and_wakes(store: Store) -> None:
    settings = load_settings(db_url=store.url)
    ctx, replay, _ = replay_context(settings, store, [DEMO_BARS], DEMO_NEWS)
    store.add_watch([WatchEntry("test", "c1", s, 5.0) for s in CHINA])
    woken: list[bool] = []
    ctx.wake_outbox = lambda: woken.append(True)
    now = at("2025-03-05", "16:00")
    deliveries = await process_tick(ctx, replay.quotes([*CHINA, "KWEB", "SPY"], now), now)
    assert len(deliveries) == 1 and woken == [True]
    assert outbox_counts(store) == {"pending": 1}
    assert Destination("test", "c1") in deliveries[0].destinations


class Finding(Recorder):
    """A notifier whose platform has history: posts it made can be found by key."""

    def __init__(self, posted: dict[tuple[str, str], str] | None = None) -> None:
        super().__init__()
        self.posted = dict(posted or {})
        self.looked: list[tuple[str, str]] = []

    async def find(self, channel: str, key: str) -> str | None:
        self.looked.append((channel, key))
        return self.posted.get((channel, key))


async def test_the_worker_owns_the_sent_log(store: Store) -> None:
    """An attempt noted with no message recorded (a crash mid-post) is looked for first; a
    post found is recorded, not repeated; one not found is sent; a notifier that cannot look
    back sends again (at least once)."""
    [delivery] = _alert_deliveries(store, channels=3)
    alert_id = delivery.alert.id
    enqueue(store, [delivery], datetime.now(UTC))
    # The previous run noted attempts for c0 and c1, and only c0's post went out.
    started = sentlog.start_many(
        store, [(alert_id, "test", "c0"), (alert_id, "test", "c1")], datetime.now(UTC)
    )
    assert set(started.values()) == {"new"}
    notifier = Finding({("c0", alert_id): "posted-before-crash"})
    assert await _worker(store, notifier).run_once() == 3
    assert sorted(notifier.looked) == [("c0", alert_id), ("c1", alert_id)]  # not c2: new
    assert sorted(notifier.sent) == [(alert_id, "c1"), (alert_id, "c2")]
    assert sentlog.message_id(store, alert_id, "test", "c0") == "posted-before-crash"
    assert sentlog.message_id(store, alert_id, "test", "c1") in {"m1", "m2"}
    assert outbox_counts(store) == {"sent": 3}


async def test_a_delivery_already_in_the_sent_log_is_not_posted_again(store: Store) -> None:
    [delivery] = _alert_deliveries(store, channels=1)
    alert_id = delivery.alert.id
    enqueue(store, [delivery], datetime.now(UTC))
    with store.session() as s:  # sent by a version whose row was not marked (an upgrade)
        sentlog.record_in(s, (alert_id, "test", "c0"), "old-id", datetime.now(UTC))
    notifier = Recorder()
    assert await _worker(store, notifier).run_once() == 1
    assert notifier.sent == [] and outbox_counts(store) == {"sent": 1}
    assert sentlog.message_id(store, alert_id, "test", "c0") == "old-id"


async def test_unknown_outcome_without_history_sends_again(store: Store) -> None:
    [delivery] = _alert_deliveries(store, channels=1)
    alert_id = delivery.alert.id
    enqueue(store, [delivery], datetime.now(UTC))
    sentlog.start_many(store, [(alert_id, "test", "c0")], datetime.now(UTC))
    notifier = Recorder()  # no find: a console, say
    assert await _worker(store, notifier).run_once() == 1
    assert notifier.sent == [(alert_id, "c0")]
    assert sentlog.was_sent(store, alert_id, "test", "c0")


async def test_the_chart_is_drawn_once_per_alert_and_rides_on_the_message(store: Store) -> None:
    [delivery] = _alert_deliveries(store, channels=3)
    enqueue(store, [delivery], datetime.now(UTC))
    drawn: list[str] = []

    def draw(alert: Alert) -> bytes:
        drawn.append(alert.id)
        return b"\x89PNG chart"

    notifier = Recorder()
    assert await _worker(store, notifier, charts=draw).run_once() == 3
    assert drawn == [delivery.alert.id]
    assert [m.chart for m in notifier.messages] == [b"\x89PNG chart"] * 3


async def test_a_failing_chart_never_stops_the_alert(store: Store) -> None:
    [delivery] = _alert_deliveries(store, channels=1)
    enqueue(store, [delivery], datetime.now(UTC))

    def broken(alert: Alert) -> bytes:
        raise RuntimeError("matplotlib fell over")

    notifier = Recorder()
    assert await _worker(store, notifier, charts=broken).run_once() == 1
    assert [m.chart for m in notifier.messages] == [None]
