"""Yahoo's pre- and post-market prices for /why, judged against the regular close they follow."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import yfinance as yf

from bot.infra.calendars import session_bounds
from bot.sources.yahoo.quotes import (
    INTRADAY_INTERVALS,
    SOURCE,
    BarPoint,
    YahooPrices,
    describe_error,
    frame_points,
    open_yfinance_caches,
    run_with_timeout,
)
from handlers.models import Quote, Session

log = logging.getLogger(__name__)


def _session(symbol: str, point: BarPoint) -> Session:
    bounds = session_bounds(symbol, point.start.date())
    if bounds is None:
        return "regular"
    opens, closes = bounds
    if point.start < opens:
        return "pre"
    return "post" if point.start >= closes else "regular"


def extended_from_points(
    symbol: str, points: Sequence[BarPoint], now: datetime, interval: timedelta
) -> Quote | None:
    """The latest pre/post-market bar after the last regular one, against that regular close."""
    usable = [p for p in points if p.start <= now]
    last_regular: BarPoint | None = None
    latest_extended: tuple[BarPoint, Session] | None = None
    for point in usable:
        session = _session(symbol, point)
        if session == "regular":
            last_regular, latest_extended = point, None
        else:
            latest_extended = (point, session)
    if latest_extended is None or last_regular is None:
        return None
    point, session = latest_extended
    return Quote(
        symbol=symbol,
        price=point.close,
        previous_close=last_regular.close,
        at=min(point.start + interval, now),
        source=SOURCE,
        session=session,
        previous_close_at=last_regular.start + interval,
    )


class YahooWithExtendedHours:
    """YahooPrices for regular quotes, plus one pre/post-market download when /why asks."""

    def __init__(self, prices: YahooPrices) -> None:
        self.prices = prices

    def quotes(self, symbols: Sequence[str], now: datetime) -> dict[str, Quote]:
        return self.prices.quotes(symbols, now)

    def extended_quote(self, symbol: str, now: datetime) -> Quote | None:
        if self.prices.backoff.remaining():
            log.info("yahoo: rate limited; no pre/post-market price for %s", symbol)
            return None
        try:
            frame = run_with_timeout(
                partial(self._download, symbol), self.prices.timeout_s, "pre/post-market download"
            )
        except Exception as exc:
            log.warning("yahoo: no pre/post-market price for %s: %s", symbol, describe_error(exc))
            return None
        interval = INTRADAY_INTERVALS[self.prices.interval]
        return extended_from_points(symbol, frame_points(frame, symbol), now, interval)

    def _download(self, symbol: str) -> Any:
        open_yfinance_caches()
        return yf.download(
            [symbol],
            period="5d",
            interval=self.prices.interval,
            prepost=True,
            group_by="ticker",
            session=self.prices.session,
            progress=False,
            threads=1,
            auto_adjust=False,
            timeout=self.prices.timeout_s,
        )
