"""Benchmark 2: one alert to 100 / 1,000 channels against fakes that enforce the real limits."""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import AppContext, Notifier, replay_context
from bot.delivery.outbox import OutboxWorker, enqueue
from bot.delivery.pacing import DISCORD, SLACK, PlatformLimits, Rate, default_pacers
from bot.infra.store import Store
from bot.platforms.discord.adapter import create_discord_bot, login
from bot.platforms.slack.adapter import SlackNotifier
from config.settings import load_settings
from handlers.models import Alert, Delivery, Destination, WatchEntry
from handlers.render import Message, render_alert
from tests.conftest import DEMO_BARS, DEMO_NEWS
from tests.fake_discord import TOKEN, FakeDiscord
from tests.fake_slack import FakeSlack
from tests.helpers import at

SIZES = (100, 1_000)
CHINA = ["BABA", "JD", "TCEHY", "PDD", "BIDU"]
FIRST_DISCORD_CHANNEL = 750_000_000_000_000_000
SLACK_BOT_TOKEN = "xoxb-bench-token"
# The naive way retries a failed send at once, up to this many times.
NAIVE_ATTEMPTS = 200
RUN_TIMEOUT_S = 300.0
ADAPTER_LOGGERS = (
    "discord.http",
    "bot.platforms.discord.adapter",
    "bot.platforms.slack.adapter",
    "bot.delivery.outbox",
    "slack_sdk",
)


@dataclass
class FanoutResult:
    platform: str
    mode: str
    channels: int
    seconds: float  # alert written (or naive sends started) -> last message the fake recorded
    first_s: float  # ... -> first message (for the outbox: writing the rows and alert log)
    ideal_s: float  # the least the limit's windows allow between first and last send
    sends_per_s: float  # messages accepted per second, first to last
    limit_per_s: float  # the platform's overall limit (Discord global, Slack workspace)
    share_of_limit: float  # sends_per_s / limit_per_s
    requests: int
    rate_limited: int  # 429 answers
    rate_limited_pct: float  # 429s per 100 sends
    delivered: int  # channels holding exactly one copy
    duplicates: int


@dataclass
class Comparison:
    platform: str
    channels: int
    seconds_ratio: float  # naive / paced, time to last delivery
    send_rate_ratio: float  # naive / paced, sends per second first to last
    naive_rate_limited: int
    paced_rate_limited: int
    naive_requests_per_send: float


@dataclass
class Target:
    """A fake platform with limits on, the real notifier pointed at it, and what it recorded."""

    platform: str
    limits: PlatformLimits
    channels: list[str]
    notifier: Notifier
    posted: Callable[[], list[tuple[str, float]]]  # (channel, arrival) of accepted posts
    requests: Callable[[], int]
    rate_limited: Callable[[], int]


def ideal_seconds(sends: int, rate: Rate) -> float:
    """When the last of SENDS can go at the earliest, with windows of rate.count per period."""
    return (math.ceil(sends / rate.count) - 1) * rate.period


def npc_alert() -> tuple[Alert, Message]:
    """The real NPC-day alert from the pipeline (5 China ADRs up together, macro cause)."""
    settings = load_settings(db_url="sqlite://")
    store = Store("sqlite://")
    ctx, replay, _ = replay_context(settings, store, [DEMO_BARS], DEMO_NEWS)
    entries = [WatchEntry("bench", "c0", s, 5.0) for s in CHINA]
    now = at("2025-03-05", "16:00")
    quotes = replay.quotes([*CHINA, "KWEB", "SPY"], now)
    [delivery] = ctx.engine.process_tick(quotes, entries, {}, store, now, ctx.news).deliveries
    store.close()
    return delivery.alert, render_alert(delivery.alert)


def bench_context(db: Path) -> AppContext:
    settings = load_settings(
        db_url=f"sqlite:///{db}", slack_bot_token=SLACK_BOT_TOKEN, discord_token=TOKEN
    )
    ctx, _, _ = replay_context(settings, Store(settings.db_url), [DEMO_BARS])
    ctx.charts = None  # the fan-out measures posting, not drawing
    return ctx


@contextmanager
def temp_db() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp) / "fanout.db"


@asynccontextmanager
async def discord_target(ctx: AppContext, channels: int) -> AsyncIterator[Target]:
    fake = FakeDiscord()
    await fake.start()
    ids = [FIRST_DISCORD_CHANNEL + i for i in range(channels)]
    fake.add_channels(ids)
    with pytest.MonkeyPatch.context() as patch:
        fake.install(patch)
        bot = create_discord_bot(ctx)
        try:
            async with bot:
                await login(bot, TOKEN)  # REST only: alerts need no gateway
                limits = fake.enforce_limits()
                messages = r"/channels/\d+/messages"

                def posted() -> list[tuple[str, float]]:
                    ok = (c for c in fake.calls_to("POST", messages) if c.status == 200)
                    return [(c.path.split("/")[2], c.at) for c in ok]

                yield Target(
                    "discord",
                    DISCORD,
                    [str(i) for i in ids],
                    ctx.notifiers["discord"],
                    posted,
                    lambda: len(fake.calls_to("POST", messages)),
                    lambda: limits.limited,
                )
        finally:
            await fake.stop()


@asynccontextmanager
async def slack_target(ctx: AppContext, channels: int) -> AsyncIterator[Target]:
    fake = await FakeSlack(bot_token=SLACK_BOT_TOKEN).start()
    limits = fake.enforce_limits()
    # As in production (slack_client): no shared session, slack_sdk opens one per call.
    client = AsyncWebClient(token=SLACK_BOT_TOKEN, base_url=fake.api_url)
    notifier = SlackNotifier(client)
    ctx.notifiers["slack"] = notifier

    def posted() -> list[tuple[str, float]]:
        ok = (c for c in fake.calls_to("chat.postMessage") if c.status == 200)
        return [(str(c.args["channel"]), c.at) for c in ok]

    try:
        yield Target(
            "slack",
            SLACK,
            [f"C{i:08d}" for i in range(channels)],
            notifier,
            posted,
            lambda: len(fake.calls_to("chat.postMessage")),
            lambda: limits.limited,
        )
    finally:
        await fake.stop()


async def until_delivered(target: Target, timeout: float = RUN_TIMEOUT_S) -> None:
    wanted = set(target.channels)
    deadline = time.monotonic() + timeout
    while {c for c, _ in target.posted()} != wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{target.platform}: not every channel got the alert in time")
        await asyncio.sleep(0.01)


async def paced(ctx: AppContext, target: Target, delivery: Delivery) -> float:
    """The bot's way: outbox rows, then the worker sends each under the platform's pacer."""
    worker = OutboxWorker.of(ctx, pacers=default_pacers())
    task = asyncio.create_task(worker.run_forever(idle_seconds=0.05))
    try:
        started = time.monotonic()
        await asyncio.to_thread(enqueue, ctx.store, [delivery], datetime.now(UTC))
        worker.wake()
        await until_delivered(target)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return started


async def naive(ctx: AppContext, target: Target, alert: Alert, message: Message) -> float:
    """Every send at once, each retried at once when it fails (the adapters honour 429s)."""

    async def send(channel: str) -> None:
        for _ in range(NAIVE_ATTEMPTS):
            try:
                await target.notifier.send(message, channel, alert.id)
                return
            except Exception:
                continue

    started = time.monotonic()
    await asyncio.gather(*(send(c) for c in target.channels))
    await until_delivered(target, timeout=5.0)
    return started


def result(target: Target, mode: str, started: float) -> FanoutResult:
    posted = target.posted()
    arrivals = sorted(at for _, at in posted)
    first, last = arrivals[0], arrivals[-1]
    copies: dict[str, int] = {}
    for channel, _ in posted:
        copies[channel] = copies.get(channel, 0) + 1
    sends = len(target.channels)
    limit = target.limits.overall
    rate = (len(arrivals) - 1) / (last - first) if last > first else float("inf")
    rate_limited = target.rate_limited()
    return FanoutResult(
        platform=target.platform,
        mode=mode,
        channels=sends,
        seconds=round(last - started, 3),
        first_s=round(first - started, 3),
        ideal_s=ideal_seconds(sends, limit),
        sends_per_s=round(rate, 2),
        limit_per_s=limit.per_second,
        share_of_limit=round(rate / limit.per_second, 3),
        requests=target.requests(),
        rate_limited=rate_limited,
        rate_limited_pct=round(100 * rate_limited / sends, 3),
        delivered=sum(1 for n in copies.values() if n == 1),
        duplicates=sum(n - 1 for n in copies.values()),
    )


async def run_one(platform: str, mode: str, channels: int) -> FanoutResult:
    """One fan-out on a fresh fake, store and client."""
    alert, message = npc_alert()
    opener = discord_target if platform == "discord" else slack_target
    with temp_db() as db:
        ctx = bench_context(db)
        try:
            async with opener(ctx, channels) as target:
                dests = tuple(Destination(platform, c) for c in target.channels)
                addressed = Delivery(alert, dests)
                if mode == "paced":
                    started = await paced(ctx, target, addressed)
                else:
                    started = await naive(ctx, target, alert, message)
                return result(target, mode, started)
        finally:
            ctx.store.close()


def compare(results: Sequence[FanoutResult]) -> list[Comparison]:
    """Naive against paced, per platform and size."""
    by_key = {(r.platform, r.channels, r.mode): r for r in results}
    rows = []
    for (platform, channels, mode), naive_run in by_key.items():
        paced_run = by_key.get((platform, channels, "paced"))
        if mode != "naive" or paced_run is None:
            continue
        rows.append(
            Comparison(
                platform=platform,
                channels=channels,
                seconds_ratio=round(naive_run.seconds / paced_run.seconds, 2),
                send_rate_ratio=round(naive_run.sends_per_s / paced_run.sends_per_s, 2),
                naive_rate_limited=naive_run.rate_limited,
                paced_rate_limited=paced_run.rate_limited,
                naive_requests_per_send=round(naive_run.requests / channels, 1),
            )
        )
    return rows


def goals(results: Sequence[FanoutResult]) -> dict[str, bool]:
    """Issue 7's goals for the paced runs: >= 90 % of the limit, 429s under 0.5 % of sends."""
    paced_runs = [r for r in results if r.mode == "paced"]
    return {
        "paced_at_least_90pct_of_limit": all(r.share_of_limit >= 0.9 for r in paced_runs),
        "paced_429s_under_0.5pct": all(r.rate_limited_pct < 0.5 for r in paced_runs),
        "every_channel_exactly_once": all(
            r.delivered == r.channels and r.duplicates == 0 for r in results
        ),
    }


async def run_all(
    sizes: Sequence[int], platforms: Sequence[str], progress: Callable[[str], None]
) -> list[FanoutResult]:
    results = []
    for platform in platforms:
        for channels in sizes:
            for mode in ("paced", "naive"):
                run = await run_one(platform, mode, channels)
                results.append(run)
                progress(f"{platform} {mode} {channels} channels: {run.seconds:.1f} s")
    return results


@contextmanager
def quiet_adapters() -> Iterator[None]:
    """The naive runs make the adapters log every 429 and failure: expected, not news."""
    loggers = [logging.getLogger(n) for n in ADAPTER_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def main(
    sizes: Sequence[int] = SIZES,
    platforms: Sequence[str] = ("discord", "slack"),
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[list[FanoutResult], list[Comparison]]:
    """Every platform x size, paced (outbox + pacer) then naive; about 5 minutes in all."""
    with quiet_adapters():
        results = asyncio.run(run_all(sizes, platforms, progress))
    return results, compare(results)
