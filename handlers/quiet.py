"""/quiet: show, set or clear a channel's quiet hours (alerts held, summarised when they end)."""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers.commands import MANAGE_REFUSAL, Reply, Requester
from handlers.models import QuietWindow
from handlers.ports import WatchStore

QUIET_HELP = (
    "Usage: /quiet START-END ZONE (e.g. /quiet 22:00-07:00 America/New_York) · "
    "/quiet off · /quiet (show)"
)
QUIET_REFUSAL = MANAGE_REFUSAL
RANGE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
MAX_ZONE_CHARS = 64


def parse_clock(hours: str, minutes: str) -> time:
    """'7', '05' -> 07:05; raises ValueError with a message for 24:00 and beyond."""
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(f"{hours}:{minutes} is not a time of day (00:00 to 23:59)")
    return time(h, m)


def parse_zone(name: str) -> str:
    """An IANA time zone name as given; raises ValueError naming the bad input."""
    shown = name[:MAX_ZONE_CHARS]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"Unknown time zone {shown!r}: use an IANA name such as America/New_York, "
            "Europe/London or Asia/Hong_Kong"
        ) from None
    return name


def parse_window(text: str) -> QuietWindow:
    """'22:00-07:00 America/New_York' -> QuietWindow; raises ValueError with a message."""
    words = text.split()
    if len(words) < 2:
        raise ValueError("Give the hours and the channel's time zone")
    found = RANGE.match("".join(words[:-1]))
    if found is None:
        raise ValueError(f"{' '.join(words[:-1])[:40]!r} is not a range like 22:00-07:00")
    start = parse_clock(found[1], found[2])
    end = parse_clock(found[3], found[4])
    if start == end:
        raise ValueError("The quiet hours start and end at the same time")
    return QuietWindow(start, end, parse_zone(words[-1]))


def show_quiet(store: WatchStore, who: Requester, now: datetime) -> Reply:
    window = store.quiet_hours(who.destination).get(who.destination)
    if window is None:
        return Reply(f"No quiet hours here: alerts are sent at any hour. {QUIET_HELP}")
    state = "in effect now" if window.contains(now) else "not in effect now"
    return Reply(
        f"Quiet hours here: {window} ({state}). Alerts in them are held and sent as one "
        "summary when they end."
    )


def set_quiet(store: WatchStore, who: Requester, text: str) -> Reply:
    if not who.can_manage:
        return Reply(QUIET_REFUSAL, ok=False)
    try:
        window = parse_window(text)
    except ValueError as exc:
        return Reply(f"{exc}.\n{QUIET_HELP}", ok=False)
    store.set_quiet_hours(who.destination, window, who.user)
    return Reply(
        f"Quiet hours here: {window}. Alerts in them are held and sent as one summary "
        "when they end.",
        ephemeral=False,
    )


def clear_quiet(store: WatchStore, who: Requester) -> Reply:
    if not who.can_manage:
        return Reply(QUIET_REFUSAL, ok=False)
    if not store.clear_quiet_hours(who.destination):
        return Reply("There were no quiet hours here.", ok=False)
    return Reply(
        "Quiet hours off: alerts are sent at any hour; anything held goes out as one summary "
        "at the next check (within a minute while the bot runs).",
        ephemeral=False,
    )


def run_quiet_text(store: WatchStore, who: Requester, text: str, now: datetime) -> Reply:
    """Dispatch '/quiet', '/quiet off' and '/quiet 22:00-07:00 America/New_York'."""
    words = text.split()
    if not words or [w.lower() for w in words] == ["show"]:
        return show_quiet(store, who, now)
    if [w.lower() for w in words] == ["off"]:
        return clear_quiet(store, who)
    return set_quiet(store, who, text)
