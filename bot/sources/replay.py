"""Replay source: daily bars as their real closes, intraday bars minute by minute, from CSV files.

Daily bars give one quote per day, the close at the exchange's closing time, measured against the
previous close: every figure shown really happened (the day's high is not placed at an invented
time). Intraday bars (`symbol,datetime,open,high,low,close,volume`, ISO 8601 times with their UTC
offset) give one quote per bar, at the bar's end, at its close.
"""

from __future__ import annotations

import bisect
import csv
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from itertools import pairwise
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo

from bot.infra.calendars import exchange_zone, session_bounds
from handlers.models import Bar, Quote, Session
from handlers.symbols import SymbolError, normalize_symbol

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")
INTRADAY_COLUMNS = ("symbol", "datetime", "open", "high", "low", "close", "volume")
NEW_YORK = ZoneInfo("America/New_York")
# Where a daily close is placed when the exchange calendar does not know the day.
CLOSE_AT = time(16, 0)
SOURCE = "replay (daily closes)"
INTRADAY_SOURCE = "replay (intraday bars)"
DEFAULT_INTERVAL = timedelta(minutes=1)
FIVE_MINUTES = timedelta(minutes=5)
SESSIONS: tuple[str, ...] = get_args(Session)


class BarsError(Exception):
    """A bars file that cannot be used at all, with a message naming the file and the fix."""


@dataclass(frozen=True, slots=True)
class IntradayBar:
    """One intraday OHLCV bar; SESSION and PREVIOUS_CLOSE when the file says them."""

    symbol: str
    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    session: Session | None = None
    previous_close: float | None = None


@dataclass
class LoadReport:
    """What loading bars read and what it skipped, so nothing is dropped silently."""

    files: int = 0
    rows: int = 0
    skipped: list[str] = field(default_factory=list)
    intraday_rows: int = 0


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


def _prices(row: Mapping[str, str | None]) -> dict[str, float]:
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
    return values


def _parse_row(row: Mapping[str, str | None]) -> Bar:
    symbol = normalize_symbol(row["symbol"] or "")
    values = _prices(row)
    return Bar(
        symbol=symbol,
        day=date.fromisoformat((row["date"] or "").strip()[:10]),
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        volume=values["volume"],
    )


def _parse_time(raw: str, zone: tzinfo | None) -> datetime:
    try:
        at = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"datetime '{raw}' is not ISO 8601") from None
    if at.tzinfo is None:
        if zone is None:
            raise ValueError(f"datetime '{raw}' has no UTC offset (add one, or give --bars-zone)")
        at = at.replace(tzinfo=zone)
    return at


def _optional_float(raw: str | None) -> float | None:
    try:
        value = float((raw or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _parse_intraday_row(row: Mapping[str, str | None], zone: tzinfo | None) -> IntradayBar:
    symbol = normalize_symbol(row["symbol"] or "")
    values = _prices(row)
    session = (row.get("session") or "").strip().lower() or None
    if session is not None and session not in SESSIONS:
        raise ValueError(f"session '{session}' is not one of {', '.join(SESSIONS)}")
    return IntradayBar(
        symbol=symbol,
        start=_parse_time(row["datetime"] or "", zone),
        open=values["open"],
        high=values["high"],
        low=values["low"],
        close=values["close"],
        volume=values["volume"],
        session=session,  # type: ignore[arg-type]
        previous_close=_optional_float(row.get("previous_close")),
    )


def _header(path: Path, reader: csv.DictReader[str]) -> bool:
    """Normalise the header; True for an intraday file, False for daily, else BarsError."""
    if reader.fieldnames is None:
        raise BarsError(f"{path}: the file is empty (expected a header line and rows)")
    header = [h.strip().lower() for h in reader.fieldnames]
    reader.fieldnames = header
    intraday = "datetime" in header
    wanted = INTRADAY_COLUMNS if intraday else REQUIRED_COLUMNS
    missing = [c for c in wanted if c not in header]
    if missing:
        raise BarsError(
            f"{path}: missing column(s) {', '.join(missing)}; expected "
            f"{','.join(REQUIRED_COLUMNS)} (daily) or {','.join(INTRADAY_COLUMNS)} "
            "(intraday; extra columns are ignored)"
        )
    return intraday


def read_bars_file(
    path: Path, report: LoadReport, zone: tzinfo | None = None
) -> list[Bar | IntradayBar]:
    """Read one CSV; bad rows are skipped and listed in REPORT, a bad header raises BarsError."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise BarsError(f"{path}: cannot read ({exc.strerror})") from exc
    with handle:
        reader = csv.DictReader(handle)
        intraday = _header(path, reader)
        bars: list[Bar | IntradayBar] = []
        for lineno, row in enumerate(reader, start=2):
            report.rows += 1
            try:
                bars.append(_parse_intraday_row(row, zone) if intraday else _parse_row(row))
            except (ValueError, SymbolError, KeyError) as exc:
                msg = f"{path.name}:{lineno}: skipped ({exc})"
                log.warning(msg)
                report.skipped.append(msg)
        if intraday:
            report.intraday_rows += len(bars)
    report.files += 1
    return bars


def load_all(
    paths: Sequence[Path], zone: tzinfo | None = None
) -> tuple[dict[str, list[Bar]], dict[str, list[IntradayBar]], LoadReport]:
    """Daily and intraday bars per symbol, sorted by time, from files or folders of CSVs."""
    report = LoadReport()
    daily: dict[str, dict[date, Bar]] = {}
    intraday: dict[str, dict[datetime, IntradayBar]] = {}
    for path in _csv_files(paths):
        for bar in read_bars_file(path, report, zone):
            if isinstance(bar, IntradayBar):
                intraday.setdefault(bar.symbol, {})[bar.start] = bar
            else:
                daily.setdefault(bar.symbol, {})[bar.day] = bar
    if not daily and not intraday:
        raise BarsError("no usable rows in " + ", ".join(str(p) for p in paths))
    return (
        {sym: [days[d] for d in sorted(days)] for sym, days in daily.items()},
        {sym: [bars[t] for t in sorted(bars)] for sym, bars in intraday.items()},
        report,
    )


def load_bars(paths: Sequence[Path]) -> tuple[dict[str, list[Bar]], LoadReport]:
    """Daily bars per symbol, sorted by day (intraday rows are read but not returned)."""
    daily, _, report = load_all(paths)
    return daily, report


def load_replay(paths: Sequence[Path], zone: tzinfo | None = None) -> tuple[Replay, LoadReport]:
    """A Replay of every daily and intraday file in PATHS."""
    daily, intraday, report = load_all(paths, zone)
    return Replay(daily, intraday=intraday), report


@dataclass(frozen=True, slots=True)
class Tick:
    """Every symbol's quote at one moment of the replay."""

    at: datetime
    quotes: dict[str, Quote]


@dataclass(frozen=True, slots=True)
class _Close:
    """One session's close: the reference the next session is measured against."""

    day: date
    price: float
    at: datetime


def _interval(bars: Sequence[IntradayBar]) -> timedelta:
    """5 minutes when every bar starts on a 5-minute mark and none is closer, else 1 minute."""
    gaps = [b.start - a.start for a, b in pairwise(bars) if b.start > a.start]
    on_fives = all(b.start.minute % 5 == 0 for b in bars)
    if bars and on_fives and (not gaps or min(gaps) >= FIVE_MINUTES):
        return FIVE_MINUTES
    return DEFAULT_INTERVAL


def _session_of(bar: IntradayBar, day: date) -> Session:
    if bar.session is not None:
        return bar.session
    bounds = session_bounds(bar.symbol, day)
    if bounds is None:
        return "regular"  # the calendar does not know the day: trust the data
    opens, closes = bounds
    if bar.start < opens:
        return "pre"
    return "post" if bar.start >= closes else "regular"


class Replay:
    """Serves ticks in time order and answers 'what was the price at T' for /why."""

    def __init__(
        self,
        bars: Mapping[str, Sequence[Bar]],
        tz: ZoneInfo = NEW_YORK,
        intraday: Mapping[str, Sequence[IntradayBar]] | None = None,
    ) -> None:
        self.bars = {s: list(b) for s, b in bars.items()}
        self.intraday = {s: list(b) for s, b in (intraday or {}).items()}
        self.tz = tz
        self._quotes: dict[str, list[Quote]] = {}
        self._extended: dict[str, list[Quote]] = {}
        self._closes: dict[str, list[_Close]] = {}
        for sym in sorted(set(self.bars) | set(self.intraday)):
            self._build(sym)
        self._times = {s: [q.at for q in qs] for s, qs in self._quotes.items()}
        self._ext_times = {s: [q.at for q in qs] for s, qs in self._extended.items()}
        self.days = sorted({self._day(q.at) for qs in self._quotes.values() for q in qs})

    @property
    def symbols(self) -> list[str]:
        return sorted(set(self.bars) | set(self.intraday))

    @property
    def bar_days(self) -> list[date]:
        """Every day any bar covers, including a first day with no previous close."""
        daily = {b.day for bs in self.bars.values() for b in bs}
        return sorted(daily | {self._day(b.start) for bs in self.intraday.values() for b in bs})

    @property
    def has_intraday(self) -> bool:
        return bool(self.intraday)

    def _day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def _build(self, sym: str) -> None:
        zone = exchange_zone(sym)
        by_day: dict[date, list[IntradayBar]] = {}
        for bar in self.intraday.get(sym, []):
            by_day.setdefault(bar.start.astimezone(zone).date(), []).append(bar)
        interval = _interval(self.intraday.get(sym, []))
        days = sorted({b.day for b in self.bars.get(sym, [])} | set(by_day))
        daily = {b.day: b for b in self.bars.get(sym, [])}
        closes: list[_Close] = []
        regular: list[Quote] = []
        extended: list[Quote] = []
        for day in days:
            prev = closes[-1] if closes else None
            if day in by_day:
                quotes, ext, day_close = self._intraday_day(sym, day, by_day[day], interval, prev)
                regular.extend(quotes)
                extended.extend(ext)
                if day_close is not None:
                    closes.append(day_close)
            else:
                day_bar = daily[day]
                close = _Close(day, day_bar.close, self._close_time(sym, day, zone))
                if prev is not None:
                    regular.append(self._daily_quote(day_bar, close, prev))
                closes.append(close)
        self._quotes[sym] = sorted(regular, key=lambda q: q.at)
        self._extended[sym] = sorted(extended, key=lambda q: q.at)
        self._closes[sym] = closes

    def _close_time(self, sym: str, day: date, zone: ZoneInfo) -> datetime:
        bounds = session_bounds(sym, day)
        return bounds[1] if bounds else datetime.combine(day, CLOSE_AT, tzinfo=zone)

    @staticmethod
    def _daily_quote(bar: Bar, close: _Close, prev: _Close) -> Quote:
        return Quote(
            symbol=bar.symbol,
            price=bar.close,
            previous_close=prev.price,
            at=close.at,
            source=SOURCE,
            open=bar.open,
            previous_close_at=prev.at,
            closing=True,
        )

    def _intraday_day(
        self,
        sym: str,
        day: date,
        bars: Sequence[IntradayBar],
        interval: timedelta,
        prev: _Close | None,
    ) -> tuple[list[Quote], list[Quote], _Close | None]:
        """DAY's regular quotes, its pre/post ones, and its close (no quotes without a
        previous close to judge them against)."""
        sessions = [(_session_of(b, day), b) for b in bars]
        regular_bars = [b for s, b in sessions if s == "regular"]
        stated = next((b.previous_close for b in bars if b.previous_close), None)
        reference = stated or (prev.price if prev else None)
        zone = exchange_zone(sym)
        if reference is None:
            log.warning(
                "replay: %s on %s has no previous close in the data; its bars only give "
                "the next day's previous close",
                sym,
                day,
            )
            if not regular_bars:
                return [], [], None
            last = regular_bars[-1]
            return [], [], _Close(day, last.close, (last.start + interval).astimezone(zone))
        ref_at = prev.at if prev else None
        bounds = session_bounds(sym, day)
        first_open = regular_bars[0].open if regular_bars else None
        regular: list[Quote] = []
        extended: list[Quote] = []
        for session, bar in sessions:
            end = (bar.start + interval).astimezone(zone)  # "EST", not a bare UTC offset
            if session == "regular":
                closing = bounds is not None and end >= bounds[1]
                regular.append(
                    Quote(
                        symbol=sym,
                        price=bar.close,
                        previous_close=reference,
                        at=end,
                        source=INTRADAY_SOURCE,
                        open=first_open,
                        previous_close_at=ref_at,
                        closing=closing,
                    )
                )
            else:
                last_regular = regular[-1] if regular else None
                # Post-market is judged against today's close, pre-market against the last one.
                base = last_regular.price if last_regular else reference
                base_at = last_regular.at if last_regular else ref_at
                extended.append(
                    Quote(
                        symbol=sym,
                        price=bar.close,
                        previous_close=base,
                        at=end,
                        source=INTRADAY_SOURCE,
                        session=session,
                        previous_close_at=base_at,
                    )
                )
        close = _Close(day, regular[-1].price, regular[-1].at) if regular else None
        return regular, extended, close

    def ticks(self, start: date | None = None, end: date | None = None) -> Iterator[Tick]:
        """Every symbol's regular-session quotes, grouped by moment, in time order."""
        points: dict[datetime, dict[str, Quote]] = {}
        for sym, quotes in self._quotes.items():
            for quote in quotes:
                day = self._day(quote.at)
                if (start and day < start) or (end and day > end):
                    continue
                points.setdefault(quote.at, {})[sym] = quote
        for moment in sorted(points):
            yield Tick(moment.astimezone(self.tz), points[moment])

    def quote_at(self, symbol: str, at: datetime) -> Quote | None:
        """The latest replayed regular-session quote for SYMBOL at or before AT."""
        times = self._times.get(symbol, [])
        idx = bisect.bisect_right(times, at)
        return self._quotes[symbol][idx - 1] if idx else None

    def quotes(self, symbols: Sequence[str], now: datetime) -> dict[str, Quote]:
        """QuoteProvider for /why on the simulated clock."""
        out = {}
        for sym in symbols:
            quote = self.quote_at(sym, now)
            if quote is not None:
                out[sym] = quote
        return out

    def extended_quote(self, symbol: str, now: datetime) -> Quote | None:
        """The latest pre- or post-market quote at or before NOW, if newer than the regular one."""
        times = self._ext_times.get(symbol, [])
        idx = bisect.bisect_right(times, now)
        if not idx:
            return None
        quote = self._extended[symbol][idx - 1]
        regular = self.quote_at(symbol, now)
        return quote if regular is None or quote.at > regular.at else None

    def session_path(self, symbol: str, until: datetime) -> list[tuple[datetime, float]]:
        """The previous close, then the replayed prices of UNTIL's session up to UNTIL."""
        latest = self.quote_at(symbol, until)
        if latest is None or latest.previous_close_at is None or not latest.previous_close:
            return []
        path = [
            (q.at, q.price)
            for q in self._quotes[symbol]
            if q.previous_close_at == latest.previous_close_at and q.at <= until
        ]
        return [(latest.previous_close_at, latest.previous_close), *path]

    def daily_returns(self, before: date) -> dict[str, list[float]]:
        """Close-to-close returns in percent of each symbol for days before BEFORE."""
        out: dict[str, list[float]] = {}
        for sym, closes in self._closes.items():
            prices = [c.price for c in closes if c.day < before]
            out[sym] = [(b / a - 1.0) * 100.0 for a, b in pairwise(prices)]
        return out
