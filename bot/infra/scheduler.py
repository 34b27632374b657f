"""Live polling: one batched price fetch per cycle while markets are open, on APScheduler 3."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import AppContext
from bot.infra.calendars import open_symbols
from bot.runner import deliver, process_tick, wanted_symbols
from handlers.models import Delivery, Quote
from handlers.ports import QuoteProvider

log = logging.getLogger(__name__)

POLL_JOB_ID = "poll-prices"
PRUNE_JOB_ID = "prune-alert-log"
NAMES_JOB_ID = "refresh-company-names"
HISTORY_JOB_ID = "refresh-daily-history"
REFERENCES_JOB_ID = "refresh-previous-closes"
QUIET_JOB_ID = "quiet-hours-summaries"
# How late a quiet-hours summary may be when no tick runs (markets closed) to send it.
QUIET_CHECK_SECONDS = 60
# Before the Asian and US sessions open; also run once at start.
HISTORY_HOUR_UTC = 0
# bot.sources.yahoo.QUOTE_SOURCE, not imported: that would load yfinance for a replay too.
QUOTE_SOURCE = "yahoo-quote"
ALERT_LOG_KEEP = timedelta(days=14)


class HistorySource(Protocol):
    def daily_returns(
        self, symbols: Sequence[str], before: datetime | None = None
    ) -> Mapping[str, list[float]]: ...


@dataclass
class HistoryCache:
    """Trailing daily returns per symbol for z-scores; AppContext.history reads it."""

    returns: dict[str, list[float]] = field(default_factory=dict)
    refreshed: datetime | None = None

    def __call__(self, now: datetime) -> Mapping[str, Sequence[float]]:
        return self.returns


class NameSource(Protocol):
    def company_names(self, symbols: Sequence[str]) -> Mapping[str, str]: ...


@dataclass
class PollState:
    """What `marketbot status` and the logs report about the feed."""

    polls: int = 0
    last_poll: datetime | None = None
    last_symbols: int = 0
    last_error: str | None = None
    alerts: int = 0


@dataclass
class Poller:
    """One poll = watched symbols whose market is open + their references, fetched once."""

    ctx: AppContext
    prices: QuoteProvider
    extended_hours: bool = False
    state: PollState = field(default_factory=PollState)
    # With a healthy quote stream the poll is only a fallback and skips its cycle.
    stream_healthy: Callable[[], bool] | None = None

    def symbols_to_fetch(self, watched: set[str], now: datetime) -> dict[str, str]:
        """Symbol -> session for the open watched symbols and their benchmarks and peers."""
        trading = open_symbols(sorted(watched), now, self.extended_hours)
        if not trading:
            return {}
        refs = self.ctx.engine.groups.reference_symbols(set(trading))
        extra = open_symbols(sorted(refs - set(trading)), now, self.extended_hours)
        return {**trading, **extra}

    async def poll_once(self) -> list[Delivery]:
        """Fetch, detect, explain, group, dedupe and deliver for one cycle."""
        now = self.ctx.clock()
        if self.stream_healthy is not None and self.stream_healthy():
            return []
        entries = await asyncio.to_thread(self.ctx.store.watch_entries)
        wanted = self.symbols_to_fetch({e.symbol for e in entries}, now)
        self.state.last_poll, self.state.last_symbols = now, len(wanted)
        if not wanted:
            log.debug("no watched market is open at %s", now.isoformat())
            return []
        fetched = await asyncio.to_thread(self.prices.quotes, sorted(wanted), now)
        quotes = {s: _with_session(q, wanted.get(s, q.session)) for s, q in fetched.items()}
        # The watchlist is read again after the download: it may have changed meanwhile.
        deliveries = await process_tick(self.ctx, quotes, now)
        self.state.polls += 1
        self.state.alerts += len(deliveries)
        return deliveries

    async def poll_safely(self) -> None:
        """The scheduled job: an error is logged with its symbols and never stops the scheduler."""
        try:
            await self.poll_once()
            self.state.last_error = None
        except Exception as exc:
            self.state.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("poll failed (%d symbols)", self.state.last_symbols)


def _with_session(quote: Quote, session: str) -> Quote:
    """The calendar's session for a chart quote; a v7 quote knows its own session."""
    if quote.source == QUOTE_SOURCE:
        return quote
    if session in ("pre", "post") and quote.session != session:
        return dataclasses.replace(quote, session=session)  # type: ignore[arg-type]
    return quote


async def prune_alert_log(ctx: AppContext) -> int:
    """Drop alert-log rows older than any cooldown could need."""
    removed = await asyncio.to_thread(ctx.store.prune_alert_log, ctx.clock() - ALERT_LOG_KEEP)
    log.info("pruned %d old alert-log rows", removed)
    return removed


async def refresh_company_names(ctx: AppContext, names: NameSource) -> int:
    """Add the source's company names for watched symbols; config/companies.yaml still wins."""
    entries = await asyncio.to_thread(ctx.store.watch_entries)
    symbols = sorted({e.symbol for e in entries})
    try:
        found = await asyncio.to_thread(names.company_names, symbols)
    except Exception:
        log.exception("company name refresh failed for %d symbols", len(symbols))
        return 0
    companies = dict(ctx.engine.companies)
    added = {s: n for s, n in found.items() if s not in companies}
    ctx.engine.companies = {**added, **companies}
    return len(added)


async def refresh_history(ctx: AppContext, source: HistorySource, cache: HistoryCache) -> int:
    """Reload the trailing daily returns of everything polled; keeps the old ones on failure."""
    symbols = sorted(await wanted_symbols(ctx))
    now = ctx.clock()
    try:
        found = await asyncio.to_thread(source.daily_returns, symbols, now)
    except Exception:
        log.exception("daily history refresh failed for %d symbols", len(symbols))
        return 0
    cache.returns.update(found)
    cache.refreshed = now
    log.info("daily history refreshed for %d of %d symbols", len(found), len(symbols))
    return len(found)


async def refresh_previous_closes(ctx: AppContext, source: QuoteProvider) -> int:
    """One batched quote fetch of everything watched, whatever the market hours: the stream
    takes the previous closes its messages lack from these (a daily job, not the poll)."""
    symbols = sorted(await wanted_symbols(ctx))
    if not symbols:
        return 0
    try:
        found = await asyncio.to_thread(source.quotes, symbols, ctx.clock())
    except Exception:
        log.exception("previous-close refresh failed for %d symbols", len(symbols))
        return 0
    log.info("previous closes refreshed for %d of %d symbols", len(found), len(symbols))
    return len(found)


async def send_quiet_summaries(ctx: AppContext) -> int:
    """Send the summaries of quiet hours that are over: a tick sends them too, but no tick
    runs while every watched market is closed. Returns the summaries sent."""
    try:
        due = await asyncio.to_thread(ctx.engine.due_quiet_summaries, ctx.store, ctx.clock())
    except Exception:
        log.exception("quiet-hours summary check failed")
        return 0
    await deliver(ctx, due)
    return len(due)


def build_scheduler(
    poller: Poller,
    interval_seconds: float,
    names: NameSource | None = None,
    history: tuple[HistorySource, HistoryCache] | None = None,
    references: QuoteProvider | None = None,
) -> AsyncIOScheduler:
    """The scheduler with the poll job and the daily housekeeping jobs (not yet started).

    Jobs run on wall-clock time; the poll itself reads the app's clock, which a replay simulates.
    """
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        poller.poll_safely,
        "interval",
        seconds=interval_seconds,
        id=POLL_JOB_ID,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(interval_seconds)),
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        prune_alert_log,
        "cron",
        args=[poller.ctx],
        hour=6,
        id=PRUNE_JOB_ID,
        replace_existing=True,
        coalesce=True,
        max_instances=1,
    )
    scheduler.add_job(
        send_quiet_summaries,
        "interval",
        args=[poller.ctx],
        seconds=QUIET_CHECK_SECONDS,
        id=QUIET_JOB_ID,
        replace_existing=True,
        coalesce=True,
        max_instances=1,
    )
    daily: list[tuple[Callable[..., Any], tuple[object, ...], int, str]] = []
    if history is not None:
        daily.append((refresh_history, tuple(history), HISTORY_HOUR_UTC, HISTORY_JOB_ID))
    if references is not None:
        daily.append((refresh_previous_closes, (references,), HISTORY_HOUR_UTC, REFERENCES_JOB_ID))
    if names is not None:
        daily.append((refresh_company_names, (names,), 7, NAMES_JOB_ID))
    for job, args, hour, job_id in daily:  # once at start, then daily at HOUR UTC
        scheduler.add_job(
            job,
            "cron",
            args=[poller.ctx, *args],
            hour=hour,
            id=job_id,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            next_run_time=datetime.now(UTC),
        )
    return scheduler


async def process_streamed(ctx: AppContext, quotes: Mapping[str, Quote]) -> list[Delivery]:
    """Run the latest streamed quotes through the pipeline at the app's current time."""
    return await process_tick(ctx, quotes, ctx.clock())
