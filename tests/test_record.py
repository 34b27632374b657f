"""Record a session from the local Yahoo streamer and fake Yahoo, then replay it: same alert."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bot.cli import main
from bot.recorder import COLUMNS, BarRecorder, poll_once, record_stream
from bot.sources.yahoo.quotes import YahooPrices
from tests.fake_streamer import pricing_frame
from tests.test_yahoo_source import offline_yfinance  # noqa: F401  (fixture)
from tests.yahoo_fake import FakeSession, FakeYahoo, Reply, intraday_chart, load_days

NY = ZoneInfo("America/New_York")
PREVIOUS_CLOSE = 129.85  # BABA's real close of 2025-03-04
# A synthetic opening: (time in New York, price); 136.70 at 09:33:20 is the first +5 % quote.
SESSION = [
    ("09:30:05", 134.40),
    ("09:30:40", 134.90),
    ("09:31:15", 135.30),
    ("09:32:30", 135.90),
    ("09:33:20", 136.70),
    ("09:33:50", 136.50),
    ("09:34:10", 137.00),
]


def ny(day: str, hms: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hms}").replace(tzinfo=NY)


class PacedStreamer:
    """A local streamer that sends one PricingData frame per quote of SESSION, in order."""

    def __init__(self) -> None:
        self.sent = 0

    async def handler(self, ws: ServerConnection) -> None:
        async for raw in ws:
            if not json.loads(raw).get("subscribe"):
                continue
            for hms, price in SESSION:
                at = ny("2025-03-05", hms)
                await ws.send(pricing_frame("BABA", price, PREVIOUS_CLOSE, at))
                self.sent += 1
                await asyncio.sleep(0.08)  # longer than the recorder's batch


@pytest.fixture
async def streamer() -> AsyncIterator[tuple[str, PacedStreamer]]:
    fake = PacedStreamer()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", fake


def replay_alerts(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code = main(["replay", *args, "--watch", "BABA", "--threshold", "5", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def rows(folder: Path) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            assert tuple(reader.fieldnames or ()) == COLUMNS
            out.extend(reader)
    return out


async def test_stream_record_then_replay_alerts_at_the_crossing_minute(
    streamer: tuple[str, PacedStreamer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, fake = streamer
    recorder = BarRecorder(tmp_path / "rec")
    # A streamer that has sent every frame makes the remaining wait pointless.
    task = asyncio.create_task(record_stream(["BABA"], recorder, 5.0, url, batch_seconds=0.02))
    for _ in range(200):
        if fake.sent == len(SESSION):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    recorded = rows(tmp_path / "rec")
    assert [r["datetime"] for r in recorded] == [
        f"2025-03-05T09:{m}:00-05:00" for m in ("30", "31", "32", "33", "34")
    ]
    first = recorded[0]
    assert (first["open"], first["high"], first["close"]) == ("134.4", "134.9", "134.9")
    assert {r["previous_close"] for r in recorded} == {"129.85"}
    assert {r["session"] for r in recorded} == {"regular"}

    alerts = await asyncio.to_thread(replay_alerts, capsys, "--bars", str(tmp_path / "rec"))
    assert alerts[0]["at"] == "2025-03-05T09:34:00-05:00"  # the end of the 09:33 minute
    assert alerts[0]["price"]["BABA"] == pytest.approx(136.50)  # that minute's last quote
    assert alerts[0]["previous_close"]["BABA"] == pytest.approx(PREVIOUS_CLOSE)


def test_poll_record_then_replay(
    offline_yfinance: Any,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeYahoo()
    days = load_days()["BABA"]
    prices = YahooPrices(FakeSession(fake), interval="5m")
    recorder = BarRecorder(tmp_path / "rec")
    start = ny("2025-03-05", "11:00:00")  # the fake's made-up path dips at 11:00, then climbs
    seen: list[float] = []
    times: list[datetime] = []
    for step in range(0, 120, 10):  # one poll every 10 minutes of the fake session
        now = start + timedelta(minutes=step)
        fake.charts["BABA"] = Reply.json(intraday_chart("BABA", days, until=now))
        assert poll_once(prices, ["BABA"], recorder, now) == 1
        quote = prices.quotes(["BABA"], now)["BABA"]
        seen.append(quote.price)
        times.append(quote.at)
    recorder.flush()

    recorded = rows(tmp_path / "rec")
    assert len(recorded) == 12 and {r["previous_close"] for r in recorded} == {"129.85"}
    assert [float(r["close"]) for r in recorded] == pytest.approx(seen, abs=1e-3)

    alerts = replay_alerts(capsys, "--bars", str(tmp_path / "rec"))
    crossing = next(i for i, p in enumerate(seen) if (p / PREVIOUS_CLOSE - 1) * 100 >= 5)
    assert crossing > 0, "the fake session starts below +5 % and crosses it"
    assert alerts[0]["at"] == times[crossing].isoformat()  # when that price was real
    assert alerts[0]["price"]["BABA"] == pytest.approx(seen[crossing], abs=1e-3)
    assert alerts[0]["sources"]["BABA"] == "replay (intraday bars)"


def test_record_cli_refuses_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["record", "--symbols", "!!", "--out", str(tmp_path)]) == 2
    assert main(["record", "--symbols", "BABA", "--out", str(tmp_path), "--minutes", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("marketbot:") == 2
