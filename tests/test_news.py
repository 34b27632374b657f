"""Headline classification (public API) and parsing of Yahoo's two news shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.sources.yahoo.news import parse_news, parse_news_item
from handlers.news import classify_headline, rule_kind

ALIBABA = "Alibaba Group Holding Limited"

# Our own sample headlines, written to exercise each rule.
CASES = [
    ("BABA", "Alibaba beats quarterly revenue estimates as cloud unit grows", ALIBABA, "company"),
    ("BABA", "Alibaba's fourth-quarter results top forecasts", ALIBABA, "company"),
    ("BABA", "Analyst raises Alibaba price target to $180", ALIBABA, "company"),
    ("BIDU", "Baidu unveils new reasoning AI model", "Baidu, Inc.", "company"),
    (
        "JD",
        "JD.com fourth-quarter revenue beats estimates, shares jump premarket",
        "JD.com, Inc.",
        "company",
    ),
    ("TSLA", "Tesla deliveries fall short of expectations", "Tesla, Inc.", "company"),
    ("BABA", "Regulator opens antitrust probe into Alibaba", ALIBABA, "company"),
    (
        "BABA",
        "Why Alibaba, JD, and Other Chinese Tech Stocks Rallied Wednesday Morning",
        ALIBABA,
        "sector",
    ),
    ("JD", "Alibaba results lift Chinese tech stocks", "JD.com, Inc.", "sector"),
    ("BABA", "Chinese internet stocks slide as investors book profits", ALIBABA, "sector"),
    ("BABA", "China keeps growth target around 5% as parliament opens", ALIBABA, "macro"),
    ("AAPL", "Stocks rise as Fed signals rate cuts later this year", "Apple Inc.", "macro"),
    ("BABA", "Is Alibaba a buy and hold for the next 5 years?", ALIBABA, "other"),
    ("BABA", "Investors heavily search Alibaba: here is what you need to know", ALIBABA, "other"),
    ("AMZN", "3 growth stocks to watch this spring", "Amazon.com, Inc.", "other"),
    ("BABA", "", ALIBABA, "other"),
]


@pytest.mark.parametrize(("symbol", "title", "company", "kind"), CASES)
def test_classify_headline(symbol: str, title: str, company: str, kind: str) -> None:
    assert classify_headline(symbol, title, company) == kind


def test_classify_headline_is_importable_with_the_public_signature() -> None:
    assert classify_headline(
        "BABA", "Alibaba beats estimates", company=None, summary="", related=()
    ) in {
        "company",
        "sector",
        "macro",
        "other",
    }


AGILENT = "Agilent Technologies, Inc."

# Our own paraphrases of patterns seen in real feeds (bench/classifier_eval.py measures the
# real headlines; none is copied here).
REAL_WORLD_PATTERNS = [
    # A one-letter ticker is only a ticker in ticker dress: "A" is mostly an article.
    ("A", "A Quick Look At The Market Before The Jobs Report", AGILENT, "macro"),
    ("A", "Agilent (A) lifts its full-year guidance", AGILENT, "company"),
    # Fund and insider filings, previews, recaps and technical ratings are not catalysts.
    ("BABA", "Big hedge fund's 13F shows a larger stake in Alibaba", ALIBABA, "other"),
    ("BABA", "Activist investor reports new stake in Alibaba", ALIBABA, "other"),
    ("BABA", "Alibaba director sold $2 million of shares", ALIBABA, "other"),
    ("BABA", "Alibaba (BABA) gears up for Q3 earnings: what's in the cards?", ALIBABA, "other"),
    ("BABA", "Alibaba shows rising relative strength", ALIBABA, "other"),
    ("BABA", "Why is Alibaba (BABA) up 4% since its last earnings report?", ALIBABA, "other"),
    ("BABA", "7 Chinese tech stocks to buy right now", ALIBABA, "other"),
    ("JD", "JD's slide lags its sector: buy, sell or hold?", "JD.com, Inc.", "other"),
    ("BABA", "Alibaba shares drift lower, not seeing any news behind it", ALIBABA, "other"),
    # A move with its cause: the cause decides.
    ("BIDU", "Baidu shares jump as testers praise its new chatbot", "Baidu, Inc.", "company"),
    ("BIDU", "Baidu stock falls as the Fed signals more hikes", "Baidu, Inc.", "macro"),
    (
        "A",
        "Agilent shares trade higher after the company reported strong sales",
        AGILENT,
        "company",
    ),
    # Debt raising and plant decisions are company catalysts; "delivery" as a business is not.
    ("BABA", "Alibaba prices $5 billion of senior notes", ALIBABA, "company"),
    ("TSLA", "Tesla to halt output at its Berlin plant for a week", "Tesla, Inc.", "company"),
    ("JD", "JD.com's food delivery push: bold bet or money pit?", "JD.com, Inc.", "other"),
    # An analyst's upgrade is a catalyst; a product's upgrade cycle is not.
    ("AAPL", "Morgan Stanley upgrades Apple to overweight", "Apple Inc.", "company"),
    ("AAPL", "Apple: the iPhone upgrade cycle is underrated, analyst says", "Apple Inc.", "other"),
    # A country's stock market is macro; an industry (or ADRs) is a sector.
    ("BABA", "Hong Kong stocks slide on trade worries", ALIBABA, "macro"),
    ("BABA", "Stocks settle lower as war worries grow", ALIBABA, "macro"),
    ("XPEV", "XPeng, Li Auto and NIO report monthly sales", "XPeng Inc.", "sector"),
    ("NIO", "NIO and Li Auto deliveries hit records", "NIO Inc.", "sector"),
]


@pytest.mark.parametrize(("symbol", "title", "company", "kind"), REAL_WORLD_PATTERNS)
def test_real_world_patterns(symbol: str, title: str, company: str, kind: str) -> None:
    assert classify_headline(symbol, title, company) == kind


# Headlines with their related tickers: (symbol, title, company, related, kind).
RELATED_CASES = [
    # Related tickers do not turn company news into sector news.
    (
        "AMZN",
        "Amazon launches a new AI shopping tool",
        "Amazon.com, Inc.",
        ("AMZN", "MSFT", "NVDA"),
        "company",
    ),
    # Index and future symbols in related mean the market.
    (
        "BABA",
        "Stock market today: Dow, S&P 500 slip as crude jumps",
        ALIBABA,
        ("^GSPC", "^DJI", "CL=F", "ES=F"),
        "macro",
    ),
    # Other companies' results are not a sector story.
    (
        "BABA",
        "Earnings live: a retailer jumps on upbeat results, a software maker beats",
        ALIBABA,
        ("BABA", "ROST", "CRWD", "HD"),
        "other",
    ),
    # Related tickers make a sector story.
    ("BABA", "Chinese ADRs jump in New York trading", ALIBABA, ("BABA", "JD", "PDD"), "sector"),
]


@pytest.mark.parametrize(("symbol", "title", "company", "related", "kind"), RELATED_CASES)
def test_related_tickers(
    symbol: str, title: str, company: str, related: tuple[str, ...], kind: str
) -> None:
    assert classify_headline(symbol, title, company, related=related) == kind


def test_nested_1x_shape_is_parsed() -> None:
    raw = {
        "id": "abc",
        "content": {
            "title": "Sample headline about a company",
            "summary": "A summary.",
            "pubDate": "2025-03-05T14:00:00Z",
            "provider": {"displayName": "Sample Wire"},
            "canonicalUrl": {"url": "https://example.com/a"},
            "finance": {"stockTickers": [{"symbol": "BABA"}]},
        },
    }
    item = parse_news_item(raw)
    assert item is not None
    assert item.title == "Sample headline about a company"
    assert item.publisher == "Sample Wire"
    assert item.url == "https://example.com/a"
    assert item.related == ("BABA",)
    assert item.published.isoformat() == "2025-03-05T14:00:00+00:00"


def test_garbage_items_are_skipped_not_raised() -> None:
    items = parse_news(
        [None, 3, {"content": "x"}, {"title": "no time"}, {"title": 5, "pubDate": 1}]
    )
    assert items == []
    assert parse_news("not a list") == []


def test_legacy_flat_shape_from_real_yahoo_search(shared_yahoo: Path) -> None:
    body = json.loads((shared_yahoo / "search-BABA.json").read_text())["response"]["bodyJson"]
    items = parse_news(body["news"])
    assert len(items) == len(body["news"]) > 0
    first = items[0]
    assert first.url and first.url.startswith("https://")
    assert first.publisher
    assert "BABA" in first.related
    assert first.published.year == 2025


@pytest.mark.parametrize(
    "title",
    [
        "Acme Robotics to join the S&P 500 next week",
        "Acme Robotics shares jump after it is added to the Nasdaq-100",
        "Acme Robotics slides as it is dropped from the FTSE 100",
    ],
)
def test_index_inclusion_is_the_stocks_own_news_for_the_rules_too(title: str) -> None:
    # news_dev's rule lists "index inclusion of that stock" as company news; the S&P 500
    # named alone is the market.
    assert rule_kind("ACME", title, "Acme Robotics Inc.") == "company"
    assert rule_kind("ACME", "Acme Robotics rises as the S&P 500 hits a record", "Acme") == "macro"
