"""Commands through the in-memory test platform: the same road (run_command) as Discord's and
Slack's, against a replayed 2025-03-05 and a real SQLite store."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import AppContext, replay_context
from bot.infra.store import Store
from bot.platforms.base import APOLOGY
from bot.symbol_check import KnownSymbols
from config.settings import load_settings
from handlers import commands
from handlers.commands import MANAGE_REFUSAL
from handlers.models import Destination, SymbolCheck
from tests.conftest import DEMO_BARS, DEMO_NEWS
from tests.fakes import MemoryNotifier, TestPlatform
from tests.fakes.platform import MANAGE_REFUSAL as TEST_REFUSAL

NY = ZoneInfo("America/New_York")
NPC_CLOSE = datetime(2025, 3, 5, 16, 0, tzinfo=NY)
HERE = Destination("test", "C1")


@pytest.fixture
def ctx(tmp_path: Path) -> AppContext:
    settings = load_settings(db_url=f"sqlite:///{tmp_path / 'bot.db'}")
    context, replay, _clock = replay_context(
        settings, Store(settings.db_url), [DEMO_BARS], DEMO_NEWS, start_at=NPC_CLOSE
    )
    context.symbols = KnownSymbols(replay.symbols)
    return context


@pytest.fixture
def bot(ctx: AppContext) -> TestPlatform:
    return TestPlatform(ctx)


def watched(ctx: AppContext) -> dict[str, float | None]:
    return {e.symbol: e.threshold_pct for e in ctx.store.watch_entries(HERE)}


async def test_why_answers_with_the_move_and_asks_no_permission(bot: TestPlatform) -> None:
    reply = await bot.push("/why baba")
    assert reply.ok and reply.text.startswith("Why BABA? BABA +8.6 %")
    assert reply.message is not None and reply.message.symbols[0] == "BABA"
    assert bot.asked == []


async def test_watch_add_without_the_right_is_refused_and_stores_nothing(
    bot: TestPlatform, ctx: AppContext
) -> None:
    reply = await bot.push("/watch add BABA JD 5", user="UMEMBER")
    assert not reply.ok and reply.ephemeral
    assert reply.text == TEST_REFUSAL
    assert reply.text.startswith(MANAGE_REFUSAL), "the core's words, then the platform's"
    assert [a.user for a in bot.asked] == ["UMEMBER"]
    assert watched(ctx) == {}


async def test_the_core_refusal_names_no_platform() -> None:
    for name in ("Discord", "Slack", "Telegram", "Manage Channels", "workspace"):
        assert name not in MANAGE_REFUSAL


async def test_watch_add_list_threshold_remove(bot: TestPlatform, ctx: AppContext) -> None:
    added = await bot.push("/watch add BABA JD 5", can_manage=True)
    assert added.ok and not added.ephemeral
    assert added.text == "Watching BABA, JD at ±5 %."
    assert watched(ctx) == {"BABA": 5.0, "JD": 5.0}
    assert (await bot.push("/watch threshold JD 3.5", can_manage=True)).text == (
        "JD now alerts at ±3.5 %."
    )
    channel = await bot.push("/watch threshold 3", can_manage=True)
    assert "This channel now alerts at ±3 %" in channel.text
    assert ctx.store.channel_thresholds() == {HERE: 3.0}
    asked = len(bot.asked)
    listed = await bot.push("/watch list")
    assert listed.text == "Watchlist (channel threshold ±3 %): BABA ±5 %, JD ±3.5 %"
    assert len(bot.asked) == asked, "reading the list needs no right"
    removed = await bot.push("/watch remove JD", can_manage=True)
    assert removed.text == "Removed JD." and watched(ctx) == {"BABA": 5.0}


async def test_watch_add_refuses_unknown_symbols_and_keeps_the_good_ones(
    bot: TestPlatform, ctx: AppContext
) -> None:
    reply = await bot.push("/watch add BABA NOPE", can_manage=True)
    assert not reply.ok
    assert "Watching BABA" in reply.text and "knows no symbol NOPE" in reply.text
    assert watched(ctx) == {"BABA": None}


async def test_mute_list_and_unmute(bot: TestPlatform, ctx: AppContext) -> None:
    await bot.push("/watch add BABA", can_manage=True)
    muted = await bot.push("/mute BABA 4h", can_manage=True)
    assert muted.text == "BABA muted here until 2025-03-06 01:00 UTC." and not muted.ephemeral
    assert ("test", "C1", "BABA") in ctx.store.muted(NPC_CLOSE)
    asked = len(bot.asked)
    assert (await bot.push("/watch mutes")).text == "Muted here: BABA until 2025-03-06 01:00 UTC."
    assert (await bot.push("/mute list")).text == "Muted here: BABA until 2025-03-06 01:00 UTC."
    assert len(bot.asked) == asked
    assert (await bot.push("/unmute BABA", can_manage=True)).text == "BABA unmuted."
    assert ctx.store.muted(NPC_CLOSE) == set()
    again = await bot.push("/unmute BABA", can_manage=True)
    assert not again.ok and again.text == "BABA was not muted here."


async def test_mute_and_unmute_need_the_right(bot: TestPlatform, ctx: AppContext) -> None:
    for line in ("/mute BABA 4h", "/unmute BABA"):
        reply = await bot.push(line)
        assert not reply.ok and reply.text == TEST_REFUSAL, line
    assert ctx.store.muted(NPC_CLOSE) == set()
    assert len(bot.asked) == 2


async def test_help_in_both_styles(ctx: AppContext) -> None:
    text = (await TestPlatform(ctx).push("/help")).text
    assert "/watch add BABA JD 5" in text and "Default threshold: ±5 %" in text
    named = (await TestPlatform(ctx, named_options=True).push("/help")).text
    assert "/watch add symbols:BABA JD threshold:5" in named and "symbol:BABA" in named


async def test_usage_follows_the_platform_style(ctx: AppContext) -> None:
    plain = await TestPlatform(ctx).push("/mute BABA forever", can_manage=True)
    assert "is not a duration" in plain.text and commands.MUTE_HELP in plain.text
    named = await TestPlatform(ctx, named_options=True).push("/mute BABA forever", can_manage=True)
    assert commands.MUTE_HELP_OPTIONS in named.text and commands.MUTE_HELP not in named.text


async def test_an_unknown_command_gets_the_help(bot: TestPlatform) -> None:
    reply = await bot.push("/frobnicate BABA")
    assert not reply.ok and reply.text.startswith("Unknown command /frobnicate.")
    assert "/why SYMBOL" in reply.text
    assert bot.asked == []


@pytest.mark.parametrize(
    ("line", "usage"),
    [
        ("/why", commands.WHY_USAGE),
        ("/why BABA JD", commands.WHY_USAGE),
        ("/watch", commands.WATCH_HELP),
        ("/watch frobnicate", commands.WATCH_HELP),
        ("/watch add", commands.WATCH_HELP),
        ("/watch remove", commands.WATCH_HELP),
        ("/watch threshold BABA", commands.WATCH_HELP),
        ("/watch threshold BABA 4 5", commands.WATCH_HELP),
        ("/mute", commands.MUTE_HELP),
        ("/mute BABA", commands.MUTE_HELP),
        ("/unmute", commands.MUTE_HELP),
        ("/unmute BABA JD", commands.MUTE_HELP),
    ],
)
async def test_malformed_lines_get_the_usage_without_a_permission_lookup(
    bot: TestPlatform, ctx: AppContext, line: str, usage: str
) -> None:
    reply = await bot.push(line, can_manage=True)
    assert not reply.ok and reply.ephemeral
    assert usage in reply.text
    assert bot.asked == [], "a malformed line never asks the platform"
    assert watched(ctx) == {}


async def test_a_failing_permission_lookup_refuses(bot: TestPlatform, ctx: AppContext) -> None:
    reply = await bot.push("/watch add BABA", can_manage=ConnectionError("platform down"))
    assert not reply.ok and reply.text == MANAGE_REFUSAL
    assert watched(ctx) == {}


class BrokenSource:
    """A price source whose symbol check fails in a way it does not report."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def check_symbols(self, symbols: Sequence[str]) -> SymbolCheck:
        self.threads.append(threading.current_thread().name)
        raise RuntimeError("connection reset by peer")


async def test_the_core_raising_gets_the_apology_off_the_event_loop(
    bot: TestPlatform, ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    broken = BrokenSource()
    ctx.symbols = broken
    reply = await bot.push("/watch add BABA", can_manage=True)
    assert not reply.ok and reply.text == APOLOGY
    assert broken.threads and broken.threads[0] != threading.main_thread().name
    assert "/watch add BABA failed" in caplog.text and "connection reset" in caplog.text
    assert watched(ctx) == {}
    assert (await bot.push("/watch list")).ok, "the next command is answered"


async def test_the_memory_notifier_records_each_channel(ctx: AppContext) -> None:
    notifier = TestPlatform(ctx).notifier(ctx)
    reply = await TestPlatform(ctx).push("/why BABA")
    assert reply.message is not None
    assert await notifier.send(reply.message, "C1", "k1") == "C1-1"
    assert [s.key for s in notifier.sent] == ["k1"]
    assert notifier.in_channel("C1") == [reply.message] and notifier.in_channel("C2") == []
    assert isinstance(notifier, MemoryNotifier) and notifier.platform == "test"
