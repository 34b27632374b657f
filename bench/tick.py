"""Benchmark 1: one poll's quotes through detect -> explain -> group -> dedupe, at growing sizes."""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from config.loader import load_macro_events
from config.settings import load_settings
from handlers.groups import GroupIndex
from handlers.models import (
    AlertKey,
    Delivery,
    LoggedAlert,
    NewsItem,
    NewsSearch,
    Quote,
    SymbolGroup,
    WatchEntry,
)
from handlers.pipeline import Engine

NOW = datetime(2025, 3, 5, 18, 30, tzinfo=UTC)
GROUP_SIZE = 10
MOVER_SHARE = 0.02  # one symbol in fifty crosses its threshold


class MemoryLog:
    """The AlertLog protocol in memory, so the figure is the engine's own cost."""

    def __init__(self) -> None:
        self.log: dict[AlertKey, LoggedAlert] = {}

    def recent_alerts(self, since: datetime) -> Mapping[AlertKey, LoggedAlert]:
        return {k: v for k, v in self.log.items() if v.at >= since}

    def muted(self, now: datetime) -> set[tuple[str, str, str]]:
        return set()

    def record(self, deliveries: Iterable[Delivery]) -> None:
        for d in deliveries:
            for dest in d.destinations:
                for m in d.alert.moves:
                    key = (dest.platform, dest.channel, m.symbol, d.alert.direction.value)
                    self.log[key] = LoggedAlert(m.pct, d.alert.at)


class MemoryNews:
    """Three items per symbol, one of them company news for a few symbols.

    A new EDITION gives every item a new headline: stories the classifier has not seen.
    """

    def __init__(self) -> None:
        self.edition = 0

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        tag = f" (update {self.edition})" if self.edition else ""
        items: tuple[NewsItem, ...] = (
            NewsItem(
                f"Markets rise as investors weigh tariffs ({symbol}){tag}",
                until - timedelta(hours=2),
                "Wire",
                related=(symbol,),
            ),
            NewsItem(
                f"{symbol} shares: three things to watch{tag}",
                until - timedelta(hours=3),
                "Blog",
                related=(symbol,),
            ),
        )
        if int(symbol[1:]) % 7 == 0:
            items += (
                NewsItem(
                    f"{symbol} beats quarterly revenue estimates{tag}",
                    until - timedelta(hours=1),
                    "Wire",
                    related=(symbol,),
                ),
            )
        return NewsSearch(symbol, since, until, items, "memory")


@dataclass
class TickResult:
    symbols: int
    entries: int
    cpu_ms: float
    per_symbol_us: float
    peak_mb: float
    alerts: int
    new_news_cpu_ms: float  # the same tick when every mover's stories are new to the classifier


def _universe(n: int, rng: random.Random) -> tuple[list[str], GroupIndex, dict[str, Quote]]:
    symbols = [f"S{i:05d}" for i in range(n)]
    groups = [
        SymbolGroup(
            f"g{g}",
            f"group {g}",
            tuple(symbols[g * GROUP_SIZE : (g + 1) * GROUP_SIZE]),
            f"B{g:04d}",
            "US",
        )
        for g in range(n // GROUP_SIZE)
    ]
    index = GroupIndex(groups, "SPY")
    quotes: dict[str, Quote] = {}
    prev_at = NOW - timedelta(hours=18)
    for sym in [*symbols, *(g.benchmark for g in groups), "SPY"]:
        pct = rng.gauss(0, 1.2)
        if sym.startswith("S") and rng.random() < MOVER_SHARE:
            pct = rng.choice([-1, 1]) * rng.uniform(5.5, 12)
        quotes[sym] = Quote(
            sym, 100 * (1 + pct / 100), 100.0, NOW, "bench", previous_close_at=prev_at
        )
    return symbols, index, quotes


def run_tick(n: int, seed: int = 7) -> TickResult:
    rng = random.Random(seed)
    symbols, groups, quotes = _universe(n, rng)
    channels = [f"c{i}" for i in range(max(1, n // 50))]
    entries = [WatchEntry("discord", rng.choice(channels), s, None) for s in symbols]
    entries += [WatchEntry("slack", rng.choice(channels), s, 4.0) for s in symbols]
    settings = load_settings(db_url="sqlite://")
    engine = Engine(groups, load_macro_events(), settings.engine_params())
    log, news = MemoryLog(), MemoryNews()
    engine.process_tick(quotes, entries[:100], {}, MemoryLog(), NOW, news)  # warm caches
    gc.collect()
    tracemalloc.start()
    start = time.process_time()
    result = engine.process_tick(quotes, entries, {}, log, NOW, news)
    cpu = time.process_time() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # tracemalloc slows Python down; time once more without it for the CPU figure
    log2 = MemoryLog()
    start = time.process_time()
    engine.process_tick(quotes, entries, {}, log2, NOW, news)
    cpu = min(cpu, time.process_time() - start)
    # The same movers with stories the classifier has not seen yet (no cached verdicts).
    news.edition = 1
    start = time.process_time()
    engine.process_tick(quotes, entries, {}, MemoryLog(), NOW, news)
    fresh = time.process_time() - start
    return TickResult(
        n,
        len(entries),
        cpu * 1000,
        cpu * 1e6 / n,
        peak / 2**20,
        len(result.deliveries),
        fresh * 1000,
    )


def main(sizes: tuple[int, ...] = (500, 5_000, 20_000)) -> list[TickResult]:
    return [run_tick(n) for n in sizes]
