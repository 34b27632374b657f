"""Replay source: daily OHLCV CSV files turned into intraday ticks on a simulated clock."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

from handlers.models import Bar, Quote
from handlers.symbols import SymbolError, normalize_symbol

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
NEW_YORK = ZoneInfo("America/New_York")
# Where in the session each point of a daily bar is placed (exchange time).
OPEN_AT, FIRST_EXTREME_AT, SECOND_EXTREME_AT, CLOSE_AT = (
    time(9, 30),
    time(11, 0),
    time(13, 30),
    time(16, 0),
)
SOURCE = "replay (daily bars)"


class BarsError(Exception):
    """A bars file that cannot be used at all, with a message naming the file and the fix."""


@dataclass
class LoadReport:
    """What loading bars read and what it skipped, so nothing is dropped silently."""

    files: int = 0
    rows: int = 0
    skipped: list[str] = field(default_factory=list)


def _csv_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.glob("*.csv")))
        elif path.is_file():
            files.append(path)
        else:
            raise BarsError(f"{path}: no such file or folder")
    if not files:
        raise BarsError("no CSV files found in " + ", ".join(str(p) for p in paths))
    return files


def _parse_row(row: Mapping[str, str | None]) -> Bar:
    symbol = normalize_symbol(row["symbol"] or "")
    values = {}
    for col in ("open", "high", "low", "close", "volume"):
        raw = (row.get(col) or "").strip()
        try:
            values[col] = float(raw)
        except ValueError:
            raise ValueError(f"{col} '{raw}' is not a number") from None
        if not math.isfinite(values[col]):
            raise ValueError(f"{col} is {raw}")
    for col in ("open", "high", "low", "close"):
        if values[col] <= 0:
            raise ValueError(f"{col} {values[col]:g} is not a positive price")
    if values["low"] > min(values["open"], values["close"]) or values["high"] < max(
        values["open"], values["close"]
    ):
        raise ValueError("high/low do not bracket open and close")
    return Bar(
        symbol=symbol,
        day=date.fromisoformat((row["date"] or "").strip()[:10]),
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        volume=values["volume"],
    )


def read_bars_file(path: Path, report: LoadReport) -> list[Bar]:
    """Read one CSV; bad rows are skipped and listed in REPORT, a bad header raises BarsError."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise BarsError(f"{path}: cannot read ({exc.strerror})") from exc
    with handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise BarsError(f"{path}: the file is empty (expected a header line and rows)")
        header = [h.strip().lower() for h in reader.fieldnames]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise BarsError(
                f"{path}: missing column(s) {', '.join(missing)}; "
                f"expected {','.join(REQUIRED_COLUMNS)} (extra columns are ignored)"
            )
        reader.fieldnames = header
        bars = []
        for lineno, row in enumerate(reader, start=2):
            report.rows += 1
            try:
                bars.append(_parse_row(row))
            except (ValueError, SymbolError, KeyError) as exc:
                msg = f"{path.name}:{lineno}: skipped ({exc})"
                log.warning(msg)
                report.skipped.append(msg)
    report.files += 1
    return bars


def load_bars(paths: Sequence[Path]) -> tuple[dict[str, list[Bar]], LoadReport]:
    """Bars per symbol, sorted by day, from files or folders of CSVs."""
    report = LoadReport()
    by_symbol: dict[str, dict[date, Bar]] = {}
    for path in _csv_files(paths):
        for bar in read_bars_file(path, report):
            by_symbol.setdefault(bar.symbol, {})[bar.day] = bar
    bars = {sym: [days[d] for d in sorted(days)] for sym, days in by_symbol.items()}
    if not bars:
        raise BarsError("no usable rows in " + ", ".join(str(p) for p in paths))
    return bars, report


def intraday_path(bar: Bar) -> list[tuple[time, float]]:
    """A plausible order for a day's prices: an up day dips first, a down day pops first."""
    if bar.close >= bar.open:
        first, second = bar.low, bar.high
    else:
        first, second = bar.high, bar.low
    return [
        (OPEN_AT, bar.open),
        (FIRST_EXTREME_AT, first),
        (SECOND_EXTREME_AT, second),
        (CLOSE_AT, bar.close),
    ]


@dataclass(frozen=True, slots=True)
class Tick:
    """Every symbol's quote at one moment of the replay."""

    at: datetime
    quotes: dict[str, Quote]


class Replay:
    """Serves ticks in time order and answers 'what was the price at T' for /why."""

    def __init__(self, bars: Mapping[str, Sequence[Bar]], tz: ZoneInfo = NEW_YORK) -> None:
        self.bars = {s: list(b) for s, b in bars.items()}
        self.tz = tz
        self.days = sorted({b.day for bs in self.bars.values() for b in bs})
        self._by_day = {s: {b.day: i for i, b in enumerate(bs)} for s, bs in self.bars.items()}

    @property
    def symbols(self) -> list[str]:
        return sorted(self.bars)

    def _at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.tz)

    def ticks(self, start: date | None = None, end: date | None = None) -> Iterator[Tick]:
        """Quotes for all symbols at each of a day's four points, days in order."""
        for day in self.days:
            if (start and day < start) or (end and day > end):
                continue
            points: dict[time, dict[str, Quote]] = {}
            for sym in self.bars:
                quotes = self._day_quotes(sym, day)
                for moment, quote in quotes:
                    points.setdefault(moment, {})[sym] = quote
            for moment in sorted(points):
                yield Tick(self._at(day, moment), points[moment])

    def _day_quotes(self, symbol: str, day: date) -> list[tuple[time, Quote]]:
        idx = self._by_day.get(symbol, {}).get(day)
        if idx is None or idx == 0:
            return []  # no bar that day, or no previous close to judge it against
        bar, prev = self.bars[symbol][idx], self.bars[symbol][idx - 1]
        prev_close_at = self._at(prev.day, CLOSE_AT)
        return [
            (
                moment,
                Quote(
                    symbol=symbol,
                    price=price,
                    previous_close=prev.close,
                    at=self._at(day, moment),
                    source=SOURCE,
                    open=bar.open,
                    previous_close_at=prev_close_at,
                ),
            )
            for moment, price in intraday_path(bar)
        ]

    def quote_at(self, symbol: str, at: datetime) -> Quote | None:
        """The latest replayed quote for SYMBOL at or before AT."""
        local = at.astimezone(self.tz)
        days = [d for d in self.days if d <= local.date()]
        for day in reversed(days):
            quotes = [q for m, q in self._day_quotes(symbol, day) if q.at <= at]
            if quotes:
                return quotes[-1]
        return None

    def quotes(self, symbols: Sequence[str], now: datetime) -> dict[str, Quote]:
        """QuoteProvider for /why on the simulated clock."""
        out = {}
        for sym in symbols:
            quote = self.quote_at(sym, now)
            if quote is not None:
                out[sym] = quote
        return out

    def session_path(self, symbol: str, until: datetime) -> list[tuple[datetime, float]]:
        """The previous close, then the replayed prices of UNTIL's session up to UNTIL."""
        latest = self.quote_at(symbol, until)
        if latest is None or latest.previous_close_at is None or not latest.previous_close:
            return []
        day = latest.at.astimezone(self.tz).date()
        path = [(m, q) for m, q in self._day_quotes(symbol, day) if q.at <= until]
        return [(latest.previous_close_at, latest.previous_close)] + [
            (q.at, q.price) for _, q in path
        ]

    def daily_returns(self, before: date) -> dict[str, list[float]]:
        """Close-to-close returns in percent of each symbol for days before BEFORE."""
        out: dict[str, list[float]] = {}
        for sym, bars in self.bars.items():
            closes = [b.close for b in bars if b.day < before]
            out[sym] = [(b / a - 1.0) * 100.0 for a, b in pairwise(closes)]
        return out
