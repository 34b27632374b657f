"""YahooPrices and YahooNews through yfinance's real code path, against a local fake Yahoo."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yfinance as yf
import yfinance.base
import yfinance.cache
import yfinance.data
import yfinance.multi
import yfinance.scrapers.history

from bot.infra.ratelimit import TokenBucket
from bot.infra.store import Store
from bot.sources.yahoo import quotes as yahoo
from bot.sources.yahoo.news import YahooNews
from bot.sources.yahoo.quotes import (
    Backoff,
    BarPoint,
    YahooPrices,
    quote_from_points,
)
from config.loader import load_groups, load_macro_events
from handlers.models import WatchEntry
from handlers.pipeline import Engine, EngineParams, NewsProvider
from handlers.ports import QuoteProvider
from tests.conftest import SHARED_DAILY
from tests.helpers import at
from tests.yahoo_fake import (
    DAILY_FIXTURE,
    HTML_GARBAGE,
    TOO_MANY,
    EscapeGuard,
    FakeSession,
    FakeYahoo,
    Reply,
    guarded_session_factory,
    info_body,
    intraday_chart,
    load_days,
    quote_entry,
    search_body,
    search_news_item,
    ticker_news_body,
    with_close,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SYMBOLS = ["BABA", "JD", "SPY", "KWEB"]
AFTER_CLOSE = at("2025-03-05", "16:05")
CRUMB = "fAkEcRuMb0"
FIVE_MIN = timedelta(minutes=5)


class FakeClock:
    """A monotonic clock the test moves; sleeping moves it too."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def offline_yfinance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EscapeGuard]:
    """yfinance with fresh state, caches under tmp_path and no way out to the network."""
    guard = EscapeGuard()
    factory = guarded_session_factory(guard)
    for module in (yfinance.data, yfinance.multi, yfinance.base, yfinance.scrapers.history):
        monkeypatch.setattr(module, "new_session", factory)
    monkeypatch.setattr(yahoo, "_shared", factory())
    yf.set_tz_cache_location(str(tmp_path / "yf-cache"))
    monkeypatch.setattr(yfinance.cache._TzCacheManager, "_tz_cache", None)
    monkeypatch.setattr(yfinance.cache._CookieCacheManager, "_Cookie_cache", None)
    monkeypatch.setattr(yfinance.base, "_tz_info_fetch_ctr", 0)
    yfinance.data.SingletonMeta._instances.pop(yfinance.data.YfData, None)
    yahoo.forget_cached_responses()
    real_connect = socket.socket.connect

    def loopback_only(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and not isinstance(host, bytes):
            raise OSError(f"test network guard: connect to {address!r} refused")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    yield guard
    yfinance.data.SingletonMeta._instances.pop(yfinance.data.YfData, None)
    yahoo.forget_cached_responses()
    assert guard.escaped == [], "yfinance made a request on a session of its own"


@pytest.fixture
def fake() -> Iterator[FakeYahoo]:
    """The fake Yahoo serving 5-minute charts for 2025-02-27..03-05 built from daily bars."""
    server = FakeYahoo()
    days = load_days()
    for sym in SYMBOLS:
        server.charts[sym] = Reply.json(intraday_chart(sym, days[sym]))
    yield server
    server.release()
    # Calls that timed out still run; let them end before the next test resets yfinance.
    for thread in threading.enumerate():
        if thread.name.startswith("yahoo: "):
            thread.join(5.0)
            assert not thread.is_alive(), f"{thread.name} still running after the test"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def prices(fake: FakeYahoo, clock: FakeClock | None = None, **kwargs: Any) -> YahooPrices:
    clock = clock or FakeClock()
    return YahooPrices(FakeSession(fake), clock=clock, sleep=clock.sleep, **kwargs)


def our_log(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == yahoo.__name__)


# ---------------------------------------------------------------- prices


def test_one_batched_download_for_five_channels_watching_the_same_symbols(
    fake: FakeYahoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real_download = yf.download

    def counting_download(tickers: list[str], **kwargs: Any) -> Any:
        calls.append(list(tickers))
        return real_download(tickers, **kwargs)

    monkeypatch.setattr(yf, "download", counting_download)
    channels = [SYMBOLS, ["baba", "jd"], ["$BABA", "SPY"], ["KWEB", "JD"], SYMBOLS]
    watched = [sym for channel in channels for sym in channel]
    source = prices(fake)

    first = source.quotes(watched, AFTER_CLOSE)
    second = source.quotes(watched, AFTER_CLOSE)

    assert sorted(first) == sorted(SYMBOLS) == sorted(second)
    assert calls == [SYMBOLS, SYMBOLS]
    data_requests = fake.charts_for("5d")
    assert sorted(r.symbol for r in data_requests) == sorted(SYMBOLS * 2)
    # The timezone probe runs once per symbol, then comes from yfinance's on-disk cache.
    assert sorted(r.symbol for r in fake.charts_for("1d")) == sorted(SYMBOLS)
    assert all(r.params["interval"] == "5m" for r in data_requests)


def test_baba_up_8_6_percent_on_npc_day_against_the_previous_close(fake: FakeYahoo) -> None:
    quotes = prices(fake).quotes(SYMBOLS, AFTER_CLOSE)

    baba = quotes["BABA"]
    assert baba.price == pytest.approx(141.03)
    assert baba.previous_close == pytest.approx(129.85)
    assert baba.change_pct == pytest.approx(8.61, abs=0.01)
    assert baba.open == pytest.approx(134.37)
    assert baba.at == at("2025-03-05", "16:00")
    assert baba.previous_close_at == at("2025-03-04", "16:00")
    assert str(baba.at.tzinfo) == "America/New_York"  # the exchange's zone, as Yahoo gives it
    assert (baba.source, baba.stale, baba.session) == ("yfinance", False, "regular")
    changes = {s: round(q.change_pct or 0.0, 2) for s, q in quotes.items()}
    assert changes == {"BABA": 8.61, "JD": 6.86, "SPY": 1.07, "KWEB": 7.13}


def test_live_session_row_is_merged_and_the_quote_is_never_from_the_future(
    fake: FakeYahoo,
) -> None:
    days = load_days()["BABA"]
    live_at = at("2025-03-05", "13:28").replace(second=40)
    chart = intraday_chart("BABA", days, until=at("2025-03-05", "13:30"), live_trade_at=live_at)
    fake.charts["BABA"] = Reply.json(chart)
    now = live_at + timedelta(seconds=25)

    quote = prices(fake).quotes(["BABA"], now)["BABA"]

    assert quote.at == now
    assert not quote.stale
    assert quote.previous_close == pytest.approx(129.85)
    assert quote.change_pct is not None and 8.0 < quote.change_pct < 9.6


def test_old_bars_are_marked_stale(fake: FakeYahoo) -> None:
    next_morning = at("2025-03-06", "09:00")

    quote = prices(fake).quotes(["BABA"], next_morning)["BABA"]

    assert quote.stale
    assert quote.at == at("2025-03-05", "16:00")


def test_rate_limit_backs_off_and_serves_last_quotes_marked_stale(
    fake: FakeYahoo, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    source = prices(fake, clock, max_backoff_s=100.0)
    assert source.quotes(["BABA", "JD"], AFTER_CLOSE)["BABA"].stale is False
    fake.overrides = {"/v8/finance/chart/": TOO_MANY, "/v1/test/getcrumb": TOO_MANY}

    limited = source.quotes(["BABA", "JD"], AFTER_CLOSE)

    assert set(limited) == {"BABA", "JD"} and all(q.stale for q in limited.values())
    assert limited["BABA"].price == pytest.approx(141.03)
    assert source.backoff.delay_s == 60.0
    assert "rate limited (HTTP 429); no requests for 60 s" in our_log(caplog)

    seen = len(fake.seen)
    clock.now += 59
    assert all(q.stale for q in source.quotes(["BABA"], AFTER_CLOSE).values())
    assert len(fake.seen) == seen, "a call inside the backoff window reached Yahoo"
    assert "backing off 1 s more" in our_log(caplog)

    clock.now += 2
    source.quotes(["BABA"], AFTER_CLOSE)
    assert len(fake.seen) > seen
    assert source.backoff.delay_s == 100.0  # doubled, capped at max_backoff_s

    fake.overrides = {}
    clock.now += 100
    fresh = source.quotes(["BABA"], AFTER_CLOSE)
    assert fresh["BABA"].stale is False
    assert source.backoff.delay_s == 0.0


def test_rate_limit_without_earlier_quotes_returns_nothing(fake: FakeYahoo) -> None:
    fake.overrides = {"/v8/finance/chart/": TOO_MANY}
    source = prices(fake)

    assert source.quotes(SYMBOLS, AFTER_CLOSE) == {}
    assert source.backoff.remaining() == 60.0


def test_garbage_empty_and_zero_answers_skip_only_their_symbol(
    fake: FakeYahoo, caplog: pytest.LogCaptureFixture
) -> None:
    days = load_days()
    fake.charts["JD"] = Reply(200, HTML_GARBAGE, "text/html")
    fake.charts["SPY"] = Reply(200, b"")
    fake.charts["KWEB"] = Reply.json(with_close(intraday_chart("KWEB", days["KWEB"]), -1, 0.0))

    quotes = prices(fake).quotes([*SYMBOLS, "NOSUCH"], AFTER_CLOSE)

    assert list(quotes) == ["BABA"]
    log_text = our_log(caplog)
    assert "JD skipped: no price bars in Yahoo's answer (Yahoo's answer was not JSON" in log_text
    assert "SPY skipped: no price bars" in log_text
    assert "KWEB skipped: latest price from Yahoo is 0" in log_text
    assert "NOSUCH skipped: no price bars" in log_text
    assert CRUMB not in caplog.text  # yfinance's own error lines carry URLs with the crumb


def test_a_missing_last_close_falls_back_to_the_bar_before(fake: FakeYahoo) -> None:
    days = load_days()["BABA"]
    fake.charts["BABA"] = Reply.json(with_close(intraday_chart("BABA", days), -1, None))

    quote = prices(fake).quotes(["BABA"], AFTER_CLOSE)["BABA"]

    assert quote.at == at("2025-03-05", "15:55")
    # The 15:50 bar closes at 15:55, 145 of the 150 minutes from the high (141.83) to the close.
    assert quote.price == pytest.approx(141.83 - 0.80 * 145 / 150, abs=0.001)


def test_slow_yahoo_times_out_returns_nothing_and_does_not_pile_up(
    fake: FakeYahoo, caplog: pytest.LogCaptureFixture
) -> None:
    fake.delay_s = 5.0
    source = prices(fake, timeout_s=0.2)

    started = time.monotonic()
    assert source.quotes(SYMBOLS, AFTER_CLOSE) == {}
    assert time.monotonic() - started < 2.0
    assert "price download took longer than 0.2 s" in our_log(caplog)

    seen = len(fake.seen)
    assert source.quotes(SYMBOLS, AFTER_CLOSE) == {}
    assert "previous download is still running" in our_log(caplog)
    assert len(fake.seen) == seen


def test_poller_and_why_asking_at_once_download_one_at_a_time(
    fake: FakeYahoo, monkeypatch: pytest.MonkeyPatch
) -> None:
    running: list[int] = []
    overlaps: list[int] = []
    real_download = yf.download

    def tracking_download(tickers: list[str], **kwargs: Any) -> Any:
        running.append(1)
        overlaps.append(len(running))
        try:
            return real_download(tickers, **kwargs)
        finally:
            running.pop()

    monkeypatch.setattr(yf, "download", tracking_download)
    fake.delay_s = 0.02
    source = prices(fake)
    results: list[dict[str, Any]] = []
    askers = [
        threading.Thread(target=lambda: results.append(source.quotes(SYMBOLS, AFTER_CLOSE)))
        for _ in range(3)
    ]
    for thread in askers:
        thread.start()
    for thread in askers:
        thread.join(10.0)

    assert overlaps == [1, 1, 1]
    assert [sorted(r) for r in results] == [sorted(SYMBOLS)] * 3


def test_brk_dot_b_is_asked_for_as_brk_dash_b_and_bad_symbols_are_skipped(
    fake: FakeYahoo, caplog: pytest.LogCaptureFixture
) -> None:
    fake.charts["BRK-B"] = Reply.json(intraday_chart("BRK-B", load_days()["BABA"]))

    quotes = prices(fake).quotes(["brk.b", "not a ticker!"], AFTER_CLOSE)

    assert list(quotes) == ["BRK-B"]
    assert {r.symbol for r in fake.charts_for("5d")} == {"BRK-B"}
    assert "'not a ticker!' skipped" in our_log(caplog)


def test_company_names_from_fresh_tickers_failures_skipped(fake: FakeYahoo) -> None:
    fake.infos["BABA"] = Reply.json(info_body("BABA"))
    fake.infos["BRK-B"] = Reply.json(info_body("BRK-B"))
    source = prices(fake)

    names = source.company_names(["BABA", "BRK.B", "NOSUCH"])

    assert names == {"BABA": "Alibaba Group Holding Limited", "BRK-B": "Berkshire Hathaway Inc."}
    asked = len(fake.seen)
    assert source.company_names(["BABA"]) == {"BABA": "Alibaba Group Holding Limited"}
    assert len(fake.seen) == asked  # names are kept; they do not change


def test_token_bucket_spaces_out_bursts() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock, clock.sleep)

    waits = [bucket.acquire() for _ in range(4)]

    assert waits == [0.0, 0.0, pytest.approx(0.5), pytest.approx(0.5)]
    clock.now += 10
    assert bucket.acquire() == 0.0


def test_each_download_takes_a_token(fake: FakeYahoo, clock: FakeClock) -> None:
    source = prices(fake, clock, requests_per_second=0.5)

    source.quotes(["BABA"], AFTER_CLOSE)
    source.quotes(["BABA"], AFTER_CLOSE)

    assert clock.slept == [pytest.approx(2.0)]


def test_backoff_doubles_up_to_its_cap() -> None:
    clock = FakeClock()
    backoff = Backoff(300.0, clock)

    assert [backoff.engage() for _ in range(4)] == [60.0, 120.0, 240.0, 300.0]
    backoff.reset()
    assert backoff.remaining() == 0.0


def test_bad_settings_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="not an intraday interval"):
        YahooPrices(interval="1d")
    with pytest.raises(ValueError, match="requests_per_second"):
        YahooPrices(requests_per_second=0)
    with pytest.raises(ValueError, match="count"):
        YahooNews(count=0)


def test_sessions_of_a_market_that_never_closes_are_utc_days() -> None:
    start = datetime(2025, 3, 4, 20, 0, tzinfo=UTC)
    points = [
        BarPoint(start + timedelta(hours=h), None, 100.0 + h) for h in range(0, 30)
    ]  # 20:00 on the 4th to 01:00 on the 6th, hourly, no gaps
    now = points[-1].start + timedelta(minutes=30)

    quote = quote_from_points("BTC-USD", points, now, timedelta(hours=1), timedelta(hours=2))

    assert not isinstance(quote, str)
    assert quote.previous_close == 100.0 + 27  # last bar of 2025-03-05 (23:00 UTC)
    assert quote.price == 100.0 + 29


def test_a_single_session_gives_no_previous_close() -> None:
    start = datetime(2025, 3, 5, 14, 30, tzinfo=UTC)
    points = [BarPoint(start + timedelta(minutes=5 * k), 10.0, 10.0 + k) for k in range(78)]

    result = quote_from_points("NEWCO", points, start + timedelta(hours=7), FIVE_MIN, FIVE_MIN)

    assert result == "only one session in Yahoo's answer, so no previous close"


def test_sources_satisfy_the_core_protocols(fake: FakeYahoo) -> None:
    market: QuoteProvider = prices(fake)
    news: NewsProvider = YahooNews(FakeSession(fake))
    assert market and news


# ---------------------------------------------------------------- recorded Yahoo answers


def _recorded(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text(encoding="utf-8"))["response"]["bodyJson"]


def test_recorded_yahoo_charts_that_cannot_give_a_quote_are_skipped(
    shared_yahoo: Path, fake: FakeYahoo, caplog: pytest.LogCaptureFixture
) -> None:
    # A real daily chart (the wrong shape for a 5-minute request) and a real weekend 1m chart
    # (no bars at all): both end as a skipped symbol with yfinance's reason, never a crash.
    fake.charts["BABA"] = Reply.json(
        _recorded(shared_yahoo, "chart-BABA-2020-01-01-to-2020-01-03.json")
    )
    weekend = "chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.json"
    fake.charts["AAPL"] = Reply.json(_recorded(shared_yahoo, weekend))

    quotes = prices(fake).quotes(["BABA", "AAPL", "SPY"], AFTER_CLOSE)

    assert list(quotes) == ["SPY"]
    # A daily chart answered to a 5-minute request lacks tradingPeriods: yfinance fails on it.
    assert "BABA skipped: no price bars in Yahoo's answer (KeyError('tradingPeriods'))" in (
        our_log(caplog)
    )
    assert "AAPL skipped: no price bars" in our_log(caplog)


def test_fixture_prices_match_the_real_daily_data() -> None:
    if not SHARED_DAILY.is_dir():
        pytest.skip(f"real price data not found at {SHARED_DAILY}")
    real: dict[tuple[str, str], float] = {}
    for path in SHARED_DAILY.glob("*.csv"):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            cols = line.split(",")
            real[(cols[0], cols[1])] = float(cols[5])
    for sym, bars in load_days(DAILY_FIXTURE).items():
        for bar in bars:
            assert bar.close == pytest.approx(real[(sym, bar.day.isoformat())], abs=0.006)


# ---------------------------------------------------------------- news

SINCE = at("2025-03-04", "16:00")
UNTIL = at("2025-03-05", "16:00")
SHARED_ID = "0f6d1c3e-0000-4000-8000-000000000001"


def _nested(uid: str, title: str, when: datetime, tickers: list[str]) -> dict[str, Any]:
    """A Ticker.news item in yfinance 1.x's nested shape (sample text written for the tests)."""
    iso = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": uid,
        "content": {
            "id": uid,
            "contentType": "STORY",
            "title": title,
            "description": "",
            "summary": f"Sample summary for: {title}",
            "pubDate": iso,
            "displayTime": iso,
            "provider": {"displayName": "Sample Wire", "url": "https://example.com/"},
            "canonicalUrl": {"url": f"https://example.com/news/{uid}", "site": "finance"},
            "clickThroughUrl": {"url": f"https://example.com/news/{uid}"},
            "finance": {"stockTickers": [{"symbol": t} for t in tickers]},
        },
    }


@pytest.fixture
def news_fake(fake: FakeYahoo) -> FakeYahoo:
    fake.ticker_news["BABA"] = Reply.json(
        ticker_news_body(
            [
                _nested(
                    SHARED_ID,
                    "Sample: China internet stocks climb",
                    at("2025-03-05", "10:05"),
                    ["BABA", "JD"],
                ),
                _nested(
                    "n-2",
                    "Sample: Alibaba opens a new data centre",
                    at("2025-03-05", "08:00"),
                    ["BABA"],
                ),
                _nested(
                    "n-old", "Sample: an item from last week", at("2025-02-26", "09:00"), ["BABA"]
                ),
            ]
        )
    )
    fake.searches["BABA"] = Reply.json(
        search_body(
            [
                search_news_item(
                    SHARED_ID,
                    "Sample: China internet stocks climb",
                    at("2025-03-05", "10:05"),
                    ["BABA"],
                ),
                search_news_item(
                    "s-2",
                    "Sample: Hong Kong shares rally at the open",
                    at("2025-03-05", "09:40"),
                    ["BABA"],
                ),
            ],
            "BABA",
        )
    )
    return fake


def test_news_in_both_shapes_parsed_merged_and_windowed(news_fake: FakeYahoo) -> None:
    result = YahooNews(FakeSession(news_fake)).search("BABA", SINCE, UNTIL)

    assert result.ok and result.error == ""
    assert result.source == "Yahoo Finance ticker news + search"
    titles = [i.title for i in result.items]
    assert titles == [
        "Sample: China internet stocks climb",
        "Sample: Hong Kong shares rally at the open",
        "Sample: Alibaba opens a new data centre",
    ]
    nested = result.items[0]
    assert (nested.publisher, nested.related) == ("Sample Wire", ("BABA", "JD"))
    assert nested.url == f"https://example.com/news/{SHARED_ID}"
    assert nested.published == at("2025-03-05", "10:05")
    flat = result.items[1]
    assert (flat.publisher, flat.url, flat.related) == (
        "Sample Daily",
        "https://example.org/s-2",
        ("BABA",),
    )
    news_posts = [r for r in news_fake.seen if r.path == "/xhr/ncp"]
    assert json.loads(news_posts[0].body or b"{}")["serviceConfig"] == {
        "snippetCount": 20,
        "s": ["BABA"],
    }


def test_each_news_search_asks_yahoo_again(news_fake: FakeYahoo) -> None:
    source = YahooNews(FakeSession(news_fake))

    source.search("BABA", SINCE, UNTIL)
    source.search("BABA", SINCE, UNTIL)

    assert sum(r.path == "/v1/finance/search" for r in news_fake.seen) == 2
    assert sum(r.path == "/xhr/ncp" for r in news_fake.seen) == 2


def test_news_failure_is_reported_not_read_as_no_news(fake: FakeYahoo) -> None:
    fake.overrides = {
        "/xhr/ncp": Reply(500, HTML_GARBAGE, "text/html"),
        "/v1/finance/search": Reply(500, HTML_GARBAGE, "text/html"),
    }

    result = YahooNews(FakeSession(fake)).search("BABA", SINCE, UNTIL)

    assert not result.ok and result.items == ()
    assert "ticker news: Yahoo's answer was not JSON" in result.error
    assert "search: Yahoo's answer was not JSON" in result.error


def test_an_empty_ticker_feed_does_not_rule_news_out_when_search_failed(
    fake: FakeYahoo,
) -> None:
    fake.overrides = {"/v1/finance/search": Reply.json({"finance": {"error": "Internal"}}, 500)}

    result = YahooNews(FakeSession(fake)).search("BABA", SINCE, UNTIL)

    assert not result.ok
    assert "search: Yahoo's search answer has no news list" in result.error


def test_one_working_feed_is_enough_and_the_source_says_which(news_fake: FakeYahoo) -> None:
    news_fake.overrides = {"/v1/finance/search": Reply(502, HTML_GARBAGE, "text/html")}

    result = YahooNews(FakeSession(news_fake)).search("BABA", SINCE, UNTIL)

    assert result.ok and len(result.items) == 2
    assert result.source.startswith("Yahoo Finance ticker news (search failed:")


def test_rate_limited_news_fails_and_backs_off(news_fake: FakeYahoo) -> None:
    news_fake.overrides = {"/xhr/ncp": TOO_MANY, "/v1/finance/search": TOO_MANY}
    clock = FakeClock()
    source = YahooNews(FakeSession(news_fake), clock=clock)

    first = source.search("BABA", SINCE, UNTIL)
    seen = len(news_fake.seen)
    second = source.search("BABA", SINCE, UNTIL)

    assert not first.ok and "rate limited by Yahoo (HTTP 429)" in first.error
    assert not second.ok and "retrying in 60 s" in second.error
    assert len(news_fake.seen) == seen


def test_news_symbols_are_normalised_and_bad_ones_refused(fake: FakeYahoo) -> None:
    source = YahooNews(FakeSession(fake))

    brk = source.search("brk.b", SINCE, UNTIL)
    bad = source.search("no such thing!", SINCE, UNTIL)

    assert brk.symbol == "BRK-B" and brk.ok
    assert [r.params["q"] for r in fake.seen if r.path == "/v1/finance/search"] == ["BRK-B"]
    assert not bad.ok and "not a valid ticker" in bad.error


def test_recorded_search_news_is_parsed(shared_yahoo: Path, fake: FakeYahoo) -> None:
    fake.searches["BABA"] = Reply.json(_recorded(shared_yahoo, "search-BABA.json"))
    wide = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC))

    result = YahooNews(FakeSession(fake)).search("BABA", *wide)

    assert result.ok
    assert len(result.items) == 4
    assert all(i.title and i.publisher and i.url for i in result.items)
    assert all(i.published.tzinfo is not None for i in result.items)


def test_slow_news_times_out_as_a_failure(fake: FakeYahoo) -> None:
    fake.delay_s = 5.0
    started = time.monotonic()

    result = YahooNews(FakeSession(fake), timeout_s=0.2).search("BABA", SINCE, UNTIL)

    assert not result.ok and "took longer than 0.2 s" in result.error
    assert time.monotonic() - started < 2.0


# ---------------------------------------------------------------- into the core


def test_yahoo_quotes_and_news_drive_the_npc_day_group_alert(news_fake: FakeYahoo) -> None:
    engine = Engine(load_groups(), load_macro_events(), EngineParams(default_threshold_pct=5.0))
    session = FakeSession(news_fake)
    market = YahooPrices(session)
    watch = [WatchEntry("test", "c1", s) for s in ["BABA", "JD", "SPY"]]

    quotes = market.quotes([*(e.symbol for e in watch), "KWEB"], AFTER_CLOSE)
    result = engine.process_tick(
        quotes, watch, {}, Store("sqlite://"), AFTER_CLOSE, YahooNews(session)
    )

    assert len(result.deliveries) == 1
    alert = result.deliveries[0].alert
    assert set(alert.symbols) == {"BABA", "JD"}
    assert alert.cause in ("macro", "sector")
    assert alert.benchmark.symbol == "KWEB"
    assert alert.benchmark.pct == pytest.approx(7.13, abs=0.01)
    assert "cn-npc-2025-opening" in [e.id for e in alert.context]
    assert alert.source == "yfinance"


def test_session_path_feeds_a_live_chart_without_another_request(fake: FakeYahoo) -> None:
    from bot.charts import ChartMaker
    from config.loader import load_groups

    source = prices(fake)
    source.quotes(SYMBOLS, AFTER_CLOSE)
    seen = len(fake.seen)
    path = source.session_path("BABA", AFTER_CLOSE)
    assert path[0][1] == pytest.approx(129.85)  # starts at the previous close
    assert path[-1][1] / path[0][1] - 1 == pytest.approx(0.0861, abs=0.0005)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(path))
    assert source.session_path("BABA", at("2025-03-05", "10:00"))[-1][0] <= at(
        "2025-03-05", "10:00"
    )
    assert source.session_path("NOPE", AFTER_CLOSE) == []
    png = ChartMaker(source, load_groups(), 5.0, "America/New_York", "yfinance").for_symbol(
        "BABA", AFTER_CLOSE
    )
    assert png is not None and png.startswith(b"\x89PNG")
    assert len(fake.seen) == seen


def test_daily_returns_for_zscores_leave_out_the_running_session(fake: FakeYahoo) -> None:
    from tests.yahoo_fake import daily_chart

    days = load_days()
    for sym in SYMBOLS:
        fake.daily_charts[sym] = Reply.json(daily_chart(sym, days[sym]))
    source = prices(fake)
    during_npc_day = at("2025-03-05", "13:30")
    returns = source.daily_returns(SYMBOLS, before=during_npc_day)
    closes = [b.close for b in days["BABA"] if b.day.isoformat() < "2025-03-05"]
    expected = [(b / a - 1) * 100 for a, b in itertools.pairwise(closes)]
    assert returns["BABA"] == pytest.approx(expected)
    assert len(returns["BABA"]) == len(days["BABA"]) - 2  # the NPC day itself is not history
    whole = source.daily_returns(["BABA"])
    assert whole["BABA"][-1] == pytest.approx(8.61, abs=0.01)
    daily = [r for r in fake.seen if r.is_chart and r.params.get("interval") == "1d"]
    assert {r.params.get("range") for r in daily} >= {"3mo"}


def test_daily_history_failure_keeps_quiet_and_returns_nothing(fake: FakeYahoo) -> None:
    fake.overrides = {"/v8/finance/chart/": Reply.text("<html>oops</html>", 200, "text/html")}
    assert prices(fake).daily_returns(["BABA"]) == {}


# ---------------------------------------------------------------- batched v7 quotes

NPC_CLOSE = {"BABA": (141.03, 129.85), "JD": (43.76, 40.95), "SPY": (583.06, 576.86)}


def serve_quotes(fake: FakeYahoo, when: datetime = AFTER_CLOSE, **states: str) -> None:
    for sym, (price, prev) in NPC_CLOSE.items():
        fake.quotes[sym] = quote_entry(sym, price, prev, when, states.get(sym, "REGULAR"))


def test_batched_quotes_one_request_per_batch_and_a_missing_symbol_is_a_logged_skip(
    fake: FakeYahoo, caplog: pytest.LogCaptureFixture
) -> None:
    serve_quotes(fake)
    source = prices(fake, batch_size=2)

    got = source.batch_quotes(["BABA", "jd", "KWEB", "SPY"], AFTER_CLOSE)

    assert sorted(got) == ["BABA", "JD", "SPY"]
    assert got["BABA"].change_pct == pytest.approx(8.61, abs=0.01)
    assert (got["BABA"].source, got["BABA"].session, got["BABA"].stale) == (
        "yahoo-quote",
        "regular",
        False,
    )
    asked = [r.params["symbols"] for r in fake.quote_requests()]
    assert asked == ["BABA,JD", "KWEB,SPY"]
    assert all(r.params.get("crumb") == CRUMB for r in fake.quote_requests())
    assert not any(r.is_chart for r in fake.seen), "a quote cycle downloaded a chart"
    assert "KWEB skipped: not in Yahoo's answer" in our_log(caplog)


def test_a_429_mid_cycle_stops_it_keeps_the_fresh_half_and_serves_the_rest_stale(
    fake: FakeYahoo, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    serve_quotes(fake)
    source = prices(fake, clock, batch_size=1)
    assert len(source.batch_quotes(["BABA", "JD", "SPY"], AFTER_CLOSE)) == 3
    fake.quote_limit_after = len(fake.quote_requests()) + 1  # the next batch passes, then 429

    got = source.batch_quotes(["BABA", "JD", "SPY"], AFTER_CLOSE)

    assert got["BABA"].stale is False
    assert got["JD"].stale and got["SPY"].stale
    assert source.backoff.delay_s == 60.0
    asked = [r.params["symbols"] for r in fake.quote_requests()][3:]
    assert "SPY" not in asked, "the cycle went on asking after a 429"
    assert "rate limited (HTTP 429); no requests for 60 s" in our_log(caplog)
    before = len(fake.seen)
    assert all(q.stale for q in source.batch_quotes(["BABA"], AFTER_CLOSE).values())
    assert len(fake.seen) == before


def test_a_symbol_in_its_pre_market_is_judged_against_the_last_close(fake: FakeYahoo) -> None:
    close = at("2025-03-04", "16:00")
    pre_at = at("2025-03-05", "08:40")
    fake.quotes["BABA"] = quote_entry("BABA", 129.85, 127.40, close, "PRE", pre=(138.20, pre_at))
    quote = prices(fake).batch_quotes(["BABA"], pre_at + timedelta(minutes=1))["BABA"]

    assert (quote.session, quote.price, quote.previous_close) == ("pre", 138.20, 129.85)
    assert quote.at == pre_at and quote.previous_close_at == close
    assert quote.change_pct == pytest.approx(6.43, abs=0.01)
    assert quote.open is None and not quote.stale


def test_after_hours_prices_are_post_market_and_old_post_prints_do_not_win(
    fake: FakeYahoo,
) -> None:
    close = at("2025-03-05", "16:00")
    fake.quotes["BABA"] = quote_entry(
        "BABA", 141.03, 129.85, close, "POST", post=(139.0, at("2025-03-05", "17:10"))
    )
    # A post-market print from the day before the regular close: older, so ignored.
    fake.quotes["JD"] = quote_entry(
        "JD", 43.76, 40.95, close, "REGULAR", post=(41.0, at("2025-03-04", "19:00"))
    )
    got = prices(fake).batch_quotes(["BABA", "JD"], at("2025-03-05", "17:11"))

    assert (got["BABA"].session, got["BABA"].previous_close) == ("post", 141.03)
    assert (got["JD"].session, got["JD"].price) == ("regular", 43.76)


def test_a_delisted_symbol_is_skipped_or_stale_never_alerted(
    fake: FakeYahoo, caplog: pytest.LogCaptureFixture
) -> None:
    serve_quotes(fake)
    fake.quotes["OLDCO"] = quote_entry("OLDCO", 0.42, 0.40, at("2024-06-03", "16:00"), "CLOSED")
    fake.quotes["GONE"] = {"symbol": "GONE", "quoteType": "NONE", "marketState": "CLOSED"}

    got = prices(fake).batch_quotes(["BABA", "OLDCO", "GONE", "NOSUCH"], AFTER_CLOSE)

    assert set(got) == {"BABA", "OLDCO"}
    assert got["OLDCO"].stale  # months old: detect refuses it
    log_text = our_log(caplog)
    assert "GONE skipped: no regular market price or time" in log_text
    assert "NOSUCH skipped: not in Yahoo's answer" in log_text


def test_garbage_future_and_bad_numbers_skip_only_what_they_touch(
    fake: FakeYahoo, caplog: pytest.LogCaptureFixture
) -> None:
    serve_quotes(fake)
    fake.quotes["JD"]["regularMarketTime"] = int((AFTER_CLOSE + timedelta(hours=3)).timestamp())
    fake.quotes["SPY"]["regularMarketPreviousClose"] = "n/a"
    got = prices(fake).batch_quotes(["BABA", "JD", "SPY"], AFTER_CLOSE)
    assert set(got) == {"BABA"}
    assert "JD skipped: quote time" in our_log(caplog)

    fake.overrides = {"/v7/finance/quote": Reply(200, HTML_GARBAGE, "text/html")}
    assert prices(fake).batch_quotes(["BABA"], AFTER_CLOSE) == {}
    assert "not JSON" in our_log(caplog)
    fake.overrides = {"/v7/finance/quote": Reply.json({"quoteResponse": {"result": None}})}
    assert prices(fake).batch_quotes(["BABA"], AFTER_CLOSE) == {}
    assert "has no result list" in our_log(caplog)


def test_recorded_quote_answer_change_is_in_percent_not_a_fraction(
    shared_yahoo: Path, fake: FakeYahoo
) -> None:
    recorded = json.loads((shared_yahoo / "quote-AAPL-BABA.json").read_text())
    body = recorded["response"]["bodyJson"]
    for entry in body["quoteResponse"]["result"]:
        fake.quotes[entry["symbol"]] = entry
    asked_at = datetime.fromtimestamp(body["quoteResponse"]["result"][1]["postMarketTime"], UTC)

    got = prices(fake).batch_quotes(["AAPL", "BABA"], asked_at + timedelta(minutes=1))

    baba = body["quoteResponse"]["result"][1]
    assert got["BABA"].session == "post"  # recorded after hours: the post price is newest
    assert got["BABA"].price == baba["postMarketPrice"]
    regular = baba["regularMarketPrice"] / baba["regularMarketPreviousClose"] - 1
    assert regular * 100 == pytest.approx(baba["regularMarketChangePercent"], abs=0.001)
    assert set(got) == {"AAPL", "BABA"}


def test_a_poll_of_400_symbols_is_three_quote_requests_and_no_chart(fake: FakeYahoo) -> None:
    symbols = [f"S{i:03d}" for i in range(400)]
    for sym in symbols:
        fake.quotes[sym] = quote_entry(sym, 101.0, 100.0, AFTER_CLOSE)
    source = prices(fake)

    got = source.batched().quotes(symbols, AFTER_CLOSE)

    assert len(got) == 400
    assert [len(r.params["symbols"].split(",")) for r in fake.quote_requests()] == [150, 150, 100]
    assert not any(r.is_chart for r in fake.seen)


def test_charts_on_demand_download_one_chart_for_an_alerted_symbol_once(
    fake: FakeYahoo, clock: FakeClock
) -> None:
    serve_quotes(fake)
    source = prices(fake, clock, charts_on_demand=True)
    source.batch_quotes(["BABA", "JD"], AFTER_CLOSE)
    assert not fake.charts_for("5d")

    path = source.session_path("BABA", AFTER_CLOSE)
    source.session_path("BABA", AFTER_CLOSE)

    assert path and path[0][1] == pytest.approx(129.85)
    assert [r.symbol for r in fake.charts_for("5d")] == ["BABA"]
    clock.now += 301
    source.session_path("BABA", AFTER_CLOSE)
    assert [r.symbol for r in fake.charts_for("5d")] == ["BABA", "BABA"]


def test_bad_batch_size_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        YahooPrices(batch_size=0)


def test_daily_history_of_many_symbols_keeps_to_one_token_per_request(
    fake: FakeYahoo, clock: FakeClock
) -> None:
    from tests.yahoo_fake import daily_chart

    days = load_days()
    symbols = [f"H{i:03d}" for i in range(120)]
    for sym in symbols:
        fake.daily_charts[sym] = Reply.json(daily_chart(sym, days["BABA"]))
        fake.charts[sym] = fake.charts["BABA"]  # yfinance's time-zone probe asks this one
    source = prices(fake, clock, requests_per_second=10)

    returns = source.daily_returns(symbols)

    assert len(returns) == 120
    assert sum(clock.slept) == pytest.approx((120 - 10) / 10)  # the bucket's burst, then 10/s
