"""Live loop pieces: run one tick through the engine and hand its alerts to the outbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

from bot.app import AppContext, SimulatedClock
from bot.delivery.outbox import OutboxWorker, enqueue
from bot.sources.replay import Replay
from handlers.models import Delivery, Quote, WatchEntry

log = logging.getLogger(__name__)

MAX_REPLAY_WAIT = 10.0


async def deliver(ctx: AppContext, deliveries: Sequence[Delivery]) -> None:
    """Record the alerts and write their outbox rows; the worker sends them (the running
    one, woken; or, with none running, one that sends what is due now to the platforms
    this context has notifiers for)."""
    if not deliveries:
        return
    await asyncio.to_thread(enqueue, ctx.store, deliveries, datetime.now(UTC))
    if ctx.wake_outbox is not None:
        ctx.wake_outbox()
        return
    worker = OutboxWorker.of(ctx, platforms=frozenset(ctx.notifiers))
    await worker.drain()


def _process(
    ctx: AppContext,
    quotes: Mapping[str, Quote],
    now: datetime,
    entries: Sequence[WatchEntry] | None,
) -> list[Delivery]:
    entries = ctx.store.watch_entries() if entries is None else entries
    history = ctx.history(now) if ctx.history else None
    result = ctx.engine.process_tick(
        quotes,
        entries,
        ctx.store.channel_thresholds(),
        ctx.store,
        now,
        ctx.news,
        history,
        held=ctx.store,
    )
    for skip in result.skips:
        log.info("skipped %s: %s", skip.symbol, skip.reason)
    return result.deliveries


async def process_tick(
    ctx: AppContext,
    quotes: Mapping[str, Quote],
    now: datetime,
    entries: Sequence[WatchEntry] | None = None,
) -> list[Delivery]:
    """One tick: the engine (in a worker thread, it touches the store) then delivery.

    ENTRIES, when the caller has just read them, save reading the watchlist again.
    """
    deliveries = await asyncio.to_thread(_process, ctx, quotes, now, entries)
    await deliver(ctx, deliveries)
    return deliveries


def needed_symbols(ctx: AppContext, entries: Sequence[WatchEntry]) -> set[str]:
    """Watched symbols and what judging them needs (benchmarks, peers, the market)."""
    watched = {e.symbol for e in entries}
    if not watched:
        return set()
    return watched | ctx.engine.groups.reference_symbols(watched)


async def wanted_symbols(ctx: AppContext) -> set[str]:
    """needed_symbols() of the current watchlist."""
    return needed_symbols(ctx, await asyncio.to_thread(ctx.store.watch_entries))


async def run_replay_feed(
    ctx: AppContext,
    replay: Replay,
    clock: SimulatedClock,
    seconds_per_tick: float = 1.0,
    start: date | None = None,
    end: date | None = None,
    speed: float | None = None,
) -> int:
    """Drive the bot from replayed ticks on a simulated clock; returns the number of alerts.

    With SPEED the wait between ticks is the simulated gap divided by SPEED (capped at
    MAX_REPLAY_WAIT so nights and weekends pass quickly); otherwise SECONDS_PER_TICK.
    """
    sent = 0
    previous: datetime | None = None
    for tick in replay.ticks(start, end):
        if speed and previous is not None:
            gap = (tick.at - previous).total_seconds() / speed
            await asyncio.sleep(min(gap, MAX_REPLAY_WAIT))
        elif previous is not None:
            await asyncio.sleep(seconds_per_tick)
        previous = tick.at
        clock.advance_to(tick.at)
        entries = await asyncio.to_thread(ctx.store.watch_entries)
        needed = needed_symbols(ctx, entries)
        quotes = {s: q for s, q in tick.quotes.items() if s in needed}
        sent += len(await process_tick(ctx, quotes, tick.at, entries))
    return sent
