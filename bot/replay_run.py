"""Run the alert pipeline over a replay, tick by tick, on a simulated clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from rich.console import Console
from rich.progress import Progress

from bot.app import Notifier
from bot.delivery.outbox import ChartDrawer, OutboxWorker, enqueue
from bot.infra.store import Store
from bot.sources.replay import Replay
from handlers.models import Destination, WatchEntry
from handlers.pipeline import Engine, NewsProvider

log = logging.getLogger(__name__)

REPLAY_DESTINATION = Destination("console", "replay")
PROGRESS_MIN_TICKS = 200


@dataclass
class ReplayStats:
    """Counts to print at the end of a replay."""

    ticks: int = 0
    alerts: int = 0
    skips: dict[str, int] = field(default_factory=dict)


def replay_entries(symbols: Sequence[str], threshold: float | None) -> list[WatchEntry]:
    return [
        WatchEntry(REPLAY_DESTINATION.platform, REPLAY_DESTINATION.channel, s, threshold)
        for s in symbols
    ]


def run_replay(
    engine: Engine,
    replay: Replay,
    entries: Sequence[WatchEntry],
    store: Store,
    notifier: Notifier,
    news: NewsProvider | None,
    start: date | None = None,
    end: date | None = None,
    progress_to: Console | None = None,
    charts: ChartDrawer | None = None,
) -> ReplayStats:
    """Feed every tick through the engine; what survives dedupe is enqueued in STORE and
    sent to NOTIFIER by an outbox worker, the same path as a live run (unpaced)."""
    worker = OutboxWorker(store, {notifier.platform: notifier}, charts, pacers={})
    return asyncio.run(_replay(engine, replay, entries, worker, news, start, end, progress_to))


async def _replay(
    engine: Engine,
    replay: Replay,
    entries: Sequence[WatchEntry],
    worker: OutboxWorker,
    news: NewsProvider | None,
    start: date | None,
    end: date | None,
    progress_to: Console | None,
) -> ReplayStats:
    stats = ReplayStats()
    store = worker.store
    ticks = list(replay.ticks(start, end))
    thresholds = store.channel_thresholds()
    history_day: date | None = None
    history: dict[str, list[float]] = {}
    with Progress(
        console=progress_to,
        transient=True,
        disable=progress_to is None or len(ticks) < PROGRESS_MIN_TICKS,
    ) as progress:
        task = progress.add_task("replaying", total=len(ticks))
        for tick in ticks:
            if tick.at.date() != history_day:
                history_day = tick.at.date()
                history = replay.daily_returns(history_day)
            result = engine.process_tick(
                tick.quotes, entries, thresholds, store, tick.at, news, history
            )
            stats.ticks += 1
            for skip in result.skips:
                stats.skips[skip.reason] = stats.skips.get(skip.reason, 0) + 1
            if result.deliveries:
                enqueue(store, result.deliveries, datetime.now(UTC))
                await worker.drain()
            stats.alerts += len(result.deliveries)
            progress.advance(task)
    return stats
