"""/quiet through the core's dispatch: parsing, bad input, off, show, and the right to manage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time

import pytest

from handlers.commands import (
    COMMANDS,
    CommandRequest,
    Reply,
    dispatch,
    help_text,
    needs_manage,
)
from handlers.models import Destination, QuietWindow
from handlers.ports import SymbolValidator
from handlers.quiet import QUIET_REFUSAL
from tests.fakes.store import MemoryStore
from tests.helpers import at

CHAN = Destination("test", "c1")
NIGHT = QuietWindow(time(22, 0), time(7, 0), "America/New_York")
NOON = at("2025-03-05", "12:00")


@dataclass
class Services:
    """What dispatch needs, around the in-memory store."""

    store: MemoryStore = field(default_factory=MemoryStore)
    default_pct: float = 5.0
    symbols: SymbolValidator | None = None

    def answer_why(self, symbol: str) -> Reply:
        raise AssertionError("/quiet never asks /why")


def quiet(services: Services, text: str, can_manage: bool = True, now: datetime = NOON) -> Reply:
    request = CommandRequest("test", "c1", "u1", "/quiet", text, can_manage=can_manage)
    return dispatch(request, services, now)


def test_set_then_show_then_off() -> None:
    services = Services()
    reply = quiet(services, "22:00-07:00 America/New_York")
    assert reply.ok and not reply.ephemeral
    assert "22:00-07:00 America/New_York" in reply.text
    assert services.store.windows == {CHAN: NIGHT}
    shown = quiet(services, "", can_manage=False)
    assert shown.ok and "22:00-07:00 America/New_York (not in effect now)" in shown.text
    night = quiet(services, "show", can_manage=False, now=at("2025-03-05", "23:00"))
    assert "(in effect now)" in night.text
    off = quiet(services, "off")
    assert off.ok and "off" in off.text and services.store.windows == {}
    again = quiet(services, "OFF")
    assert not again.ok and again.text == "There were no quiet hours here."
    assert "No quiet hours here" in quiet(services, "").text


def test_loose_spacing_and_single_digit_hours_are_understood() -> None:
    services = Services()
    assert quiet(services, "  21:30 - 6:05   Europe/London ").ok
    assert str(services.store.windows[CHAN]) == "21:30-06:05 Europe/London"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("25:00-07:00 America/New_York", "25:00 is not a time of day"),
        ("22:00-07:60 America/New_York", "07:60 is not a time of day"),
        ("22-07 America/New_York", "'22-07' is not a range like 22:00-07:00"),
        ("tonight America/New_York", "is not a range like 22:00-07:00"),
        ("22:00-22:00 UTC", "start and end at the same time"),
        ("22:00-07:00", "Give the hours and the channel's time zone"),
        ("22:00-07:00 Mars/Olympus_Mons", "Unknown time zone 'Mars/Olympus_Mons'"),
        ("22:00-07:00 ../../etc/passwd", "Unknown time zone"),
        ("22:00-07:00 EST5EDT,M3", "Unknown time zone"),
    ],
)
def test_bad_input_gets_one_clear_line_and_changes_nothing(text: str, says: str) -> None:
    services = Services()
    reply = quiet(services, text)
    assert not reply.ok and says in reply.text
    assert "Usage: /quiet" in reply.text and len(reply.text.splitlines()) == 2
    assert services.store.windows == {}


def test_setting_or_clearing_needs_the_right_to_manage() -> None:
    services = Services()
    refused = quiet(services, "22:00-07:00 America/New_York", can_manage=False)
    assert not refused.ok and refused.text == QUIET_REFUSAL
    assert services.store.windows == {}
    services.store.set_quiet_hours(CHAN, NIGHT, "admin")
    assert quiet(services, "off", can_manage=False).text == QUIET_REFUSAL
    assert services.store.windows == {CHAN: NIGHT}


def test_routing_help_and_which_lines_need_the_right() -> None:
    assert "quiet" in COMMANDS
    assert "/quiet" in help_text() and "22:00-07:00 America/New_York" in help_text()
    assert not needs_manage("/quiet", "") and not needs_manage("quiet", "show")
    assert needs_manage("/quiet", "off")
    assert needs_manage("/quiet", "22:00-07:00 UTC")
