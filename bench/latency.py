"""Benchmark 3: a price crossing its threshold -> the alert recorded by fake Discord and Slack.

Streaming: a local websocket streamer sends Yahoo's PricingData frames to the real QuoteStream,
whose batches go through process_streamed, the outbox, the pacers and the real notifiers.
Polling: the real Poller on APScheduler, every POLL_INTERVAL_S (the bot's default is 60 s;
5 s here so 200 crossings take a minute, not hours), over a price source whose symbols cross
at known times after a modelled batched download. Time is the machine's monotonic clock on
both sides: the tick leaving the streamer (or the price changing at the source) and the
request reaching the fake, which enforces the platforms' rate limits. News searches answer at
once and are counted, not timed: with Yahoo behind them each would add two requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from websockets.asyncio.server import ServerConnection, serve

from bot.app import AppContext, build_engine
from bot.delivery.outbox import OutboxWorker
from bot.infra.scheduler import Poller, build_scheduler, process_streamed
from bot.infra.store import Store
from bot.platforms.discord.adapter import create_discord_bot, login
from bot.platforms.slack.adapter import SlackNotifier
from bot.runner import wanted_symbols
from bot.sources.yahoo.stream import QuoteStream
from config.settings import load_settings
from handlers.models import NewsSearch, Quote, WatchEntry
from tests.fake_discord import TOKEN, FakeDiscord
from tests.fake_slack import FakeSlack
from tests.fake_streamer import pricing_frame

NY = ZoneInfo("America/New_York")
SIM_START = datetime(2025, 3, 5, 11, 0, tzinfo=NY)  # a trading day, well inside the session
CROSSINGS = 200
THRESHOLD_PCT = 5.0
BEFORE_PCT, AFTER_PCT = 1.0, 6.5
PREVIOUS_CLOSE = 100.0
MARKET = "SPY"
STREAM_SPACING_S = 0.25  # a crossing every 0.25 s (jittered) while streaming
POLL_INTERVAL_S = 5.0
POLL_SPACING_S = 0.4  # 12.5 crossings per 5 s poll: a busy market
DOWNLOAD_S = 0.3  # one batched Yahoo download per poll (bench/yahoo.py's request latency)
FIRST_DISCORD_CHANNEL = 760_000_000_000_000_000
SLACK_BOT_TOKEN = "xoxb-bench-token"
DELIVERY_TIMEOUT_S = 60.0


@dataclass
class LatencyResult:
    mode: str
    platform: str
    crossings: int
    delivered: int
    p50_s: float
    p95_s: float
    max_s: float
    setup: str


@dataclass
class EngineStats:
    """What the engine did during a run, beside the latencies."""

    mode: str
    news_searches: int
    ticks: int

    @property
    def searches_per_tick(self) -> float:
        return self.news_searches / self.ticks if self.ticks else 0.0


def symbols(n: int = CROSSINGS) -> list[str]:
    """Tickers in no configured group, so each crossing is an alert of its own."""
    return [f"LX{i:03d}" for i in range(n)]


class SimClock:
    """The trading day's time, running at the speed of the machine's monotonic clock."""

    def __init__(self, start: datetime = SIM_START) -> None:
        self.start = start
        self.origin = time.monotonic()

    def __call__(self) -> datetime:
        return self.at(time.monotonic())

    def at(self, monotonic: float) -> datetime:
        return self.start + timedelta(seconds=monotonic - self.origin)


class CountingNews:
    """Answers every news search at once with nothing found, and counts the searches.

    The latency figures leave Yahoo's news requests out on purpose: the count shows how many
    a real run would have made.
    """

    def __init__(self) -> None:
        self.searches = 0

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        self.searches += 1
        return NewsSearch(symbol, since, until, (), "bench")


@dataclass
class Crossing:
    symbol: str
    discord_channel: str
    slack_channel: str
    at: float = 0.0  # monotonic time of the crossing tick (or the source's price change)


@dataclass
class Rig:
    """The app with its outbox worker, the two fakes and the crossings' channels."""

    ctx: AppContext
    discord: FakeDiscord
    slack: FakeSlack
    news: CountingNews
    clock: SimClock
    crossings: list[Crossing] = field(default_factory=list)

    def arrivals(self) -> dict[str, dict[str, float]]:
        """Platform -> channel -> when its first accepted alert reached the fake."""
        out: dict[str, dict[str, float]] = {"discord": {}, "slack": {}}
        for call in self.discord.calls_to("POST", r"/channels/\d+/messages"):
            if call.status == 200:
                out["discord"].setdefault(call.path.split("/")[2], call.at)
        for scall in self.slack.calls_to("chat.postMessage"):
            if scall.status == 200:
                out["slack"].setdefault(str(scall.args["channel"]), scall.at)
        return out

    def delivered(self) -> int:
        got = self.arrivals()
        return sum(
            1
            for c in self.crossings
            if c.discord_channel in got["discord"] and c.slack_channel in got["slack"]
        )


@asynccontextmanager
async def rig(db: Path, n: int) -> AsyncIterator[Rig]:
    """Store, engine, outbox worker, both fakes with limits on, and the real notifiers."""
    settings = load_settings(
        db_url=f"sqlite:///{db}", default_threshold_pct=THRESHOLD_PCT, discord_token=TOKEN
    )
    store = Store(settings.db_url)
    clock = SimClock()
    news = CountingNews()
    ctx = AppContext(settings, build_engine(settings), store, market=NoQuotes(), news=news)
    ctx.clock = clock
    crossings = [
        Crossing(sym, str(FIRST_DISCORD_CHANNEL + i), f"CL{i:05d}")
        for i, sym in enumerate(symbols(n))
    ]
    store.add_watch(WatchEntry("discord", c.discord_channel, c.symbol, None) for c in crossings)
    store.add_watch(WatchEntry("slack", c.slack_channel, c.symbol, None) for c in crossings)
    discord_fake, slack_fake = FakeDiscord(), await FakeSlack(bot_token=SLACK_BOT_TOKEN).start()
    await discord_fake.start()
    discord_fake.add_channels(int(c.discord_channel) for c in crossings)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(discord_fake.stop)
        stack.push_async_callback(slack_fake.stop)
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        discord_fake.install(patch)
        bot = create_discord_bot(ctx)
        await stack.enter_async_context(bot)
        await login(bot, TOKEN)
        discord_fake.enforce_limits()
        slack_fake.enforce_limits()
        client = AsyncWebClient(token=SLACK_BOT_TOKEN, base_url=slack_fake.api_url)
        ctx.notifiers["slack"] = SlackNotifier(client)
        worker = OutboxWorker.of(ctx)
        ctx.wake_outbox = worker.wake
        task = asyncio.create_task(worker.run_forever())
        try:
            yield Rig(ctx, discord_fake, slack_fake, news, clock, crossings)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            store.close()


class NoQuotes:
    """The /why quote provider; the benchmark asks no /why."""

    def quotes(self, symbols: Sequence[str], now: datetime) -> Mapping[str, Quote]:
        return {}


def schedule(n: int, spacing: float, seed: int) -> list[float]:
    """Offsets of N crossings SPACING apart, each jittered within its slot."""
    rng = random.Random(seed)
    return [i * spacing + rng.uniform(0, spacing) for i in range(n)]


async def sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)


async def until_delivered(r: Rig, timeout: float = DELIVERY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while r.delivered() < len(r.crossings) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def latencies(r: Rig, mode: str, setup: str) -> list[LatencyResult]:
    got = r.arrivals()
    results = []
    for platform in ("discord", "slack"):
        samples = []
        for c in r.crossings:
            channel = c.discord_channel if platform == "discord" else c.slack_channel
            if channel in got[platform]:
                samples.append(got[platform][channel] - c.at)
        results.append(summary(mode, platform, len(r.crossings), samples, setup))
    return results


def summary(
    mode: str, platform: str, crossings: int, samples: list[float], setup: str
) -> LatencyResult:
    ordered = sorted(samples) or [float("nan")]
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return LatencyResult(
        mode,
        platform,
        crossings,
        len(samples),
        round(statistics.median(ordered), 3),
        round(p95, 3),
        round(ordered[-1], 3),
        setup,
    )


# --- streaming --------------------------------------------------------------------------


def frame(symbol: str, pct: float, at: datetime) -> str:
    """A Yahoo streamer message for SYMBOL PCT percent above the previous close."""
    return pricing_frame(symbol, PREVIOUS_CLOSE * (1 + pct / 100), PREVIOUS_CLOSE, at)


class Streamer:
    """A local stand-in for Yahoo's streamer: answers a subscription with current prices."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.pct: dict[str, float] = {}
        self.subscribed: set[str] = set()
        self.sockets: list[ServerConnection] = []

    async def handler(self, ws: ServerConnection) -> None:
        self.sockets.append(ws)
        try:
            async for raw in ws:
                wanted = json.loads(raw).get("subscribe", [])
                self.subscribed.update(wanted)
                for sym in wanted:
                    await ws.send(frame(sym, self.pct.get(sym, BEFORE_PCT), self.clock()))
        finally:
            self.sockets.remove(ws)

    async def tick(self, symbol: str, pct: float) -> float:
        """Send SYMBOL at PCT to every subscriber; returns when the frame left."""
        self.pct[symbol] = pct
        message = frame(symbol, pct, self.clock())
        sent = time.monotonic()
        for ws in list(self.sockets):
            await ws.send(message)
        return sent


async def run_streaming(
    n: int = CROSSINGS,
    spacing: float = STREAM_SPACING_S,
    batch_seconds: float = QuoteStream.batch_seconds,
) -> tuple[list[LatencyResult], EngineStats]:
    with tempfile.TemporaryDirectory() as tmp:
        async with rig(Path(tmp) / "latency.db", n) as r:
            streamer = Streamer(r.clock)
            ticks = 0

            async def on_quotes(quotes: Mapping[str, Quote]) -> None:
                nonlocal ticks
                ticks += 1
                await process_streamed(r.ctx, quotes)

            async with serve(streamer.handler, "127.0.0.1", 0) as server:
                port = next(iter(server.sockets)).getsockname()[1]
                stream = QuoteStream(
                    lambda: wanted_symbols(r.ctx),
                    on_quotes,
                    url=f"ws://127.0.0.1:{port}",
                    batch_seconds=batch_seconds,
                )
                task = asyncio.create_task(stream.run_forever())
                try:
                    await _stream_crossings(r, streamer, stream, spacing)
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            setup = (
                f"QuoteStream: an idle stream hands a tick on after "
                f"{QuoteStream.gather_seconds:g} s, a busy one batches every {batch_seconds:g} s; "
                f"a crossing every ~{spacing:g} s"
            )
            stats = EngineStats("streaming", r.news.searches, ticks)
            return latencies(r, "streaming", setup), stats


async def _stream_crossings(
    r: Rig, streamer: Streamer, stream: QuoteStream, spacing: float
) -> None:
    wanted = {c.symbol for c in r.crossings} | {MARKET}
    deadline = time.monotonic() + 10
    while not wanted <= streamer.subscribed or stream.state.messages < len(wanted):
        if time.monotonic() > deadline:
            raise RuntimeError("the quote stream did not subscribe to the watched symbols")
        await asyncio.sleep(0.02)
    await asyncio.sleep(2 * stream.batch_seconds)  # the quiet prices are in, no alert yet
    start = time.monotonic()
    for crossing, offset in zip(r.crossings, schedule(len(r.crossings), spacing, 3), strict=True):
        await sleep_until(start + offset)
        crossing.at = await streamer.tick(crossing.symbol, AFTER_PCT)
    await until_delivered(r)


# --- polling ----------------------------------------------------------------------------


class CrossingPrices:
    """A QuoteProvider (blocking, run in a thread): symbols cross at known monotonic times."""

    def __init__(self, clock: SimClock, download_s: float = DOWNLOAD_S) -> None:
        self.clock = clock
        self.download_s = download_s
        self.cross_at: dict[str, float] = {}
        self.fetches = 0

    def quotes(self, symbols: Sequence[str], now: datetime) -> Mapping[str, Quote]:
        time.sleep(self.download_s)
        self.fetches += 1
        seen = time.monotonic()  # prices as of the answer
        at = self.clock.at(seen)
        return {
            sym: Quote(
                sym,
                PREVIOUS_CLOSE * (1 + self._pct(sym, seen) / 100),
                PREVIOUS_CLOSE,
                at,
                "bench-poll",
            )
            for sym in symbols
        }

    def _pct(self, symbol: str, seen: float) -> float:
        crossed = self.cross_at.get(symbol)
        return AFTER_PCT if crossed is not None and seen >= crossed else BEFORE_PCT


async def run_polling(
    n: int = CROSSINGS, spacing: float = POLL_SPACING_S, interval: float = POLL_INTERVAL_S
) -> tuple[list[LatencyResult], EngineStats]:
    with tempfile.TemporaryDirectory() as tmp:
        async with rig(Path(tmp) / "latency.db", n) as r:
            prices = CrossingPrices(r.clock)
            poller = Poller(r.ctx, prices)
            scheduler = build_scheduler(poller, interval)
            start = time.monotonic() + interval / 2  # half a cycle after the first poll
            for crossing, offset in zip(
                r.crossings, schedule(len(r.crossings), spacing, 5), strict=True
            ):
                crossing.at = start + offset
                prices.cross_at[crossing.symbol] = crossing.at
            scheduler.start()
            try:
                await sleep_until(max(c.at for c in r.crossings))
                await until_delivered(r, timeout=DELIVERY_TIMEOUT_S + interval)
            finally:
                scheduler.shutdown(wait=False)
            per_poll = interval / spacing
            setup = (
                f"Poller every {interval:g} s (bot default 60 s), {DOWNLOAD_S:g} s download; "
                f"~{per_poll:.1f} crossings per poll"
            )
            stats = EngineStats("polling", r.news.searches, poller.state.polls)
            return latencies(r, "polling", setup), stats


async def run_all(
    n: int, progress: Callable[[str], None]
) -> tuple[list[LatencyResult], list[EngineStats]]:
    streamed, stream_stats = await run_streaming(n)
    progress(f"streaming: {n} crossings")
    polled, poll_stats = await run_polling(n)
    progress(f"polling: {n} crossings")
    return streamed + polled, [stream_stats, poll_stats]


def goals(results: Sequence[LatencyResult]) -> dict[str, bool]:
    """Issue 7's goal (streaming p95 under 5 s end to end, every crossing delivered) and
    issue 15's (streaming p95 under 0.25 s)."""
    streamed = [r for r in results if r.mode == "streaming"]
    return {
        "streaming_p95_under_5s": all(r.p95_s < 5.0 for r in streamed),
        "streaming_p95_under_0.25s": all(r.p95_s < 0.25 for r in streamed),
        "every_crossing_delivered": all(r.delivered == r.crossings for r in results),
    }


def main(
    n: int = CROSSINGS, progress: Callable[[str], None] = lambda _: None
) -> tuple[list[LatencyResult], list[EngineStats]]:
    """Streaming then polling, N crossings each, to fake Discord and Slack; about 2.5 minutes."""
    for name in (
        "discord.http",
        "bot.platforms.discord.adapter",
        "bot.platforms.slack.adapter",
        "apscheduler",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)
    return asyncio.run(run_all(n, progress))
