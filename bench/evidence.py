"""Benchmark 6: gathering the evidence for one alert, every fake request taking 300 ms."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bench.yahoo import offline_yfinance
from bot.evidence import Gatherer
from bot.sources.article import ArticleLeads
from bot.sources.earnings import EarningsCalendar
from bot.sources.econ_calendar import EconomicCalendar
from bot.sources.edgar import EdgarFilings
from bot.sources.market_news import MarketNews
from bot.sources.yahoo_news import YahooNews
from handlers.evidence import EvidenceQuery, EvidenceSource
from tests.local_http import Served, serve
from tests.yahoo_fake import (
    ECONOMIC_COLUMNS,
    FakeSession,
    FakeYahoo,
    Reply,
    earnings_page,
    search_body,
    visualization_body,
)

NY = ZoneInfo("America/New_York")
LATENCY_S = 0.3
ALERT = ["BABA", "JD", "PDD", "BIDU", "TCEHY"]  # the NPC-day group alert
DEADLINE_S = 6.0
ROUNDS = 12
UA = "Bench Operator bench@example.com"
ARTICLE = (
    "<html><body><article><h1>Sample headline</h1><p>Sample lead written for the benchmark: "
    "the shares moved after a sample announcement that this paragraph describes.</p>"
    "</article></body></html>"
)


@dataclass
class EvidenceBench:
    case: str
    alerts: int
    symbols_per_alert: int
    p50_s: float
    p95_s: float
    requests_per_alert: float
    timed_out: int


def _news_item(uid: str, title: str, when: datetime, url: str) -> dict[str, object]:
    return {
        "uuid": uid,
        "title": title,
        "publisher": "Bench Wire",
        "link": url,
        "providerPublishTime": int(when.timestamp()),
        "type": "STORY",
        "relatedTickers": [],
    }


def _fake_yahoo(article_base: str, when: datetime) -> FakeYahoo:
    fake = FakeYahoo(delay_s=LATENCY_S)
    for sym in ALERT:
        items = [
            _news_item(
                f"{sym}-why", f"Why {sym} stock soared today", when, f"{article_base}/{sym}"
            ),
            _news_item(f"{sym}-x", f"Sample: {sym} opens a new office", when, f"{article_base}/x"),
        ]
        fake.searches[sym] = Reply.json(search_body(items, sym))
        fake.earnings_pages[sym] = earnings_page(
            [("Sample Co", "March 6, 2025 at 6 AM EST", "1.0", "-", "-")], sym
        )
    macro = _news_item("m", "Sample: China stocks rally on stimulus hopes", when, "https://m.x/1")
    fake.searches["KWEB"] = Reply.json(search_body([macro], "KWEB"))
    rows = [["Sample CPI", "CN", "2025-03-05T01:30:00Z", "Feb", 0.1, 0.2, 0.3, 0.0]]
    fake.visualization = Reply.json(visualization_body(ECONOMIC_COLUMNS, rows))
    return fake


def _sec_routes() -> dict[str, Reply]:
    tickers = {str(i): {"cik_str": 1000 + i, "ticker": s, "title": s} for i, s in enumerate(ALERT)}
    empty: dict[str, list[str]] = {"form": [], "acceptanceDateTime": [], "items": []}
    routes = {"/files/company_tickers.json": Reply.json(tickers)}
    for i in range(len(ALERT)):
        body = {"cik": f"{1000 + i:010d}", "name": "Sample", "filings": {"recent": empty}}
        routes[f"/submissions/CIK{1000 + i:010d}.json"] = Reply.json(body)
    return routes


def _gatherer(fake: FakeYahoo, sec: Served) -> Gatherer:
    session = FakeSession(fake)
    sources: list[EvidenceSource] = [
        YahooNews(session),
        EdgarFilings(UA, sec.base, sec.base),
        EarningsCalendar(session),
        MarketNews(YahooNews(session), lambda s: ["KWEB", "SPY"]),
        EconomicCalendar(lambda s: "CN", session),
    ]
    return Gatherer(sources, DEADLINE_S, ArticleLeads(allow_private=True))


def gather_bench(rounds: int = ROUNDS) -> list[EvidenceBench]:
    """The first alert (cold: cookie, crumb, SEC ticker map) and the next ones (warm)."""
    results: list[EvidenceBench] = []
    until = datetime(2025, 3, 5, 16, 0, tzinfo=NY)
    sec_served = Served(_sec_routes(), delay_s=LATENCY_S)
    pages = {f"/{s}": Reply.text(ARTICLE, 200, "text/html") for s in [*ALERT, "x"]}
    articles = Served(pages)
    articles.delay_s = LATENCY_S
    with offline_yfinance(), serve(sec_served) as sec, serve(articles) as site:
        fake = _fake_yahoo(site.base, until - timedelta(hours=3))
        gatherer = _gatherer(fake, sec)
        times: list[float] = []
        requests: list[int] = []
        timed_out = 0
        for k in range(rounds + 1):
            # Each alert a minute later: a new window, so per-window caches do not help.
            now = until + timedelta(minutes=k)
            queries = [EvidenceQuery(s, now - timedelta(hours=23), now) for s in ALERT]
            gatherer.leads = ArticleLeads(allow_private=True)  # each alert's articles are new
            seen = len(fake.seen) + len(sec.seen) + len(site.seen)
            start = time.perf_counter()
            found = gatherer.gather(queries)
            times.append(time.perf_counter() - start)
            requests.append(len(fake.seen) + len(sec.seen) + len(site.seen) - seen)
            timed_out += sum(
                "timed out" in s.search.error for ev in found.values() for s in ev.searches
            )
        gatherer.close()
    warm = times[1:]
    results.append(_row("first alert (cold)", times[:1], requests[:1], 0))
    results.append(_row("next alerts (warm)", warm, requests[1:], timed_out))
    return results


def _row(case: str, times: list[float], requests: list[int], timed_out: int) -> EvidenceBench:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return EvidenceBench(
        case,
        len(times),
        len(ALERT),
        round(statistics.median(ordered), 3),
        round(p95, 3),
        round(sum(requests) / len(requests), 1),
        timed_out,
    )


def main() -> list[EvidenceBench]:
    return gather_bench()


if __name__ == "__main__":
    for row in main():
        print(row)
