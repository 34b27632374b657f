"""Scheduled economic releases of the day (yfinance Calendars), with actual against expected."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import yfinance as yf

from bot.sources.yahoo.news import YahooSessionSource
from bot.sources.yahoo.quotes import configure_yfinance, describe_error, run_with_timeout
from handlers.evidence import SourceScope
from handlers.models import NewsItem, NewsSearch

log = logging.getLogger(__name__)

CACHE_TTL_S = 300.0


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value).strip()


def release_item(event: str, row: Any, at: datetime, source: str) -> NewsItem:
    """'US CPI YY (Feb): actual 2.8, expected 2.9, last 3.0' for one calendar row."""
    region = _text(row.get("Region")).upper()
    period = _text(row.get("For"))
    figures = ", ".join(
        f"{label} {_text(row.get(col))}"
        for label, col in (("actual", "Actual"), ("expected", "Expected"), ("last", "Last"))
        if _text(row.get(col))
    )
    title = " ".join(p for p in (region, event, f"({period})" if period else "") if p)
    return NewsItem(
        title=title + (f": {figures}" if figures else ""),
        published=at,
        publisher="Yahoo economic calendar",
        related=(),
        id=f"econ:{region}:{event}:{at.isoformat()}",
        evidence="economic",
        summary=f"Scheduled release for {region or 'the market'}"
        + (f"; {figures}" if figures else ""),
        source=source,
    )


class EconomicCalendar(YahooSessionSource):
    """Releases in the window for the symbol's region and the US (whose data moves everything)."""

    name = "economic calendar"
    scope: SourceScope = "market"

    def __init__(
        self,
        region_of: Callable[[str], str] = lambda _s: "US",
        session: Any = None,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.region_of = region_of
        self._session = session
        self.timeout_s = timeout_s
        self.clock = clock
        self.requests = 0
        self._cache: dict[tuple[str, str], tuple[float, list[tuple[datetime, str, Any]]]] = {}
        self._lock = threading.Lock()
        configure_yfinance()

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        regions = {self.region_of(symbol).upper(), "US"}
        try:
            rows = self._rows(since, until)
        except Exception as exc:
            error = describe_error(exc)
            log.warning("economic calendar unavailable: %s", error)
            return NewsSearch(symbol, since, until, (), self.name, ok=False, error=error)
        items = tuple(
            release_item(event, row, at, self.name)
            for at, event, row in rows
            if since <= at <= until and _text(row.get("Region")).upper() in regions
        )
        return NewsSearch(symbol, since, until, items, self.name)

    def _rows(self, since: datetime, until: datetime) -> list[tuple[datetime, str, Any]]:
        """The calendar's rows for the window's days; one request per day range, cached."""
        start = since.astimezone(UTC).date().isoformat()
        end = (until.astimezone(UTC).date() + timedelta(days=1)).isoformat()
        with self._lock:
            hit = self._cache.get((start, end))
            if hit is not None and self.clock() - hit[0] < CACHE_TTL_S:
                return hit[1]
            frame = run_with_timeout(
                lambda: self._fetch(start, end), self.timeout_s, "economic calendar"
            )
            rows = []
            for event, row in frame.iterrows() if not frame.empty else ():
                stamp = row.get("Event Time")
                if stamp is None or getattr(stamp, "tzinfo", 1) is None:
                    continue
                at = stamp.to_pydatetime() if hasattr(stamp, "to_pydatetime") else stamp
                rows.append((at if at.tzinfo else at.replace(tzinfo=UTC), str(event), row))
            self._cache[(start, end)] = (self.clock(), rows)
            return rows

    def _fetch(self, start: str, end: str) -> Any:
        self.requests += 1
        calendars = yf.Calendars(start=start, end=end, session=self.session)
        return calendars.get_economic_events_calendar(limit=100)
