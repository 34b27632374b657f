"""Market-wide news: the news of a symbol's benchmarks, of the market and of regional topics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime

import yfinance as yf

from bot.sources.yahoo.news import merge_news, parse_news
from bot.sources.yahoo.quotes import describe_error, forget_cached_responses, run_with_timeout
from handlers.evidence import SourceScope
from handlers.models import NewsItem, NewsSearch
from handlers.ports import NewsSearcher

CACHE_TTL_S = 120.0


class MarketNews:
    """The news of a symbol's benchmarks (and of its region's topics, when configured).

    Symbols of one tick share the answers: KWEB's news is asked once for all its group.
    """

    name = "market news"
    scope: SourceScope = "market"

    def __init__(
        self,
        news: NewsSearcher,
        symbols_for: Callable[[str], Sequence[str]],
        ttl_s: float = CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        topics: NewsSearcher | None = None,
        topics_for: Callable[[str], Sequence[str]] = lambda _s: (),
    ) -> None:
        self.news = news
        self.symbols_for = symbols_for
        self.topics = topics
        self.topics_for = topics_for
        self.ttl_s = ttl_s
        self.clock = clock
        self._cache: dict[tuple[str, datetime, datetime], tuple[float, NewsSearch]] = {}
        self._locks: dict[tuple[str, datetime, datetime], threading.Lock] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(16, thread_name_prefix="market-news")

    def warm_up(self) -> None:
        """Whatever the news searcher fetches once (Yahoo's cookie and crumb), before an alert."""
        warm = getattr(self.news, "warm_up", None)
        if callable(warm):
            warm()

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        others = [s for s in dict.fromkeys(self.symbols_for(symbol)) if s != symbol]
        asks: list[tuple[NewsSearcher, str]] = [(self.news, s) for s in others]
        if self.topics is not None:
            asks += [(self.topics, q) for q in self.topics_for(symbol)]
        answers = list(self._pool.map(lambda a: self._one(a[0], a[1], since, until), asks))
        items: list[NewsItem] = [
            replace(i, source=self.name) for a in answers if a.ok for i in a.items
        ]
        failed = [f"{a.symbol}: {a.error}" for a in answers if not a.ok]
        asked = [q for _, q in asks]
        label = f"news of {', '.join(asked)}" if asked else "no benchmark to ask"
        return NewsSearch(
            symbol, since, until, tuple(items), label, ok=not failed, error="; ".join(failed)
        )

    def _one(
        self, source: NewsSearcher, symbol: str, since: datetime, until: datetime
    ) -> NewsSearch:
        key = (symbol, since, until)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # symbols of one tick asking for KWEB at once: one request
            hit = self._cache.get(key)
            if hit is not None and self.clock() - hit[0] < self.ttl_s:
                return hit[1]
            answer = source.search(symbol, since, until)
            if answer.ok:
                self._cache[key] = (self.clock(), answer)
            return answer


class TopicNews:
    """Yahoo's news search for a free-text topic ("China economy"): a NewsSearcher by query."""

    def __init__(self, session: object = None, count: int = 10, timeout_s: float = 10.0) -> None:
        self.session = session
        self.count = count
        self.timeout_s = timeout_s

    def search(self, query: str, since: datetime, until: datetime) -> NewsSearch:
        try:
            raw = run_with_timeout(lambda: self._ask(query), self.timeout_s, f"topic {query}")
        except Exception as exc:
            error = describe_error(exc)
            return NewsSearch(query, since, until, (), "Yahoo topic search", ok=False, error=error)
        items = [i for i in merge_news(parse_news(raw)) if since <= i.published <= until]
        return NewsSearch(query, since, until, tuple(items), f"Yahoo search '{query}'")

    def _ask(self, query: str) -> object:
        forget_cached_responses()  # yf.Search goes through yfinance's process-wide GET cache
        found = yf.Search(query, news_count=self.count, session=self.session)
        response = found.response
        return response.get("news") if isinstance(response, dict) else None
