"""Small builders for core objects used across tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from handlers.models import Quote

NY = ZoneInfo("America/New_York")


def at(day: str, hhmm: str = "13:30") -> datetime:
    """A New York time on a day, e.g. at('2025-03-05', '13:30')."""
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime.fromisoformat(day).replace(hour=h, minute=m, tzinfo=NY)


def quotes(moves: Mapping[str, float], when: datetime, prev: float = 100.0) -> dict[str, Quote]:
    """Quotes that put each symbol MOVES percent above a previous close of PREV."""
    return {
        sym: Quote(
            symbol=sym,
            price=prev * (1 + pct / 100),
            previous_close=prev,
            at=when,
            source="test",
            previous_close_at=when.replace(hour=16, minute=0) - timedelta(days=1),
        )
        for sym, pct in moves.items()
    }
