"""The stream drops, batched v7 polling takes over: no alert lost, none doubled."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bot.app import AppContext, build_engine
from bot.infra.scheduler import Poller, process_streamed, refresh_previous_closes
from bot.infra.store import Store
from bot.runner import wanted_symbols
from bot.sources.yahoo.quotes import YahooPrices
from bot.sources.yahoo.stream import QuoteStream, quote_from_message
from config.settings import load_settings
from handlers.models import WatchEntry
from tests.fake_streamer import pricing_frame
from tests.fakes import AlertRecorder
from tests.helpers import wait_until
from tests.test_yahoo_source import offline_yfinance  # noqa: F401  (autouse: no network)
from tests.yahoo_fake import FakeSession, FakeYahoo, quote_entry

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NOW = datetime(2025, 3, 5, 18, 30, tzinfo=UTC)  # 13:30 in New York, the market open
PREV = 100.0


class Streamer:
    """Answers a subscription with the current prices, then sends what tick() is given."""

    def __init__(self, pct: dict[str, float]) -> None:
        self.pct = pct
        self.sockets: list[ServerConnection] = []

    async def handler(self, ws: ServerConnection) -> None:
        self.sockets.append(ws)
        async for raw in ws:
            for sym in json.loads(raw).get("subscribe", []):
                await ws.send(self.frame(sym))

    def frame(self, sym: str) -> str:
        return pricing_frame(sym, PREV * (1 + self.pct.get(sym, 0.2) / 100), PREV, NOW)

    async def tick(self, sym: str, pct: float) -> None:
        self.pct[sym] = pct
        for ws in self.sockets:
            await ws.send(self.frame(sym))


async def test_stream_drop_hands_over_to_batched_polling_without_losing_or_doubling() -> None:
    settings = load_settings(db_url="sqlite://")
    store = Store("sqlite://")
    store.add_watch(WatchEntry("test", "c1", s, 5.0) for s in ("LX001", "LX002", "LX003"))
    fake = FakeYahoo()
    prices = YahooPrices(FakeSession(fake), requests_per_second=1000)
    ctx = AppContext(settings, build_engine(settings), store, prices, None, clock=lambda: NOW)  # type: ignore[arg-type]
    recorder = AlertRecorder(store)
    ctx.notifiers["test"] = recorder
    streamer = Streamer({})
    async with serve(streamer.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        stream = QuoteStream(
            lambda: wanted_symbols(ctx),
            lambda q: process_streamed(ctx, q),  # type: ignore[arg-type, return-value]
            url=f"ws://127.0.0.1:{port}",
            max_backoff_seconds=60,
        )
        poller = Poller(ctx, prices.batched())
        poller.stream_healthy = lambda: stream.state.connected
        task = asyncio.create_task(stream.run_forever())
        try:
            await wait_until(lambda: stream.state.messages >= 4)
            assert await poller.poll_once() == [] and not fake.quote_requests()

            await streamer.tick("LX001", 6.5)
            await wait_until(lambda: recorder.symbols() == ["LX001"])
            server.close()  # the streamer goes away: connections dropped, new ones refused
            await server.wait_closed()
            await wait_until(lambda: not stream.state.connected)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # Yahoo's quotes while the stream is down: LX001 still up, LX002 crosses now.
    quoted_at = NOW - timedelta(minutes=1)
    for sym, pct in (("LX001", 6.6), ("LX002", 7.0), ("LX003", 0.4), ("SPY", 0.3)):
        fake.quotes[sym] = quote_entry(sym, PREV * (1 + pct / 100), PREV, quoted_at)
    first = await poller.poll_once()
    second = await poller.poll_once()

    assert [d.alert.symbols for d in first] == [("LX002",)] and second == []
    assert recorder.symbols() == ["LX001", "LX002"]  # each crossing alerted exactly once
    assert len(fake.quote_requests()) == 2 and not any(r.is_chart for r in fake.seen)
    assert store.recent_alerts(NOW - timedelta(hours=1))  # the sent-log survives in the store


async def test_previous_closes_come_from_one_daily_batch_not_every_poll() -> None:
    settings = load_settings(db_url="sqlite://")
    store = Store("sqlite://")
    store.add_watch(WatchEntry("test", "c1", s, 5.0) for s in ("LX001", "LX002"))
    fake = FakeYahoo()
    for sym in ("LX001", "LX002", "SPY"):
        fake.quotes[sym] = quote_entry(sym, 101.0, PREV, NOW - timedelta(minutes=1))
    prices = YahooPrices(FakeSession(fake), requests_per_second=1000)
    ctx = AppContext(settings, build_engine(settings), store, prices, None, clock=lambda: NOW)  # type: ignore[arg-type]

    assert await refresh_previous_closes(ctx, prices.batched()) == 3

    assert len(fake.quote_requests()) == 1
    streamed = quote_from_message(
        {"id": "LX002", "price": 107.0, "time": str(int(NOW.timestamp() * 1000))},
        prices.batched().previous_close,
    )
    assert streamed is not None and streamed.change_pct == pytest.approx(7.0)


def test_the_feed_setting_defaults_to_streaming_and_refuses_other_values() -> None:
    from config.settings import SettingsError

    assert load_settings(db_url="sqlite://").price_feed == "stream"
    assert load_settings(db_url="sqlite://", price_feed="poll").price_feed == "poll"
    with pytest.raises(SettingsError, match="price_feed"):
        load_settings(db_url="sqlite://", price_feed="carrier-pigeon")
    with pytest.raises(SettingsError, match="yahoo_batch_size"):
        load_settings(db_url="sqlite://", yahoo_batch_size=0)
