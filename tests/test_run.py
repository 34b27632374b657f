"""`marketbot run` as a real process against the fake Discord (and Slack and Telegram): alerts,
/why, and a SIGKILL."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.delivery.outbox import outbox_counts
from bot.infra.store import Store
from handlers.models import WatchEntry
from tests import fake_discord, fake_slack, fake_telegram
from tests.conftest import DEMO_BARS, DEMO_NEWS, ROOT
from tests.fake_discord import CHINA_TECH, MARKETS, TOKEN, FakeDiscord, opt

CHINA = ["BABA", "JD", "TCEHY", "PDD", "BIDU"]
# The launcher points discord.py at the fake the way a test would point any library: by its
# own module attributes. Everything after that is the installed command line.
LAUNCHER = """
import sys, yarl, discord.http, discord.gateway
discord.http.Route.BASE = sys.argv[1]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sys.argv[2])
from bot.cli import main
sys.exit(main(sys.argv[3:]))
"""


class SlowDiscord(FakeDiscord):
    """The fake Discord, taking a while to create each message (a busy API)."""

    def __init__(self, post_delay: float = 0.0) -> None:
        super().__init__()
        self.post_delay = post_delay
        self.answer_delay = 0.0  # after the message is created: the answer is slow to come

    async def _post_message(self, request: web.Request, match: re.Match[str], body: Any) -> Any:
        await asyncio.sleep(self.post_delay)
        answer = await super()._post_message(request, match, body)
        await asyncio.sleep(self.answer_delay)
        return answer


@pytest.fixture
async def slow_discord() -> AsyncIterator[SlowDiscord]:
    server = SlowDiscord()
    await server.start()
    yield server
    await server.stop()


async def start_bot(
    fake: FakeDiscord, db: Path, tmp: Path, *args: str, db_url: str | None = None
) -> asyncio.subprocess.Process:
    launcher = tmp / "launch.py"
    launcher.write_text(LAUNCHER)
    env = {
        **os.environ,
        "DISCORD_TOKEN": TOKEN,
        "MARKETBOT_DB_URL": db_url or f"sqlite:///{db}",
        "PYTHONPATH": str(ROOT),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(launcher),
        fake.api_base,
        str(fake.gateway_url),
        "run",
        "--platform",
        "discord",
        "--source",
        "replay",
        "--bars",
        str(DEMO_BARS),
        "--news",
        str(DEMO_NEWS),
        *args,
        cwd=tmp,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def stop(proc: asyncio.subprocess.Process, sig: int = signal.SIGTERM) -> str:
    if proc.returncode is None:
        proc.send_signal(sig)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    return out.decode(errors="replace")


def watch(db: Path, channels: list[int]) -> None:
    store = Store(f"sqlite:///{db}")
    store.add_watch(WatchEntry("discord", str(c), s, 5.0) for c in channels for s in CHINA)
    store.close()


async def test_run_posts_alerts_and_answers_why(slow_discord: FakeDiscord, tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    watch(db, [CHINA_TECH, MARKETS])
    proc = await start_bot(
        slow_discord, db, tmp_path, "--from", "2025-03-05", "--to", "2025-03-05", "--speed", "1e6"
    )
    try:
        await slow_discord.wait_for(
            lambda: bool(slow_discord.posted(CHINA_TECH) and slow_discord.posted(MARKETS)),
            timeout=30,
            what="the NPC alert in both channels",
        )
        await slow_discord.wait_connected(timeout=20)
        record = await slow_discord.answered(
            await slow_discord.interact("why", [opt("symbol", "BABA")]), timeout=20
        )
    finally:
        output = await stop(proc)
    assert proc.returncode == 0, output
    for channel in (CHINA_TECH, MARKETS):
        [alert] = slow_discord.posted(channel)
        title = alert["embeds"][0]["title"]
        assert all(sym in title for sym in ("BABA", "JD")), title
    answer = str(record.answers())
    assert "National People" in answer
    assert TOKEN not in output
    assert "shutting down" in output


async def test_sigkill_mid_fanout_then_restart_delivers_each_channel_once(
    slow_discord: SlowDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = [740_000_000_000_000_000 + i for i in range(50)]
    for channel in channels:
        monkeypatch.setitem(fake_discord.CHANNEL_NAMES, channel, f"desk-{channel % 100}")
    slow_discord.post_delay = 0.25
    db = tmp_path / "bot.db"
    watch(db, channels)
    args = ("--from", "2025-03-05", "--to", "2025-03-05", "--speed", "1e6")

    def delivered() -> int:
        return sum(1 for c in channels if slow_discord.posted(c))

    first = await start_bot(slow_discord, db, tmp_path, *args)
    await slow_discord.wait_for(lambda: delivered() >= 1, timeout=30, what="the fan-out to start")
    first.kill()  # SIGKILL: no clean-up, requests in flight
    await first.wait()
    before = delivered()
    assert before < len(channels), "the fan-out finished before the kill; slow the fake down"

    second = await start_bot(slow_discord, db, tmp_path, *args)
    try:
        await slow_discord.wait_for(
            lambda: delivered() == len(channels), timeout=60, what="every channel after restart"
        )
        await asyncio.sleep(1.0)  # anything still to come would arrive now
    finally:
        await stop(second)
    counts = {c: len(slow_discord.posted(c)) for c in channels}
    assert set(counts.values()) == {1}, {c: n for c, n in counts.items() if n != 1}
    status = outbox_counts(Store(f"sqlite:///{db}"))
    assert status == {"sent": 50}, status


async def status_of(db: Path, tmp: Path) -> tuple[int, str]:
    """`marketbot status` on DB, run as the operator would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETBOT_", "DISCORD_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "--db",
        f"sqlite:///{db}",
        "status",
        cwd=tmp,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


async def test_status_says_running_then_stopped_after_sigterm(
    slow_discord: FakeDiscord, tmp_path: Path
) -> None:
    db = tmp_path / "bot.db"
    watch(db, [CHINA_TECH])
    proc = await start_bot(slow_discord, db, tmp_path, "--from", "2025-03-05", "--to", "2025-03-05")
    try:
        await slow_discord.wait_for(
            lambda: bool(slow_discord.posted(CHINA_TECH)), timeout=30, what="the first alert"
        )
        code, running = await status_of(db, tmp_path)
    finally:
        await stop(proc)
    assert code == 0 and ": running" in running and "next poll:" in running, running
    code, stopped = await status_of(db, tmp_path)
    assert code == 1 and ": stopped" in stopped and ": running" not in stopped, stopped


async def test_a_post_that_went_out_before_a_sigkill_is_not_posted_again(
    slow_discord: SlowDiscord, tmp_path: Path
) -> None:
    """The post is made, the bot dies before hearing so, the nonce expires: one post still."""
    slow_discord.nonce_seconds = 0.0
    slow_discord.answer_delay = 60.0
    db = tmp_path / "bot.db"
    watch(db, [CHINA_TECH, MARKETS])
    args = ("--from", "2025-03-05", "--to", "2025-03-05", "--speed", "1e6")
    first = await start_bot(slow_discord, db, tmp_path, *args)
    await slow_discord.wait_for(
        lambda: bool(slow_discord.posted(CHINA_TECH) and slow_discord.posted(MARKETS)),
        timeout=30,
        what="both posts made (their answers held back)",
    )
    first.kill()
    await first.wait()
    assert outbox_counts(Store(f"sqlite:///{db}")) == {"pending": 2}
    slow_discord.answer_delay = 0.0
    second = await start_bot(slow_discord, db, tmp_path, *args)
    try:
        await slow_discord.wait_for(
            lambda: outbox_counts(Store(f"sqlite:///{db}")) == {"sent": 2},
            timeout=60,
            what="both deliveries recorded after the restart",
        )
        await asyncio.sleep(1.0)
    finally:
        output = await stop(second)
    for channel in (CHINA_TECH, MARKETS):
        assert len(slow_discord.posted(channel)) == 1, output
    history = slow_discord.calls_to("GET", r"/channels/\d+/messages")
    assert {c.path for c in history} == {f"/channels/{c}/messages" for c in (CHINA_TECH, MARKETS)}
    assert "already posted" in output


def why_answers(slack: fake_slack.FakeSlack) -> list[fake_slack.Call]:
    """The /why answer: posted by the app (charts on) or through the response_url."""
    posted = [c for c in slack.calls_to("chat.postMessage") if "/why" in str(c.args)]
    return posted + slack.calls_to("response_url")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_run_discord_slack_and_telegram_in_one_process(
    slow_discord: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All three platforms in one process: alerts to each fake, /why answered on Slack (signed,
    over HTTP) and on Telegram (an update handed out by long polling)."""
    import aiohttp

    slack = await fake_slack.FakeSlack().start()
    telegram = await fake_telegram.FakeTelegram().start()
    port = free_port()
    db = tmp_path / "bot.db"
    watch(db, [CHINA_TECH])
    store = Store(f"sqlite:///{db}")
    store.add_watch(WatchEntry("slack", "C0MARKETS", s, 5.0) for s in CHINA)
    store.add_watch(WatchEntry("telegram", str(fake_telegram.GROUP), s, 5.0) for s in CHINA)
    store.close()
    monkeypatch.setenv("SLACK_BOT_TOKEN", slack.bot_token)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s3cret-signing")
    monkeypatch.setenv("SLACK_API_URL", slack.api_url)
    monkeypatch.setenv("MARKETBOT_SLACK_PORT", str(port))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", telegram.token)
    monkeypatch.setenv("TELEGRAM_API_URL", telegram.api_url)
    monkeypatch.setenv("MARKETBOT_TELEGRAM_FILE_URL", telegram.file_url)
    proc = await start_bot(
        slow_discord,
        db,
        tmp_path,
        "--platform",
        "discord,slack,telegram",
        "--from",
        "2025-03-05",
        "--to",
        "2025-03-05",
        "--speed",
        "1e6",
    )
    try:
        posts = await slack.wait_for("chat.postMessage", 1, timeout=30)
        await slow_discord.wait_for(lambda: bool(slow_discord.posted(CHINA_TECH)), timeout=30)
        telegram_alerts = await telegram.wait_sent(fake_telegram.GROUP, 1, timeout=30)
        asked = telegram.command("/why BABA", chat_id=fake_telegram.GROUP)
        payload = fake_slack.slash_payload(
            "/why", "BABA", "U0ALICE", "C0MARKETS", slack.response_url()
        )
        body, headers = fake_slack.signed_request("s3cret-signing", payload)
        url = f"http://127.0.0.1:{port}/slack/events"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the HTTP server may still be starting
                try:
                    async with http.post(url, data=body, headers=headers) as resp:
                        status = resp.status
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            bad_body, bad_headers = fake_slack.signed_request("wrong-secret", payload)
            async with http.post(url, data=bad_body, headers=bad_headers) as resp:
                refused = resp.status
        await slack.wait_until(lambda: bool(why_answers(slack)), timeout=30)
        await telegram.wait_until(lambda: bool(telegram_replies(telegram, asked)), timeout=30)
    finally:
        try:
            output = await stop(proc)
        finally:
            await slack.stop()
            await telegram.stop()
    assert proc.returncode == 0, output
    assert (status, refused) == (200, 401), output
    assert posts[0].args["channel"] == "C0MARKETS"
    assert "National People" in str(why_answers(slack)[-1].args)
    assert telegram_alerts[0].method in ("sendMessage", "sendPhoto")
    assert "BABA" in telegram_alerts[0].text, telegram_alerts[0].text
    assert "National People" in telegram_replies(telegram, asked)[0].text
    secrets = ["s3cret-signing", slack.bot_token, TOKEN, telegram.token]
    secrets.append(telegram.token.split(":")[1])
    assert not [s for s in secrets if s in output], output
    assert "refused a Slack request with an invalid signature" in output
    assert "response_url" not in output  # the refused request's body is not logged


def telegram_replies(
    telegram: fake_telegram.FakeTelegram, message_id: int
) -> list[fake_telegram.Sent]:
    """The bot's messages in the group answering MESSAGE_ID (the text first, then any chart)."""
    return [s for s in telegram.sent_to(fake_telegram.GROUP) if s.reply_to == message_id]


@dataclass
class Instance:
    """One `marketbot run` process and the log lines it printed so far."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.lines.append(line.decode(errors="replace"))

    def start_reading(self) -> None:
        self.reader = asyncio.create_task(self._read())

    @property
    def holds_gateway(self) -> bool:
        return any("running the Discord gateway connection" in line for line in self.lines)

    async def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        await asyncio.wait_for(self.proc.wait(), 20)
        if self.reader is not None:
            await asyncio.wait_for(self.reader, 5)
        return "".join(self.lines)


def callbacks_for(fake: FakeDiscord, record: fake_discord.InteractionRecord) -> int:
    return len(fake.calls_to("POST", rf"/interactions/{record.id}/{record.token}/callback"))


@pytest.mark.postgres
async def test_three_instances_on_an_empty_postgresql_answer_each_command_once(
    slow_discord: SlowDiscord, tmp_path: Path, pg_url: str
) -> None:
    """Started together on an empty schema, all three come up; one holds the gateway and
    answers; when it is killed another takes over, and still answers once."""
    args = ("--from", "2025-03-05", "--to", "2025-03-05", "--speed", "1e6")
    procs = await asyncio.gather(
        *(start_bot(slow_discord, tmp_path / "x", tmp_path, *args, db_url=pg_url) for _ in "abc")
    )
    instances = [Instance(p) for p in procs]
    for instance in instances:
        instance.start_reading()
    outputs: list[str] = []
    try:
        await slow_discord.wait_for(
            lambda: len(Store(pg_url).statuses()) == 3, timeout=60, what="three instances up"
        )
        await slow_discord.wait_connected(timeout=30)
        await asyncio.sleep(4.0)  # a second gateway connection, if any, would be made by now
        assert len(slow_discord.identifies) == 1
        assert all(i.proc.returncode is None for i in instances)
        record = await slow_discord.answered(
            await slow_discord.interact("why", [opt("symbol", "BABA")]), timeout=30
        )
        await asyncio.sleep(1.0)
        assert callbacks_for(slow_discord, record) == 1 and len(record.callbacks) == 1

        [holder] = [i for i in instances if i.holds_gateway]
        holder.proc.kill()
        await holder.proc.wait()
        await slow_discord.wait_for(
            lambda: len(slow_discord.identifies) == 2, timeout=30, what="a takeover"
        )
        await asyncio.sleep(3.0)
        assert len(slow_discord.identifies) == 2
        again = await slow_discord.answered(
            await slow_discord.interact("why", [opt("symbol", "BABA")]), timeout=30
        )
        await asyncio.sleep(1.0)
        # (its answer may differ: a replay's simulated clock moves in the feed's leader only)
        assert callbacks_for(slow_discord, again) == 1 and len(again.answers()) == 1
    finally:
        for instance in instances:
            outputs.append(await instance.stop())
    assert not any("UniqueViolation" in out or "Traceback" in out for out in outputs), outputs
