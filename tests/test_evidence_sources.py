"""Each evidence source against a fake speaking its real protocol, and the gatherer over them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import wait
from datetime import UTC, datetime, timedelta

import pytest

from bot.evidence import Gatherer
from bot.sources.article import ArticleLeads, needs_lead
from bot.sources.earnings import EarningsCalendar
from bot.sources.econ_calendar import EconomicCalendar
from bot.sources.edgar import EdgarFilings
from bot.sources.market_news import MarketNews
from bot.sources.yahoo.news import YahooNews
from handlers.evidence import EvidenceQuery, describe_evidence, evidence_kind
from handlers.models import NewsItem
from tests.helpers import at
from tests.local_http import Served, closed_port, serve
from tests.test_yahoo_source import offline_yfinance  # noqa: F401  (autouse: yfinance offline)
from tests.yahoo_fake import (
    ECONOMIC_COLUMNS,
    FakeSession,
    FakeYahoo,
    Reply,
    earnings_page,
    search_body,
    search_news_item,
    visualization_body,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

UA = "Sample Operator ops@example.com"
PREV_CLOSE = at("2025-03-05", "16:00")
NEXT_MIDDAY = at("2025-03-06", "11:00")

# Shapes of company_tickers.json and submissions/CIK##########.json; values are our own.
TICKERS = {
    "0": {"cik_str": 1577552, "ticker": "BABA", "title": "Alibaba Group Holding Ltd"},
    "1": {"cik_str": 1549802, "ticker": "JD", "title": "JD.com, Inc."},
}


def submissions(name: str, cik: int, filings: list[dict[str, str]]) -> dict[str, object]:
    columns = (
        "accessionNumber",
        "filingDate",
        "reportDate",
        "acceptanceDateTime",
        "act",
        "form",
        "fileNumber",
        "filmNumber",
        "items",
        "size",
        "isXBRL",
        "isInlineXBRL",
        "primaryDocument",
        "primaryDocDescription",
    )
    recent = {c: [f.get(c, "") for f in filings] for c in columns}
    return {
        "cik": f"{cik:010d}",
        "entityType": "operating",
        "sic": "5961",
        "name": name,
        "tickers": ["JD"],
        "exchanges": ["Nasdaq"],
        "filings": {"recent": recent, "files": []},
    }


JD_FILINGS = [
    {
        "accessionNumber": "0001104659-25-000001",
        "filingDate": "2025-03-06",
        "acceptanceDateTime": "2025-03-06T11:31:00.000Z",
        "form": "6-K",
        "primaryDocument": "sample-6k.htm",
        "primaryDocDescription": "Sample: report of a foreign private issuer",
    },
    {
        "accessionNumber": "0001104659-25-000002",
        "filingDate": "2025-03-03",
        "acceptanceDateTime": "2025-03-03T21:05:00.000Z",
        "form": "6-K",
        "primaryDocument": "older.htm",
    },
    {
        "accessionNumber": "0001104659-25-000003",
        "filingDate": "2025-03-06",
        "acceptanceDateTime": "2025-03-06T12:00:00.000Z",
        "form": "SC 13G",
        "primaryDocument": "holder.htm",
    },
]


@pytest.fixture
def sec() -> Iterator[Served]:
    routes = {
        "/files/company_tickers.json": Reply.json(TICKERS),
        "/submissions/CIK0001549802.json": Reply.json(
            submissions("JD.com, Inc.", 1549802, JD_FILINGS)
        ),
    }
    with serve(Served(routes)) as served:
        yield served


def edgar(served: Served, ua: str | None = UA) -> EdgarFilings:
    return EdgarFilings(ua, served.base, served.base)


def test_edgar_finds_the_6k_of_the_window_with_its_link(sec: Served) -> None:
    source = edgar(sec)

    result = source.search("JD", PREV_CLOSE, NEXT_MIDDAY)

    assert result.ok, result.error
    [filing] = result.items
    assert filing.form == "6-K" and filing.evidence == "filing"
    assert filing.published == datetime(2025, 3, 6, 11, 31, tzinfo=UTC)
    assert filing.url == f"{sec.base}/Archives/edgar/data/1549802/000110465925000001/sample-6k.htm"
    assert evidence_kind("JD", filing, None)[0] == "company"
    assert all(headers.get("User-Agent") == UA for _, headers in sec.seen)


def test_edgar_reads_8k_items_and_caches_the_ticker_map(sec: Served) -> None:
    eight_k = {
        "accessionNumber": "0001577552-25-000009",
        "acceptanceDateTime": "2025-03-06T11:00:00.000Z",
        "form": "8-K",
        "items": "2.02,9.01",
        "primaryDocument": "results.htm",
    }
    exhibits_only = {**eight_k, "accessionNumber": "0001577552-25-000010", "items": "9.01"}
    sec.routes["/submissions/CIK0001577552.json"] = Reply.json(
        submissions("Sample Issuer", 1577552, [eight_k, exhibits_only])
    )
    source = edgar(sec)

    first = source.search("BABA", PREV_CLOSE, NEXT_MIDDAY)
    source.search("JD", PREV_CLOSE, NEXT_MIDDAY)

    results, exhibits = sorted(first.items, key=lambda i: i.filing_items)
    assert results.filing_items == ("2.02", "9.01") and "results of operations" in results.title
    assert evidence_kind("BABA", results, None)[0] == "company"
    assert evidence_kind("BABA", exhibits, None)[0] == "other"
    assert [p for p, _ in sec.seen].count("/files/company_tickers.json") == 1
    assert source.bucket.rate <= 10


def test_edgar_acceptance_time_read_as_utc_or_as_the_new_york_clock() -> None:
    from bot.sources.edgar import NEW_YORK, acceptance_times

    utc_or_wall = acceptance_times("2025-03-05T17:10:00.000Z")
    only_wall = acceptance_times("2025-03-06T05:45:00.000Z")  # 00:45 in New York if UTC

    assert utc_or_wall == [
        datetime(2025, 3, 5, 17, 10, tzinfo=UTC),
        datetime(2025, 3, 5, 17, 10, tzinfo=NEW_YORK),
    ]
    assert only_wall == [datetime(2025, 3, 6, 5, 45, tzinfo=NEW_YORK)]
    assert acceptance_times("garbage") == []


def test_edgar_says_what_it_did_not_check(sec: Served) -> None:
    without_ua = edgar(sec, ua=None).search("JD", PREV_CLOSE, NEXT_MIDDAY)
    hong_kong = edgar(sec).search("9988.HK", PREV_CLOSE, NEXT_MIDDAY)
    assert sec.seen == []  # neither asked the SEC anything
    etf = edgar(sec).search("KWEB", PREV_CLOSE, NEXT_MIDDAY)

    assert not without_ua.ok and without_ua.error.startswith("not checked")
    assert "MARKETBOT_SEC_USER_AGENT" in without_ua.error
    assert not hong_kong.ok and "no filings source" in hong_kong.error
    assert not etf.ok and "not in the SEC's list" in etf.error


def test_edgar_failures_are_reported(sec: Served) -> None:
    sec.routes["/submissions/CIK0001549802.json"] = Reply.text("<html>busy</html>", 503)
    busy = edgar(sec).search("JD", PREV_CLOSE, NEXT_MIDDAY)
    down = EdgarFilings(UA, closed_port(), closed_port()).search("JD", PREV_CLOSE, NEXT_MIDDAY)

    assert not busy.ok and "HTTP 503" in busy.error
    assert not down.ok and down.error == "cannot connect to the SEC"


# ---------------------------------------------------------------- article leads

ARTICLE = """<html><head><title>Sample</title></head><body>
<nav><a href="/">Home</a> | <a href="/markets">Markets</a></nav>
<article><h1>Why JD stock soared today</h1>
<p>Sample lead written for this test: shares of the retailer jumped after it reported
quarterly revenue well ahead of what analysts had pencilled in, helped by appliance sales.</p>
<p>Sample second paragraph: the company also announced a larger buyback programme and said
it expects consumer demand to keep improving through the year.</p>
<p>Sample third paragraph with more detail on margins, logistics and the outlook that a
reader would find further down the page, well past the opening.</p>
</article><footer>Sample footer, copyright nobody.</footer></body></html>"""


def why_item(url: str) -> NewsItem:
    return NewsItem("Why JD stock soared today", at("2025-03-06", "10:00"), url=url, id="w1")


def test_article_lead_is_fetched_once_and_feeds_classification() -> None:
    page = Reply.text(ARTICLE, 200, "text/html; charset=utf-8")
    with serve(Served({"/story": page})) as served:
        leads = ArticleLeads({"JD": "JD.com, Inc."}, allow_private=True)
        item = why_item(f"{served.base}/story")
        assert needs_lead("JD", item)

        enriched, error = leads.enrich("JD", [item], 2.0)
        again, _ = leads.enrich("JD", [item], 2.0)

    assert error == ""
    [with_lead] = enriched
    assert with_lead.lead.startswith("Sample lead written for this test")
    assert "Home" not in with_lead.lead and "footer" not in with_lead.lead
    assert again == enriched and len(served.seen) == 1
    assert evidence_kind("JD", with_lead, "JD.com, Inc.")[0] == "company"


def test_article_fetcher_refuses_local_addresses_other_schemes_and_big_pages() -> None:
    big = Reply.text("<html><body>" + "<p>x</p>" * 50_000 + "</body></html>", 200, "text/html")
    with serve(Served({"/story": Reply.text(ARTICLE, 200, "text/html"), "/big": big})) as s:
        strict = ArticleLeads()
        _, refused = strict.enrich("JD", [why_item(f"{s.base}/story")], 2.0)
        capped = ArticleLeads(allow_private=True, max_bytes=10_000)
        _, too_big = capped.enrich("JD", [why_item(f"{s.base}/big")], 2.0)
        _, ftp = strict.enrich("JD", [why_item("ftp://example.com/x")], 2.0)

    assert "private or local address" in refused
    assert "/story" not in [path for path, _ in s.seen]
    assert "larger than 10000 bytes" in too_big
    assert "not an http(s) URL" in ftp


# ---------------------------------------------------------------- Yahoo calendars


@pytest.fixture
def yahoo() -> Iterator[FakeYahoo]:
    fake = FakeYahoo()
    yield fake
    fake.release()


def test_earnings_calendar_marks_the_results_session(yahoo: FakeYahoo) -> None:
    yahoo.earnings_pages["JD"] = earnings_page(
        [
            ("JD.com, Inc.", "May 8, 2025 at 6 AM EDT", "4.12", "-", "-"),
            ("JD.com, Inc.", "March 6, 2025 at 6 AM EST", "4.0", "4.42", "10.5"),
            ("JD.com, Inc.", "November 14, 2024 at 6 AM EST", "8.9", "9.03", "1.46"),
        ],
        "JD",
    )
    source = EarningsCalendar(FakeSession(yahoo))

    result = source.search("JD", PREV_CLOSE, NEXT_MIDDAY)
    day_before = source.search("JD", PREV_CLOSE - timedelta(days=1), PREV_CLOSE)

    assert result.ok, result.error
    [release] = result.items
    assert release.evidence == "earnings" and release.published == at("2025-03-06", "06:00")
    assert "EPS 4.42 against 4 expected" in release.title
    assert evidence_kind("JD", release, None)[0] == "company"
    assert day_before.ok and day_before.items == ()
    assert any(r.path == "/calendar/earnings" for r in yahoo.seen)


def test_earnings_calendar_without_dates_or_reachable_yahoo(yahoo: FakeYahoo) -> None:
    none = EarningsCalendar(FakeSession(yahoo)).search("KWEB", PREV_CLOSE, NEXT_MIDDAY)
    yahoo.overrides = {"/calendar/earnings": Reply.text("Too Many Requests", 429)}
    limited = EarningsCalendar(FakeSession(yahoo)).search("JD", PREV_CLOSE, NEXT_MIDDAY)

    assert none.ok and none.items == () and "no dates" in none.source
    assert not limited.ok and limited.error


def test_economic_calendar_gives_the_releases_of_the_window(yahoo: FakeYahoo) -> None:
    rows = [
        ["Sample Payrolls", "US", "2025-03-06T13:30:00Z", "Feb", 151.0, 160.0, 125.0, 143.0],
        ["Sample CPI YY", "CN", "2025-03-06T01:30:00Z", "Feb", -0.7, -0.4, 0.5, 0.0],
        ["Sample Retail Sales", "DE", "2025-03-06T07:00:00Z", "Jan", 0.2, 0.1, 0.3, 0.0],
        ["Sample GDP", "US", "2025-03-04T13:30:00Z", "Q4", 2.3, 2.3, 3.1, 0.0],
    ]
    yahoo.visualization = Reply.json(visualization_body(ECONOMIC_COLUMNS, rows))
    source = EconomicCalendar(lambda s: "CN", FakeSession(yahoo))

    result = source.search("BABA", PREV_CLOSE, at("2025-03-06", "16:00"))
    source.search("JD", PREV_CLOSE, at("2025-03-06", "16:00"))

    assert result.ok, result.error
    titles = sorted(i.title for i in result.items)
    assert titles == [
        "CN Sample CPI YY (Feb): actual -0.7, expected -0.4, last 0.5",
        "US Sample Payrolls (Feb): actual 151, expected 160, last 125",
    ]
    assert all(i.evidence == "economic" for i in result.items)
    [post] = [r for r in yahoo.seen if r.path == "/v1/finance/visualization"]
    assert json.loads(post.body or b"{}")["entityIdType"] == "economic_event"
    assert source.requests == 1  # the second symbol reused the day's answer


# ---------------------------------------------------------------- the gatherer


def test_gatherer_asks_every_source_at_once_and_reports_the_late_one(
    yahoo: FakeYahoo, sec: Served
) -> None:
    yahoo.searches["KWEB"] = Reply.json(
        search_body(
            [
                search_news_item(
                    "m1",
                    "Sample: China stocks rally as Beijing keeps its growth target",
                    at("2025-03-05", "09:00"),
                    ["KWEB"],
                )
            ],
            "KWEB",
        )
    )
    sec.delay_s = 1.5  # the SEC is slow today
    session = FakeSession(yahoo)
    sources = [
        YahooNews(session),
        EdgarFilings(UA, sec.base, sec.base),
        MarketNews(YahooNews(session), lambda s: ["KWEB", "SPY"]),
    ]
    gatherer = Gatherer(sources, deadline_s=0.5)
    started = time.monotonic()

    found = gatherer.gather([EvidenceQuery("BABA", at("2025-03-04", "16:00"), PREV_CLOSE)])

    elapsed = time.monotonic() - started
    ev = found["BABA"]
    by_name = {s.name: s.search for s in ev.searches}
    assert elapsed < 1.2
    assert by_name["Yahoo news"].ok and by_name["market news"].ok
    assert not by_name["SEC filings"].ok and by_name["SEC filings"].error == "timed out after 0.5 s"
    assert [i.title for i in ev.items] == [
        "Sample: China stocks rally as Beijing keeps its growth target"
    ]
    line = describe_evidence(ev, 0)
    assert line.startswith("SEC filings unreachable (timed out after 0.5 s)")
    assert "company news cannot be ruled out" in line
    gatherer.close()


def test_why_with_every_source_unreachable_says_what_was_not_checked() -> None:
    from bot.infra.store import Store
    from config.loader import load_groups
    from handlers.models import WatchEntry
    from handlers.pipeline import Engine, EngineParams
    from handlers.render import render_alert
    from tests.helpers import quotes
    from tests.yahoo_fake import EscapeGuard, guarded_session_factory

    nowhere = guarded_session_factory(EscapeGuard())()  # every request: connection refused
    closed = closed_port()
    gatherer = Gatherer(
        [
            YahooNews(nowhere),
            EdgarFilings(UA, closed, closed),
            EarningsCalendar(nowhere),
            MarketNews(YahooNews(nowhere), lambda s: ["KWEB", "SPY"]),
            EconomicCalendar(lambda s: "CN", nowhere),
        ],
        deadline_s=5.0,
        leads=ArticleLeads(),
    )
    engine = Engine(load_groups(), [], EngineParams(default_threshold_pct=5.0))
    now = at("2025-03-05", "16:00")
    moves = {"BABA": 8.6, "JD": 6.9, "KWEB": 7.1, "SPY": 1.1}
    watch = [WatchEntry("test", "c1", s) for s in ("BABA", "JD")]

    result = engine.process_tick(quotes(moves, now), watch, {}, Store("sqlite://"), now, gatherer)

    [delivery] = result.deliveries
    alert = delivery.alert
    assert not alert.verified and alert.context == ()
    searched = alert.explanations["BABA"].searched
    assert "Yahoo news unreachable" in searched
    assert "SEC filings unreachable (cannot connect to the SEC)" in searched
    assert "earnings calendar unreachable" in searched
    assert searched.endswith("company news cannot be ruled out")
    message = render_alert(alert)
    assert "(unverified)" in message.cause_line
    assert "no company-specific news" not in message.cause_line
    gatherer.close()


def test_market_news_asks_benchmarks_and_region_topics_once_per_window(yahoo: FakeYahoo) -> None:
    from bot.sources.market_news import TopicNews

    yahoo.searches["China economy"] = Reply.json(
        search_body(
            [search_news_item("t1", "Sample: China's factory activity picks up", PREV_CLOSE, [])],
            "X",
        )
    )
    yahoo.searches["KWEB"] = Reply.json(
        search_body(
            [search_news_item("k1", "Sample: KWEB inflows jump", PREV_CLOSE, ["KWEB"])], "KWEB"
        )
    )
    session = FakeSession(yahoo)
    source = MarketNews(
        YahooNews(session),
        lambda s: ["KWEB"],
        topics=TopicNews(session),
        topics_for=lambda s: ["China economy"],
    )
    window = (PREV_CLOSE - timedelta(hours=1), NEXT_MIDDAY)

    baba = source.search("BABA", *window)
    source.search("JD", *window)

    assert baba.ok and baba.source == "news of KWEB, China economy"
    assert sorted(i.title for i in baba.items) == [
        "Sample: China's factory activity picks up",
        "Sample: KWEB inflows jump",
    ]
    assert {i.source for i in baba.items} == {"market news"}
    queries = [r.params["q"] for r in yahoo.seen if r.path == "/v1/finance/search"]
    assert sorted(queries) == ["China economy", "KWEB"]  # JD reused BABA's answers


# ---------------------------------------------------------------- warm-up at start


def test_warm_up_fetches_the_ticker_map_and_crumb_once_in_the_background(
    sec: Served, yahoo: FakeYahoo
) -> None:
    session = FakeSession(yahoo)
    gatherer = Gatherer(
        [YahooNews(session), edgar(sec), EarningsCalendar(session)],
        deadline_s=5.0,
        leads=ArticleLeads(),
    )

    jobs = gatherer.warm_up()
    wait(jobs, timeout=10)

    assert len(jobs) == 4 and all(j.done() and j.exception() is None for j in jobs)
    assert [path for path, _ in sec.seen] == ["/files/company_tickers.json"]
    crumbs = [r for r in yahoo.seen if r.path == "/v1/test/getcrumb"]
    assert len(crumbs) == 1  # three Yahoo sources, one cookie and crumb for the process
    before_sec, before_yahoo = len(sec.seen), len(yahoo.seen)

    filings = gatherer.sources[1].search("JD", PREV_CLOSE, NEXT_MIDDAY)
    news = gatherer.sources[0].search("JD", PREV_CLOSE, NEXT_MIDDAY)

    assert filings.ok and news.ok, (filings.error, news.error)
    assert [p for p, _ in sec.seen[before_sec:]] == ["/submissions/CIK0001549802.json"]
    asked = [r.path for r in yahoo.seen[before_yahoo:]]
    assert "/v1/test/getcrumb" not in asked and asked
    gatherer.close()


def test_warm_up_with_the_network_down_logs_a_line_and_the_search_still_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.yahoo_fake import EscapeGuard, guarded_session_factory

    nowhere = guarded_session_factory(EscapeGuard())()  # every request: connection refused
    closed = closed_port()
    gatherer = Gatherer([YahooNews(nowhere), EdgarFilings(UA, closed, closed)], deadline_s=5.0)

    wait(gatherer.warm_up(), timeout=30)

    failed = [r.getMessage() for r in caplog.records if "warming up" in r.getMessage()]
    assert len(failed) == 2 and all("first search will fetch again" in m for m in failed)
    assert not any(r.exc_info for r in caplog.records)
    [found] = gatherer.gather([EvidenceQuery("JD", PREV_CLOSE, NEXT_MIDDAY)]).values()
    assert not found.company_ruled_out
    assert "cannot connect to the SEC" in found.as_search().error
    gatherer.close()


def test_warm_up_skips_an_unconfigured_edgar_and_returns_before_a_slow_one(sec: Served) -> None:
    sec.delay_s = 0.5
    gatherer = Gatherer([edgar(sec, ua=None), edgar(sec)], deadline_s=5.0)

    jobs = gatherer.warm_up()
    pending = [j.done() for j in jobs]
    wait(jobs, timeout=10)

    assert not pending[1]  # warm_up returned while the map was still on its way
    assert [p for p, _ in sec.seen] == ["/files/company_tickers.json"]  # the unset one asked none
    gatherer.close()


def test_run_warms_the_configured_live_sources_at_start(sec: Served, yahoo: FakeYahoo) -> None:
    from bot.app import AppContext, build_engine, live_sources
    from bot.infra.store import Store
    from bot.run import warm_evidence
    from bot.sources.yahoo.quotes import YahooPrices
    from config.settings import load_settings

    settings = load_settings(
        db_url="sqlite://", sec_user_agent=UA, sec_www_url=sec.base, sec_data_url=sec.base
    )
    engine = build_engine(settings)
    session = FakeSession(yahoo)
    news = live_sources(settings, engine, session)
    ctx = AppContext(settings, engine, Store("sqlite://"), YahooPrices(session), news)

    jobs = warm_evidence(ctx)
    wait(jobs, timeout=10)

    assert len(jobs) == len(news.names)  # every source and the lead fetcher has a warm-up
    assert all(j.exception() is None for j in jobs)
    assert [p for p, _ in sec.seen] == ["/files/company_tickers.json"]
    assert [r.path for r in yahoo.seen].count("/v1/test/getcrumb") == 1
    news.close()
