"""Headline classification (public API) and parsing of Yahoo's two news shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handlers.news import classify_headline, parse_news, parse_news_item

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


def test_related_tickers_make_a_sector_story() -> None:
    title = "Chinese ADRs jump in New York trading"
    assert classify_headline("BABA", title, ALIBABA, related=("BABA", "JD", "PDD")) == "sector"


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
