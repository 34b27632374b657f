"""Results dates from Yahoo's earnings calendar (yfinance Ticker.get_earnings_dates) as evidence."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import Any

import yfinance as yf

from bot.sources.yahoo.news import YahooSessionSource
from bot.sources.yahoo.quotes import (
    configure_yfinance,
    describe_error,
    forget_cached_responses,
    run_with_timeout,
)
from handlers.evidence import NOT_CHECKED, SourceScope
from handlers.models import NewsItem, NewsSearch

log = logging.getLogger(__name__)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def results_item(symbol: str, released: datetime, row: Any, source: str) -> NewsItem:
    """'BABA reported results: EPS 2.83 against 2.66 expected' for one calendar row."""
    reported = _number(row.get("Reported EPS"))
    estimate = _number(row.get("EPS Estimate"))
    if reported is not None and estimate is not None:
        detail = f": EPS {reported:g} against {estimate:g} expected"
    elif estimate is not None:
        detail = f" (EPS {estimate:g} expected)"
    else:
        detail = ""
    return NewsItem(
        title=f"{symbol} released its results{detail}",
        published=released,
        publisher="Yahoo earnings calendar",
        related=(symbol,),
        id=f"earnings:{symbol}:{released.isoformat()}",
        evidence="earnings",
        source=source,
    )


class EarningsCalendar(YahooSessionSource):
    """A results release in the window (previous close to now) is company evidence.

    The window starts at the previous close, so a release after yesterday's close counts for
    today's session, and one before today's open too.
    """

    name = "earnings calendar"
    scope: SourceScope = "company"

    def __init__(self, session: Any = None, timeout_s: float = 10.0, limit: int = 12) -> None:
        self._session = session
        self.timeout_s = timeout_s
        self.limit = limit
        configure_yfinance()

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        sym = symbol.upper()
        if sym.startswith("^") or "=" in sym:
            error = f"{NOT_CHECKED}: {sym} has no earnings"
            return NewsSearch(sym, since, until, (), self.name, ok=False, error=error)
        try:
            frame = run_with_timeout(lambda: self._dates(sym), self.timeout_s, "earnings dates")
        except Exception as exc:
            error = describe_error(exc)
            log.warning("earnings: dates for %s unavailable: %s", sym, error)
            return NewsSearch(sym, since, until, (), self.name, ok=False, error=error)
        if frame is None:  # yfinance found no table: an ETF, or a symbol Yahoo has no dates for
            return NewsSearch(sym, since, until, (), f"{self.name} (no dates for {sym})")
        items = []
        for stamp, row in frame.iterrows():
            released = stamp.to_pydatetime()
            if since <= released <= until:
                items.append(results_item(sym, released, row, self.name))
        return NewsSearch(sym, since, until, tuple(items), self.name)

    def _dates(self, symbol: str) -> Any:
        forget_cached_responses()  # the page goes through yfinance's process-wide GET cache
        return yf.Ticker(symbol, session=self.session).get_earnings_dates(limit=self.limit)
