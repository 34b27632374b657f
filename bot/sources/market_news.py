"""Market-wide news: the news of a symbol's benchmark ETFs and of the market, as macro evidence."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime

from handlers.evidence import NewsSearcher, SourceScope
from handlers.models import NewsItem, NewsSearch

CACHE_TTL_S = 120.0


class MarketNews:
    """Asks one news source about the benchmarks of a symbol; a tick's symbols share answers."""

    name = "market news"
    scope: SourceScope = "market"

    def __init__(
        self,
        news: NewsSearcher,
        symbols_for: Callable[[str], Sequence[str]],
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.news = news
        self.symbols_for = symbols_for
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[tuple[str, datetime, datetime], tuple[float, NewsSearch]] = {}
        self._locks: dict[tuple[str, datetime, datetime], threading.Lock] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(16, thread_name_prefix="market-news")

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        others = [s for s in dict.fromkeys(self.symbols_for(symbol)) if s != symbol]
        answers = list(self._pool.map(lambda s: self._one(s, since, until), others))
        items: list[NewsItem] = [
            replace(i, source=self.name) for a in answers if a.ok for i in a.items
        ]
        failed = [f"{a.symbol}: {a.error}" for a in answers if not a.ok]
        label = f"news of {', '.join(others)}" if others else "no benchmark to ask"
        return NewsSearch(
            symbol, since, until, tuple(items), label, ok=not failed, error="; ".join(failed)
        )

    def _one(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        key = (symbol, since, until)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # symbols of one tick asking for KWEB at once: one request
            hit = self._cache.get(key)
            if hit is not None and self.clock() - hit[0] < self.ttl_s:
                return hit[1]
            answer = self.news.search(symbol, since, until)
            if answer.ok:
                self._cache[key] = (self.clock(), answer)
            return answer
