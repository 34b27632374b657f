"""Benchmarks 4 and 5: /why against a slow fake Yahoo, and Yahoo requests per poll cycle."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from unittest import mock
from zoneinfo import ZoneInfo

import yfinance
import yfinance as yf

from bot.app import AppContext, build_engine
from bot.scheduler import Poller
from bot.sources import yahoo
from bot.sources.yahoo import YahooPrices
from bot.sources.yahoo_news import YahooNews
from bot.store import Store
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
    settings = load_settings(db_url="sqlite://")
    store = Store("sqlite://")
    store.add_watch(
        WatchEntry("discord", f"c{c}", s, 5.0) for c in range(channels) for s in SYMBOLS[:symbols]
    )
    prices = YahooPrices(FakeSession(fake), requests_per_second=1000)
    ctx = AppContext(settings, build_engine(settings), store, prices, None, clock=lambda: NOW)
    poller = Poller(ctx, prices)
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
