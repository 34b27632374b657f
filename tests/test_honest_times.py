"""/why at any hour and replays whose every price really happened, through the real CLI."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.app import build_engine
from bot.cli import main
from bot.infra.calendars import ExchangeHours
from bot.infra.store import Store
from bot.sources.yahoo.quotes import YahooPrices
from config.settings import load_settings
from handlers import commands
from handlers.freshness import age_text, spread_note
from handlers.models import BenchmarkMove, Move, WatchEntry
from tests.conftest import DEMO_BARS, DEMO_NEWS, ROOT
from tests.test_yahoo_source import offline_yfinance  # noqa: F401  (fixture)
from tests.yahoo_fake import FakeSession, FakeYahoo, Reply, intraday_chart, load_days

SYNTHETIC = ROOT / "tests" / "data" / "intraday" / "BABA-2025-03-05-synthetic.csv"
SYNTHETIC_DAY = ("--bars", str(DEMO_BARS / "BABA.csv"), str(SYNTHETIC))
NY = ZoneInfo("America/New_York")


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    code = main([*args, "--json"])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


def why(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, [answer] = run_json(capsys, "why", *args)
    assert code == 0, answer
    return answer


def why_extended(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, extended: str, at: str
) -> dict[str, Any]:
    """/why BABA at AT over the demo close and the synthetic intraday day, extended hours set."""
    monkeypatch.setenv("MARKETBOT_EXTENDED_HOURS", extended)
    return why(capsys, "BABA", *SYNTHETIC_DAY, "--at", at)


def closes(path: Path) -> dict[str, float]:
    with path.open(newline="") as handle:
        return {row["date"]: float(row["close"]) for row in csv.DictReader(handle)}


# ------------------------------------------------------------------ /why at any hour


def test_why_at_8pm_answers_with_the_close_to_close_move(
    shared_daily: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = why(capsys, "BABA", "--bars", str(shared_daily), "--at", "2025-03-05T20:00")
    assert answer["pct"] == pytest.approx(8.61, abs=0.01)
    assert answer["price"] == pytest.approx(141.03)
    assert answer["previous_close"] == pytest.approx(129.85)
    assert answer["as_of"] == "as of Wed 2025-03-05 16:00 EST close"
    assert answer["closing"] is True and answer["simulated"] is False
    assert answer["data_age"] == "as of close"
    assert "BABA +8.6 %" in answer["text"]


def test_why_on_a_saturday_answers_from_fridays_close(
    shared_daily: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = why(capsys, "BABA", "--bars", str(shared_daily), "--at", "2025-03-08T11:00")
    real = closes(next(shared_daily.glob("BABA*.csv")))
    assert answer["pct"] == pytest.approx(
        (real["2025-03-07"] / real["2025-03-06"] - 1) * 100, abs=0.01
    )
    assert answer["as_of"] == "as of Fri 2025-03-07 16:00 EST close"
    assert answer["quote_at"] == "2025-03-07T16:00:00-05:00"


def test_why_before_the_open_answers_from_the_last_session_and_says_so(
    shared_daily: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = why(capsys, "BABA", "--bars", str(shared_daily), "--at", "2025-03-05T08:00-05:00")
    assert answer["as_of"] == "as of Tue 2025-03-04 16:00 EST close"
    assert answer["price"] == pytest.approx(129.85)


def test_why_before_the_open_shows_pre_market_apart(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = why_extended(capsys, monkeypatch, "true", "2025-03-05T08:30")
    assert answer["as_of"] == "as of Tue 2025-03-04 16:00 EST close"
    ext = answer["extended"]
    assert ext["session"] == "pre" and ext["price"] == 131.50
    assert ext["reference_close"] == 129.85  # the previous regular close, told apart
    assert ext["pct"] == pytest.approx((131.50 / 129.85 - 1) * 100, abs=0.01)
    assert "Pre-market 131.50" in answer["text"]


def test_why_after_the_close_tells_post_market_from_the_regular_close(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = why_extended(capsys, monkeypatch, "true", "2025-03-05T19:00")
    assert answer["price"] == 141.03 and answer["previous_close"] == 129.85
    assert answer["as_of"] == "as of Wed 2025-03-05 16:00 EST close"
    ext = answer["extended"]
    assert (ext["session"], ext["price"], ext["reference_close"]) == ("post", 141.60, 141.03)
    assert "Post-market 141.60" in answer["text"] and "regular close 141.03" in answer["text"]


def test_why_without_extended_hours_shows_no_post_market(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = why_extended(capsys, monkeypatch, "false", "2025-03-05T19:00")
    assert answer["extended"] is None and answer["price"] == 141.03


def test_why_on_a_us_holiday_answers_from_the_session_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Synthetic figures around Martin Luther King Jr. Day (Mon 2025-01-20, NYSE closed).
    bars = tmp_path / "BABA.csv"
    bars.write_text(
        "symbol,date,open,high,low,close,volume\n"
        "BABA,2025-01-16,80,81,79,80,1000\n"
        "BABA,2025-01-17,80,85,80,84,1000\n"
    )
    answer = why(capsys, "BABA", "--bars", str(bars), "--at", "2025-01-20T12:00")
    assert answer["as_of"] == "as of Fri 2025-01-17 16:00 EST close"
    assert answer["pct"] == pytest.approx(5.0)
    # On a trading Tuesday at noon the same answer says the session under way is missing.
    tuesday = why(capsys, "BABA", "--bars", str(bars), "--at", "2025-01-21T12:00")
    assert "no price yet from the session under way" in tuesday["as_of"]
    assert "session under way" not in answer["as_of"]
    # Ten days on, whole sessions are missing, not just the one under way.
    later = why(capsys, "BABA", "--bars", str(bars), "--at", "2025-01-27T12:00")
    assert later["as_of"] == "as of Fri 2025-01-17 16:00 EST close; no newer price found"


def test_why_for_a_hong_kong_symbol_in_the_lunch_break(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Synthetic 0700.HK morning: previous close 500, last morning bar 11:59 at 520 (+4 %).
    bars = tmp_path / "0700.csv"
    rows = [
        ("09:30", 505, 506, 504, 505),
        ("10:00", 505, 512, 505, 511),
        ("11:59", 518, 521, 517, 520),
    ]
    lines = ["symbol,datetime,open,high,low,close,volume,previous_close"]
    lines += [
        f"0700.HK,2025-03-05T{t}:00+08:00,{o},{h},{lo},{c},100,500" for t, o, h, lo, c in rows
    ]
    bars.write_text("\n".join(lines) + "\n")
    # No zone given: the time is Hong Kong's (12:30 HKT is in the 12:00-13:00 lunch break).
    answer = why(capsys, "0700.HK", "--bars", str(bars), "--at", "2025-03-05T12:30")
    assert answer["pct"] == pytest.approx(4.0)
    assert answer["quote_at"] == "2025-03-05T12:00:00+08:00"
    assert answer["closing"] is False
    assert "midday break" in answer["as_of"] and "HKT" in answer["as_of"]
    assert answer["data_age"] == "30 min delayed"
    assert "close" not in answer["as_of"]


def test_issue_commands_answer_with_the_close_to_close_move(
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = ["--bars", str(DEMO_BARS), "--news", str(DEMO_NEWS)]
    latest = why(capsys, "BABA", *demo)
    assert latest["as_of"] == "as of Fri 2025-03-07 16:00 EST close"
    for at in ("2025-03-05T16:00", "2025-03-05T20:00-05:00"):
        answer = why(capsys, "BABA", *demo, "--at", at)
        assert answer["pct"] == pytest.approx(8.61, abs=0.01), at
        assert answer["cause"] in {"macro", "sector"}
    during = why(capsys, "BABA", *demo, "--at", "2025-03-05T12:50-05:00")
    assert during["as_of"].startswith("as of Tue 2025-03-04 16:00 EST close")
    assert "no price yet from the session under way" in during["as_of"]


def test_why_console_text_names_the_close(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["why", "BABA", "--bars", str(DEMO_BARS), "--at", "2025-03-05T16:00"])
    out = capsys.readouterr().out
    assert code == 0
    assert "BABA +8.6 %" in out and "as of Wed 2025-03-05 16:00 EST close" in out


def test_why_refusal_is_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, [answer] = run_json(capsys, "why", "NOPE", "--bars", str(DEMO_BARS))
    assert code == 1 and answer["ok"] is False and "NOPE" in answer["text"]


# ------------------------------------------------------------------ replays


def test_daily_replay_alerts_at_the_real_close_with_real_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    demo = ["--bars", str(DEMO_BARS), "--news", str(DEMO_NEWS), "--watch", "BABA,JD,TCEHY,SPY"]
    code, alerts = run_json(capsys, "replay", *demo, "--from", "2025-03-05", "--to", "2025-03-06")
    assert code == 0
    [npc] = alerts
    assert npc["at"] == "2025-03-05T16:00:00-05:00"
    assert npc["moves"] == {"BABA": 8.61, "JD": 6.86, "TCEHY": 6.55}
    assert npc["price"]["BABA"] == 141.03 and npc["previous_close"]["BABA"] == 129.85
    assert npc["threshold"] == {"BABA": 5.0, "JD": 5.0, "TCEHY": 5.0}
    assert set(npc["simulated"].values()) == {False}
    assert set(npc["data_age"].values()) == {"as of close"}
    assert set(npc["quote_at"].values()) == {"2025-03-05T16:00:00-05:00"}
    assert npc["timing_note"] is None
    # JD's results day: a +6.1 % high during the session, but it closed +0.4 %: no alert.
    assert not [a for a in alerts if a["at"].startswith("2025-03-06")]


def test_intraday_replay_alerts_at_the_crossing_bar(capsys: pytest.CaptureFixture[str]) -> None:
    code, alerts = run_json(
        capsys, "replay", *SYNTHETIC_DAY, "--watch", "BABA", "--from", "2025-03-05"
    )
    assert code == 0
    first = alerts[0]
    # The 09:33 bar's close (136.70) is the first at +5 % or more; its price is known at 09:34.
    assert first["at"] == "2025-03-05T09:34:00-05:00"
    assert first["price"]["BABA"] == 136.70
    assert first["previous_close"]["BABA"] == 129.85
    assert first["moves"]["BABA"] == pytest.approx((136.70 / 129.85 - 1) * 100, abs=0.01)
    assert first["sources"]["BABA"] == "replay (intraday bars)"
    assert first["simulated"]["BABA"] is False
    assert first["data_age"]["BABA"] == "live on the replay clock"


def test_intraday_previous_close_from_the_previous_days_last_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day_before = tmp_path / "BABA-2025-03-04.csv"
    day_before.write_text(
        "symbol,datetime,open,high,low,close,volume\n"
        "BABA,2025-03-04T15:59:00-05:00,129.90,130.00,129.80,129.85,100\n"
    )
    code, alerts = run_json(
        capsys, "replay", "--bars", str(day_before), str(SYNTHETIC), "--watch", "BABA"
    )
    assert code == 0
    assert alerts[0]["at"] == "2025-03-05T09:34:00-05:00"
    assert alerts[0]["previous_close"]["BABA"] == 129.85


def test_intraday_times_without_offset_need_a_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    naive = tmp_path / "naive.csv"
    naive.write_text(
        SYNTHETIC.read_text().replace("-05:00,", ",").replace("symbol,datetime", "symbol,datetime")
    )
    daily = str(DEMO_BARS / "BABA.csv")
    code, alerts = run_json(capsys, "replay", "--bars", daily, str(naive), "--watch", "BABA")
    assert code == 0 and not [a for a in alerts if a["at"].startswith("2025-03-05T09")]
    code, alerts = run_json(
        capsys,
        "replay",
        "--bars",
        daily,
        str(naive),
        "--watch",
        "BABA",
        "--bars-zone",
        "America/New_York",
        "--from",
        "2025-03-05",
    )
    assert alerts[0]["at"] == "2025-03-05T09:34:00-05:00"


# ------------------------------------------------------------------ the words


def _move(symbol: str, at: datetime, **kw: Any) -> Move:
    return Move(symbol, 6.0, 106.0, 100.0, at, "test", BenchmarkMove("KWEB", 5.0), **kw)


def test_age_words() -> None:
    from datetime import timedelta

    assert age_text(timedelta(seconds=30)) == "live"
    assert age_text(timedelta(minutes=15), delayed=True) == "15 min delayed"
    assert age_text(timedelta(hours=5), closing=True) == "as of close"
    assert age_text(timedelta(0), simulated=True) == "daily bar, time simulated"


def test_group_alert_says_when_prices_are_from_different_moments() -> None:
    same = datetime(2025, 3, 5, 12, 50, tzinfo=NY)
    later = datetime(2025, 3, 5, 13, 30, tzinfo=NY)
    assert spread_note([_move("BABA", same), _move("JD", same)]) == ""
    note = spread_note([_move("BABA", same), _move("JD", later)])
    assert "different times" in note and "BABA 03-05 12:50" in note and "JD 03-05 13:30" in note


def test_live_why_at_8pm_answers_from_yahoos_last_session_but_the_quote_does_not_alert(
    offline_yfinance: Any,  # noqa: F811
) -> None:
    fake = FakeYahoo()
    days = load_days()
    for sym in ("BABA", "JD", "KWEB", "SPY"):
        fake.charts[sym] = Reply.json(intraday_chart(sym, days[sym]))
    prices = YahooPrices(FakeSession(fake))
    settings = load_settings(db_url="sqlite://")
    engine = build_engine(settings)
    evening = datetime(2025, 3, 5, 20, 0, tzinfo=NY)

    reply = commands.why(engine, "BABA", prices, None, evening, hours=ExchangeHours())

    assert reply.ok and reply.data is not None
    assert reply.data["pct"] == pytest.approx(8.61, abs=0.01)
    assert reply.data["as_of"] == "as of Wed 2025-03-05 16:00 EST close"
    assert reply.data["source"] == "yfinance"
    # The same four-hour-old quote must not raise an alert: the stale rule guards alerts.
    quotes = prices.quotes(["BABA", "KWEB", "SPY"], evening)
    entry = WatchEntry("test", "c", "BABA", 5.0)
    result = engine.process_tick(quotes, [entry], {}, Store("sqlite://"), evening, None)
    assert result.deliveries == []
    assert any("s old" in s.reason or "stale" in s.reason for s in result.skips)


def _with_post_market(chart: dict[str, Any], day: str, prices: list[float]) -> dict[str, Any]:
    """CHART with synthetic 5-minute post-market bars from 16:00 on DAY (made-up prices)."""
    result = chart["chart"]["result"][0]
    cols = result["indicators"]["quote"][0]
    for k, price in enumerate(prices):
        start = datetime.fromisoformat(f"{day}T16:00").replace(tzinfo=NY)
        result["timestamp"].append(int(start.timestamp()) + k * 300)
        for key in ("open", "high", "low", "close"):
            cols[key].append(price)
        cols["volume"].append(100)
    return chart


def test_live_why_after_hours_shows_yahoos_post_market_apart(
    offline_yfinance: Any,  # noqa: F811
) -> None:
    from bot.sources.yahoo.extended import YahooWithExtendedHours

    fake = FakeYahoo()
    days = load_days()
    fake.charts["BABA"] = Reply.json(
        _with_post_market(intraday_chart("BABA", days["BABA"]), "2025-03-05", [141.2, 141.6])
    )
    for sym in ("KWEB", "SPY"):
        fake.charts[sym] = Reply.json(intraday_chart(sym, days[sym]))
    market = YahooWithExtendedHours(YahooPrices(FakeSession(fake)))
    engine = build_engine(load_settings(db_url="sqlite://"))
    evening = datetime(2025, 3, 5, 19, 0, tzinfo=NY)

    reply = commands.why(
        engine, "BABA", market, None, evening, hours=ExchangeHours(True), extended_hours=True
    )

    assert reply.data is not None and reply.ok
    assert reply.data["as_of"] == "as of Wed 2025-03-05 16:00 EST close"
    assert reply.data["price"] == pytest.approx(141.03)  # the regular close, not the post last
    ext = reply.data["extended"]
    assert ext["session"] == "post" and ext["price"] == pytest.approx(141.6)
    assert ext["reference_close"] == pytest.approx(141.03)
    assert ext["at"] == "2025-03-05T16:10:00-05:00"
    assert any(
        str(r.params.get("includePrePost")).lower() == "true" for r in fake.seen if r.is_chart
    )


def test_why_never_compares_with_a_benchmark_from_another_moment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # BABA has intraday bars; KWEB only daily ones, so at 10:00 its latest is Tuesday's close.
    bars = ["--bars", str(DEMO_BARS), str(SYNTHETIC)]
    answer = why(capsys, "BABA", *bars, "--at", "2025-03-05T10:00")
    assert answer["quote_at"] == "2025-03-05T09:36:00-05:00"
    assert answer["benchmark"] == {"symbol": "KWEB", "pct": None}
    assert answer["peers"] == {}
    at_close = why(capsys, "BABA", *bars, "--at", "2025-03-05T16:30")
    assert at_close["benchmark"]["pct"] == pytest.approx(7.13, abs=0.01)


def test_bad_intraday_rows_are_skipped_with_a_reason_and_a_bad_header_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    bad_rows = tmp_path / "bad.csv"
    bad_rows.write_text(SYNTHETIC.read_text() + "BABA,yesterday,1,1,1,1,1,synthetic\n")
    code, _ = run_json(capsys, "replay", "--bars", str(DEMO_BARS / "BABA.csv"), str(bad_rows))
    assert code == 0
    assert any(
        "bad.csv:14: skipped (datetime 'yesterday'" in r.getMessage() for r in caplog.records
    )

    no_time = tmp_path / "no_time.csv"
    no_time.write_text("symbol,when,open,high,low,close,volume\nBABA,x,1,1,1,1,1\n")
    assert main(["replay", "--bars", str(no_time)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing column(s) date" in err[0] and "datetime" in err[0]
