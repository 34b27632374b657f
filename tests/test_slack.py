"""Slack adapter: signed slash commands through real Bolt dispatch, alerts and charts to a fake."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import numpy as np
import pytest
import yaml
from matplotlib import image as mpimg
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import AppContext, SimulatedClock, replay_context
from bot.delivery import sentlog
from bot.delivery.outbox import OutboxWorker, enqueue, last_delivery_error
from bot.infra.store import Store
from bot.platforms.slack.adapter import (
    COMMANDS,
    AdminCheck,
    SlackConfigError,
    SlackNotifier,
    bound_port,
    create_slack_app,
    serve_slack_http,
    socket_mode_handler,
    start_slack_http,
)
from bot.platforms.slack.blocks import (
    MAX_BLOCKS,
    MAX_FALLBACK_TEXT,
    cut_escaped,
    escape,
    fit,
    message_blocks,
    safe_url,
)
from bot.runner import deliver, process_tick, run_replay_feed
from bot.sources.replay import Replay
from config.settings import load_settings
from handlers.commands import MANAGE_REFUSAL, WATCH_HELP, Reply
from handlers.models import (
    Alert,
    BenchmarkMove,
    Delivery,
    Destination,
    Direction,
    Move,
    WatchEntry,
)
from handlers.render import ContextItem, Link, Message, render_alert
from tests.conftest import DEMO_BARS, DEMO_NEWS, ROOT
from tests.fake_slack import (
    Call,
    FakeSlack,
    block_actions_payload,
    block_errors,
    signed_request,
    slash_payload,
)
from tests.helpers import at

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-test"
SECRET = "test-signing-secret"
CHINA = ("BABA", "JD", "TCEHY", "PDD", "BIDU")
NPC_TITLE = "National People's Congress"
USERS: dict[str, dict[str, Any]] = {
    "UADMIN": {"is_admin": True},
    "UOWNER": {"is_owner": True},
    "UMEMBER": {"is_admin": False},
    "UGUEST": {"is_restricted": True},
}
MENTION = re.compile(r"<[!@#]")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Rig:
    """The Bolt app served on 127.0.0.1 against the fake Slack, with a 2025-03-05 replay."""

    fake: FakeSlack
    ctx: AppContext
    store: Store
    replay: Replay
    clock: SimulatedClock
    url: str
    http: aiohttp.ClientSession

    async def command(
        self,
        command: str,
        text: str,
        user: str = "UADMIN",
        channel: str = "CMARKETS",
        secret: str = SECRET,
        timestamp: int | None = None,
    ) -> tuple[int, str, float]:
        """POST a signed slash command; returns status, body and seconds until the ack."""
        payload = slash_payload(command, text, user, channel, self.fake.response_url())
        body, headers = signed_request(secret, payload, timestamp)
        started = time.monotonic()
        async with self.http.post(self.url, data=body, headers=headers) as resp:
            return resp.status, await resp.text(), time.monotonic() - started

    async def ask(self, command: str, text: str, **kwargs: Any) -> dict[str, Any]:
        """A command that must be acked, then its answer through the response_url."""
        before = len(self.fake.calls_to("response_url"))
        status, _body, _ = await self.command(command, text, **kwargs)
        assert status == 200
        answers = await self.fake.wait_for("response_url", before + 1)
        return answers[-1].args

    async def press(self, button: dict[str, Any], user: str) -> dict[str, Any]:
        """Press a message button as USER in #markets; the answer through the response_url."""
        before = len(self.fake.calls_to("response_url"))
        payload = block_actions_payload(
            button, user, "CMARKETS", self.fake.response_url(), team="T0TEST"
        )
        body, headers = signed_request(SECRET, payload)
        async with self.http.post(self.url, data=body, headers=headers) as resp:
            assert resp.status == 200
        answers = await self.fake.wait_for("response_url", before + 1)
        return answers[-1].args

    async def why(self, text: str = "BABA", **kwargs: Any) -> Call:
        """/why with charts on: acked, then answered as a channel message (returned)."""
        before = len(self.fake.calls_to("chat.postMessage"))
        status, _body, _ = await self.command("/why", text, **kwargs)
        assert status == 200
        posts = await self.fake.wait_for("chat.postMessage", before + 1)
        return posts[-1]

    async def chart_done(self, count: int = 1) -> Call:
        """The COUNTth files.completeUploadExternal (the last step of a chart upload)."""
        return (await self.fake.wait_for("files.completeUploadExternal", count))[count - 1]


def make_settings(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "db_url": "sqlite://",
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SECRET,
        "slack_app_token": APP_TOKEN,
        "admins": ["ULISTED"],
        "default_threshold_pct": 5.0,
    }
    return load_settings(**{**values, **overrides})


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack(BOT_TOKEN, APP_TOKEN, USERS).start()
    yield server
    await server.stop()


@pytest.fixture
def replayed() -> Iterator[tuple[AppContext, Replay, SimulatedClock]]:
    store = Store("sqlite://")
    ctx, replay, clock = replay_context(
        make_settings(), store, [DEMO_BARS], DEMO_NEWS, start_at=at("2025-03-05", "16:00")
    )
    yield ctx, replay, clock
    store.close()


def client_for(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url)


@pytest.fixture
async def rig(
    fake: FakeSlack, replayed: tuple[AppContext, Replay, SimulatedClock]
) -> AsyncIterator[Rig]:
    ctx, replay, clock = replayed
    app = create_slack_app(ctx, client_for(fake))
    runner = await start_slack_http(app, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{bound_port(runner)}/slack/events"
    async with aiohttp.ClientSession() as http:
        yield Rig(fake, ctx, ctx.store, replay, clock, url, http)
    await runner.cleanup()


def blocks_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


# --- /why --------------------------------------------------------------------------------


async def test_why_baba_answers_in_block_kit_naming_the_npc(rig: Rig) -> None:
    post = await rig.why("BABA", user="UMEMBER")
    assert post.args["channel"] == "CMARKETS"
    assert post.args["text"].startswith("Why BABA?")
    blocks = post.args["blocks"]
    assert blocks[0]["type"] == "header" and "BABA" in blocks[0]["text"]["text"]
    assert NPC_TITLE in blocks_text(blocks)
    assert blocks[-1]["elements"][0]["text"] == "Answer to /why BABA · asked by <@UMEMBER>"
    assert block_errors(blocks) == []
    assert rig.fake.calls_to("response_url") == [], "posted once, not also via response_url"
    assert rig.fake.calls_to("auth.test"), "Bolt checks the token on the first request"
    await rig.chart_done()


async def test_why_without_charts_answers_through_the_response_url(rig: Rig) -> None:
    rig.ctx.charts = None
    answer = await rig.ask("/why", "BABA")
    assert answer["response_type"] == "in_channel"
    assert answer["text"].startswith("Why BABA?")
    assert NPC_TITLE in blocks_text(answer["blocks"])
    assert rig.fake.calls_to("chat.postMessage") == []
    assert rig.fake.calls_to("files.getUploadURLExternal") == []


async def test_why_is_acked_before_the_slow_answer_is_ready(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_answer = rig.ctx.answer_why

    def slow_answer(symbol: str) -> Reply:
        release.wait(10)
        return real_answer(symbol)

    monkeypatch.setattr(rig.ctx, "answer_why", slow_answer)
    try:
        status, body, waited = await rig.command("/why", "BABA")
        assert status == 200 and body == ""
        assert waited < 2.0
        assert rig.fake.calls_to("response_url") == [], "the answer must not precede the ack"
        assert rig.fake.calls_to("chat.postMessage") == []
    finally:
        release.set()
    [answer] = await rig.fake.wait_for("chat.postMessage")
    assert NPC_TITLE in blocks_text(answer.args["blocks"])
    await rig.chart_done()


async def test_a_refused_post_falls_back_to_the_response_url_then_to_text(rig: Rig) -> None:
    rig.fake.channel_errors["CMARKETS"] = "not_in_channel"
    rig.fake.reject_reply_blocks = True
    await rig.command("/why", "BABA")
    rich, plain = await rig.fake.wait_for("response_url", 2)
    assert rich.args["blocks"] and "blocks" not in plain.args
    assert rich.args["response_type"] == "in_channel"
    assert plain.args["text"].startswith("Why BABA?")
    assert len(rig.fake.calls_to("chat.postMessage")) == 1, "tried once, then the response_url"
    done = await rig.chart_done()
    assert done.args["channel_id"] == "CMARKETS"
    assert "thread_ts" not in done.args, "no posted answer to thread under: into the channel"


async def test_why_usage_and_unknown_symbols_are_explained(rig: Rig) -> None:
    usage = await rig.ask("/why", "")
    assert usage["response_type"] == "ephemeral" and "Usage: /why SYMBOL" in usage["text"]
    bad = await rig.ask("/why", "NOT*A*TICKER")
    assert bad["response_type"] == "ephemeral" and "not a valid ticker" in bad["text"]


# --- request signing -------------------------------------------------------------------


async def test_bad_signature_and_old_timestamp_are_refused_before_any_handler(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(rig.ctx, "answer_why", lambda symbol: ran.append(symbol))
    status, _, _ = await rig.command("/why", "BABA", secret="not-the-secret")
    assert status == 401
    old = int(time.time()) - 600
    status, _, _ = await rig.command("/why", "BABA", timestamp=old)
    assert status == 401
    status, _, _ = await rig.command("/watch", "add BABA", timestamp=old)
    assert status == 401
    await asyncio.sleep(0.3)
    assert ran == []
    assert rig.fake.calls_to("response_url") == []
    assert rig.store.watch_entries() == []


# --- /watch, /mute and permissions --------------------------------------------------------


async def test_watch_add_by_a_member_is_refused_and_stores_nothing(rig: Rig) -> None:
    answer = await rig.ask("/watch", "add BABA JD 5", user="UMEMBER")
    assert answer["response_type"] == "ephemeral"
    assert escape(MANAGE_REFUSAL) in answer["text"]
    assert rig.store.watch_entries() == []


async def test_guests_are_refused_even_for_mutes(rig: Rig) -> None:
    watch = await rig.ask("/watch", "add BABA", user="UGUEST")
    mute = await rig.ask("/mute", "BABA 1h", user="UGUEST")
    assert "Guests cannot" in watch["text"] and "Guests cannot" in mute["text"]
    assert rig.store.watch_entries() == []
    assert rig.store.muted(rig.clock()) == set()


async def test_watch_add_by_an_admin_is_stored_and_announced(rig: Rig) -> None:
    answer = await rig.ask("/watch", "add BABA JD 5", user="UADMIN", channel="CMARKETS")
    assert answer["response_type"] == "in_channel"
    assert "Watching BABA, JD" in answer["text"]
    stored = {(e.channel, e.symbol, e.threshold_pct) for e in rig.store.watch_entries()}
    assert stored == {("CMARKETS", "BABA", 5.0), ("CMARKETS", "JD", 5.0)}
    await rig.ask("/watch", "threshold JD 7", user="UADMIN")
    listing = await rig.ask("/watch", "list", user="UMEMBER")
    assert "BABA ±5 %" in listing["text"] and "JD ±7 %" in listing["text"]
    assert len(rig.fake.calls_to("users.info")) == 1, "the admin lookup is cached"


async def test_owners_and_listed_admins_may_edit(rig: Rig) -> None:
    await rig.ask("/watch", "add PDD", user="UOWNER")
    await rig.ask("/watch", "add BIDU", user="ULISTED")
    assert {e.symbol for e in rig.store.watch_entries()} == {"PDD", "BIDU"}
    looked_up = [c.args["user"] for c in rig.fake.calls_to("users.info")]
    assert looked_up == ["UOWNER"], "listed admins need no users.info lookup"


async def test_watch_help_on_bad_usage_without_a_permission_lookup(rig: Rig) -> None:
    for text in ("", "frobnicate", "add", "threshold BABA"):
        answer = await rig.ask("/watch", text, user="UMEMBER")
        assert answer["response_type"] == "ephemeral"
        assert escape(WATCH_HELP) in answer["text"], text
    assert rig.fake.calls_to("users.info") == []


async def test_mute_and_unmute(rig: Rig) -> None:
    muted = await rig.ask("/mute", "BABA 2h", user="UADMIN")
    assert "BABA muted here until" in muted["text"]
    assert ("slack", "CMARKETS", "BABA") in rig.store.muted(rig.clock())
    unmuted = await rig.ask("/unmute", "BABA", user="UADMIN")
    assert "BABA unmuted" in unmuted["text"]
    bad = await rig.ask("/mute", "BABA forever", user="UADMIN")
    assert "not a duration" in bad["text"]
    usage = await rig.ask("/mute", "BABA", user="UADMIN")
    assert "Usage: /mute" in usage["text"]


async def test_a_failed_users_info_refuses_without_caching(rig: Rig) -> None:
    answer = await rig.ask("/watch", "add BABA", user="UNKNOWN")
    assert "Could not check your Slack permissions (user_not_found)" in answer["text"]
    await rig.ask("/watch", "add BABA", user="UNKNOWN")
    assert len(rig.fake.calls_to("users.info")) == 2
    assert rig.store.watch_entries() == []


async def test_admin_cache_expires(fake: FakeSlack) -> None:
    now = [0.0]
    check = AdminCheck(client_for(fake), [], ttl_seconds=60, clock=lambda: now[0])
    assert (await check.check("T0TEST", "UADMIN")).allowed
    assert (await check.check("T0TEST", "UADMIN")).allowed
    now[0] = 61
    assert not (await check.check("T0TEST", "UMEMBER")).allowed
    assert (await check.check("T0TEST", "UADMIN")).allowed
    assert [c.args["user"] for c in fake.calls_to("users.info")] == ["UADMIN", "UMEMBER", "UADMIN"]


# --- mentions never ping -------------------------------------------------------------------


async def test_channel_mentions_in_input_are_escaped(rig: Rig) -> None:
    answer = await rig.ask("/watch", "add <!channel> BABA", user="UADMIN")
    assert "&lt;!channel&gt;" in answer["text"]
    assert not MENTION.search(answer["text"])
    why = await rig.ask("/why", "<!here>")
    assert not MENTION.search(why["text"])
    assert {e.symbol for e in rig.store.watch_entries()} == {"BABA"}


def test_third_party_text_cannot_mention_or_inject_links() -> None:
    message = Message(
        title="▲ <!channel> & friends",
        direction=Direction.UP,
        headline="peers <@U123> up",
        cause="company",
        cause_line="Company news: <!here> <https://evil.example|click>",
        news=(
            Link("Shares jump <!everyone>", "https://news.example/a?x=1&y=<2>", "company"),
            Link("Bad scheme", "javascript:alert(1)", "company"),
        ),
        context=(ContextItem("e1", "Event <#C123>", "Summary <!subteam^S1>"),),
        evidence=("BABA: 3 items <@U999>",),
        footer="Data: test",
    )
    rendered = blocks_text(message_blocks(message))
    assert not MENTION.search(rendered)
    assert "&lt;!channel&gt; &amp; friends" in rendered
    assert "javascript:" not in rendered
    assert "<https://news.example/a?x=1&amp;y=%3C2%3E|Shares jump &lt;!everyone&gt;>" in rendered


def test_an_almost_empty_message_is_still_valid_block_kit() -> None:
    blocks = message_blocks(Message("", None, "", None, "", footer="Data: test"))
    assert blocks and block_errors(blocks) == []


def test_escaping_helpers() -> None:
    assert escape("a & <b>") == "a &amp; &lt;b&gt;"
    cut = fit("&" * 100, 20)
    assert len(cut) <= 20 and cut.endswith("…") and not re.search(r"&(?!amp;)", cut)
    assert cut_escaped("ab <https://x.example|label> cd", 12) == "ab …"
    assert cut_escaped("ab &amp; cd", 6) == "ab …"
    assert safe_url("ftp://x.example") is None
    assert safe_url("https://x.example/a|b") == "https://x.example/a%7Cb"


# --- alert delivery ----------------------------------------------------------------------


def sample_alert(n_moves: int = 1, at_: datetime | None = None) -> Alert:
    when = at_ or at("2025-03-05", "16:00")
    moves = tuple(
        Move(
            symbol=f"S{i:03d}",
            pct=6.0 + i / 100,
            price=106.0,
            previous_close=100.0,
            at=when,
            source="test",
            benchmark=BenchmarkMove("KWEB", 3.0),
        )
        for i in range(n_moves)
    )
    return Alert(when, Direction.UP, moves, {}, "unexplained")


def to_slack(alert: Alert, *channels: str) -> list[Delivery]:
    return [Delivery(alert, tuple(Destination("slack", c) for c in channels))]


async def retry_later(ctx: AppContext) -> None:
    """The outbox's retry of what failed, once its backoff has passed."""
    later = datetime.now(UTC) + timedelta(minutes=5)
    await OutboxWorker.of(ctx, clock=lambda: later, platforms=frozenset({"slack"})).drain()


async def test_alert_buttons_answer_why_and_mute_with_the_admin_check(rig: Rig) -> None:
    when = at("2025-03-05", "16:00")
    move = Move("BABA", 7.7, 141.0, 130.9, when, "test", BenchmarkMove("KWEB", 3.0))
    alert = Alert(when, Direction.UP, (move,), {}, "unexplained")
    await SlackNotifier(client_for(rig.fake)).send(render_alert(alert), "CMARKETS", alert.id)
    [post] = await rig.fake.wait_for("chat.postMessage")
    assert block_errors(post.args["blocks"]) == []
    [actions] = [b for b in post.args["blocks"] if b["type"] == "actions"]
    why, mute = actions["elements"]
    assert why["text"]["text"] == "Why BABA?" and mute["value"] == "mute:BABA 1h"

    answered = await rig.press(why, user="UMEMBER")
    assert answered["response_type"] == "ephemeral" and answered["replace_original"] is False
    assert answered["text"].startswith("Why BABA?")
    refused = await rig.press(mute, user="UMEMBER")
    assert refused["response_type"] == "ephemeral" and escape(MANAGE_REFUSAL) in refused["text"]
    assert rig.store.muted(rig.clock()) == set()
    muted = await rig.press(mute, user="UADMIN")
    assert muted["response_type"] == "in_channel" and "BABA muted here until" in muted["text"]
    assert ("slack", "CMARKETS", "BABA") in rig.store.muted(rig.clock())
    stale = await rig.press({**why, "value": "chart:BABA"}, user="UADMIN")
    assert "not one this bot understands" in stale["text"]


async def test_an_alert_reaches_two_channels_once_each(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = [
        WatchEntry("slack", channel, sym, 5.0, "UADMIN")
        for channel in ("CMARKETS", "CCHINA")
        for sym in CHINA
    ]
    rig.store.add_watch(entries)
    day = date(2025, 3, 5)
    sent = await run_replay_feed(rig.ctx, rig.replay, rig.clock, 0, start=day, end=day)
    assert sent >= 1
    posts = rig.fake.calls_to("chat.postMessage")
    by_channel: dict[str, list[str]] = {}
    for post in posts:
        alert_id = post.args["metadata"]["event_payload"]["alert_id"]
        by_channel.setdefault(post.args["channel"], []).append(alert_id)
    assert set(by_channel) == {"CMARKETS", "CCHINA"}
    for ids in by_channel.values():
        assert len(ids) == len(set(ids)), "one post per alert and channel"
    assert sorted(by_channel["CMARKETS"]) == sorted(by_channel["CCHINA"])
    npc = [p for p in posts if all(s in p.args["text"] for s in CHINA)]
    assert {p.args["channel"] for p in npc} == {"CMARKETS", "CCHINA"}
    assert all(NPC_TITLE in blocks_text(p.args["blocks"]) for p in npc)
    assert all(block_errors(p.args["blocks"]) == [] for p in posts)


async def test_a_retried_delivery_never_posts_twice(rig: Rig) -> None:
    rig.store.add_watch([WatchEntry("slack", c, s, 5.0) for c in ("C1", "C2") for s in CHINA])
    now = at("2025-03-05", "16:00")
    symbols = [*CHINA, "KWEB", "SPY", "FXI", "QQQ"]
    deliveries = await process_tick(rig.ctx, rig.replay.quotes(symbols, now), now)
    assert deliveries
    first = len(rig.fake.calls_to("chat.postMessage"))
    assert first == sum(len(d.destinations) for d in deliveries)
    await deliver(rig.ctx, deliveries)
    assert len(rig.fake.calls_to("chat.postMessage")) == first


async def test_rate_limit_retry_after_is_honoured(rig: Rig) -> None:
    rig.fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    alert = sample_alert()
    await deliver(rig.ctx, to_slack(alert, "CMARKETS"))
    throttled, accepted = rig.fake.calls_to("chat.postMessage")
    assert accepted.at - throttled.at >= 1.0
    assert sentlog.was_sent(rig.store, alert.id, "slack", "CMARKETS")
    assert sentlog.message_id(rig.store, alert.id, "slack", "CMARKETS")


async def test_a_failing_channel_does_not_stop_the_others_and_is_retried(rig: Rig) -> None:
    rig.fake.channel_errors["CPRIVATE"] = "not_in_channel"
    alert = sample_alert()
    await deliver(rig.ctx, to_slack(alert, "CPRIVATE", "CMARKETS"))
    assert sentlog.was_sent(rig.store, alert.id, "slack", "CMARKETS")
    assert not sentlog.was_sent(rig.store, alert.id, "slack", "CPRIVATE")
    assert "SlackDeliveryError: CPRIVATE: not_in_channel" in last_delivery_error(rig.store)
    del rig.fake.channel_errors["CPRIVATE"]
    await retry_later(rig.ctx)
    accepted = [c.args["channel"] for c in rig.fake.calls_to("chat.postMessage")]
    assert sorted(accepted[:2]) == ["CMARKETS", "CPRIVATE"] and accepted[2:] == ["CPRIVATE"]


async def test_a_chart_is_rendered_once_and_uploaded_into_each_alert_thread(
    rig: Rig, fake: FakeSlack
) -> None:
    rendered: list[str] = []

    def chart(alert: Alert) -> bytes:
        rendered.append(alert.id)
        return b"\x89PNG fake chart"

    notifier = SlackNotifier(client_for(fake))
    alert = sample_alert()
    enqueue(rig.store, to_slack(alert, "C1", "C2"), datetime.now(UTC))
    assert await OutboxWorker(rig.store, {"slack": notifier}, chart).run_once() == 2
    assert rendered == [alert.id]
    posts = {c.args["channel"]: c for c in fake.calls_to("chat.postMessage")}
    assert [u.args["data"] for u in fake.calls_to("upload")] == [b"\x89PNG fake chart"] * 2
    done = fake.calls_to("files.completeUploadExternal")
    assert {(c.args["channel_id"], c.args["thread_ts"]) for c in done} == {
        (ch, f"{1741200000 + i}.000100") for i, ch in enumerate(posts, 1)
    }


async def test_a_failing_chart_never_blocks_or_repeats_the_alert(rig: Rig, fake: FakeSlack) -> None:
    def broken(alert: Alert) -> bytes:
        raise RuntimeError("no intraday data")

    worker = OutboxWorker(rig.store, {"slack": SlackNotifier(client_for(fake))}, broken)
    alert = sample_alert()
    for _ in range(2):
        enqueue(rig.store, to_slack(alert, "C1"), datetime.now(UTC))
        await worker.drain()
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert sentlog.was_sent(rig.store, alert.id, "slack", "C1")
    assert fake.calls_to("files.getUploadURLExternal") == []


async def test_an_overlong_alert_stays_within_slack_limits(rig: Rig) -> None:
    alert = sample_alert(n_moves=700)
    long = "Very long headline & more " * 300
    message = dataclasses.replace(
        render_alert(alert),
        cause_line=long,
        headline=long,
        news=tuple(Link(long, f"https://news.example/{i}", "sector", long) for i in range(5)),
        context=tuple(
            ContextItem(f"e{i}", long, long * 3, ("https://x.example",)) for i in range(9)
        ),
        evidence=tuple(long for _ in range(40)),
    )
    blocks = message_blocks(message)
    assert len(blocks) <= MAX_BLOCKS
    assert block_errors(blocks) == []
    assert "more moves not shown" in blocks_text(blocks)
    ts = await rig.ctx.notifiers["slack"].send(message, "CMARKETS", alert.id)
    [post] = rig.fake.calls_to("chat.postMessage")
    assert len(post.args["text"]) <= MAX_FALLBACK_TEXT
    assert ts == posted_ts(rig.fake, post), "the fake accepted the post"


# --- real charts --------------------------------------------------------------------------


def files_of(done: Call) -> list[dict[str, Any]]:
    files = done.args["files"]
    return list(json.loads(files) if isinstance(files, str) else files)


def chart_upload(fake: FakeSlack, after: Call, channel: str, thread_ts: str | None) -> bytes:
    """The bytes of the one chart shared in CHANNEL (and thread), checking the steps' order.

    After the message AFTER, files_upload_v2 must ask for an upload URL, send the bytes there,
    then complete the upload into the channel and thread; the fake names file ids F0001,
    F0002, ... in asking order.
    """
    [done] = [
        c
        for c in fake.calls_to("files.completeUploadExternal")
        if c.args.get("channel_id") == channel and c.args.get("thread_ts") == thread_ts
    ]
    [file_id] = [f["id"] for f in files_of(done)]
    asked = fake.calls_to("files.getUploadURLExternal")[int(file_id[1:]) - 1]
    [sent] = [c for c in fake.calls_to("upload") if c.args["file_id"] == file_id]
    order = [fake.calls.index(c) for c in (after, asked, sent, done)]
    assert order == sorted(order), "post, getUploadURLExternal, upload, completeUploadExternal"
    data: bytes = sent.args["data"]
    assert int(asked.args["length"]) == len(data)
    assert asked.args["filename"].endswith(".png") and asked.args["alt_txt"]
    return data


def assert_real_chart(png: bytes) -> None:
    """A decodable PNG of about 1200x675 with several distinct series colours on white.

    A daily-close replay draws each series as points (markers of some 40 pixels), a live chart
    as lines: either way, several colours each cover a visible area.
    """
    assert png.startswith(PNG_SIGNATURE)
    image = mpimg.imread(io.BytesIO(png), format="png")
    height, width = image.shape[:2]
    assert abs(width - 1200) <= 12 and abs(height - 675) <= 12, image.shape
    rgb = (image[..., :3] * 255).round().astype(int).reshape(-1, 3)
    colours, counts = np.unique(rgb, axis=0, return_counts=True)
    chromatic = (colours.max(axis=1) - colours.min(axis=1)) > 60
    assert (colours[counts.argmax()] == 255).all(), "a white card"
    assert int((chromatic & (counts >= 30)).sum()) >= 3, "several coloured series"


def posted_ts(fake: FakeSlack, post: Call) -> str:
    """The ts the fake gave POST (it numbers chat.postMessage answers in order)."""
    return f"{1741200000 + fake.calls_to('chat.postMessage').index(post) + 1}.000100"


async def test_the_npc_alert_uploads_a_real_chart_into_its_thread(
    rig: Rig, fake: FakeSlack
) -> None:
    assert rig.ctx.charts is not None
    create_slack_app(rig.ctx, client_for(fake))  # as run.py does
    rig.store.add_watch([WatchEntry("slack", "CMARKETS", s, 5.0, "UADMIN") for s in CHINA])
    day = date(2025, 3, 5)
    assert await run_replay_feed(rig.ctx, rig.replay, rig.clock, 0, start=day, end=day) >= 1
    [npc] = [
        p for p in fake.calls_to("chat.postMessage") if all(s in p.args["text"] for s in CHINA)
    ]
    assert NPC_TITLE in blocks_text(npc.args["blocks"])
    alert_id = npc.args["metadata"]["event_payload"]["alert_id"]
    ts = sentlog.message_id(rig.store, alert_id, "slack", "CMARKETS")
    assert ts == posted_ts(fake, npc)
    assert_real_chart(chart_upload(fake, npc, "CMARKETS", ts))


async def test_why_baba_uploads_a_real_chart_into_the_answer_thread(rig: Rig) -> None:
    post = await rig.why("BABA", channel="CCHINA")
    await rig.chart_done()
    png = chart_upload(rig.fake, post, "CCHINA", posted_ts(rig.fake, post))
    [asked] = rig.fake.calls_to("files.getUploadURLExternal")
    assert asked.args["filename"] == "2025-03-05T1600-why-BABA.png"
    assert_real_chart(png)


async def test_the_why_chart_is_drawn_only_after_the_answer_is_out(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_chart = rig.ctx.why_chart

    def slow_chart(symbol: str, reply: Reply) -> bytes | None:
        release.wait(10)
        return real_chart(symbol, reply)

    monkeypatch.setattr(rig.ctx, "why_chart", slow_chart)
    try:
        await rig.why("BABA")
        assert rig.fake.calls_to("files.getUploadURLExternal") == []
    finally:
        release.set()
    await rig.chart_done()


def refuse(error: str) -> Any:
    return lambda args: {"ok": False, "error": error, "needed": "files:write"}


@pytest.mark.parametrize(
    ("problem", "logged"),
    [
        ("raises", "chart for /why BABA failed"),
        ("none", "no chart data for /why BABA"),
        ("not_in_channel", "not_in_channel (invite the app to the channel)"),
        ("missing_scope", "missing_scope (add the files:write scope"),
    ],
)
async def test_a_why_chart_problem_is_logged_and_never_breaks_the_answer(
    rig: Rig,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    problem: str,
    logged: str,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.platforms.slack.adapter")

    def broken(symbol: str, reply: Reply) -> bytes:
        raise RuntimeError("no session data")

    if problem == "raises":
        monkeypatch.setattr(rig.ctx, "why_chart", broken)
    elif problem == "none":
        monkeypatch.setattr(rig.ctx, "why_chart", lambda symbol, reply: None)
    elif problem == "not_in_channel":
        monkeypatch.setattr(rig.fake, "_files_completeUploadExternal", refuse(problem))
    else:
        monkeypatch.setattr(rig.fake, "_files_getUploadURLExternal", refuse(problem))
    post = await rig.why("BABA")
    assert NPC_TITLE in blocks_text(post.args["blocks"])
    await rig.fake.wait_until(lambda: logged in caplog.text)
    assert "could not be sent" not in caplog.text
    assert rig.fake.calls_to("response_url") == [], "the posted answer stands alone"
    listing = await rig.ask("/watch", "list")
    assert "watches nothing yet" in listing["text"], "the app still answers"


# --- secrets, settings and serving ------------------------------------------------------


async def test_tokens_are_never_logged(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await rig.why("BABA")
    await rig.chart_done()
    await rig.ask("/watch", "add BABA", user="UMEMBER")
    await rig.command("/why", "BABA", secret="wrong")
    await deliver(rig.ctx, to_slack(sample_alert(), "CMARKETS"))
    assert caplog.records
    for secret in (BOT_TOKEN, SECRET, APP_TOKEN):
        assert secret not in caplog.text
    assert BOT_TOKEN not in repr(rig.ctx.settings)


def test_missing_settings_name_the_variable(
    replayed: tuple[AppContext, Replay, SimulatedClock],
) -> None:
    ctx, _, _ = replayed
    no_secret = dataclasses.replace(ctx, settings=make_settings(slack_signing_secret=None))
    with pytest.raises(SlackConfigError, match="SLACK_SIGNING_SECRET"):
        create_slack_app(no_secret, AsyncWebClient(token=BOT_TOKEN))
    no_token = dataclasses.replace(ctx, settings=make_settings(slack_bot_token=None))
    with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN"):
        create_slack_app(no_token)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_slack_http_answers_until_cancelled(
    fake: FakeSlack, replayed: tuple[AppContext, Replay, SimulatedClock]
) -> None:
    ctx, _, _ = replayed
    port = free_port()
    task = asyncio.create_task(serve_slack_http(ctx, port, "127.0.0.1", client=client_for(fake)))
    url = f"http://127.0.0.1:{port}/slack/events"
    payload = slash_payload("/why", "BABA", "UMEMBER", "CMARKETS", fake.response_url())
    body, headers = signed_request(SECRET, payload)
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            with contextlib.suppress(aiohttp.ClientConnectorError):
                async with http.post(url, data=body, headers=headers) as resp:
                    assert resp.status == 200
                    break
            await asyncio.sleep(0.02)
        [answer] = await fake.wait_for("chat.postMessage")
        assert NPC_TITLE in blocks_text(answer.args["blocks"])
        await fake.wait_for("files.completeUploadExternal")
        assert "slack" in ctx.notifiers
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with pytest.raises(aiohttp.ClientConnectorError):
            await http.post(url, data=body, headers=headers)


async def test_socket_mode_answers_a_slash_command_envelope(
    fake: FakeSlack, replayed: tuple[AppContext, Replay, SimulatedClock]
) -> None:
    ctx, _, _ = replayed
    with pytest.raises(SlackConfigError, match="xapp-"):
        socket_mode_handler(ctx, BOT_TOKEN, client=client_for(fake))
    app = create_slack_app(
        dataclasses.replace(ctx, settings=make_settings(slack_signing_secret=None)),
        client_for(fake),
        socket_mode=True,
    )
    handler = socket_mode_handler(ctx, APP_TOKEN, app=app)
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        await fake.wait_until(lambda: bool(fake._sockets))
        payload = slash_payload("/why", "BABA", "UMEMBER", "CMARKETS", fake.response_url())
        envelope = {
            "envelope_id": "env-1",
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": payload,
        }
        await fake.push(envelope)
        await fake.wait_until(
            lambda: any(a.get("envelope_id") == "env-1" for a in fake.socket_acks)
        )
        [answer] = await fake.wait_for("chat.postMessage")
        assert NPC_TITLE in blocks_text(answer.args["blocks"])
        await fake.wait_for("files.completeUploadExternal")
        [opened] = fake.calls_to("apps.connections.open")
        assert opened.headers["Authorization"] == f"Bearer {APP_TOKEN}"
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


def test_the_manifest_declares_every_command_and_scope() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text(encoding="utf-8"))
    commands = manifest["features"]["slash_commands"]
    assert tuple(c["command"] for c in commands) == COMMANDS
    assert all(c["url"].endswith("/slack/events") for c in commands)
    assert all(c["should_escape"] is False for c in commands)
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] and interactivity["request_url"].endswith("/slack/events")
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "users:read", "files:write"} <= scopes


async def test_help_channel_threshold_and_mute_list(rig: Rig) -> None:
    helped = await rig.ask("/help", "", user="UMEMBER")
    assert "/watch add BABA JD 5" in helped["text"] and "/mute BABA 4h" in helped["text"]
    set_pct = await rig.ask("/watch", "threshold 4", user="UADMIN")
    assert "This channel now alerts at ±4 %" in set_pct["text"]
    muted = await rig.ask("/mute", "BABA 4 hours", user="UADMIN")
    assert "BABA muted here until" in muted["text"]
    listed = await rig.ask("/mute", "list", user="UMEMBER")
    assert listed["text"].startswith("Muted here: BABA until")
    unit = await rig.ask("/mute", "BABA 5", user="UADMIN")
    assert "needs a unit" in unit["text"]
