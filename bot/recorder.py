"""Record a live session: quotes as they arrive become 1-minute bars in the intraday CSV format.

Files are `DIR/SYMBOL-YYYY-MM-DD.csv` (exchange date) with the columns
`symbol,datetime,open,high,low,close,volume,session,previous_close`, one row per minute that had
a quote, written when the minute is over, so `marketbot replay --bars DIR` replays the day later.
Volume is 0: quotes carry no traded volume.
"""

from __future__ import annotations

import asyncio
import csv
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.infra.calendars import exchange_zone
from handlers.models import Quote, Session
from handlers.ports import QuoteProvider

log = logging.getLogger(__name__)

COLUMNS = (
    "symbol",
    "datetime",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "session",
    "previous_close",
)
EPSILON = timedelta(microseconds=1)


@dataclass
class _OpenBar:
    minute: datetime
    session: Session
    open: float
    high: float
    low: float
    close: float
    previous_close: float | None

    def add(self, price: float) -> None:
        self.high, self.low, self.close = max(self.high, price), min(self.low, price), price


@dataclass
class BarRecorder:
    """Folds quotes into one bar per symbol and minute; appends each bar once its minute ends."""

    out: Path
    written: int = 0
    quotes: int = 0
    files: set[Path] = field(default_factory=set)
    _open: dict[str, _OpenBar] = field(default_factory=dict)
    _last_at: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)

    def add(self, quotes: Iterable[Quote]) -> None:
        """Take new quotes; a quote no newer than the last one of its symbol is a repeat."""
        for quote in quotes:
            last = self._last_at.get(quote.symbol)
            if last is not None and quote.at <= last:
                continue
            self._last_at[quote.symbol] = quote.at
            self.quotes += 1
            self._add(quote)

    def _add(self, quote: Quote) -> None:
        # A price stamped on the minute (a poll's bar end) closes the minute before, so the
        # replay, which stamps each bar at its end, gives it back at the same time.
        local = (quote.at - EPSILON).astimezone(exchange_zone(quote.symbol))
        minute = local.replace(second=0, microsecond=0)
        bar = self._open.get(quote.symbol)
        if bar is not None and bar.minute == minute and bar.session == quote.session:
            bar.add(quote.price)
            return
        if bar is not None:
            self._write(quote.symbol, bar)
        self._open[quote.symbol] = _OpenBar(
            minute,
            quote.session,
            quote.price,
            quote.price,
            quote.price,
            quote.price,
            quote.previous_close,
        )

    def flush(self) -> None:
        """Write the bars still open (at the end of a recording)."""
        for symbol, bar in sorted(self._open.items()):
            self._write(symbol, bar)
        self._open.clear()

    def _write(self, symbol: str, bar: _OpenBar) -> None:
        path = self.out / f"{symbol}-{bar.minute:%Y-%m-%d}.csv"
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(COLUMNS)
            prev = "" if bar.previous_close is None else f"{bar.previous_close:.6g}"
            writer.writerow(
                [
                    symbol,
                    bar.minute.isoformat(),
                    f"{bar.open:.6g}",
                    f"{bar.high:.6g}",
                    f"{bar.low:.6g}",
                    f"{bar.close:.6g}",
                    0,
                    bar.session,
                    prev,
                ]
            )
        self.files.add(path)
        self.written += 1


def poll_once(
    prices: QuoteProvider, symbols: Sequence[str], recorder: BarRecorder, now: datetime
) -> int:
    """One poll of PRICES into RECORDER; the number of quotes it returned."""
    quotes = prices.quotes(symbols, now)
    recorder.add(q for q in quotes.values() if not q.stale)
    return len(quotes)


async def record_poll(
    prices: QuoteProvider,
    symbols: Sequence[str],
    recorder: BarRecorder,
    every_s: float,
    duration_s: float | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Poll every EVERY_S seconds (blocking downloads in a thread) for DURATION_S, or forever."""
    end = None if duration_s is None else time.monotonic() + duration_s
    try:
        while end is None or time.monotonic() < end:
            await asyncio.to_thread(poll_once, prices, symbols, recorder, clock())
            await asyncio.sleep(every_s if end is None else min(every_s, end - time.monotonic()))
    finally:
        recorder.flush()


async def record_stream(
    symbols: Sequence[str],
    recorder: BarRecorder,
    duration_s: float | None,
    url: str | None = None,
    batch_seconds: float = 0.2,
) -> Any:
    """Record the quote stream of SYMBOLS for DURATION_S seconds, or until cancelled."""
    from bot.sources.yahoo.stream import YAHOO_STREAM_URL, QuoteStream

    wanted = set(symbols)

    async def want() -> set[str]:
        return wanted

    async def take(quotes: Mapping[str, Quote]) -> None:
        recorder.add(quotes.values())

    stream = QuoteStream(want, take, url=url or YAHOO_STREAM_URL, batch_seconds=batch_seconds)
    try:
        await asyncio.wait_for(stream.run_forever(), duration_s)
    except TimeoutError:
        pass
    finally:
        # Quotes that arrived after the last batch was handed on.
        recorder.add(stream._latest.values())
        recorder.flush()
    return stream.state
