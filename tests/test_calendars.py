"""Market hours: holidays, DST, Hong Kong, extended hours and round-the-clock symbols."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.infra.calendars import exchange_of, open_symbols, session_kind
from tests.helpers import NY


@pytest.mark.parametrize(
    ("symbol", "mic"),
    [
        ("BABA", "XNYS"),
        ("0700.HK", "XHKG"),
        ("^HSI", "XHKG"),
        ("^GSPC", "XNYS"),
        ("BTC-USD", "24/7"),
        ("VOD.L", "XLON"),
        ("BRK-B", "XNYS"),
    ],
)
def test_exchange_by_suffix(symbol: str, mic: str) -> None:
    assert exchange_of(symbol) == mic


def test_us_market_closed_for_national_day_of_mourning() -> None:
    # 2025-01-09: NYSE closed for President Carter's funeral, a weekday that is no federal holiday.
    assert session_kind("SPY", datetime(2025, 1, 9, 11, 0, tzinfo=NY)) == "closed"
    assert session_kind("SPY", datetime(2025, 1, 10, 11, 0, tzinfo=NY)) == "regular"


def test_dst_switch_moves_the_open_in_utc() -> None:
    # After the 2025-03-09 DST switch, 09:30 New York is 13:30 UTC (14:30 the week before).
    assert session_kind("SPY", datetime(2025, 3, 10, 13, 35, tzinfo=UTC)) == "regular"
    assert session_kind("SPY", datetime(2025, 3, 7, 13, 35, tzinfo=UTC)) == "closed"
    assert session_kind("SPY", datetime(2025, 3, 7, 14, 35, tzinfo=UTC)) == "regular"


def test_hong_kong_holiday_and_lunch_break() -> None:
    # 2025-01-29: Lunar New Year, Hong Kong closed while New York trades.
    at = datetime(2025, 1, 29, 2, 0, tzinfo=UTC)  # 10:00 in Hong Kong
    assert session_kind("0700.HK", at) == "closed"
    open_day = datetime(2025, 3, 5, 2, 0, tzinfo=UTC)  # 10:00 in Hong Kong
    assert session_kind("0700.HK", open_day) == "regular"
    assert session_kind("0700.HK", datetime(2025, 3, 5, 4, 30, tzinfo=UTC)) == "closed"


def test_half_day_closes_early() -> None:
    # 2025-11-28, the day after Thanksgiving: NYSE closes at 13:00.
    assert session_kind("SPY", datetime(2025, 11, 28, 12, 30, tzinfo=NY)) == "regular"
    assert session_kind("SPY", datetime(2025, 11, 28, 13, 30, tzinfo=NY)) == "closed"


def test_extended_hours_only_when_asked() -> None:
    pre = datetime(2025, 3, 5, 7, 0, tzinfo=NY)
    post = datetime(2025, 3, 5, 17, 0, tzinfo=NY)
    assert session_kind("BABA", pre) == "closed"
    assert session_kind("BABA", pre, extended_hours=True) == "pre"
    assert session_kind("BABA", post, extended_hours=True) == "post"
    assert session_kind("BABA", datetime(2025, 3, 8, 7, 0, tzinfo=NY), True) == "closed"


def test_open_symbols_mixes_markets() -> None:
    at = datetime(2025, 3, 8, 12, 0, tzinfo=NY)  # a Saturday
    assert open_symbols(["SPY", "0700.HK", "BTC-USD"], at) == {"BTC-USD": "regular"}
