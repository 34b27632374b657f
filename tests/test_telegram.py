"""The Telegram adapter end to end: the real python-telegram-bot against the local fake Bot API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import AppContext, replay_context
from bot.infra.store import Store
from bot.platforms.base import Platform
from bot.platforms.telegram.adapter import (
    TelegramNotifier,
    TelegramSetupError,
    serve_telegram,
)
from bot.platforms.telegram.platform import PLATFORM, TELEGRAM, TelegramPlatform
from bot.platforms.telegram.render import MAX_TEXT, link, message_html, text_length
from bot.runner import deliver
from config.settings import load_settings
from handlers.explain import ExplainParams, explain_move
from handlers.groups import GroupIndex
from handlers.models import (
    Alert,
    BenchmarkMove,
    Delivery,
    Destination,
    Direction,
    Move,
    NewsItem,
    NewsSearch,
)
from handlers.render import Message, render_alert
from tests.conftest import DEMO_BARS, DEMO_NEWS
from tests.fake_telegram import (
    ADMIN,
    CHANNEL,
    GROUP,
    MEMBER,
    OTHER_GROUP,
    OWNER,
    TOKEN,
    FakeTelegram,
    Sent,
    parse_html,
)

NY = ZoneInfo("America/New_York")
NPC_CLOSE = datetime(2025, 3, 5, 16, 0, tzinfo=NY)
PNG = b"\x89PNG\r\n\x1a\n"
HERE = Destination("telegram", str(GROUP))
POLL = timedelta(seconds=1)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = await FakeTelegram().start()
    yield server
    await server.stop()


def replayed(fake: FakeTelegram, db_url: str = "sqlite://", token: str = TOKEN) -> AppContext:
    telegram = {"bot_token": token, "api_url": fake.api_url, "file_url": fake.file_url}
    settings = load_settings(db_url=db_url, telegram=telegram)
    ctx, _replay, _clock = replay_context(
        settings, Store(db_url), [DEMO_BARS], DEMO_NEWS, start_at=NPC_CLOSE
    )
    return ctx


@asynccontextmanager
async def running(ctx: AppContext, fake: FakeTelegram) -> AsyncIterator[None]:
    """The bot long polling the fake; cancelled (and checked stopped) afterwards."""
    polls = len(fake.calls_to("getUpdates"))
    task = asyncio.create_task(serve_telegram(ctx, poll_timeout=POLL))
    await fake.wait_until(lambda: len(fake.calls_to("getUpdates")) > polls or task.done())
    if task.done():
        task.result()
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def reply_to(fake: FakeTelegram, message_id: int, chat: int = GROUP) -> Sent:
    """The bot's first message answering MESSAGE_ID."""
    await fake.wait_until(lambda: any(s.reply_to == message_id for s in fake.sent_to(chat)))
    return next(s for s in fake.sent_to(chat) if s.reply_to == message_id)


def hostile_alert() -> Alert:
    at = NPC_CLOSE.astimezone(UTC)
    move = Move("BABA", 9.2, 109.2, 100.0, at, "test", BenchmarkMove("KWEB", 0.4))
    news = NewsItem(
        "<b>Alibaba</b> beats estimates & raises guidance @everyone </a><i>",
        at - timedelta(hours=1),
        "W<i>re & Co",
        "javascript:alert(1)",
        related=("BABA",),
    )
    real = NewsItem(
        "Alibaba shares jump after results", at - timedelta(hours=2), "Wire", "https://ex.com/a"
    )
    search = NewsSearch("BABA", at - timedelta(hours=8), at, (news, real), "test feed")
    explanation = explain_move(move, search, [], GroupIndex([], "SPY"), ExplainParams(), "Alibaba")
    return Alert(at, Direction.UP, (move,), {"BABA": explanation}, explanation.cause)


# --- platform --------------------------------------------------------------------------


def test_platform_declares_telegrams_limits_and_secret() -> None:
    platform: Platform = TelegramPlatform()
    settings = load_settings(telegram={"bot_token": TOKEN, "messages_per_second": 25})
    assert platform.name == "telegram"
    assert platform.limits(settings).overall.count == 25
    assert platform.limits(settings).per_channel == TELEGRAM.per_channel
    assert TELEGRAM.per_channel.count == 20 and TELEGRAM.per_channel.period == 60.0
    assert platform.missing_secrets(settings, None) == []
    assert platform.secret_values(settings) == [TOKEN]
    unset = load_settings(telegram={"bot_token": ""})
    assert platform.missing_secrets(unset, None) == [
        "TELEGRAM_BOT_TOKEN (the bot's token from @BotFather)"
    ]


def test_the_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_API_URL", "http://127.0.0.1:9/bot")
    settings = load_settings()
    assert settings.telegram.bot_token is not None
    assert settings.telegram.bot_token.get_secret_value() == TOKEN
    assert settings.telegram.api_url == "http://127.0.0.1:9/bot"
    assert TOKEN not in repr(settings)


# --- commands ---------------------------------------------------------------------------


async def test_help_start_and_the_command_menu(fake: FakeTelegram) -> None:
    async with running(replayed(fake), fake):
        asked = fake.command(f"/help@{'market_test_bot'}")
        answer = await reply_to(fake, asked)
        started = fake.command("/start", chat_id=MEMBER, user_id=MEMBER)
        private = await reply_to(fake, started, chat=MEMBER)
    assert answer.parse_mode == "HTML"
    assert "/why" in answer.text and "/watch add" in answer.text and "/mute" in answer.text
    assert private.text == answer.text
    # getUpdates' offset confirmed each update: none was answered twice.
    assert [s.reply_to for s in fake.sent_to(GROUP)] == [asked]
    assert [c["command"] for c in fake.commands] == [
        "why",
        "watch",
        "mute",
        "unmute",
        "quiet",
        "help",
    ]
    assert fake.calls_to("deleteWebhook"), "polling starts by removing any webhook"


async def test_why_baba_answers_with_text_and_a_chart_photo(fake: FakeTelegram) -> None:
    async with running(replayed(fake), fake):
        asked = fake.command("/why BABA")
        first = await reply_to(fake, asked)
        await fake.wait_until(lambda: any(s.photo for s in fake.sent_to(GROUP)))
    [photo] = [s for s in fake.sent_to(GROUP) if s.photo]
    assert photo.photo is not None and photo.photo.startswith(PNG)
    assert "BABA" in first.text and first.parse_mode == "HTML"
    if first is not photo:  # too long for a caption: the chart answers the text
        assert photo.reply_to == first.message_id


async def test_watch_add_needs_a_chat_administrator(fake: FakeTelegram) -> None:
    ctx = replayed(fake)
    fake.set_member(GROUP, ADMIN, "administrator")
    fake.set_member(GROUP, OWNER, "creator")
    async with running(ctx, fake):
        refused = await reply_to(fake, fake.command("/watch add BABA 4", user_id=MEMBER))
        assert ctx.store.watch_entries(HERE) == []
        added = await reply_to(fake, fake.command("/watch add BABA 4", user_id=ADMIN))
        owner = await reply_to(fake, fake.command("/watch add JD", user_id=OWNER))
        listed = await reply_to(fake, fake.command("/watch list", user_id=MEMBER))
    assert "chat administrator" in refused.text
    assert "BABA" in added.text and "JD" in owner.text
    assert {e.symbol for e in ctx.store.watch_entries(HERE)} == {"BABA", "JD"}
    assert "BABA" in listed.text and "JD" in listed.text
    checked = [(c.args["chat_id"], c.args["user_id"]) for c in fake.calls_to("getChatMember")]
    assert (GROUP, MEMBER) in checked and (GROUP, ADMIN) in checked
    # Reading the list changes nothing: nobody's rights were looked up for it.
    assert checked.count((GROUP, MEMBER)) == 1


async def test_in_a_private_chat_the_user_manages_their_own_chat(fake: FakeTelegram) -> None:
    ctx = replayed(fake)
    async with running(ctx, fake):
        added = await reply_to(fake, fake.command("/watch add BABA", MEMBER, MEMBER), MEMBER)
    assert "BABA" in added.text
    assert [e.symbol for e in ctx.store.watch_entries(Destination("telegram", str(MEMBER)))] == [
        "BABA"
    ]
    assert fake.calls_to("getChatMember") == []


async def test_a_channel_post_is_its_administrators_command(fake: FakeTelegram) -> None:
    ctx = replayed(fake)
    async with running(ctx, fake):
        added = await reply_to(fake, fake.command("/watch add BABA", chat_id=CHANNEL), CHANNEL)
    assert "BABA" in added.text
    channel = Destination("telegram", str(CHANNEL))
    assert [e.symbol for e in ctx.store.watch_entries(channel)] == ["BABA"]


async def test_an_anonymous_administrator_speaks_as_the_group(fake: FakeTelegram) -> None:
    ctx = replayed(fake)
    async with running(ctx, fake):
        added = await reply_to(fake, fake.command("/watch add BABA", as_group=True))
        other = fake.command("/watch add JD", user_id=MEMBER)
        refused = await reply_to(fake, other)
    assert "BABA" in added.text and "chat administrator" in refused.text
    assert [e.symbol for e in ctx.store.watch_entries(HERE)] == ["BABA"]


async def test_mute_unmute_and_malformed_commands_get_one_clear_line(fake: FakeTelegram) -> None:
    ctx = replayed(fake)
    fake.set_member(GROUP, ADMIN, "administrator")
    async with running(ctx, fake):
        muted = await reply_to(fake, fake.command("/mute BABA 4h", user_id=ADMIN))
        assert "BABA" in ctx.store.mutes(HERE, ctx.clock())
        bad_duration = await reply_to(fake, fake.command("/mute BABA forever", user_id=ADMIN))
        no_symbol = await reply_to(fake, fake.command("/why"))
        hostile = await reply_to(fake, fake.command("/why <b>&@everyone</b>"))
        nonsense = await reply_to(fake, fake.command("/watch frobnicate <i>"))
        unmuted = await reply_to(fake, fake.command("/unmute BABA", user_id=ADMIN))
    assert "BABA" in muted.text
    assert ctx.store.mutes(HERE, ctx.clock()) == {}
    assert "BABA" in unmuted.text
    for answer in (bad_duration, no_symbol, hostile, nonsense):
        assert answer.text.strip() and "Sorry" not in answer.text, answer.text
    assert "Usage" in no_symbol.text
    assert "<b>" in hostile.text and "@everyone" not in hostile.text  # shown, never markup
    assert all(c.status == 200 for c in fake.calls_to("sendMessage"))


async def test_a_rejected_token_stops_with_a_clear_error_and_is_never_logged(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "987654321:AAWRONG-token-never-to-be-logged"
    with pytest.raises(TelegramSetupError) as raised:
        await serve_telegram(replayed(fake, token=wrong), poll_timeout=POLL)
    assert "TELEGRAM_BOT_TOKEN" in str(raised.value)
    assert wrong not in str(raised.value) and wrong not in caplog.text
    assert raised.value.__suppress_context__


# --- alerts -------------------------------------------------------------------------------


async def test_an_alert_reaches_two_chats_escaped_with_buttons(fake: FakeTelegram) -> None:
    ctx = replayed(fake)
    ctx.notifiers[PLATFORM] = TelegramPlatform().notifier(ctx)
    alert = hostile_alert()
    dests = tuple(Destination(PLATFORM, str(c)) for c in (GROUP, OTHER_GROUP))
    await deliver(ctx, [Delivery(alert, dests)])
    await deliver(ctx, [Delivery(alert, dests)])
    first = [s for s in fake.sent_to(GROUP) if not s.photo or s.text]
    other = [s for s in fake.sent_to(OTHER_GROUP) if not s.photo or s.text]
    assert len(first) == 1 and len(other) == 1, "a redelivered alert is not posted twice"
    [sent] = first
    assert "<b>Alibaba</b> beats estimates & raises" in sent.text  # shown as typed, not as markup
    assert "@everyone" not in sent.text and "@\u200beveryone" in sent.text
    assert all(link.startswith(("https://", "http://")) for link in sent.links)
    assert "https://ex.com/a" in sent.links and not any("javascript" in x for x in sent.links)
    assert sent.buttons() == [("Why BABA?", "why:BABA"), ("Mute BABA 1h", "mute:BABA 1h")]
    assert any(s.photo and s.photo.startswith(PNG) for s in fake.sent_to(GROUP))


async def test_send_returns_the_message_id_and_honours_a_429(fake: FakeTelegram) -> None:
    ctx = replayed(fake)
    notifier = TelegramPlatform().notifier(ctx)
    assert isinstance(notifier, TelegramNotifier)
    fake.rate_limit("sendMessage", times=1, retry_after=1)
    began = time.monotonic()
    message_id = await notifier.send(render_alert(hostile_alert()), str(GROUP), "key-1")
    waited = time.monotonic() - began
    statuses = [c.status for c in fake.calls_to("sendMessage")]
    assert statuses == [429, 200]
    assert waited >= 1.0, "retry_after was honoured"
    [sent] = fake.sent_to(GROUP)
    assert message_id == str(sent.message_id)
    with pytest.raises(ValueError, match="not a Telegram chat id"):
        await notifier.send(render_alert(hostile_alert()), "#general", "key-2")


async def test_alerts_and_commands_share_one_bot_closed_when_serving_stops(
    fake: FakeTelegram,
) -> None:
    ctx = replayed(fake)
    platform = TelegramPlatform()
    notifier = platform.notifier(ctx)
    assert isinstance(notifier, TelegramNotifier)
    ctx.notifiers[PLATFORM] = notifier
    task = asyncio.create_task(platform.serve(ctx, None))
    await fake.wait_until(lambda: bool(fake.calls_to("getUpdates")) or task.done())
    await notifier.send(render_alert(hostile_alert()), str(GROUP), "key-1")
    assert len(fake.calls_to("getMe")) == 1, "the poller and the notifier are one bot"
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    await notifier.send(render_alert(hostile_alert()), str(GROUP), "key-2")
    assert len(fake.calls_to("getMe")) == 2, "stopping closed the bot: it had to start again"


def test_a_long_message_is_cut_on_a_line_with_a_note() -> None:
    lines = tuple(f"line {i} & <more> @everyone " * 20 for i in range(60))
    message = Message("Big <title>", Direction.UP, "", None, "", evidence=lines)
    text = message_html(message)
    assert text_length(text) <= MAX_TEXT
    parsed = parse_html(text)  # still well-formed HTML after the cut
    assert "cut to fit Telegram's 4096-character limit" in parsed.text
    assert parsed.text.startswith("Big <title>")


# --- buttons ------------------------------------------------------------------------------


async def test_buttons_why_and_mute_with_permissions_after_a_restart(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'bot.db'}"
    fake.set_member(GROUP, ADMIN, "administrator")
    ctx = replayed(fake, db)
    message_id = (
        await TelegramPlatform().notifier(ctx).send(render_alert(hostile_alert()), str(GROUP), "k")
    )
    async with running(ctx, fake):
        why = fake.press("why:BABA", int(message_id), user_id=MEMBER)
        assert "BABA" in (await fake.wait_answer(why))["text"]
        await fake.wait_until(lambda: any(s.photo for s in fake.sent_to(GROUP)))  # the answer's
        answers = [s for s in fake.sent_to(GROUP) if s.reply_to == int(message_id)]
        assert answers and "BABA" in answers[0].text, "the answer replies to the alert"
        refused = fake.press("mute:BABA 1h", int(message_id), user_id=MEMBER)
        answer = await fake.wait_answer(refused)
    assert "chat administrator" in answer["text"] and answer["show_alert"] is True
    assert ctx.store.mutes(HERE, ctx.clock()) == {}
    posted = len(fake.sent_to(GROUP))

    restarted = replayed(fake, db)  # a new process on the same database
    async with running(restarted, fake):
        muted = fake.press("mute:BABA 1h", int(message_id), user_id=ADMIN)
        await fake.wait_answer(muted)
        await fake.wait_until(lambda: len(fake.sent_to(GROUP)) > posted)
        junk = fake.press("delete:everything", int(message_id), user_id=ADMIN)
        junk_answer = await fake.wait_answer(junk)
    assert "BABA" in restarted.store.mutes(HERE, restarted.clock())
    assert [a["callback_query_id"] for a in fake.answers].count(refused) == 1, "not redone"
    assert "BABA" in fake.sent_to(GROUP)[-1].text
    assert "not one this bot understands" in junk_answer["text"]


async def test_the_token_never_appears_in_logs(
    fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx").setLevel(logging.DEBUG)  # even when someone turns it up
    ctx = replayed(fake)
    fake.rate_limit("sendMessage", times=1, retry_after=1)
    async with running(ctx, fake):
        await reply_to(fake, fake.command("/help"))
    assert "HTTP Request" in caplog.text, "httpx did log the requests"
    assert TOKEN not in caplog.text
    assert TOKEN.split(":")[1] not in caplog.text
    logging.getLogger("httpx").setLevel(logging.WARNING)


async def test_a_chart_with_a_text_too_long_for_a_caption_follows_as_a_reply(
    fake: FakeTelegram,
) -> None:
    notifier = TelegramPlatform().notifier(replayed(fake))
    assert isinstance(notifier, TelegramNotifier)
    chart = PNG + b"chart"  # attached by the delivery worker before sending
    evidence = ("a searched source " * 10,) * 9
    long = Message("Long", Direction.UP, "", None, "", evidence=evidence, chart=chart)
    short = Message("Short", Direction.UP, "One line & <done>", None, "", chart=chart)
    long_id = await notifier.send(long, str(GROUP), "long")
    short_id = await notifier.send(short, str(GROUP), "short")
    text, photo, captioned = fake.sent_to(GROUP)
    assert text.photo is None and str(text.message_id) == long_id
    assert photo.photo == PNG + b"chart" and photo.reply_to == text.message_id
    assert captioned.photo is not None and str(captioned.message_id) == short_id
    assert captioned.text.startswith("Short\nOne line & <done>")
    # the pacer charges each send for the messages it made
    assert [notifier.messages_in(m) for m in (long, short)] == [2, 1]
    assert notifier.messages_in(replace(long, chart=None)) == 1


async def test_a_chart_telegram_refuses_never_stops_the_alert(fake: FakeTelegram) -> None:
    notifier = TelegramPlatform().notifier(replayed(fake))
    assert isinstance(notifier, TelegramNotifier)
    fake.refuse_photos = True
    message = replace(render_alert(hostile_alert()), chart=PNG + b"broken")
    message_id = await notifier.send(message, str(GROUP), "k")
    [sent] = fake.sent_to(GROUP)
    assert sent.photo is None and str(sent.message_id) == message_id
    assert sent.buttons() and "BABA" in sent.text
    assert [c.status for c in fake.calls_to("sendPhoto")] == [400]


def test_links_go_only_to_their_real_http_address() -> None:
    disguised = parse_html(link("https://evil.example/x", "https://bank.example/login"))
    assert disguised.links == ["https://evil.example/x"]
    assert disguised.text == "https://bank.example/login (evil.example)"
    assert parse_html(link("javascript:alert(1)", "<b>click</b>")).links == []
    assert parse_html(link('https://a.example/?q="><b>', "ok")).links == [
        "https://a.example/?q=%22%3E%3Cb%3E"
    ]
