"""Streaming quotes through yfinance's AsyncWebSocket and decoder, against a local streamer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

from bot.app import AppContext, build_engine
from bot.infra.scheduler import process_streamed
from bot.infra.store import Store
from bot.runner import wanted_symbols
from bot.sources.yahoo.stream import SOURCE, QuoteStream, quote_from_message
from config.settings import load_settings
from handlers.models import WatchEntry
from tests.fake_streamer import pricing_frame
from tests.fakes import AlertRecorder
from tests.helpers import wait_until

NOW = datetime(2025, 3, 5, 18, 30, tzinfo=UTC)  # 13:30 in New York
PREVIOUS = {
    "BABA": 129.85,
    "JD": 40.95,
    "PDD": 113.41,
    "TCEHY": 63.40,
    "BIDU": 87.15,
    "KWEB": 33.36,
    "SPY": 576.86,
    "NTES": 96.0,
    "BILI": 18.0,
    "TME": 12.0,
}


def frame(symbol: str, pct: float, at: datetime = NOW) -> str:
    """What Yahoo's streamer sends for SYMBOL PCT percent above its previous close."""
    prev = PREVIOUS.get(symbol, 100.0)
    return pricing_frame(symbol, prev * (1 + pct / 100), prev, at)


@dataclass
class Streamer:
    """A local websocket server that behaves like Yahoo's streamer for our purposes."""

    moves: dict[str, float]
    subscribed: list[set[str]] = field(default_factory=list)
    connections: int = 0
    drop_first: bool = False

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        async for raw in ws:
            request = json.loads(raw)
            symbols = set(request.get("subscribe", []))
            if not symbols:
                continue
            self.subscribed.append(symbols)
            if self.drop_first and self.connections == 1:
                await ws.close()
                return
            await ws.send("not json at all")
            await ws.send(json.dumps({"message": "%%%not-base64"}))
            for sym in sorted(symbols):
                await ws.send(frame(sym, self.moves.get(sym, 0.3)))


@pytest.fixture
async def streamer_url() -> AsyncIterator[tuple[str, Streamer]]:
    streamer = Streamer(
        {"BABA": 8.6, "JD": 6.9, "TCEHY": 6.5, "PDD": 6.0, "BIDU": 5.4, "KWEB": 7.1, "SPY": 1.1}
    )
    async with serve(streamer.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", streamer


def _ctx() -> tuple[AppContext, AlertRecorder]:
    settings = load_settings(db_url="sqlite://")
    store = Store("sqlite://")
    store.add_watch(
        WatchEntry("test", "c1", s, 5.0) for s in ["BABA", "JD", "TCEHY", "PDD", "BIDU"]
    )
    ctx = AppContext(
        settings,
        build_engine(settings),
        store,
        market=None,
        news=None,  # type: ignore[arg-type]
        clock=lambda: NOW,
    )
    recorder = AlertRecorder(store)
    ctx.notifiers["test"] = recorder
    return ctx, recorder


async def test_streamed_npc_move_becomes_one_grouped_alert(
    streamer_url: tuple[str, Streamer],
) -> None:
    url, streamer = streamer_url
    ctx, recorder = _ctx()
    stream = QuoteStream(
        lambda: wanted_symbols(ctx), lambda q: _process(ctx, q), url=url, batch_seconds=0.05
    )
    task = asyncio.create_task(stream.run_forever())
    try:
        await wait_until(lambda: len(recorder.alerts) >= 1)
        await asyncio.sleep(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert {"BABA", "JD", "KWEB", "SPY"} <= streamer.subscribed[0]
    [alert] = recorder.alerts
    assert set(alert.symbols) == {"BABA", "JD", "TCEHY", "PDD", "BIDU"}
    assert alert.moves[0].source == SOURCE  # the alert says which feed it came from
    assert alert.benchmark.symbol == "KWEB"
    assert stream.state.messages >= 7


async def _process(ctx: AppContext, quotes: object) -> None:
    await process_streamed(ctx, quotes)  # type: ignore[arg-type]


async def test_reconnects_after_a_drop_and_follows_the_watchlist(
    streamer_url: tuple[str, Streamer],
) -> None:
    url, streamer = streamer_url
    streamer.drop_first = True
    ctx, recorder = _ctx()
    stream = QuoteStream(
        lambda: wanted_symbols(ctx),
        lambda q: _process(ctx, q),
        url=url,
        batch_seconds=0.05,
        resubscribe_seconds=0.1,
    )
    task = asyncio.create_task(stream.run_forever())
    try:
        await wait_until(lambda: len(recorder.alerts) >= 1, timeout=8)
        assert streamer.connections >= 2 and stream.state.reconnects >= 1
        ctx.store.add_watch([WatchEntry("test", "c1", "AAPL", 5.0)])
        await wait_until(lambda: any("AAPL" in s for s in streamer.subscribed))
        ctx.store.remove_watch(ctx.store.watch_entries()[0].destination, ["AAPL"])
        await wait_until(lambda: "AAPL" not in stream.state.subscribed)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_bad_messages_give_no_quote() -> None:
    assert quote_from_message({"id": "BABA", "price": 0, "time": "1741199400000"}) is None
    assert quote_from_message({"id": "", "price": 3.0, "time": "1741199400000"}) is None
    assert quote_from_message({"id": "BABA", "price": "x", "time": "1"}) is None
    quote = quote_from_message(
        {
            "id": "baba",
            "price": 141.0,
            "time": "1741199400000",
            "previous_close": 129.85,
            "market_hours": 0,
        }
    )
    assert quote is not None and quote.symbol == "BABA" and quote.session == "pre"


async def test_refused_connection_backs_off() -> None:
    ctx, _ = _ctx()
    stream = QuoteStream(
        lambda: wanted_symbols(ctx),
        lambda q: _process(ctx, q),
        url="ws://127.0.0.1:9",
        max_backoff_seconds=0.1,
    )
    task = asyncio.create_task(stream.run_forever())
    await asyncio.sleep(1.5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert 2 <= stream.state.reconnects <= 20
    assert stream.state.last_error and not stream.state.connected
    assert websockets  # the server library is the one yfinance itself uses


def test_a_message_without_previous_close_takes_the_days_reference_then_its_change() -> None:
    base = {"id": "BABA", "price": 141.0, "time": "1741199400000", "market_hours": 1}
    references = {"BABA": 129.85}

    from_reference = quote_from_message(base, references.get)
    from_change = quote_from_message({**base, "change": 11.15}, {}.get)
    without = quote_from_message(base, {}.get)

    assert from_reference is not None and from_reference.previous_close == 129.85
    assert from_change is not None and from_change.previous_close == pytest.approx(129.85)
    assert without is not None and without.previous_close is None  # detect skips it
