"""Evidence in the core and in replays: merged once, honest about gaps, macro context found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.evidence import Gatherer
from bot.infra.store import Store
from bot.sources.recorded import RecordedSource
from config.loader import load_groups
from handlers.evidence import (
    NOT_CHECKED,
    Evidence,
    SourceScope,
    SourceSearch,
    describe_evidence,
    merge_items,
)
from handlers.models import Alert, NewsItem, NewsSearch, WatchEntry
from handlers.pipeline import Engine, EngineParams
from tests.conftest import ROOT
from tests.helpers import at, quotes
from tests.local_http import closed_port

CHINA = {"BABA", "JD", "TCEHY", "PDD", "BIDU"}
SINCE, UNTIL = at("2025-03-04", "16:00"), at("2025-03-05", "16:00")


def _search(items: tuple[NewsItem, ...] = (), ok: bool = True, error: str = "") -> NewsSearch:
    return NewsSearch("BABA", SINCE, UNTIL, items, "test", ok=ok, error=error)


def test_the_same_story_from_two_sources_counts_once() -> None:
    when = at("2025-03-05", "09:00")
    a = NewsItem("Sample: Beijing keeps its growth goal", when, url="https://a.example/s?x=1")
    same_url = NewsItem("Sample: a different wording", when, url="https://www.a.example/s")
    same_title = NewsItem("sample:  BEIJING keeps its growth goal!", when, lead="Sample lead.")
    other = NewsItem("Sample: something else", when - timedelta(hours=1))

    merged = merge_items([a, same_url, same_title, other])

    assert [i.title for i in merged] == [a.title, other.title]
    assert merged[0].lead == "Sample lead."


def test_no_company_news_is_said_only_when_every_company_source_answered() -> None:
    good = SourceSearch("Yahoo news", "company", _search())
    down = SourceSearch("Yahoo news", "company", _search(ok=False, error="cannot connect"))
    off = SourceSearch("SEC filings", "company", _search(ok=False, error=f"{NOT_CHECKED}: no UA"))
    market_down = SourceSearch("market news", "market", _search(ok=False, error="HTTP 500"))

    all_ok = describe_evidence(Evidence.of("BABA", SINCE, UNTIL, [good]), 0)
    gaps = describe_evidence(Evidence.of("BABA", SINCE, UNTIL, [down, off]), 0)
    macro_gap = Evidence.of("BABA", SINCE, UNTIL, [good, market_down])

    assert all_ok.startswith("no company-specific news: no items at all from Yahoo news since")
    assert gaps.startswith("Yahoo news unreachable (cannot connect); SEC filings not checked")
    assert "company news cannot be ruled out" in gaps and "no company-specific" not in gaps
    assert macro_gap.company_ruled_out  # market news informs context, not the 'no news' claim
    assert "market news unreachable (HTTP 500)" in describe_evidence(macro_gap, 0)
    assert describe_evidence(None, 0).startswith("news was not searched")


def replay_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:  # type: ignore[type-arg]
    code = main(["replay", *args, "--json"])
    out = capsys.readouterr().out
    assert code == 0
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_a_replay_without_news_calls_its_causes_unverified(
    shared_daily: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--bars", str(shared_daily), "--threshold", "5", "--from", "2025-03-05"]
    [jd] = [a for a in replay_json(capsys, *args, "--to", "2025-03-05") if "JD" in a["symbols"]]
    assert jd["verified"] is False and jd["cause"] in {"sector", "macro", "unexplained"}

    assert main(["replay", *args, "--to", "2025-03-05"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "(unverified)" in out and "news was not searched" in out
    assert "no company-specific news" not in out


# Macro headlines written for this test; nothing in them names a company.
MACRO_NEWS = [
    {
        "id": "own-npc-1",
        "title": "Beijing keeps its growth goal near 5% as the National People's Congress opens",
        "publisher": "Sample Wire",
        "link": "https://news.example/own-npc-1",
        "providerPublishTime": "2025-03-05T02:40:00Z",
        "summary": "Sample summary: the premier's report kept the target and widened the deficit.",
        "relatedTickers": ["BABA", "JD", "PDD", "BIDU", "TCEHY", "KWEB"],
    },
    {
        "id": "own-fed-1",
        "title": "Treasury yields slip as traders weigh the Fed's next rate cut",
        "publisher": "Sample Wire",
        "providerPublishTime": "2025-02-26T15:00:00Z",
        "relatedTickers": ["SPY"],
    },
]


def _empty_events(tmp_path: Path) -> Path:
    path = tmp_path / "no-events.yaml"
    path.write_text("events: []\n")
    return path


def test_npc_day_context_is_found_in_the_news_with_no_macro_file(
    shared_daily: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    news = tmp_path / "macro-news.jsonl"
    news.write_text("\n".join(json.dumps(i) for i in MACRO_NEWS) + "\n")
    args = ["--bars", str(shared_daily), "--threshold", "5", "--news", str(news)]
    args += ["--macro-events", str(_empty_events(tmp_path)), "--watch", ",".join(sorted(CHINA))]

    alerts = replay_json(capsys, *args)

    [npc] = [a for a in alerts if a["at"].startswith("2025-03-05")]
    assert set(npc["symbols"]) == CHINA and npc["cause"] == "macro" and npc["verified"]
    first = npc["context"][0]
    assert first["title"] == MACRO_NEWS[0]["title"] and first["id"].startswith("found:")
    assert first["source"] == "Sample Wire" and first["url"] == MACRO_NEWS[0]["link"]
    assert first["at"].startswith("2025-03-05T02:40")
    assert not any(a["context"] for a in alerts if not a["at"].startswith("2025-03-0"))


def test_recorded_evidence_replays_filings_results_and_market_news(
    shared_daily: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        {
            "source": "market news",
            "scope": "market",
            "symbols": [],
            "published": "2025-03-05T02:40:00+00:00",
            "title": MACRO_NEWS[0]["title"],
            "url": MACRO_NEWS[0]["link"],
            "publisher": "Sample Wire",
        },
        {
            "source": "earnings calendar",
            "symbols": ["JD"],
            "published": "2025-03-06T06:00:00-05:00",
            "title": "JD released its results: EPS 4.42 against 4 expected",
            "evidence": "earnings",
        },
        {
            "source": "SEC filings",
            "symbols": ["JD"],
            "published": "2025-03-06T06:31:00-05:00",
            "title": "JD.com, Inc. filed a 6-K",
            "evidence": "filing",
            "form": "6-K",
        },
        {"source": "broken", "title": "no time"},
    ]
    recorded = tmp_path / "evidence.jsonl"
    recorded.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n")
    args = ["--bars", str(shared_daily), "--threshold", "5", "--evidence", str(recorded)]
    args += ["--macro-events", str(_empty_events(tmp_path)), "--from", "2025-03-05"]

    alerts = replay_json(capsys, *args, "--to", "2025-03-06")

    [npc] = [a for a in alerts if a["at"].startswith("2025-03-05") and "BABA" in a["symbols"]]
    assert npc["cause"] == "macro" and npc["context"][0]["title"] == MACRO_NEWS[0]["title"]
    # JD closed +0.4 % on its results day: watched at 0.3 % so that the close alerts.
    jd_args = ["--bars", str(shared_daily), "--threshold", "0.3", "--evidence", str(recorded)]
    jd_args += ["--watch", "JD", "--from", "2025-03-06", "--to", "2025-03-06"]
    [jd] = replay_json(capsys, *jd_args)
    assert jd["cause"] == "company"
    assert {n["kind"] for n in jd["news"] if n["symbol_checked"] == "JD"} == {"company"}


def test_evidence_command_with_every_source_unreachable(tmp_path: Path) -> None:
    closed = closed_port()
    env = {
        **os.environ,
        "MARKETBOT_SEC_USER_AGENT": "Sample Operator ops@example.com",
        "MARKETBOT_SEC_WWW_URL": closed,
        "MARKETBOT_SEC_DATA_URL": closed,
        "MARKETBOT_EVIDENCE_DEADLINE_SECONDS": "8",
        "HOME": str(tmp_path),  # yfinance's caches land here, not in the user's home
    }
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        env[var] = closed  # Yahoo's hosts through a proxy that is not there
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    command = [sys.executable, "-m", "bot.cli", "evidence", "BABA", "--json"]
    done = subprocess.run(
        [*command, "--at", "2025-03-05T16:00-05:00"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    answer = json.loads(done.stdout)
    assert set(answer) == {"symbol", "since", "until", "sources", "verdict"}
    sources = {s["name"]: s for s in answer["sources"]}
    assert set(sources) >= {"Yahoo news", "SEC filings", "earnings calendar", "market news"}
    assert set(sources) >= {"economic calendar", "article leads"}
    for source in answer["sources"]:
        assert source["ok"] is False and source["error"], source
        assert set(source) == {"name", "ok", "items", "error"}
    assert sources["SEC filings"]["error"] == "cannot connect to the SEC"
    assert "company news cannot be ruled out" in answer["verdict"]
    assert "Yahoo news unreachable" in answer["verdict"]


def _engine_alert(sources: list[RecordedSource]) -> Alert:
    engine = Engine(load_groups(), [], EngineParams(default_threshold_pct=5.0))
    now = at("2025-03-05", "16:00")
    moves = {"BABA": 8.6, "JD": 6.9, "PDD": 6.0, "KWEB": 7.1, "SPY": 1.1}
    watch = [WatchEntry("test", "c1", s) for s in ("BABA", "JD", "PDD")]
    gatherer = Gatherer(sources, deadline_s=2.0)
    result = engine.process_tick(quotes(moves, now), watch, {}, Store("sqlite://"), now, gatherer)
    [delivery] = result.deliveries
    return delivery.alert


def _recorded(name: str, scope: SourceScope, *items: NewsItem) -> RecordedSource:
    return RecordedSource(name, scope, [(frozenset(), i) for i in items])


def test_benchmark_news_ranks_first_and_a_release_alone_is_only_context() -> None:
    when = at("2025-03-05", "08:00")
    own = NewsItem("Sample: stocks rise as inflation cools", when, id="own")
    market = NewsItem("Sample: China stimulus pledge lifts Hong Kong stocks", when, id="mkt")
    release = NewsItem(
        "CN Sample CPI (Feb): actual 0.1, expected 0.3", when, id="econ:1", evidence="economic"
    )
    company = _recorded("Yahoo news", "company")
    company.items = [(frozenset({"BABA"}), own)]

    alert = _engine_alert([company, _recorded("market news", "market", market)])
    only_release = _engine_alert(
        [_recorded("Yahoo news", "company"), _recorded("economic calendar", "market", release)]
    )
    nothing = _engine_alert([_recorded("Yahoo news", "company")])

    assert alert.cause == "macro" and alert.verified
    assert [c.title for c in alert.context][:1] == [market.title]
    assert alert.context[0].at == when and alert.context[0].id == "found:mkt"
    assert only_release.cause == "sector" and [c.title for c in only_release.context] == [
        release.title
    ]
    assert nothing.cause == "sector" and nothing.context == ()


def test_unknown_evidence_source_names_are_refused_with_the_choices() -> None:
    from config.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="unknown twitter; choose from yahoo_news"):
        load_settings(evidence_sources=["yahoo_news", "twitter"])
    assert load_settings(evidence_sources=[]).evidence_sources == []


def test_evidence_table_names_each_source_and_keeps_headlines_inert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    news = tmp_path / "news.jsonl"
    item = {
        "title": "Sample: [bold red]China[/bold red] stocks rally as Beijing keeps its target",
        "providerPublishTime": "2025-03-05T02:40:00Z",
        "relatedTickers": ["BABA"],
    }
    news.write_text(json.dumps(item) + "\n")

    code = main(["evidence", "BABA", "--news", str(news), "--at", "2025-03-05T16:00-05:00"])

    out = capsys.readouterr().out
    assert code == 0
    assert "[/bold" in out  # shown as typed, not read as markup
    flat = " ".join(out.split())
    assert "news file news.jsonl" in flat and "no company-specific news in 1 item" in flat
    assert "EST" in flat  # the window in the exchange's own time

    assert main(["evidence", "BABA", "--news", str(news), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in answer["sources"]] == ["news file news.jsonl"]
