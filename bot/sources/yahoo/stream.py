"""Streaming quotes through yfinance's AsyncWebSocket: subscribe, decode, reconnect, fall back."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yfinance as yf

from handlers.models import Quote, Session

log = logging.getLogger(__name__)

SOURCE = "yahoo-stream"
YAHOO_STREAM_URL = "wss://streamer.finance.yahoo.com/?version=2"
# PricingData.market_hours as Yahoo sends it.
MARKET_HOURS: dict[int, Session] = {0: "pre", 1: "regular", 2: "post", 3: "post"}

OnQuotes = Callable[[Mapping[str, Quote]], Awaitable[None]]
WantedSymbols = Callable[[], Awaitable[set[str]]]
PreviousCloses = Callable[[str], float | None]


def quote_from_message(
    message: Mapping[str, Any], reference: PreviousCloses | None = None
) -> Quote | None:
    """A Quote from one decoded PricingData dict, or None when it cannot be trusted.

    The previous close is the message's own, else REFERENCE's (the day's batched quotes),
    else the price less the message's change.
    """
    symbol = str(message.get("id") or "").upper()
    try:
        price = float(message.get("price", 0.0))
        previous = float(message.get("previous_close", 0.0)) or None
        if previous is None and reference is not None:
            previous = reference(symbol)
        if previous is None and message.get("change"):
            previous = (price - float(message["change"])) or None
        millis = int(message.get("time", 0))
        hours = int(message.get("market_hours", 0))
    except (TypeError, ValueError):
        log.info("stream message skipped: unreadable numbers in %s", dict(message))
        return None
    if not symbol or not math.isfinite(price) or price <= 0 or millis <= 0:
        log.info("stream message skipped: no symbol, price or time in %s", dict(message))
        return None
    # proto3 leaves out zero values when decoding, so a missing market_hours is 0: pre-market.
    session = MARKET_HOURS.get(hours, "regular")
    opened = message.get("open_price")
    return Quote(
        symbol=symbol,
        price=price,
        previous_close=previous,
        at=datetime.fromtimestamp(millis / 1000, tz=UTC),
        source=SOURCE,
        open=float(opened) if opened else None,
        session=session,
    )


@dataclass
class StreamState:
    connected: bool = False
    messages: int = 0
    last_message: datetime | None = None
    reconnects: int = 0
    last_error: str | None = None
    subscribed: set[str] = field(default_factory=set)


@dataclass
class QuoteStream:
    """Keeps a subscription to the wanted symbols and hands fresh quotes on, batched.

    A quote arriving while the stream is idle is handed on after gather_seconds (the burst it
    came in, e.g. a group moving together, goes in the same batch); quotes arriving while a
    batch is processed, or less than batch_seconds after it started, wait for the next one.
    So a quiet market waits gather_seconds, a busy one at most batch_seconds.
    """

    wanted: WantedSymbols
    on_quotes: OnQuotes
    url: str = YAHOO_STREAM_URL
    batch_seconds: float = 0.2
    gather_seconds: float = 0.05
    resubscribe_seconds: float = 10.0
    max_backoff_seconds: float = 60.0
    previous_close: PreviousCloses | None = None
    state: StreamState = field(default_factory=StreamState)
    _latest: dict[str, Quote] = field(default_factory=dict)
    _dirty: set[str] = field(default_factory=set)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def silent_for(self, now: datetime) -> float | None:
        """Seconds since the last message, None before the first one."""
        if self.state.last_message is None:
            return None
        return (now - self.state.last_message).total_seconds()

    async def _handle(self, message: dict[str, Any]) -> None:
        if "error" in message:
            log.info("undecodable stream message skipped: %s", message["error"])
            return
        quote = quote_from_message(message, self.previous_close)
        if quote is None:
            return
        self.state.messages += 1
        self.state.last_message = datetime.now(UTC)
        self._latest[quote.symbol] = quote
        self._dirty.add(quote.symbol)
        self._wake.set()

    async def _flush_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            started = loop.time()
            await asyncio.sleep(self.gather_seconds)
            self._wake.clear()
            if not self._dirty:
                continue
            self._dirty.clear()
            try:
                await self.on_quotes(dict(self._latest))
            except Exception:
                log.exception("processing streamed quotes failed")
            rest = self.batch_seconds - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    async def _keep_subscribed(self, ws: Any) -> None:
        while True:
            wanted = await self.wanted()
            new, gone = wanted - self.state.subscribed, self.state.subscribed - wanted
            if new:
                await ws.subscribe(sorted(new))
            if gone:
                await ws.unsubscribe(sorted(gone))
                for sym in gone:
                    self._latest.pop(sym, None)
            self.state.subscribed = set(wanted)
            await asyncio.sleep(self.resubscribe_seconds)

    async def _session(self) -> None:
        """One connection: subscribe, listen, keep the subscription in step with the watchlist."""
        ws = yf.AsyncWebSocket(url=self.url, verbose=False)
        self.state.subscribed = set()
        try:
            await ws._connect()  # connect first so a refused connection raises here
            self.state.connected = True
            keeper = asyncio.create_task(self._keep_subscribed(ws))
            try:
                await self._listen(ws)
            finally:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
        finally:
            self.state.connected = False
            await ws.close()

    async def _listen(self, ws: Any) -> None:
        """Read until the connection closes, decoding with yfinance's own PricingData decoder.

        yfinance's listen() retries a dropped connection in a loop of its own; reading here
        lets a drop end the session so that run_forever() reconnects with backoff.
        """
        async for raw in ws._ws:
            try:
                encoded = json.loads(raw).get("message", "")
            except (ValueError, AttributeError):
                log.info("stream frame that is not JSON skipped")
                continue
            try:
                decoded = ws._decode_message(encoded)
            except Exception as exc:  # raised when yfinance is set not to hide exceptions
                log.info("undecodable stream message skipped: %s", exc)
                continue
            await self._handle(decoded)
        raise ConnectionError("stream closed by the server")

    async def run_forever(self) -> None:
        """Stream until cancelled, reconnecting with exponential backoff."""
        flusher = asyncio.create_task(self._flush_forever())
        backoff = 1.0
        try:
            while True:
                started = self.state.messages
                try:
                    await self._session()
                    self.state.last_error = "stream closed"
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.state.last_error = f"{type(exc).__name__}: {exc}"
                if self.state.messages > started:
                    backoff = 1.0
                self.state.reconnects += 1
                log.warning(
                    "quote stream down (%s); reconnecting in %.0f s", self.state.last_error, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_seconds)
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
