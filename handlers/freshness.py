"""How old a price is, in words every alert and answer shows ("live", "15 min delayed", ...)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from handlers.models import Move

# A quote younger than this is "live"; older ones say how many minutes late they are.
LIVE_WITHIN = timedelta(minutes=2)
SIMULATED = "daily bar, time simulated"


def fmt_time(at: datetime) -> str:
    """'2025-03-05 16:00 EST': a moment as every message shows it, in the zone it carries."""
    label = at.tzname() or ""
    return at.strftime("%Y-%m-%d %H:%M") + (f" {label}" if label else "")


AS_OF_CLOSE = "as of close"


def age_text(
    age: timedelta, *, delayed: bool = False, simulated: bool = False, closing: bool = False
) -> str:
    """'live', 'N min delayed', 'as of close' or 'daily bar, time simulated'."""
    if simulated:
        return SIMULATED
    if closing:
        return AS_OF_CLOSE
    if age <= LIVE_WITHIN and not delayed:
        return "live"
    minutes = max(1, round(age.total_seconds() / 60))
    if minutes >= 120:
        return f"{minutes // 60} h {minutes % 60} min delayed"
    return f"{minutes} min delayed"


def move_age_text(move: Move) -> str:
    text = age_text(
        timedelta(seconds=move.age_s),
        delayed=move.delayed,
        simulated=move.simulated,
        closing=move.closing,
    )
    # A replay is never live: its quotes are fresh only on the replay's own clock.
    if move.source.startswith("replay") and text == "live":
        return "live on the replay clock"
    return text


def moves_age_text(moves: Iterable[Move]) -> str:
    """One label per distinct age, in order ('live' or 'as of close; 3 min delayed')."""
    seen: dict[str, None] = {}
    for move in moves:
        seen.setdefault(move_age_text(move), None)
    return "; ".join(seen)


def exchange_time(at: datetime) -> str:
    """'Fri 2025-03-07 16:00 EST': the weekday helps when someone asks on a Saturday."""
    label = at.tzname() or ""
    return at.strftime("%a %Y-%m-%d %H:%M") + (f" {label}" if label else "")


def spread_note(moves: Iterable[Move], tolerance: timedelta = timedelta(minutes=1)) -> str:
    """'' when every price is from the same moment, else which time each one is from."""
    listed = list(moves)
    if len(listed) < 2:
        return ""
    times = [m.at for m in listed]
    if max(times) - min(times) <= tolerance:
        return ""
    zone = listed[0].at.tzinfo
    shown = ", ".join(f"{m.symbol} {m.at.astimezone(zone):%m-%d %H:%M}" for m in listed)
    label = listed[0].at.tzname() or ""
    return f"prices from different times ({shown} {label}), so compare them with care"
