"""`marketbot run`: the platforms, the price feed, the outbox worker and status, on one loop."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bot.app import AppContext, SimulatedClock, build_engine, live_sources, replay_context
from bot.charts import ChartMaker
from bot.delivery.outbox import OutboxWorker, release_claims
from bot.delivery.pacing import default_pacers, limits_for
from bot.infra.leader import Leadership, lead_when_elected
from bot.infra.scheduler import HistoryCache, Poller, build_scheduler, process_streamed
from bot.infra.store import Store
from bot.platforms import registry
from bot.runner import run_replay_feed, wanted_symbols
from bot.sources.replay import Replay
from bot.sources.yahoo.stream import QuoteStream
from bot.symbol_check import KnownSymbols, YahooSymbolCheck
from config.settings import Settings
from handlers.models import Quote

log = logging.getLogger(__name__)

PLATFORMS = registry.names()
# Live charts read in New York time, where most watched listings trade.
LIVE_CHART_TZ = "America/New_York"
STATUS_EVERY_SECONDS = 10.0


class RunError(Exception):
    """A setup problem the user can fix (missing token, unknown platform, no bars)."""


@dataclass
class RunOptions:
    """What `marketbot run` was asked to do."""

    platforms: list[str]
    source: str = "yfinance"
    bars: list[Path] = field(default_factory=list)
    news: Path | None = None
    evidence: list[Path] = field(default_factory=list)
    speed: float = 3600.0
    start: date | None = None
    end: date | None = None
    slack_mode: str = "http"

    def mode(self, platform: str) -> str | None:
        """How PLATFORM is asked to run (e.g. slack_mode), None for its default."""
        value = getattr(self, f"{platform}_mode", None)
        return value if isinstance(value, str) else None


@dataclass
class Running:
    """The pieces of a running bot that the status report reads."""

    ctx: AppContext
    options: RunOptions
    worker: OutboxWorker
    instance: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    leading: bool = False
    replay: tuple[Replay, SimulatedClock] | None = None
    prices: Any = None  # the live price source (PriceSource and NameSource)
    poller: Poller | None = None
    scheduler: Any = None
    stream: QuoteStream | None = None
    stream_task: asyncio.Task[None] | None = None
    feed_state: str = "starting"


def parse_platforms(text: str) -> list[str]:
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    unknown = [p for p in names if p not in PLATFORMS]
    if unknown or not names:
        raise RunError(f"--platform takes {' and/or '.join(PLATFORMS)}, comma-separated")
    return list(dict.fromkeys(names))


def missing_secrets(settings: Settings, options: RunOptions) -> list[str]:
    """Every credential the chosen platforms and modes need that is not set."""
    return [
        missing
        for p in registry.chosen(options.platforms)
        for missing in p.missing_secrets(settings, options.mode(p.name))
    ]


def check_secrets(settings: Settings, options: RunOptions) -> None:
    """Fail before connecting anywhere, naming every missing credential at once."""
    missing = missing_secrets(settings, options)
    if missing:
        raise RunError("not set (environment or .env; see .env.example): " + ", ".join(missing))


def outbox_worker(ctx: AppContext, platforms: list[str] | None = None) -> OutboxWorker:
    """The delivery worker, paced just under each platform's limits from the settings; it
    sends only to PLATFORMS (when given) and leaves the other rows pending."""
    s = ctx.settings
    return OutboxWorker.of(
        ctx,
        pacers=default_pacers(limits_for(s), s.pacing_margin),
        platforms=frozenset(platforms) if platforms is not None else None,
    )


def warn_unserved_platforms(store: Store, platforms: list[str]) -> list[str]:
    """One warning per platform that has watchlists in the store but is not run here."""
    channels: dict[str, set[str]] = {}
    for entry in store.watch_entries():
        if entry.platform not in platforms and entry.platform != "console":
            channels.setdefault(entry.platform, set()).add(entry.channel)
    lines = []
    for platform, chans in sorted(channels.items()):
        line = (
            f"{len(chans)} {platform} channel(s) have watchlists in the store, but this instance "
            f"runs only {','.join(platforms)}: their alerts stay pending until an instance runs "
            f"--platform {platform}"
        )
        log.warning(line)
        lines.append(line)
    return lines


def build_context(settings: Settings, store: Store, options: RunOptions) -> Running:
    """The app context for the chosen price source, with the outbox worker attached."""
    if options.source == "replay":
        if not options.bars:
            raise RunError("--source replay needs --bars PATH")
        ctx, replay, clock = replay_context(
            settings, store, options.bars, options.news, evidence_files=options.evidence
        )
        ctx.symbols = KnownSymbols(replay.symbols)
        worker = outbox_worker(ctx, options.platforms)
        ctx.wake_outbox = worker.wake
        return Running(ctx, options, worker, replay=(replay, clock))
    else:
        from bot.sources.yahoo.extended import YahooWithExtendedHours
        from bot.sources.yahoo.quotes import YahooPrices

        prices = YahooPrices(
            requests_per_second=settings.yahoo_requests_per_second,
            batch_size=settings.yahoo_batch_size,
            charts_on_demand=True,
        )
        engine = build_engine(settings)
        ctx = AppContext(
            settings=settings,
            engine=engine,
            store=store,
            # /why shows Yahoo's pre/post-market price apart when extended hours are on.
            market=YahooWithExtendedHours(prices) if settings.extended_hours else prices,
            news=live_sources(settings, engine),
            charts=ChartMaker(
                prices, engine.groups, settings.default_threshold_pct, LIVE_CHART_TZ, "yfinance"
            ),
            history=HistoryCache(),
            symbols=YahooSymbolCheck(),
        )
    worker = outbox_worker(ctx, options.platforms)
    ctx.wake_outbox = worker.wake
    return Running(ctx, options, worker, prices=prices)


def warm_evidence(ctx: AppContext) -> list[Future[None]]:
    """Start the evidence sources' one-time fetches in their threads; returns at once.

    A source that cannot be reached (no network) logs one line and fetches on its first alert.
    """
    warm = getattr(ctx.news, "warm_up", None)
    return list(warm()) if callable(warm) else []


async def leader_work(running: Running) -> None:
    """What only the elected instance does: the price feed and the outbox worker."""
    running.leading = True
    # Only the leader sends, so leases still held are its dead predecessor's: resume them now.
    resumed = await asyncio.to_thread(release_claims, running.ctx.store)
    if resumed:
        log.info("resuming %d deliveries a previous run had claimed", resumed)
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(running.worker.run_forever())]
    try:
        tasks.append(asyncio.create_task(_feed(running)))
        await asyncio.gather(*tasks)
    finally:
        running.leading = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if running.stream_task is not None:
            running.stream_task.cancel()
        if running.scheduler is not None and running.scheduler.running:
            running.scheduler.shutdown(wait=False)


def _stream_healthy(stream: QuoteStream, settings: Settings) -> bool:
    silent = stream.silent_for(datetime.now(UTC))
    quiet = silent is None or silent >= settings.stream_silence_seconds
    return stream.state.connected and not quiet


async def _process_streamed(ctx: AppContext, quotes: Mapping[str, Quote]) -> None:
    await process_streamed(ctx, quotes)


async def _feed(running: Running) -> None:
    ctx, options = running.ctx, running.options
    if running.replay is not None:
        replay, clock = running.replay
        running.feed_state = "replaying"
        sent = await run_replay_feed(
            ctx, replay, clock, start=options.start, end=options.end, speed=options.speed
        )
        running.feed_state = f"replay finished ({sent} alerts); answering commands"
        await asyncio.Event().wait()
    # The poll asks batched v7 quotes; 5-minute charts are downloaded only to draw one.
    batched = getattr(running.prices, "batched", None)
    feed = batched() if callable(batched) else running.prices
    poller = Poller(ctx, feed, extended_hours=ctx.settings.extended_hours)
    running.poller = poller
    if ctx.settings.price_feed == "stream" or ctx.settings.stream_quotes:
        stream = QuoteStream(
            lambda: wanted_symbols(ctx),
            lambda quotes: _process_streamed(ctx, quotes),
            url=ctx.settings.stream_url,
            previous_close=getattr(running.prices, "previous_close", None),
        )
        running.stream = stream
        poller.stream_healthy = lambda: _stream_healthy(stream, ctx.settings)
        running.stream_task = asyncio.create_task(stream.run_forever())
    history = ctx.history if isinstance(ctx.history, HistoryCache) else HistoryCache()
    running.scheduler = build_scheduler(
        poller,
        ctx.settings.poll_interval_seconds,
        names=running.prices,
        history=(running.prices, history),
        references=feed if running.stream is not None else None,
    )
    running.scheduler.start()
    running.feed_state = "polling"
    await asyncio.Event().wait()


def status_payload(running: Running) -> dict[str, object]:
    """What `marketbot status` shows for this instance."""
    info: dict[str, object] = {
        "source": running.options.source,
        "platforms": ",".join(running.options.platforms),
        "leader": running.leading,
        "feed": running.feed_state,
        "clock": running.ctx.clock().isoformat(),
        "sent": running.worker.sent,
        "gave_up": running.worker.failed,
        "report_every_s": STATUS_EVERY_SECONDS,
    }
    if running.poller is not None:
        state = running.poller.state
        info["polls"] = state.polls
        info["last_poll"] = state.last_poll.isoformat() if state.last_poll else None
        info["last_poll_error"] = state.last_error
    if running.scheduler is not None:
        job = running.scheduler.get_job("poll-prices")
        info["next_poll"] = job.next_run_time.isoformat() if job and job.next_run_time else None
    if running.stream is not None:
        st = running.stream.state
        info["stream"] = "connected" if st.connected else f"down ({st.last_error})"
        info["stream_messages"] = st.messages
    if running.worker.last_error:
        info["last_delivery_error"] = running.worker.last_error
    return info


async def report_status_forever(running: Running) -> None:
    while True:
        try:
            await asyncio.to_thread(
                running.ctx.store.report_status,
                running.instance,
                status_payload(running),
                datetime.now(UTC),
            )
        except Exception:
            log.exception("could not write the status report")
        await asyncio.sleep(STATUS_EVERY_SECONDS)


async def _report_stopped(running: Running) -> None:
    """Leave a last report saying this instance stopped, so status does not call it running."""
    payload = {**status_payload(running), "state": "stopped", "feed": "stopped"}
    payload.pop("next_poll", None)
    try:
        await asyncio.to_thread(
            running.ctx.store.report_status, running.instance, payload, datetime.now(UTC)
        )
    except Exception as exc:  # the store may be what failed; stopping goes on
        log.warning("could not write the final status report: %s", exc)


def platform_tasks(running: Running) -> list[Coroutine[Any, Any, None]]:
    """Each chosen platform's notifier set in the context, and its serving coroutine."""
    ctx, options = running.ctx, running.options
    jobs: list[Coroutine[Any, Any, None]] = []
    for p in registry.chosen(options.platforms):
        ctx.notifiers[p.name] = p.notifier(ctx)
        jobs.append(p.serve(ctx, options.mode(p.name)))
    return jobs


async def run_bot(settings: Settings, options: RunOptions) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    check_secrets(settings, options)
    store = Store(settings.db_url)
    running = build_context(settings, store, options)
    warm_evidence(running.ctx)
    await asyncio.to_thread(warn_unserved_platforms, store, options.platforms)
    jobs = platform_tasks(running)
    leadership = Leadership(settings.db_url)
    tasks = [asyncio.create_task(j) for j in jobs]
    tasks.append(asyncio.create_task(lead_when_elected(leadership, lambda: leader_work(running))))
    tasks.append(asyncio.create_task(report_status_forever(running)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "running %s with %s prices (instance %s)",
        ",".join(options.platforms),
        options.source,
        running.instance,
    )
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    code = 0
    for task in done:
        if task is not stopper and task.exception() is not None:
            log.error("stopping: %s", task.exception())
            code = 1
    log.info("shutting down")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await _report_stopped(running)
    stopper.cancel()
    store.close()
    return code


def run(settings: Settings, options: RunOptions) -> int:
    return asyncio.run(run_bot(settings, options))
