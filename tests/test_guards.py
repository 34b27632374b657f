"""Bad quotes through the live poll: a bar from the future, one bad print, a real big move."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from bot.app import SimulatedClock, replay_context
from bot.infra.scheduler import Poller
from bot.infra.store import Store
from bot.sources.replay import Replay
from config.settings import load_settings
from handlers.guards import MoveConfirmation
from handlers.models import BenchmarkMove, Move, Quote, WatchEntry
from tests.conftest import DEMO_BARS, DEMO_NEWS
from tests.helpers import at
from tests.test_scheduler import RecordingNotifier

Tamper = Callable[[Quote, datetime], Quote]
T0 = at("2025-03-05", "13:30")
# BABA really rose 8.6 % that day, with no company news; only a tampered quote crosses 15 %.
THRESHOLD = 15.0


class TamperedPrices:
    """The replay's quotes for the batched fetch, with BABA's changed by the test."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay
        self.tamper: Tamper | None = None

    def quotes(self, symbols: Sequence[str], now: datetime) -> Mapping[str, Quote]:
        quotes = dict(self.replay.quotes(symbols, now))
        if self.tamper is not None and "BABA" in quotes:
            quotes["BABA"] = self.tamper(quotes["BABA"], now)
        return quotes


def setup() -> tuple[Poller, TamperedPrices, RecordingNotifier, SimulatedClock]:
    store = Store("sqlite://")
    ctx, replay, clock = replay_context(
        load_settings(db_url="sqlite://"), store, [DEMO_BARS], DEMO_NEWS, start_at=T0
    )
    store.add_watch([WatchEntry("test", "chan", "BABA", THRESHOLD)])
    notifier = RecordingNotifier()
    ctx.notifiers["test"] = notifier
    prices = TamperedPrices(replay)
    return Poller(ctx, prices), prices, notifier, clock


def priced(factor: float, ahead: timedelta = timedelta(0)) -> Tamper:
    def tamper(quote: Quote, now: datetime) -> Quote:
        assert quote.previous_close is not None
        return dataclasses.replace(quote, price=quote.previous_close * factor, at=now + ahead)

    return tamper


async def test_a_bar_dated_in_the_future_is_not_taken_as_the_quote() -> None:
    poller, prices, notifier, clock = setup()
    prices.tamper = priced(1.20, ahead=timedelta(days=1))
    assert await poller.poll_once() == []
    # The same +20 % dated now (within the skew) does alert: the date alone made the difference.
    clock.advance_to(T0 + timedelta(minutes=5))
    prices.tamper = priced(1.20, ahead=timedelta(seconds=30))
    assert len(await poller.poll_once()) == 1
    assert len(notifier.sent) == 1


async def test_one_bad_print_under_the_split_guard_does_not_alert() -> None:
    poller, prices, notifier, clock = setup()
    prices.tamper = priced(1.358)
    assert await poller.poll_once() == []  # held for a second quote
    for minutes in (5, 10):
        clock.advance_to(T0 + timedelta(minutes=minutes))
        prices.tamper = None  # the next quotes are the real ones: +8.6 %
        assert await poller.poll_once() == []
    assert notifier.sent == []


async def test_an_extreme_move_confirmed_by_the_next_quote_alerts() -> None:
    poller, prices, _notifier, clock = setup()
    prices.tamper = priced(1.30)
    assert await poller.poll_once() == []
    assert await poller.poll_once() == []  # the same quote again confirms nothing
    clock.advance_to(T0 + timedelta(minutes=5))
    prices.tamper = priced(1.31)
    [delivery] = await poller.poll_once()
    assert [m.symbol for m in delivery.alert.moves] == ["BABA"]
    assert delivery.alert.moves[0].pct > 30


def move(pct: float, minute: int, price: float | None = None) -> Move:
    when = T0 + timedelta(minutes=minute)
    return Move("X", pct, price or 100 + pct, 100.0, when, "test", BenchmarkMove("SPY", 0.1))


def test_confirmation_rules() -> None:
    guard = MoveConfirmation()
    assert guard.check(move(12.0, 0), company_news=False) is None  # not extreme
    assert guard.check(move(30.0, 0), company_news=True) is None  # explained by news
    held = guard.check(move(-30.0, 0), company_news=False)
    assert held is not None and "held until a newer quote" in held
    disagree = guard.check(move(-30.0, 1, price=50.0), company_news=False)
    assert disagree is not None and "disagrees" in disagree
    assert guard.check(move(-30.0, 2, price=51.0), company_news=False) is None
    guard.check(move(30.0, 0), company_news=False)
    assert guard.check(move(30.0, 45), company_news=False) is not None  # too late: anew
