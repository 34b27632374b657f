"""Benchmarks 4 and 5: /why against a slow fake Yahoo, and Yahoo requests per poll cycle."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import yfinance
import yfinance as yf

from bot.app import AppContext, build_engine
from bot.infra.scheduler import Poller
from bot.infra.store import Store
from bot.sources.yahoo import quotes as yahoo
from bot.sources.yahoo.news import YahooNews
from bot.sources.yahoo.quotes import YahooPrices
from config.settings import load_settings
from handlers import commands
from handlers.models import WatchEntry
from tests.yahoo_fake import (
    EscapeGuard,
    FakeSession,
    FakeYahoo,
    Reply,
    guarded_session_factory,
    intraday_chart,
    load_days,
    quote_entry,
)

NY = ZoneInfo("America/New_York")
NOW = datetime(2025, 3, 5, 15, 55, tzinfo=NY)
SYMBOLS = ["BABA", "JD", "SPY", "KWEB"]
YAHOO_LATENCY_S = 0.3


@contextmanager
def offline_yfinance() -> Iterator[EscapeGuard]:
    """yfinance with fresh caches in a temporary folder and no session of its own."""
    guard = EscapeGuard()
    factory = guarded_session_factory(guard)
    modules = (yfinance.data, yfinance.multi, yfinance.base, yfinance.scrapers.history)
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(yahoo, "_shared", factory()):
        patches = [mock.patch.object(m, "new_session", factory) for m in modules]
        for p in patches:
            p.start()
        yf.set_tz_cache_location(tmp)
        try:
            reset_yfinance()
            yield guard
        finally:
            for p in patches:
                p.stop()
            reset_yfinance()
    if guard.escaped:
        raise RuntimeError(f"yfinance tried the network: {guard.escaped[:3]}")


def reset_yfinance() -> None:
    """Forget yfinance's process-wide caches, as a new process would start."""
    yfinance.cache._TzCacheManager._tz_cache = None
    yfinance.cache._CookieCacheManager._Cookie_cache = None
    yfinance.data.SingletonMeta._instances.pop(yfinance.data.YfData, None)
    yahoo.forget_cached_responses()


def serving_fake(delay_s: float = 0.0) -> FakeYahoo:
    """A fake Yahoo that knows every configured symbol (those without re-typed prices get
    BABA's path under their own name: the shape of the answer is what costs time here)."""
    fake = FakeYahoo(delay_s=delay_s)
    days = load_days()
    groups = build_engine(load_settings(db_url="sqlite://")).groups
    known = set(SYMBOLS) | groups.reference_symbols(
        [s for g in groups.groups.values() for s in g.symbols]
    )
    for sym in sorted(known):
        fake.charts[sym] = Reply.json(intraday_chart(sym, days.get(sym, days["BABA"])))
    return fake


@dataclass
class RequestCount:
    symbols: int
    channels: int
    requests: int
    chart_requests: int


def requests_per_cycle(symbols: int, channels: int) -> RequestCount:
    """HTTP requests one poll makes for CHANNELS channels all watching SYMBOLS symbols."""
    fake = serving_fake()
    for sym in fake.charts:
        fake.quotes[sym] = quote_entry(sym, 101.0, 100.0, NOW - timedelta(minutes=1))
    settings = load_settings(db_url="sqlite://")
    store = Store("sqlite://")
    store.add_watch(
        WatchEntry("discord", f"c{c}", s, 5.0) for c in range(channels) for s in SYMBOLS[:symbols]
    )
    prices = YahooPrices(FakeSession(fake), requests_per_second=1000)
    ctx = AppContext(settings, build_engine(settings), store, prices, None, clock=lambda: NOW)
    poller = Poller(ctx, prices.batched())  # as `marketbot run` polls: batched v7 quotes
    asyncio.run(poller.poll_once())  # first poll also fetches cookie, crumb and timezones
    before = len(fake.seen)
    asyncio.run(poller.poll_once())
    cycle = fake.seen[before:]
    return RequestCount(symbols, channels, len(cycle), sum(r.is_chart for r in cycle))


@dataclass
class WhyLatency:
    case: str
    runs: int
    p50_s: float
    p95_s: float


def why_latency(runs: int = 5) -> list[WhyLatency]:
    """The full /why answer with every Yahoo request taking 300 ms: cold and warm."""
    settings = load_settings(db_url="sqlite://")
    engine = build_engine(settings)
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(runs):
        fresh_cache = tempfile.mkdtemp(prefix="yf-cold-")
        yf.set_tz_cache_location(fresh_cache)  # a new process on a new machine: nothing cached
        reset_yfinance()
        fake = serving_fake(YAHOO_LATENCY_S)
        session = FakeSession(fake)
        prices, news = YahooPrices(session, requests_per_second=1000), YahooNews(session)
        for bucket in (cold, warm):
            start = time.perf_counter()
            reply = commands.why(engine, "BABA", prices, news, NOW)
            bucket.append(time.perf_counter() - start)
            assert reply.ok, reply.text
        shutil.rmtree(fresh_cache, ignore_errors=True)
    return [_latency("cold (new process)", cold), _latency("warm (caches filled)", warm)]


def _latency(case: str, samples: list[float]) -> WhyLatency:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return WhyLatency(case, len(samples), statistics.median(samples), p95)


def main() -> tuple[list[RequestCount], list[WhyLatency]]:
    with offline_yfinance():
        counts = [requests_per_cycle(s, c) for s in (1, 2, 4) for c in (1, 10, 100)]
        latency = why_latency()
    return counts, latency


# --- Yahoo at scale: batched v7 quotes vs today's per-symbol chart download ------------------

SCALE_SIZES = (100, 1_000, 5_000)
BUCKET_RATE = 2.0  # the default yahoo_requests_per_second


@dataclass
class CycleCost:
    method: str
    symbols: int
    requests: int
    kilobytes: float
    quotes: int
    seconds: float

    @property
    def symbols_per_request(self) -> float:
        return self.symbols / self.requests if self.requests else 0.0

    @property
    def bucket_floor_s(self) -> float:
        """Computed, not measured: the least time these requests take at BUCKET_RATE a second
        (one token each, the first free)."""
        return max(0, self.requests - 1) / BUCKET_RATE


def scale_symbols(n: int) -> list[str]:
    return [f"S{i:04d}" for i in range(n)]


def scale_fake(symbols: list[str], delay_s: float = 0.0) -> FakeYahoo:
    """v7 quotes for every symbol and, built when asked, its 5-minute chart (BABA's path)."""
    fake = FakeYahoo(delay_s=delay_s)
    quoted_at = NOW - timedelta(minutes=1)
    for i, sym in enumerate(symbols):
        fake.quotes[sym] = quote_entry(sym, 100.0 + (i % 13) * 0.1, 100.0, quoted_at)
    template = json.dumps(intraday_chart("ZZZZ", load_days()["BABA"])).encode()

    def chart(sym: str) -> Reply:
        return Reply(200, template.replace(b'"ZZZZ"', json.dumps(sym).encode()))

    fake.chart_for = chart
    return fake


def measure_cycle(method: str, n: int, rate: float = 1000.0, delay_s: float = 0.0) -> CycleCost:
    """The second of two cycles (the first also fetches cookie, crumb and timezones)."""
    symbols = scale_symbols(n)
    fake = scale_fake(symbols, delay_s)
    prices = YahooPrices(FakeSession(fake), requests_per_second=rate, timeout_s=600.0)
    fetch = prices.batch_quotes if method == "v7" else prices.quotes
    fetch(symbols, NOW)
    before = len(fake.seen)
    start = time.perf_counter()
    got = fetch(symbols, NOW)
    seconds = time.perf_counter() - start
    sizes = fake.sizes[before:]
    return CycleCost(method, n, len(fake.seen) - before, sum(sizes) / 1024, len(got), seconds)


def scale_main() -> tuple[list[CycleCost], CycleCost]:
    """Requests and bytes per cycle at each size, both ways; one 5,000-symbol cycle at 2/s."""
    logging.getLogger("bot.sources.yahoo.quotes").setLevel(logging.ERROR)
    with offline_yfinance():
        costs = [measure_cycle(method, n) for n in SCALE_SIZES for method in ("v7", "chart")]
        timed = measure_cycle("v7", SCALE_SIZES[-1], BUCKET_RATE, YAHOO_LATENCY_S)
    return costs, timed
