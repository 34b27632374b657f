"""Yahoo news: its JSON (1.x nested 'content' or legacy flat) -> NewsItem, and the news source."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import requests
import yfinance as yf
from yfinance.data import YfData
from yfinance.exceptions import YFRateLimitError

from bot.sources.yahoo.quotes import (
    RATE_LIMITED,
    Backoff,
    YahooAnswerError,
    configure_yfinance,
    describe_error,
    forget_cached_responses,
    run_with_timeout,
    shared_session,
)
from handlers.evidence import SourceScope
from handlers.models import NewsItem, NewsSearch
from handlers.symbols import SymbolError, normalize_symbol

log = logging.getLogger(__name__)

NEWS_SOURCE = "Yahoo Finance"


def warm_yahoo_session(session: Any, timeout_s: float) -> None:
    """Fetch yfinance's cookie and crumb now (two requests, in series), so that the first alert
    does not wait for them; every yfinance call of the process shares them afterwards.

    yfinance has no public call for this; its data layer fetches them under a lock, so a
    search started meanwhile waits for this fetch instead of making its own.
    """
    crumb, _strategy = YfData(session=session)._get_cookie_and_crumb(timeout=timeout_s)
    if not crumb:
        raise YahooAnswerError("Yahoo gave no cookie and crumb")


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _get(mapping: Any, *path: str) -> Any:
    current = mapping
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def parse_news_item(raw: Any) -> NewsItem | None:
    """Turn one Yahoo news item (1.x nested 'content' or legacy flat shape) into a NewsItem.

    Returns None, with a debug log, for anything without a title and a publish time.
    """
    if not isinstance(raw, Mapping):
        log.debug("news item skipped: not an object")
        return None
    nested = raw.get("content")
    content: Mapping[str, Any] = nested if isinstance(nested, Mapping) else raw
    title = content.get("title")
    published = _as_datetime(
        content.get("pubDate")
        or content.get("displayTime")
        or content.get("providerPublishTime")
        or content.get("published")
    )
    if not isinstance(title, str) or not title.strip() or published is None:
        log.debug("news item skipped: no title or publish time (%s)", raw.get("id", "?"))
        return None
    url = (
        _get(content, "canonicalUrl", "url")
        or _get(content, "clickThroughUrl", "url")
        or content.get("link")
        or content.get("url")
    )
    publisher = (
        _get(content, "provider", "displayName") or content.get("publisher") or raw.get("source")
    )
    related = content.get("relatedTickers") or content.get("related") or ()
    if not related:
        tickers = _get(content, "finance", "stockTickers") or []
        related = [t.get("symbol") for t in tickers if isinstance(t, Mapping)]
    summary = content.get("summary") or content.get("description") or ""
    return NewsItem(
        title=title.strip(),
        published=published,
        publisher=publisher if isinstance(publisher, str) else "",
        url=url if isinstance(url, str) else None,
        summary=summary if isinstance(summary, str) else "",
        related=tuple(str(r).upper() for r in related if isinstance(r, str) and r),
        id=str(raw.get("id") or raw.get("uuid") or content.get("id") or title),
    )


def parse_news(raw_items: Any) -> list[NewsItem]:
    """Parse a list of raw items, skipping (and counting in the log) what cannot be read."""
    if not isinstance(raw_items, list):
        log.warning("news feed returned %s, not a list: treated as no items", type(raw_items))
        return []
    items = [item for item in (parse_news_item(r) for r in raw_items) if item is not None]
    skipped = len(raw_items) - len(items)
    if skipped:
        log.info("news: %d of %d items skipped as unreadable", skipped, len(raw_items))
    return items


class YahooSessionSource:
    """A source asking Yahoo through yfinance: the session it uses, and its start-up warm-up."""

    _session: Any
    timeout_s: float

    @property
    def session(self) -> Any:
        return self._session if self._session is not None else shared_session()

    def warm_up(self) -> None:
        """Yahoo's cookie and crumb (shared by every yfinance call), before the first alert."""
        warm_yahoo_session(self.session, self.timeout_s)


class YahooNews(YahooSessionSource):
    """News for a symbol from Yahoo's ticker news feed and its search, parsed and deduplicated."""

    name = "Yahoo news"
    scope: SourceScope = "company"

    def __init__(
        self,
        session: requests.Session | Any | None = None,
        count: int = 20,
        timeout_s: float = 15.0,
        max_backoff_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= count <= 100:
            raise ValueError(f"count must be between 1 and 100, not {count!r}")
        self._session = session
        self.count = count
        self.timeout_s = timeout_s
        self.backoff = Backoff(max_backoff_s, clock)
        configure_yfinance()

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        """Items published in [SINCE, UNTIL]; ok=False when news cannot be ruled out."""
        try:
            sym = normalize_symbol(symbol)
        except SymbolError as exc:
            return NewsSearch(symbol, since, until, (), NEWS_SOURCE, ok=False, error=str(exc))
        if waiting := self.backoff.remaining():
            error = f"rate limited by Yahoo; retrying in {waiting:.0f} s"
            return NewsSearch(sym, since, until, (), NEWS_SOURCE, ok=False, error=error)
        feed, feed_error, found, search_error = self._gather(sym)
        # An empty ticker feed is also what yfinance returns for an error page, so only a
        # search that answered properly (or a feed with items) rules news out.
        if search_error is not None and not feed:
            error = "; ".join(
                f"{name}: {err}"
                for name, err in (("ticker news", feed_error), ("search", search_error))
                if err
            )
            if feed == [] and feed_error is None:
                error = f"ticker news: empty; {error}"
            log.warning("yahoo: news for %s unavailable: %s", sym, error)
            return NewsSearch(sym, since, until, (), NEWS_SOURCE, ok=False, error=error)
        items = merge_news([*parse_news(feed or []), *parse_news(found or [])])
        in_window = tuple(
            replace(i, source=self.name) for i in items if since <= i.published <= until
        )
        return NewsSearch(sym, since, until, in_window, _source_label(feed_error, search_error))

    def _gather(
        self, sym: str
    ) -> tuple[list[Any] | None, str | None, list[Any] | None, str | None]:
        """Raw items and errors from the ticker feed, then from search; backs off on a 429."""
        feed, feed_error = self._fetch("ticker news", partial(self._ticker_news, sym))
        found: list[Any] | None = None
        search_error: str | None = RATE_LIMITED  # after a 429, asking again would prolong it
        if feed_error != RATE_LIMITED:
            found, search_error = self._fetch("search", partial(self._search_news, sym))
        if RATE_LIMITED in (feed_error, search_error):
            delay = self.backoff.engage()
            log.warning("yahoo: news rate limited (HTTP 429); no news requests for %.0f s", delay)
        else:
            self.backoff.reset()
        return feed, feed_error, found, search_error

    def _fetch(
        self, what: str, call: Callable[[], list[Any]]
    ) -> tuple[list[Any] | None, str | None]:
        """The raw items from one feed, or None and why it failed."""
        try:
            raw = run_with_timeout(call, self.timeout_s, what)
        except YFRateLimitError:
            return None, RATE_LIMITED
        except Exception as exc:
            return None, describe_error(exc)
        if not isinstance(raw, list):
            return None, f"unexpected answer ({type(raw).__name__}, not a list)"
        return raw, None

    def _ticker_news(self, symbol: str) -> list[Any]:
        # A fresh Ticker: yfinance keeps the first news it fetched on the instance for good.
        news: list[Any] = yf.Ticker(symbol, session=self.session).get_news(
            count=self.count, tab="news"
        )
        return news

    def _search_news(self, symbol: str) -> list[Any]:
        # Search goes through yfinance's process-wide response cache; without clearing it the
        # same query would return the first answer for the life of the process.
        forget_cached_responses()
        result = yf.Search(
            symbol, news_count=self.count, session=self.session, timeout=self.timeout_s
        )
        response = result.response
        if not isinstance(response, Mapping) or not isinstance(response.get("news"), list):
            raise YahooAnswerError("Yahoo's search answer has no news list")
        news: list[Any] = response["news"]
        return news


def merge_news(items: Iterable[NewsItem]) -> list[NewsItem]:
    """Items once each (same id or same title), newest first."""
    seen: set[str] = set()
    out: list[NewsItem] = []
    for item in sorted(items, key=lambda i: i.published, reverse=True):
        keys = {f"title:{' '.join(item.title.lower().split())}"}
        if item.id:
            keys.add(f"id:{item.id}")
        if keys & seen:
            continue
        seen |= keys
        out.append(item)
    return out


def _source_label(feed_error: str | None, search_error: str | None) -> str:
    if feed_error:
        return f"{NEWS_SOURCE} search (ticker news failed: {feed_error})"
    if search_error:
        return f"{NEWS_SOURCE} ticker news (search failed: {search_error})"
    return f"{NEWS_SOURCE} ticker news + search"
