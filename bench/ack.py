"""Benchmark 4b: /why through the real Discord adapter, time to the defer and to the answer."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from unittest import mock

import discord.gateway
import discord.http

from bench.yahoo import NOW, YAHOO_LATENCY_S, offline_yfinance, reset_yfinance, serving_fake
from bot.app import AppContext, build_engine
from bot.infra.store import Store
from bot.platforms.discord.adapter import create_discord_bot, serve_discord
from bot.sources.yahoo.news import YahooNews
from bot.sources.yahoo.quotes import YahooPrices
from config.settings import load_settings
from tests.fake_discord import TOKEN, FakeDiscord, opt
from tests.yahoo_fake import FakeSession

ASKS = 20


@dataclass
class AckLatency:
    case: str
    asks: int
    ack_p50_s: float
    ack_p99_s: float
    answer_p50_s: float
    answer_p95_s: float


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _ask(fake: FakeDiscord, asks: int) -> tuple[list[float], list[float]]:
    acks: list[float] = []
    answers: list[float] = []
    for _ in range(asks):
        start = time.perf_counter()
        record = await fake.interact("why", [opt("symbol", "BABA")])
        await fake.wait_for(lambda r=record: bool(r.callbacks), 10, "the defer")  # type: ignore[misc]
        acks.append(time.perf_counter() - start)
        await fake.answered(record, timeout=30)
        answers.append(time.perf_counter() - start)
    return acks, answers


async def _run(asks: int) -> list[AckLatency]:
    fake = FakeDiscord()
    await fake.start()
    settings = load_settings(db_url="sqlite://")
    reset_yfinance()
    session = FakeSession(serving_fake(YAHOO_LATENCY_S))
    prices = YahooPrices(session, requests_per_second=1000)
    ctx = AppContext(
        settings,
        build_engine(settings),
        Store("sqlite://"),
        prices,
        YahooNews(session),
        clock=lambda: NOW,
    )
    with (
        mock.patch.object(discord.http.Route, "BASE", fake.api_base),
        mock.patch.object(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", fake.gateway_url),
    ):
        bot = create_discord_bot(ctx, guild_ready_timeout=0.05)
        task = asyncio.create_task(serve_discord(ctx, TOKEN, bot=bot))
        try:
            await asyncio.wait_for(bot.wait_until_ready(), 20)
            cold_acks, cold_answers = await _ask(fake, 1)
            acks, answers = await _ask(fake, asks)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await fake.stop()
    return [
        _result("cold (first ask)", cold_acks, cold_answers),
        _result("warm", acks, answers),
    ]


def _result(case: str, acks: list[float], answers: list[float]) -> AckLatency:
    return AckLatency(
        case,
        len(acks),
        statistics.median(acks),
        _pct(acks, 0.99),
        statistics.median(answers),
        _pct(answers, 0.95),
    )


def main(asks: int = ASKS) -> list[AckLatency]:
    with offline_yfinance():
        return asyncio.run(_run(asks))
