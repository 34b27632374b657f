"""Market hours per symbol from exchange-calendars: which exchange, open now, which session."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import pandas as pd

log = logging.getLogger(__name__)

SessionKind = Literal["regular", "pre", "post", "closed"]

# Yahoo symbol suffix -> ISO MIC of the exchange calendar.
SUFFIX_EXCHANGES: dict[str, str] = {
    "HK": "XHKG",
    "L": "XLON",
    "T": "XTKS",
    "TO": "XTSE",
    "V": "XTSE",
    "DE": "XFRA",
    "F": "XFRA",
    "PA": "XPAR",
    "AS": "XAMS",
    "MI": "XMIL",
    "SW": "XSWX",
    "SS": "XSHG",
    "SZ": "XSHG",
    "AX": "XASX",
    "KS": "XKRX",
    "TW": "XTAI",
    "SI": "XSES",
    "NS": "XBOM",
    "BO": "XBOM",
}
# Yahoo index symbols that are not US.
INDEX_EXCHANGES: dict[str, str] = {
    "^HSI": "XHKG",
    "^N225": "XTKS",
    "^FTSE": "XLON",
    "^GDAXI": "XFRA",
    "^FCHI": "XPAR",
}
ALWAYS_OPEN = "24/7"
US = "XNYS"
# Extended hours of US exchanges, in exchange local time.
PRE_MARKET_START = pd.Timedelta(hours=4)
POST_MARKET_END = pd.Timedelta(hours=20)


def exchange_of(symbol: str) -> str:
    """The calendar a symbol trades on: by Yahoo suffix, crypto 24/7, else the US (XNYS)."""
    sym = symbol.upper()
    if sym in INDEX_EXCHANGES:
        return INDEX_EXCHANGES[sym]
    if sym.endswith(("-USD", "-EUR", "-USDT")) or sym.endswith("=X"):
        # Crypto trades around the clock; currency quotes move on weekdays and weekends alike
        # on Yahoo, so neither is held back by an exchange calendar.
        return ALWAYS_OPEN
    if "." in sym:
        suffix = sym.rsplit(".", 1)[1]
        return SUFFIX_EXCHANGES.get(suffix, US)
    return US


# exchange-calendars still uses pandas APIs that pandas 3 deprecates; the noise is not ours.
_PANDAS_DEPRECATION: type[Warning] = getattr(pd.errors, "Pandas4Warning", FutureWarning)


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _PANDAS_DEPRECATION)
        yield


@lru_cache(maxsize=32)
def calendar(mic: str) -> Any:
    """The exchange calendar for MIC (loading one takes about a second, so cached)."""
    with _quiet():
        return xcals.get_calendar(mic)


def _minute(at: datetime) -> pd.Timestamp:
    return pd.Timestamp(at).tz_convert("UTC").floor("min")


def session_kind(symbol: str, at: datetime, extended_hours: bool = False) -> SessionKind:
    """Regular, pre, post or closed for SYMBOL's exchange at AT (holidays, half days, DST)."""
    mic = exchange_of(symbol)
    if mic == ALWAYS_OPEN:
        return "regular"
    with _quiet():
        return _calendar_session(mic, _minute(at), extended_hours)


def _calendar_session(mic: str, minute: pd.Timestamp, extended_hours: bool) -> SessionKind:
    cal = calendar(mic)
    if not cal.first_minute <= minute <= cal.last_minute:
        log.warning("%s calendar does not cover %s; treating it as open", mic, minute)
        return "regular"
    if cal.is_open_on_minute(minute):
        return "regular"
    if not extended_hours or mic != US:
        return "closed"
    return _extended(cal, minute)


def _extended(cal: Any, minute: pd.Timestamp) -> SessionKind:
    local_day = minute.tz_convert(cal.tz).normalize().tz_localize(None)
    if not cal.is_session(local_day):
        return "closed"
    open_, close = cal.session_open(local_day), cal.session_close(local_day)
    day_start = local_day.tz_localize(cal.tz)
    if day_start + PRE_MARKET_START <= minute < open_:
        return "pre"
    if close <= minute < day_start + POST_MARKET_END:
        return "post"
    return "closed"


def open_symbols(
    symbols: Iterable[str], at: datetime, extended_hours: bool = False
) -> dict[str, SessionKind]:
    """The symbols whose market is trading at AT, with the session each is in."""
    out: dict[str, SessionKind] = {}
    for sym in symbols:
        kind = session_kind(sym, at, extended_hours)
        if kind != "closed":
            out[sym] = kind
    return out


@lru_cache(maxsize=4096)
def _bounds(mic: str, day: date) -> tuple[datetime, datetime] | None:
    cal = calendar(mic)
    label = pd.Timestamp(day)
    with _quiet():
        if not cal.first_session <= label <= cal.last_session or not cal.is_session(label):
            return None
        zone = ZoneInfo(str(cal.tz))
        opens = cal.session_open(label).to_pydatetime().astimezone(zone)
        closes = cal.session_close(label).to_pydatetime().astimezone(zone)
    return opens, closes


def in_break(symbol: str, at: datetime) -> bool:
    """True while SYMBOL's exchange is in a mid-session break (lunch) at AT."""
    mic = exchange_of(symbol)
    if mic == ALWAYS_OPEN:
        return False
    cal = calendar(mic)
    minute = _minute(at)
    with _quiet():
        if not cal.first_minute <= minute <= cal.last_minute:
            return False
        return bool(cal.is_break_minute(minute))


def session_bounds(symbol: str, day: date) -> tuple[datetime, datetime] | None:
    """Open and close of SYMBOL's regular session on DAY in exchange time, None if no session."""
    mic = exchange_of(symbol)
    if mic == ALWAYS_OPEN:
        return None
    return _bounds(mic, day)


def exchange_zone(symbol: str) -> ZoneInfo:
    """The time zone SYMBOL's exchange keeps (UTC for markets that never close)."""
    mic = exchange_of(symbol)
    if mic == ALWAYS_OPEN:
        return ZoneInfo("UTC")
    return ZoneInfo(str(calendar(mic).tz))


class ExchangeHours:
    """The core's view of market hours: which session a symbol is in, and its exchange zone."""

    def __init__(self, extended_hours: bool = False) -> None:
        self.extended_hours = extended_hours

    def session(self, symbol: str, at: datetime) -> str:
        """session_kind, or "break" while the exchange pauses mid-session (Hong Kong's lunch)."""
        kind = session_kind(symbol, at, self.extended_hours)
        if kind == "closed" and in_break(symbol, at):
            return "break"
        return kind

    def zone(self, symbol: str) -> ZoneInfo:
        return exchange_zone(symbol)
