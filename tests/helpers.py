"""Small builders for core objects used across tests."""

from __future__ import annotations

import asyncio
import csv
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from handlers.models import Quote

NY = ZoneInfo("America/New_York")


def at(day: str, hhmm: str = "13:30") -> datetime:
    """A New York time on a day, e.g. at('2025-03-05', '13:30')."""
    h, m = (int(x) for x in hhmm.split(":"))
    return datetime.fromisoformat(day).replace(hour=h, minute=m, tzinfo=NY)


async def wait_until(
    condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    """Poll CONDITION until it holds; fail after TIMEOUT seconds, naming WHAT was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


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


def last_minute_bars(folder: Path, day: str, daily: Path) -> Path:
    """A 1-minute bar at 15:58 New York per symbol of the DAILY bars folder, at DAY's real close.

    A poller only asks while the market is open, and a daily replay has the close only at
    16:00; this bar gives every symbol its real closing price a minute before the close.
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"last-minute-{day}.csv"
    lines = ["symbol,datetime,open,high,low,close,volume"]
    for path in sorted(daily.glob("*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["date"] == day:
                    c = row["close"]
                    lines.append(f"{row['symbol']},{day}T15:58:00-05:00,{c},{c},{c},{c},0")
    out.write_text("\n".join(lines) + "\n")
    return out
