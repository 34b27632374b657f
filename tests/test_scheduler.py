"""The live poll on a simulated clock: one batched fetch per cycle, market hours, job errors."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, time
from pathlib import Path

from bot.app import SimulatedClock, replay_context
from bot.infra.scheduler import (
    HISTORY_JOB_ID,
    NAMES_JOB_ID,
    POLL_JOB_ID,
    QUIET_JOB_ID,
    REFERENCES_JOB_ID,
    HistoryCache,
    Poller,
    build_scheduler,
    refresh_company_names,
    send_quiet_summaries,
)
from bot.infra.store import Store
from bot.sources.replay import Replay
from config.settings import load_settings
from handlers.models import Destination, QuietWindow, Quote, WatchEntry
from handlers.render import Message
from tests.conftest import DEMO_BARS, DEMO_NEWS
from tests.helpers import at, last_minute_bars

CHINA = ["BABA", "JD", "TCEHY", "PDD", "BIDU"]


class CountingPrices:
    """The replay's quotes behind the batched-fetch interface, counting calls."""

    def __init__(self, replay: Replay, fail_first: int = 0) -> None:
        self.replay = replay
        self.calls: list[list[str]] = []
        self.fail_first = fail_first

    def quotes(self, symbols: Sequence[str], now: datetime) -> Mapping[str, Quote]:
        self.calls.append(list(symbols))
        if len(self.calls) <= self.fail_first:
            raise TimeoutError("Yahoo took too long")
        return self.replay.quotes(symbols, now)


class RecordingNotifier:
    platform = "test"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, message: Message, channel: str, key: str) -> str:
        self.sent.append((key, channel))
        return f"m{len(self.sent)}"


def _setup(
    now: datetime, channels: int = 5, fail_first: int = 0
) -> tuple[Poller, CountingPrices, RecordingNotifier, SimulatedClock]:
    settings = load_settings(db_url="sqlite://")
    store = Store("sqlite://")
    # A daily replay prices 2025-03-05 only at its 16:00 close, when a poller no longer asks;
    # a 15:58 bar at the real close lets the open market see it.
    closing = last_minute_bars(Path(tempfile.mkdtemp()), "2025-03-05", DEMO_BARS)
    ctx, replay, clock = replay_context(
        settings, store, [DEMO_BARS, closing], DEMO_NEWS, start_at=now
    )
    store.add_watch(
        WatchEntry("test", f"chan-{i}", sym, 5.0) for i in range(channels) for sym in CHINA
    )
    notifier = RecordingNotifier()
    ctx.notifiers["test"] = notifier
    prices = CountingPrices(replay, fail_first)
    return Poller(ctx, prices), prices, notifier, clock


async def test_one_fetch_per_cycle_whatever_the_channels() -> None:
    poller, prices, notifier, _ = _setup(at("2025-03-05", "15:59"), channels=5)
    deliveries = await poller.poll_once()
    assert len(prices.calls) == 1
    fetched = set(prices.calls[0])
    assert set(CHINA) <= fetched
    assert {"KWEB", "SPY"} <= fetched  # benchmark and market for the comparison
    assert len(deliveries) == 1
    assert len(notifier.sent) == 5  # one grouped alert to each of the five channels
    again = await poller.poll_once()
    assert again == []  # the same move again is deduplicated
    assert len(prices.calls) == 2


async def test_no_fetch_while_the_market_is_closed() -> None:
    poller, prices, _, clock = _setup(at("2025-03-08", "12:00"))  # a Saturday
    assert await poller.poll_once() == []
    clock.advance_to(at("2025-03-05", "20:30").replace(day=10))  # Monday evening
    assert await poller.poll_once() == []
    assert prices.calls == []


def test_the_daily_refreshes_run_at_start_then_each_day_with_their_sources() -> None:
    poller, prices, _, _ = _setup(at("2025-03-05", "15:59"), channels=1)
    names, history, cache = object(), object(), HistoryCache()
    scheduler = build_scheduler(
        poller,
        interval_seconds=60,
        names=names,  # type: ignore[arg-type]
        history=(history, cache),  # type: ignore[arg-type]
        references=prices,  # type: ignore[arg-type]
    )
    expected = {
        HISTORY_JOB_ID: ([poller.ctx, history, cache], "0"),
        REFERENCES_JOB_ID: ([poller.ctx, prices], "0"),
        NAMES_JOB_ID: ([poller.ctx, names], "7"),
    }
    for job_id, (args, hour) in expected.items():
        job = scheduler.get_job(job_id)
        assert job is not None and list(job.args) == args, job_id
        assert str(job.trigger.fields[5]) == hour and job.next_run_time is not None
    assert build_scheduler(poller, interval_seconds=60).get_job(NAMES_JOB_ID) is None


async def test_job_errors_are_logged_and_the_scheduler_goes_on(caplog: object) -> None:
    poller, prices, notifier, _ = _setup(at("2025-03-05", "15:59"), channels=1, fail_first=1)
    scheduler = build_scheduler(poller, interval_seconds=0.05)
    job = scheduler.get_job(POLL_JOB_ID)
    assert job is not None
    assert (job.max_instances, job.coalesce) == (1, True)
    scheduler.start()
    try:
        for _ in range(100):
            if poller.state.polls >= 1:
                break
            await asyncio.sleep(0.02)
    finally:
        scheduler.shutdown(wait=False)
    assert len(prices.calls) >= 2
    assert poller.state.polls >= 1
    assert len(notifier.sent) == 1
    assert "TimeoutError" not in (poller.state.last_error or "")


async def test_company_names_fill_gaps_but_config_wins(tmp_path: Path) -> None:
    poller, *_ = _setup(at("2025-03-05", "15:59"), channels=1)

    class Names:
        def company_names(self, symbols: Sequence[str]) -> Mapping[str, str]:
            return {"BABA": "Some Other Name", "PDD": "PDD Holdings Inc."}

    poller.ctx.engine.companies = {"BABA": "Alibaba Group Holding"}
    added = await refresh_company_names(poller.ctx, Names())
    assert added == 1
    assert poller.ctx.engine.companies["BABA"] == "Alibaba Group Holding"
    assert poller.ctx.engine.companies["PDD"] == "PDD Holdings Inc."


async def test_daily_history_job_feeds_zscores() -> None:
    from bot.infra.scheduler import HistoryCache, refresh_history

    poller, _, _notifier, _ = _setup(at("2025-03-05", "15:59"), channels=1)

    class Daily:
        def __init__(self) -> None:
            self.asked: list[tuple[list[str], datetime | None]] = []

        def daily_returns(
            self, symbols: Sequence[str], before: datetime | None = None
        ) -> Mapping[str, list[float]]:
            self.asked.append((list(symbols), before))
            return {s: [1.0, -1.0] * 10 for s in symbols}

    cache, daily = HistoryCache(), Daily()
    poller.ctx.history = cache
    assert await refresh_history(poller.ctx, daily, cache) > 0
    assert set(CHINA) <= set(daily.asked[0][0]) and daily.asked[0][1] == poller.ctx.clock()
    [delivery] = await poller.poll_once()
    assert all(m.zscore is not None and m.zscore > 5 for m in delivery.alert.moves)

    class Broken:
        def daily_returns(
            self, symbols: Sequence[str], before: datetime | None = None
        ) -> Mapping[str, list[float]]:
            raise ConnectionError("Yahoo unreachable")

    assert await refresh_history(poller.ctx, Broken(), cache) == 0
    assert cache.returns  # the previous history is kept


class MessageNotifier(RecordingNotifier):
    """Also keeps each message's title, per channel."""

    def __init__(self) -> None:
        super().__init__()
        self.titles: list[tuple[str, str]] = []

    async def send(self, message: Message, channel: str, key: str) -> str:
        self.titles.append((channel, message.title))
        return await super().send(message, channel, key)


async def test_quiet_hours_summary_goes_out_when_no_tick_runs() -> None:
    poller, _, _, clock = _setup(at("2025-03-05", "15:59"), channels=2)
    ctx = poller.ctx
    notifier = MessageNotifier()
    ctx.notifiers["test"] = notifier
    window = QuietWindow(time(15, 0), time(16, 30), "America/New_York")
    ctx.store.set_quiet_hours(Destination("test", "chan-0"), window, "admin")
    await poller.poll_once()
    assert [c for c, _ in notifier.titles] == ["chan-1"]  # chan-0 is in its quiet hours
    clock.advance_to(at("2025-03-05", "16:29"))
    assert await send_quiet_summaries(ctx) == 0
    clock.advance_to(at("2025-03-05", "16:31"))  # the market has closed: no poll runs now
    assert await poller.poll_once() == []
    assert await send_quiet_summaries(ctx) == 1
    channel, title = notifier.titles[-1]
    assert channel == "chan-0"
    # One grouped alert of five symbols: one alert, not five.
    assert title == "Held during quiet hours 15:00-16:30 America/New_York: 1 alert (5 moves)"
    assert await send_quiet_summaries(ctx) == 0  # summarised once
    scheduler = build_scheduler(poller, interval_seconds=60)
    assert scheduler.get_job(QUIET_JOB_ID) is not None
