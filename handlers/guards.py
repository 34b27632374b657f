"""Quote guards: bars from the future dropped; an extreme unexplained move confirmed first."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from handlers.detect import Skip
from handlers.models import Move, Quote

# Clocks differ a little between a data vendor and us; beyond this a bar is not yet real.
FUTURE_SKEW = timedelta(minutes=2)
# Below the split guard (40 %): a move this large with no company news waits for a second,
# newer quote at about the same price before it alerts (one bad print cannot raise an alarm).
EXTREME_PCT = 25.0
AGREE_WITHIN_PCT = 5.0
MAX_WAIT = timedelta(minutes=30)


def drop_future_quotes(
    quotes: Mapping[str, Quote], now: datetime, skew: timedelta = FUTURE_SKEW
) -> tuple[dict[str, Quote], list[Skip]]:
    """QUOTES without those dated later than NOW plus SKEW, and a skip for each dropped."""
    kept: dict[str, Quote] = {}
    skips: list[Skip] = []
    limit = now + skew
    for symbol, quote in quotes.items():
        if quote.at > limit:
            ahead = quote.at - now
            skips.append(Skip(symbol, f"quote dated {ahead} in the future: ignored"))
        else:
            kept[symbol] = quote
    return kept, skips


@dataclass(frozen=True, slots=True)
class Held:
    """The first quote of an extreme unexplained move, waiting for a second one."""

    price: float
    pct: float
    at: datetime


@dataclass
class MoveConfirmation:
    """Holds an extreme move with no company news until a newer quote agrees with it.

    The second quote agrees when its price is within AGREE_WITHIN_PCT of the first; one that
    disagrees replaces it (the first was a bad print, or the price is still moving). A hold
    older than MAX_WAIT starts again. Moves explained by company news pass at once.
    """

    extreme_pct: float = EXTREME_PCT
    agree_within_pct: float = AGREE_WITHIN_PCT
    max_wait: timedelta = MAX_WAIT
    held: dict[str, Held] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def check(self, move: Move, company_news: bool) -> str | None:
        """None when MOVE may alert; else why it is held for now."""
        if company_news or abs(move.pct) < self.extreme_pct:
            with self._lock:
                self.held.pop(move.symbol, None)
            return None
        with self._lock:
            return self._judge(move)

    def _judge(self, move: Move) -> str | None:
        first = self.held.get(move.symbol)
        waiting = f"{move.pct:+.1f} % with no company news"
        if first is None or move.at - first.at > self.max_wait:
            self.held[move.symbol] = Held(move.price, move.pct, move.at)
            return f"{waiting}: held until a newer quote confirms it"
        if move.at <= first.at:
            return f"{waiting}: still waiting for a newer quote to confirm it"
        if abs(move.price / first.price - 1.0) * 100.0 <= self.agree_within_pct:
            del self.held[move.symbol]
            return None
        self.held[move.symbol] = Held(move.price, move.pct, move.at)
        return f"{waiting}: the newer quote disagrees ({first.price:g} then {move.price:g}); held"
