"""The Discord adapter end to end: the real discord.py against the local fake Discord."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import discord
import matplotlib.image
import numpy as np
import pytest

from bot.app import AppContext, SimulatedClock, replay_context
from bot.delivery import sentlog
from bot.delivery.outbox import OutboxWorker, outbox_counts, stored_alert
from bot.infra.store import Store
from bot.platforms.discord.adapter import (
    DiscordSetupError,
    MarketBot,
    create_discord_bot,
    serve_discord,
    sync_discord_commands,
)
from bot.platforms.discord.render import (
    ATTACHMENT_MAX,
    CHART_URL,
    ELLIPSIS,
    chart_problem,
    cut,
    message_embed,
    nonce_for,
)
from bot.runner import deliver, run_replay_feed
from bot.sources.replay import Replay
from config.settings import load_settings
from handlers.models import Alert, Delivery, Destination, WatchEntry
from handlers.render import ContextItem, Field, Link, Message, alert_buttons
from tests.conftest import DEMO_BARS, DEMO_NEWS
from tests.fake_discord import (
    CHINA_TECH,
    EPHEMERAL,
    GUILD_ID,
    MANAGER_PERMS,
    MARKETS,
    MEMBER_PERMS,
    PNG_SIGNATURE,
    TOKEN,
    Call,
    FakeDiscord,
    displayed,
    embed_problems,
    opt,
)

NY = ZoneInfo("America/New_York")
NPC_CLOSE = datetime(2025, 3, 5, 16, 0, tzinfo=NY)
NPC_DAY = date(2025, 3, 5)
CHINA = ["BABA", "JD", "TCEHY", "PDD", "BIDU"]
MESSAGES = r"/channels/\d+/messages"
Json = dict[str, Any]


@pytest.fixture
def fake(discord_fake: FakeDiscord) -> FakeDiscord:
    return discord_fake


@dataclasses.dataclass
class Replayed:
    ctx: AppContext
    replay: Replay
    clock: SimulatedClock


def replayed(db_url: str = "sqlite://", start_at: datetime | None = NPC_CLOSE) -> Replayed:
    settings = load_settings(db_url=db_url)
    ctx, replay, clock = replay_context(
        settings, Store(db_url), [DEMO_BARS], DEMO_NEWS, start_at=start_at
    )
    return Replayed(ctx, replay, clock)


@asynccontextmanager
async def running(ctx: AppContext, fake: FakeDiscord) -> AsyncIterator[MarketBot]:
    """The bot connected to the fake and ready; stopped (cancelled) afterwards."""
    bot = create_discord_bot(ctx, guild_ready_timeout=0.05)
    task = asyncio.create_task(serve_discord(ctx, TOKEN, bot=bot))
    ready = asyncio.create_task(bot.wait_until_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        task.cancel()
        raise AssertionError(f"bot did not get ready: {task.exception() if task in done else ''}")
    try:
        yield bot
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        assert bot.is_closed()


class Spy:
    """Forwards to the real Discord notifier and remembers what it was asked to send."""

    platform = "discord"

    def __init__(self, inner: Any, store: Store) -> None:
        self.inner = inner
        self.store = store
        self.calls: list[tuple[str, Message, str]] = []

    async def send(self, message: Message, channel: str, key: str) -> str:
        self.calls.append((key, message, channel))
        return str(await self.inner.send(message, channel, key))

    async def find(self, channel: str, key: str) -> str | None:
        found: str | None = await self.inner.find(channel, key)
        return found

    def alerts(self) -> list[tuple[Alert, list[str]]]:
        """Each alert sent (from the outbox), with the channels it went to."""
        channels: dict[str, list[str]] = {}
        for key, _message, channel in self.calls:
            channels.setdefault(key, []).append(channel)
        found = [(stored_alert(self.store, key), sent) for key, sent in channels.items()]
        assert all(alert is not None for alert, _ in found)
        return [(alert, sent) for alert, sent in found if alert is not None]


def npc_alert(r: Replayed) -> Alert:
    """The NPC-day group alert from the real pipeline, not yet delivered anywhere."""
    entries = [WatchEntry("discord", str(CHINA_TECH), s, 5.0) for s in CHINA]
    quotes = r.replay.quotes([*CHINA, "KWEB", "SPY"], NPC_CLOSE)
    result = r.ctx.engine.process_tick(
        quotes, entries, {}, Store("sqlite://"), NPC_CLOSE, r.ctx.news
    )
    [delivery] = result.deliveries
    return delivery.alert


async def retry_later(ctx: AppContext) -> None:
    """The outbox's retry of what failed, once its backoff has passed."""
    later = datetime.now(UTC) + timedelta(minutes=5)
    await OutboxWorker.of(ctx, clock=lambda: later, platforms=frozenset({"discord"})).drain()


async def watch(fake: FakeDiscord, channel: int, symbols: str, threshold: float = 5.0) -> Json:
    record = await fake.interact(
        "watch",
        [opt("symbols", symbols), opt("threshold", threshold)],
        sub="add",
        channel=channel,
        permissions=MANAGER_PERMS,
    )
    [answer] = (await fake.answered(record)).answers()
    return answer


async def npc_day(r: Replayed) -> Spy:
    """Replay 2025-03-05 through the real pipeline with the Discord notifier spied on."""
    spy = Spy(r.ctx.notifiers["discord"], r.ctx.store)
    r.ctx.notifiers["discord"] = spy
    await run_replay_feed(r.ctx, r.replay, r.clock, 0, NPC_DAY, NPC_DAY)
    return spy


def body_of(fake: FakeDiscord, method: str, path: str) -> list[Json]:
    return [c.body for c in fake.calls_to(method, path)]


# --- /why -------------------------------------------------------------------------------


async def test_why_defers_at_once_then_follows_up_with_the_npc_context(fake: FakeDiscord) -> None:
    r = replayed()
    gate = threading.Event()
    answer_why = r.ctx.answer_why

    def held_answer(symbol: str) -> Any:
        gate.wait(5)
        return answer_why(symbol)

    r.ctx.answer_why = held_answer  # type: ignore[method-assign]
    async with running(r.ctx, fake):
        record = await fake.interact("why", [opt("symbol", "baba")])
        await fake.wait_for(lambda: bool(record.callbacks), what="the deferral")
        assert record.callback_types == [5] and not record.followups  # deferred, still thinking
        gate.set()
        await fake.answered(record)
    [answer] = record.answers()
    assert not answer["flags"] & EPHEMERAL
    assert answer["content"].startswith("Why BABA? BABA +8.6 %")
    [embed] = answer["embeds"]
    assert embed["title"] == "▲ BABA +8.6 %"
    assert "KWEB +7.1 %" in embed["description"]
    names = [displayed(f["name"]) for f in embed["fields"]]
    assert "Context: China's National People's Congress opens; ~5 % growth target kept" in names
    assert "no company-specific news" in json.dumps(embed)
    assert embed["footer"]["text"].startswith("Data: replay")
    [followup] = body_of(fake, "POST", r"/webhooks/\d+/itok-\d+")
    assert followup["allowed_mentions"] == {"parse": []}


async def test_why_with_a_bad_symbol_is_refused_to_the_asker_only(fake: FakeDiscord) -> None:
    r = replayed()
    async with running(r.ctx, fake):
        record = await fake.answered(await fake.interact("why", [opt("symbol", "BA BA!")]))
    assert record.callback_types == [4]
    [answer] = record.answers()
    assert answer["flags"] & EPHEMERAL
    assert "not a valid ticker" in answer["content"]


async def test_why_without_a_price_answers_the_asker_only(fake: FakeDiscord) -> None:
    r = replayed()
    async with running(r.ctx, fake):
        record = await fake.answered(await fake.interact("why", [opt("symbol", "NOPE")]))
    assert record.callback_types == [5] and record.original_deleted
    [answer] = record.answers()
    assert answer["flags"] & EPHEMERAL
    assert "No usable price for NOPE" in answer["content"]
    assert not answer["attachments"] and all(not c.uploads for c in fake.calls)


async def test_autocomplete_offers_the_channel_watchlist(fake: FakeDiscord) -> None:
    r = replayed()
    async with running(r.ctx, fake):
        await watch(fake, CHINA_TECH, "BABA BIDU JD")
        await watch(fake, MARKETS, "BILI")
        record = await fake.interact("why", [opt("symbol", "b", focused=True)], autocomplete=True)
        await fake.answered(record)
    [callback] = record.callbacks
    assert callback["type"] == 8
    assert [c["value"] for c in callback["data"]["choices"]] == ["BABA", "BIDU"]


# --- /watch, /mute and permissions --------------------------------------------------------


async def test_watch_add_without_manage_channels_is_refused_and_stores_nothing(
    fake: FakeDiscord,
) -> None:
    r = replayed()
    async with running(r.ctx, fake):
        record = await fake.interact("watch", [opt("symbols", "BABA JD")], sub="add")
        await fake.answered(record)
    [answer] = record.answers()
    assert answer["flags"] & EPHEMERAL
    assert "Manage Channels" in answer["content"]
    assert r.ctx.store.watch_entries() == []


async def test_watch_add_with_manage_channels_is_kept_after_a_restart(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    first = replayed(url)
    async with running(first.ctx, fake):
        answer = await watch(fake, CHINA_TECH, "BABA JD TCEHY")
    assert not answer["flags"] & EPHEMERAL
    assert answer["content"] == "Watching BABA, JD, TCEHY at ±5 %."
    first.ctx.store.close()

    second = replayed(url)
    task = asyncio.create_task(serve_discord(second.ctx, TOKEN))
    try:
        await fake.wait_for(lambda: len(fake.identifies) == 2, what="the second IDENTIFY")
        record = await fake.interact("watch", sub="list")
        [listed] = (await fake.answered(record)).answers()
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
    assert listed["content"] == "Watchlist: BABA ±5 %, JD ±5 %, TCEHY ±5 %"
    assert fake.calls_to("PUT", r"/applications/.*") == []  # never synced on start
    for identify in fake.identifies:
        intents = discord.Intents._from_value(identify["intents"])
        assert not intents.message_content and not intents.members and not intents.presences


async def test_threshold_remove_mute_and_unmute(fake: FakeDiscord) -> None:
    r = replayed()

    async def run(command: str, options: list[Json], sub: str | None = None) -> Json:
        record = await fake.interact(command, options, sub=sub, permissions=MANAGER_PERMS)
        [answer] = (await fake.answered(record)).answers()
        return answer

    async with running(r.ctx, fake):
        await watch(fake, CHINA_TECH, "BABA JD")
        set_pct = await run("watch", [opt("symbol", "jd"), opt("pct", 3.5)], sub="threshold")
        muted = await run("mute", [opt("symbol", "BABA"), opt("duration", "4h")])
        listed = await run("watch", [], sub="list")
        bad = await run("mute", [opt("symbol", "BABA"), opt("duration", "forever")])
        too_big = await run("watch", [opt("symbols", "PDD"), opt("threshold", 500.0)], sub="add")
        unmuted = await run("unmute", [opt("symbol", "BABA")])
        removed = await run("watch", [opt("symbols", "JD")], sub="remove")
    assert set_pct["content"] == "JD now alerts at ±3.5 %."
    assert muted["content"] == "BABA muted here until 2025-03-06 01:00 UTC."
    assert "BABA ±5 % (muted until 2025-03-06 01:00 UTC), JD ±3.5 %" in listed["content"]
    assert bad["flags"] & EPHEMERAL and "is not a duration" in bad["content"]
    assert "Usage: /mute symbol:BABA duration:4h" in bad["content"]
    assert too_big["flags"] & EPHEMERAL and "out of range" in too_big["content"]
    assert unmuted["content"] == "BABA unmuted."
    assert removed["content"] == "Removed JD."
    assert [e.symbol for e in r.ctx.store.watch_entries()] == ["BABA"]


async def test_quiet_hours_are_set_by_a_manager_and_shown_to_anyone(fake: FakeDiscord) -> None:
    r = replayed()

    async def run(options: list[Json], permissions: int = MEMBER_PERMS) -> Json:
        record = await fake.interact("quiet", options, permissions=permissions)
        [answer] = (await fake.answered(record)).answers()
        return answer

    async with running(r.ctx, fake):
        refused = await run([opt("hours", "22:00-07:00"), opt("zone", "America/New_York")])
        quiet_set = await run(
            [opt("hours", "22:00-07:00"), opt("zone", "America/New_York")], MANAGER_PERMS
        )
        shown = await run([])
        bad_zone = await run([opt("hours", "22:00-07:00"), opt("zone", "Mars/Base")], MANAGER_PERMS)
    assert refused["flags"] & EPHEMERAL
    assert not quiet_set["flags"] & EPHEMERAL
    assert displayed(quiet_set["content"]).startswith(
        "Quiet hours here: 22:00-07:00 America/New_York"
    )
    assert displayed(shown["content"]).startswith("Quiet hours here: 22:00-07:00 America/New_York")
    assert bad_zone["flags"] & EPHEMERAL
    [(where, window)] = r.ctx.store.quiet_hours().items()
    assert where == Destination("discord", str(CHINA_TECH)) and window.zone == "America/New_York"


async def test_mentions_in_user_input_never_ping(fake: FakeDiscord) -> None:
    r = replayed()
    async with running(r.ctx, fake):
        added = await watch(fake, CHINA_TECH, "@everyone <@&123> BABA")
        why = await fake.answered(await fake.interact("why", [opt("symbol", "@here")]))
        mute = await fake.answered(
            await fake.interact(
                "mute",
                [opt("symbol", "BABA"), opt("duration", "<@&123456789012345678> @everyone")],
                permissions=MANAGER_PERMS,
            )
        )
    answers = [added, *why.answers(), *mute.answers()]
    assert "Watching BABA" in added["content"] and "not a valid ticker" in added["content"]
    for answer in answers:
        assert not answer["mention_everyone"] and not answer["mention_roles"]
        assert "@everyone" not in answer["content"] and "@here" not in answer["content"]
        assert "<@&" not in answer["content"]
    for call in fake.calls_to("POST", r"/interactions/\d+/.*/callback"):
        assert call.body["data"]["allowed_mentions"] == {"parse": []}
    assert [e.symbol for e in r.ctx.store.watch_entries()] == ["BABA"]


# --- alerts -----------------------------------------------------------------------------------


async def test_one_alert_reaches_two_channels_once_and_a_retry_posts_nothing(
    fake: FakeDiscord,
) -> None:
    r = replayed(start_at=None)
    async with running(r.ctx, fake):
        await watch(fake, CHINA_TECH, " ".join(CHINA))
        await watch(fake, MARKETS, ",".join(CHINA))
        spy = await npc_day(r)
        [(alert, channels)] = spy.alerts()
        assert sorted(channels) == sorted([str(CHINA_TECH), str(MARKETS)])
        posts = len(fake.calls_to("POST", MESSAGES))
        await deliver(r.ctx, [Delivery(alert, tuple(Destination("discord", c) for c in channels))])
        assert len(fake.calls_to("POST", MESSAGES)) == posts  # the retry found both served
    assert set(alert.symbols) == set(CHINA)
    for channel in (CHINA_TECH, MARKETS):
        [posted] = fake.posted(channel)
        [embed] = posted["embeds"]
        assert embed["title"].startswith("▲ China internet")
        assert embed["color"] == 0x2ECC71
        assert "China's National People's Congress" in json.dumps(embed)
        assert posted["nonce"] == nonce_for(alert.id, str(channel))
        assert not posted["mention_everyone"]
        assert sentlog.message_id(r.ctx.store, alert.id, "discord", str(channel)) == posted["id"]
    for body in body_of(fake, "POST", MESSAGES):
        assert body["enforce_nonce"] is True and body["allowed_mentions"] == {"parse": []}


async def test_a_429_is_waited_out_for_retry_after(fake: FakeDiscord) -> None:
    r = replayed(start_at=None)
    async with running(r.ctx, fake):
        await watch(fake, CHINA_TECH, " ".join(CHINA))
        fake.fail("POST", MESSAGES, 429, retry_after=0.4)
        await npc_day(r)
    first, second = fake.calls_to("POST", MESSAGES)
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.4
    assert len(fake.posted(CHINA_TECH)) == 1


async def test_a_500_is_retried_and_the_nonce_stops_a_double_post(fake: FakeDiscord) -> None:
    r = replayed(start_at=None)
    async with running(r.ctx, fake):
        await watch(fake, CHINA_TECH, " ".join(CHINA))
        await watch(fake, MARKETS, "BABA")
        fake.fail("POST", rf"/channels/{CHINA_TECH}/messages", 500)
        # Here Discord creates the message but answers 500: the retry must not repost.
        fake.fail("POST", rf"/channels/{MARKETS}/messages", 500, after_effect=True)
        spy = await npc_day(r)
    for channel in (CHINA_TECH, MARKETS):
        calls = fake.calls_to("POST", rf"/channels/{channel}/messages")
        assert [c.status for c in calls] == [500, 200]
        assert calls[0].body["nonce"] == calls[1].body["nonce"]
        assert len(fake.posted(channel)) == 1
        # discord.py rewinds the chart for the retry: the same whole file goes again.
        [first], [second] = calls[0].uploads, calls[1].uploads
        assert first.data == second.data and first.data.startswith(PNG_SIGNATURE)
    # Two alerts here (the group in one channel, BABA alone in the other): one chart each.
    assert r.ctx.charts is not None and r.ctx.charts.cache.renders == len(spy.alerts()) == 2


async def test_a_send_whose_answer_was_lost_is_not_posted_twice_on_retry(
    fake: FakeDiscord,
) -> None:
    r = replayed()
    channel = str(CHINA_TECH)
    alert = npc_alert(r)
    async with running(r.ctx, fake):
        fake.fail("POST", MESSAGES, 0, after_effect=True)  # posted, but the answer never came
        await deliver(r.ctx, [Delivery(alert, (Destination("discord", channel),))])
        assert len(fake.posted(CHINA_TECH)) == 1
        assert not sentlog.was_sent(r.ctx.store, alert.id, "discord", channel)
        assert outbox_counts(r.ctx.store) == {"pending": 1}
        await retry_later(r.ctx)
    # The retry found the post in the channel's history and recorded it: no second POST.
    [first] = fake.calls_to("POST", MESSAGES)
    assert first.body["nonce"] == nonce_for(alert.id, channel)
    assert len(fake.calls_to("GET", MESSAGES)) == 1
    [posted] = fake.posted(CHINA_TECH)
    assert sentlog.message_id(r.ctx.store, alert.id, "discord", channel) == posted["id"]
    assert outbox_counts(r.ctx.store) == {"sent": 1}


@pytest.mark.parametrize("history_readable", [True, False])
async def test_a_lost_answer_after_the_nonce_expired_is_found_in_the_history(
    monkeypatch: pytest.MonkeyPatch, history_readable: bool
) -> None:
    """Discord forgets a nonce after a few minutes; only the channel history can tell then."""
    fake = FakeDiscord(nonce_seconds=0.0)
    await fake.start()
    fake.install(monkeypatch)
    r = replayed()
    r.ctx.charts = None
    channel = str(CHINA_TECH)
    alert = npc_alert(r)
    try:
        async with running(r.ctx, fake):
            fake.fail("POST", MESSAGES, 0, after_effect=True)
            await deliver(r.ctx, [Delivery(alert, (Destination("discord", channel),))])
            if not history_readable:
                fake.fail("GET", MESSAGES, 403)
            await retry_later(r.ctx)
    finally:
        await fake.stop()
    posts = fake.posted(CHINA_TECH)
    # Unreadable history: sent again (at least once beats never), the nonce no longer helps.
    assert len(posts) == (1 if history_readable else 2)
    assert posts[0]["embeds"][0]["footer"]["text"].endswith(f"alert {alert.id}")
    assert sentlog.message_id(r.ctx.store, alert.id, "discord", channel) == posts[-1]["id"]


async def test_a_failed_channel_fails_its_row_only(fake: FakeDiscord) -> None:
    r = replayed()
    r.ctx.charts = None
    unknown = "730000000000000999"
    alert = npc_alert(r)
    dests = tuple(Destination("discord", c) for c in (unknown, str(CHINA_TECH), "general"))
    async with running(r.ctx, fake):
        await deliver(r.ctx, [Delivery(alert, dests)])
        await retry_later(r.ctx)
    assert len(fake.posted(CHINA_TECH)) == 1
    assert sentlog.was_sent(r.ctx.store, alert.id, "discord", str(CHINA_TECH))
    assert not sentlog.was_sent(r.ctx.store, alert.id, "discord", unknown)
    assert outbox_counts(r.ctx.store) == {"sent": 1, "pending": 2}  # retried later, with backoff


def overlong_message() -> Message:
    words = "very long text @everyone " * 400
    return Message(
        title="▲ " + ", ".join(f"SYM{i} +{i}.0 %" for i in range(60)),
        direction=None,
        headline=words,
        cause="macro",
        cause_line="Macro: " + words,
        fields=tuple(Field(f"SYM{i} +{i}.0 % " + "x" * 300, words) for i in range(40)),
        evidence=tuple(f"SYM{i}: searched " + "y" * 200 for i in range(40)),
        news=tuple(
            Link("[Headline] *bold* " + "z" * 400, f"https://example.com/{i}", "sector", "Wire")
            for i in range(12)
        ),
        context=tuple(ContextItem(f"c{i}", "Event " + "t" * 300, words) for i in range(5)),
        footer="Data: test · " + "f" * 3000,
    )


async def test_an_overlong_alert_is_cut_within_discord_limits(fake: FakeDiscord) -> None:
    r = replayed()
    async with running(r.ctx, fake):
        await r.ctx.notifiers["discord"].send(
            overlong_message(), str(CHINA_TECH), "alert-overlong-1"
        )
    [call] = fake.calls_to("POST", MESSAGES)
    assert call.status == 200
    [embed] = call.body["embeds"]
    assert embed_problems([embed]) == []
    assert embed["title"].endswith(ELLIPSIS) and len(embed["title"]) == 256
    assert embed["description"].endswith(ELLIPSIS)
    names = [f["name"] for f in embed["fields"]]
    assert names[0].startswith("SYM0 +0.0 %") and "News" in names
    assert any(n.startswith("Context: Event") for n in names)  # moves do not crowd it out
    assert any(f["value"].endswith(ELLIPSIS) for f in embed["fields"])
    assert "more not shown (Discord limits)" in embed["footer"]["text"]


async def test_alert_buttons_answer_why_and_mute_with_the_check_after_a_restart(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    first = replayed(url)
    message = dataclasses.replace(
        overlong_message(), buttons=alert_buttons(("BABA",)), title="BABA +7.7 %"
    )
    async with running(first.ctx, fake):
        await first.ctx.notifiers["discord"].send(message, str(CHINA_TECH), "alert-buttons-1")
    first.ctx.store.close()
    [posted] = fake.posted(CHINA_TECH)
    [row] = posted["components"]
    why, mute = row["components"]
    assert (why["label"], why["custom_id"]) == ("Why BABA?", "mb:why:BABA")
    assert (mute["label"], mute["custom_id"]) == ("Mute BABA 1h", "mb:mute:BABA 1h")

    second = replayed(url)  # a new process: the buttons carry all they need
    async with running(second.ctx, fake):
        asked = await fake.answered(await fake.press(posted, "mb:why:BABA"))
        refused = await fake.answered(await fake.press(posted, "mb:mute:BABA 1h"))
        muted = await fake.answered(
            await fake.press(posted, "mb:mute:BABA 1h", permissions=MANAGER_PERMS)
        )
        older = {**posted, "components": [{**row, "components": [{**why, "custom_id": "mb:x:1"}]}]}
        stale = await fake.answered(await fake.press(older, "mb:x:1"))
    [why_answer] = asked.answers()
    assert why_answer["flags"] & EPHEMERAL and why_answer["embeds"]
    assert "BABA" in why_answer["embeds"][0]["title"]
    [refusal] = refused.answers()
    assert refusal["flags"] & EPHEMERAL and "Manage Channels" in refusal["content"]
    [done] = muted.answers()
    assert not done["flags"] & EPHEMERAL and "BABA muted here until" in displayed(done["content"])
    assert ("discord", str(CHINA_TECH), "BABA") in second.ctx.store.muted(second.clock())
    [unknown] = stale.answers()
    assert unknown["flags"] & EPHEMERAL and "not one this bot understands" in unknown["content"]


def test_embed_limits_hold_for_any_size() -> None:
    for n in (0, 1, 24, 25, 26, 100):
        base = overlong_message()
        message = dataclasses.replace(
            base, fields=base.fields[: min(n, 40)], context=base.context[: n % 6]
        )
        embed = message_embed(message).to_dict()
        assert embed_problems([embed]) == [], n  # type: ignore[list-item]
    small = message_embed(Message("▲ BABA +8.6 %", None, "benchmarks KWEB +7.1 %", None, "x"))
    assert small.title == "▲ BABA +8.6 %" and not small.fields
    assert cut("abcdef", 4) == "abc" + ELLIPSIS and cut("abc", 4) == "abc" and cut("abc", 0) == ""


def test_news_titles_are_escaped_in_embeds() -> None:
    link = Link("Shares *soar* [update] @everyone", "https://example.com/a", "company", "W_ire")
    message = Message("▲ BABA +8.6 %", None, "", "company", "Company news", news=(link,))
    [news] = [f for f in message_embed(message).fields if f.name == "News"]
    assert news.value is not None
    assert "\\*soar\\*" in news.value and "\\[update\\]" in news.value
    assert "@\u200beveryone" in news.value and "W\\_ire" in news.value
    assert "(https://example.com/a)" in news.value


# --- charts ---------------------------------------------------------------------------------


def distinct_colours(png: bytes, min_pixels: int = 200) -> int:
    """How many colours cover at least MIN_PIXELS pixels (antialiasing noise left out)."""
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    rgb = (image[:, :, :3] * 255).round().astype(np.uint8).reshape(-1, 3)
    _colours, counts = np.unique(rgb, axis=0, return_counts=True)
    return int((counts >= min_pixels).sum())


def assert_chart_upload(call: Call) -> bytes:
    """CALL was a multipart upload as Discord takes it: the embed shows files[0], a real PNG."""
    [upload] = call.uploads
    assert (upload.part, upload.filename) == ("files[0]", "chart.png")
    assert upload.content_type == "application/octet-stream"  # what discord.py labels files
    assert call.body["attachments"] == [{"id": 0, "filename": "chart.png"}]
    [embed] = call.body["embeds"]
    assert embed["image"] == {"url": "attachment://chart.png"}
    assert upload.data.startswith(PNG_SIGNATURE) and upload.size == len(upload.data)
    image = matplotlib.image.imread(io.BytesIO(upload.data), format="png")
    height, width = image.shape[:2]
    assert abs(width - 1200) <= 20 and abs(height - 675) <= 20
    assert distinct_colours(upload.data) >= 5
    return upload.data


def assert_chart_shown(message: Json) -> None:
    """The message Discord stored carries the PNG and its embed shows it from the CDN."""
    [attachment] = message["attachments"]
    assert attachment["filename"] == "chart.png" and attachment["content_type"] == "image/png"
    assert abs(attachment["width"] - 1200) <= 20 and abs(attachment["height"] - 675) <= 20
    [embed] = message["embeds"]
    assert embed["image"]["url"] == attachment["url"]
    assert attachment["url"].startswith("https://cdn.discordapp.com/attachments/")


class CountingCharts:
    """Counts for_alert calls on a real ChartMaker (its cache would hide repeated calls)."""

    def __init__(self, ctx: AppContext) -> None:
        assert ctx.charts is not None
        self.inner = ctx.charts.for_alert
        self.calls = 0
        ctx.charts.for_alert = self  # type: ignore[method-assign]

    def __call__(self, alert: Alert) -> bytes | None:
        self.calls += 1
        return self.inner(alert)


async def test_an_alert_carries_its_chart_drawn_once_for_two_channels(fake: FakeDiscord) -> None:
    r = replayed(start_at=None)
    assert r.ctx.charts is not None
    counting = CountingCharts(r.ctx)
    async with running(r.ctx, fake):
        await watch(fake, CHINA_TECH, " ".join(CHINA))
        await watch(fake, MARKETS, " ".join(CHINA))
        spy = await npc_day(r)
        [(alert, channels)] = spy.alerts()
        await deliver(r.ctx, [Delivery(alert, tuple(Destination("discord", c) for c in channels))])
    calls = fake.calls_to("POST", MESSAGES)
    assert len(calls) == 2  # the retry found both channels served and sent nothing
    pngs = [assert_chart_upload(call) for call in calls]
    assert pngs[0] == pngs[1]
    assert r.ctx.charts.cache.renders == 1 and counting.calls == 1
    for channel in (CHINA_TECH, MARKETS):
        [posted] = fake.posted(channel)
        assert posted["nonce"] == nonce_for(alert.id, str(channel))
        assert posted["embeds"][0]["title"].startswith("▲ China internet")
        assert_chart_shown(posted)


@pytest.mark.parametrize("trouble", ["raises", "no data", "not a png"])
async def test_a_chart_problem_never_stops_the_alert(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture, trouble: str
) -> None:
    caplog.set_level(logging.INFO, logger="bot.platforms.discord.adapter")
    caplog.set_level(logging.INFO, logger="bot.delivery.outbox")  # the worker draws charts
    r = replayed(start_at=None)
    assert r.ctx.charts is not None

    def broken(alert: Alert) -> bytes | None:
        if trouble == "raises":
            raise RuntimeError("matplotlib fell over")
        return None if trouble == "no data" else b"GIF89a not a png"

    r.ctx.charts.for_alert = broken  # type: ignore[method-assign]
    async with running(r.ctx, fake):
        await watch(fake, CHINA_TECH, " ".join(CHINA))
        spy = await npc_day(r)
    [(alert, _channels)] = spy.alerts()
    [call] = fake.calls_to("POST", MESSAGES)
    assert call.status == 200 and call.uploads == []
    [embed] = call.body["embeds"]
    assert "image" not in embed and embed["title"].startswith("▲ China internet")
    [posted] = fake.posted(CHINA_TECH)
    assert posted["attachments"] == []
    assert sentlog.message_id(r.ctx.store, alert.id, "discord", str(CHINA_TECH)) == posted["id"]
    assert f"alert {alert.id}" in caplog.text and "sending without it" in caplog.text


async def test_without_a_chart_maker_alerts_go_as_plain_json(fake: FakeDiscord) -> None:
    r = replayed(start_at=None)
    r.ctx.charts = None
    async with running(r.ctx, fake):
        await watch(fake, CHINA_TECH, " ".join(CHINA))
        await npc_day(r)
    [call] = fake.calls_to("POST", MESSAGES)
    assert call.uploads == [] and "attachments" not in call.body
    assert "image" not in call.body["embeds"][0]


async def test_why_baba_on_the_npc_day_carries_its_chart(fake: FakeDiscord) -> None:
    r = replayed()
    async with running(r.ctx, fake):
        record = await fake.answered(await fake.interact("why", [opt("symbol", "BABA")]))
    assert record.callback_types == [5]
    [call] = fake.calls_to("POST", r"/webhooks/\d+/itok-\d+")
    assert_chart_upload(call)
    assert call.body["allowed_mentions"] == {"parse": []}
    [answer] = record.answers()
    assert answer["content"].startswith("Why BABA? BABA +8.6 %")
    assert answer["embeds"][0]["title"] == "▲ BABA +8.6 %"
    assert_chart_shown(answer)
    assert r.ctx.charts is not None and r.ctx.charts.cache.renders == 1


async def test_why_answers_without_the_chart_when_drawing_fails(fake: FakeDiscord) -> None:
    r = replayed()

    def broken(symbol: str, reply: Any) -> bytes | None:
        raise RuntimeError("no fonts")

    r.ctx.why_chart = broken  # type: ignore[method-assign]
    async with running(r.ctx, fake):
        record = await fake.answered(await fake.interact("why", [opt("symbol", "BABA")]))
    [call] = fake.calls_to("POST", r"/webhooks/\d+/itok-\d+")
    assert call.uploads == [] and "image" not in call.body["embeds"][0]
    [answer] = record.answers()
    assert answer["content"].startswith("Why BABA? BABA +8.6 %") and not answer["attachments"]


def test_only_a_png_within_the_upload_limit_is_attached() -> None:
    png = PNG_SIGNATURE + b"\0" * 100
    assert chart_problem(png) is None
    assert chart_problem(b"GIF89a") == "not a PNG"
    assert "upload limit" in str(chart_problem(PNG_SIGNATURE + b"\0" * ATTACHMENT_MAX))
    assert CHART_URL == "attachment://chart.png"


async def test_the_fake_refuses_uploads_discord_would_refuse(fake: FakeDiscord) -> None:
    r = replayed()
    huge = PNG_SIGNATURE + b"\0" * ATTACHMENT_MAX
    async with running(r.ctx, fake) as bot:
        channel = bot.get_partial_messageable(CHINA_TECH)
        with pytest.raises(discord.HTTPException) as too_big:
            await channel.send(file=discord.File(io.BytesIO(huge), filename="chart.png"))
        sent = await channel.send(file=discord.File(io.BytesIO(b"plain"), filename="a.txt"))
    assert too_big.value.status == 413 and too_big.value.code == 40005
    assert [a.filename for a in sent.attachments] == ["a.txt"]
    assert sent.attachments[0].content_type == "application/octet-stream"


# --- sync and start-up errors -------------------------------------------------------------


async def test_sync_publishes_commands_to_a_guild_over_rest_only(fake: FakeDiscord) -> None:
    r = replayed()
    names = await sync_discord_commands(r.ctx, TOKEN, GUILD_ID)
    assert names == ["help", "mute", "quiet", "unmute", "watch", "why"]
    published = {c["name"]: c for c in fake.commands[GUILD_ID]}
    assert published["watch"]["default_member_permissions"] == "16"
    assert published["mute"]["default_member_permissions"] == "16"
    assert published["why"]["default_member_permissions"] is None
    assert published["quiet"]["default_member_permissions"] is None  # anyone may look
    assert {o["name"] for o in published["quiet"]["options"]} == {"hours", "zone"}
    subcommands = {o["name"] for o in published["watch"]["options"]}
    assert subcommands == {"add", "remove", "list", "threshold", "mutes"}
    assert await sync_discord_commands(r.ctx, TOKEN, None) == names
    assert fake.identifies == []


async def test_the_token_is_never_logged(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="discord")  # the CLI's logging setup quiets it
    r = replayed()
    async with running(r.ctx, fake):
        await fake.answered(await fake.interact("why", [opt("symbol", "BABA")]))
    assert "heartbeat" in caplog.text.lower() or "IDENTIFY" in caplog.text  # debug logs on
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("token", ["", "   ", "wrong-token-value"])
async def test_a_bad_token_gives_a_clear_error_without_the_token(
    fake: FakeDiscord, token: str
) -> None:
    r = replayed()
    with pytest.raises(DiscordSetupError, match="DISCORD_TOKEN") as info:
        await asyncio.wait_for(serve_discord(r.ctx, token), 10)
    if token.strip():
        assert token not in str(info.value)


async def test_help_and_the_channel_threshold(fake: FakeDiscord, tmp_path: Path) -> None:
    r = replayed(f"sqlite:///{tmp_path / 'bot.db'}")
    async with running(r.ctx, fake):
        [helped] = (await fake.answered(await fake.interact("help"))).answers()
        record = await fake.interact(
            "watch", [opt("pct", 3.0)], sub="threshold", permissions=MANAGER_PERMS
        )
        [set_pct] = (await fake.answered(record)).answers()
        [mutes] = (await fake.answered(await fake.interact("watch", sub="mutes"))).answers()
    assert "/watch add symbols:BABA JD threshold:5" in helped["content"]
    assert "/mute symbol:BABA duration:4 hours" in helped["content"]
    assert "This channel now alerts at ±3 %" in set_pct["content"]
    assert mutes["content"] == "Nothing is muted here."
    assert r.ctx.store.channel_thresholds() == {Destination("discord", str(CHINA_TECH)): 3.0}
