"""Symbol validators: does a ticker exist? Asked of Yahoo's chart endpoint, or of replayed bars."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from handlers.models import SymbolCheck

log = logging.getLogger(__name__)

YAHOO_CHART_URL = "https://query2.finance.yahoo.com/v8/finance/chart/{symbol}"
YAHOO = "Yahoo Finance"
TIMEOUT_S = 8.0


def describe_unreachable(exc: BaseException) -> str:
    """A short reason Yahoo could not be reached, without curl's long advice."""
    text = str(exc).split(" See https://", 1)[0]
    if "resolve host" in text:
        return "Yahoo cannot be reached: its address does not resolve (offline?)"
    if "connect" in text.lower() or "proxy" in text.lower():
        return "Yahoo cannot be reached: the connection failed (offline or blocked?)"
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return "Yahoo cannot be reached: no answer in time"
    return f"Yahoo cannot be reached ({type(exc).__name__})"


class YahooSymbolCheck:
    """Asks Yahoo for a few days of each symbol's daily bars: 404 means Yahoo has no such symbol."""

    def __init__(self, session: Any | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self._session = session
        self.timeout_s = timeout_s

    @property
    def session(self) -> Any:
        if self._session is None:
            from bot.sources.yahoo.quotes import shared_session

            self._session = shared_session()
        return self._session

    def check_symbols(self, symbols: Sequence[str]) -> SymbolCheck:
        unknown: list[str] = []
        for symbol in symbols:
            try:
                response = self.session.get(
                    YAHOO_CHART_URL.format(symbol=symbol),
                    params={"range": "5d", "interval": "1d"},
                    timeout=self.timeout_s,
                )
            except Exception as exc:  # every transport error means the same: not checked
                return SymbolCheck(YAHOO, tuple(unknown), describe_unreachable(exc))
            status = int(response.status_code)
            if status == 404:
                unknown.append(symbol)
            elif status != 200:
                return SymbolCheck(YAHOO, tuple(unknown), f"Yahoo answered HTTP {status}")
        return SymbolCheck(YAHOO, tuple(unknown))

    def reachable(self, symbol: str) -> str | None:
        """None when Yahoo answers about SYMBOL, else why it could not be asked."""
        return self.check_symbols([symbol]).unchecked


class KnownSymbols:
    """A validator over a fixed set: the symbols a replay has bars for."""

    def __init__(self, symbols: Iterable[str], source: str = "the replayed bars") -> None:
        self.symbols = frozenset(symbols)
        self.source = source

    def check_symbols(self, symbols: Sequence[str]) -> SymbolCheck:
        return SymbolCheck(self.source, tuple(s for s in symbols if s not in self.symbols))
