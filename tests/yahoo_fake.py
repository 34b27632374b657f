"""A local Yahoo Finance that speaks the real HTTP shapes to yfinance through a requests adapter."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

NY = ZoneInfo("America/New_York")
DATA = Path(__file__).resolve().parent / "data" / "yahoo"
DAILY_FIXTURE = DATA / "daily-2025-02-27-to-03-05.csv"
SESSION_OPEN, SESSION_CLOSE = time(9, 30), time(16, 0)
VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]
# Facts about the instruments (names, exchanges), not third-party text.
INSTRUMENTS: dict[str, tuple[str, str, str, str]] = {
    "BABA": ("Alibaba Group Holding Limited", "NYQ", "NYSE", "EQUITY"),
    "JD": ("JD.com, Inc.", "NMS", "NasdaqGS", "EQUITY"),
    "SPY": ("SPDR S&P 500 ETF Trust", "PCX", "NYSEArca", "ETF"),
    "KWEB": ("KraneShares Trust - KraneShares CSI China Internet ETF", "PCX", "NYSEArca", "ETF"),
    "BRK-B": ("Berkshire Hathaway Inc.", "NYQ", "NYSE", "EQUITY"),
}
NOT_FOUND_CHART = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}
HTML_GARBAGE = b"<html><head><title>Oops</title></head><body>Will be back soon</body></html>"


@dataclass(frozen=True)
class Reply:
    """What the fake answers: a status, a body and its content type."""

    status: int
    body: bytes
    content_type: str = "application/json;charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(payload).encode())

    @classmethod
    def text(cls, body: str, status: int = 200, content_type: str = "text/plain") -> Reply:
        return cls(status, body.encode(), content_type)


TOO_MANY = Reply.text("Too Many Requests\r\n", 429)


@dataclass(frozen=True)
class Recorded:
    """One request yfinance made."""

    method: str
    host: str
    path: str
    params: dict[str, str]
    body: bytes | None

    @property
    def is_chart(self) -> bool:
        return self.path.startswith("/v8/finance/chart/")

    @property
    def symbol(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class DayBar:
    """A daily OHLCV row from the re-typed fixture."""

    symbol: str
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: int


def load_days(path: Path = DAILY_FIXTURE) -> dict[str, list[DayBar]]:
    """Daily bars per symbol from a symbol,date,open,high,low,close,volume CSV."""
    out: dict[str, list[DayBar]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            bar = DayBar(
                symbol=row["symbol"],
                day=date.fromisoformat(row["date"]),
                open=float(row["open"]),
                high=float(row["high"]),
                low=float(row["low"]),
                close=float(row["close"]),
                volume=int(row["volume"]),
            )
            out.setdefault(bar.symbol, []).append(bar)
    for bars in out.values():
        bars.sort(key=lambda b: b.day)
    return out


def _path_points(bar: DayBar) -> list[tuple[float, float]]:
    """(minutes after the open, price): an up day dips first, a down day pops first."""
    first, second = (bar.low, bar.high) if bar.close >= bar.open else (bar.high, bar.low)
    return [(0.0, bar.open), (90.0, first), (240.0, second), (390.0, bar.close)]


def _price_at(points: Sequence[tuple[float, float]], minute: float) -> float:
    for (m0, p0), (m1, p1) in pairwise(points):
        if m0 <= minute <= m1:
            return p0 + (p1 - p0) * (minute - m0) / (m1 - m0)
    return points[-1][1]


def _epoch(day: date, moment: time) -> int:
    return int(datetime.combine(day, moment, tzinfo=NY).timestamp())


def _period(day: date, start: time, end: time) -> dict[str, Any]:
    local = datetime.combine(day, start, tzinfo=NY)
    offset = local.utcoffset()
    return {
        "timezone": local.tzname(),
        "start": _epoch(day, start),
        "end": _epoch(day, end),
        "gmtoffset": int(offset.total_seconds()) if offset else 0,
    }


def intraday_chart(
    symbol: str,
    days: Sequence[DayBar],
    interval_min: int = 5,
    until: datetime | None = None,
    live_trade_at: datetime | None = None,
) -> dict[str, Any]:
    """A /v8/finance/chart body (range=5d, regular hours) built from daily bars.

    Bars run 09:30..16:00 New York time along a plausible intraday path whose last bar closes
    at the day's close. UNTIL cuts the last day short; LIVE_TRADE_AT appends the separate
    'live' row Yahoo adds during a session (its timestamp is the last trade time).
    """
    timestamps: list[int] = []
    cols: dict[str, list[float | int | None]] = {k: [] for k in ("open", "high", "low", "close")}
    cols["volume"] = []
    per_day = 390 // interval_min
    last_price = days[-1].close
    for bar in days:
        points = _path_points(bar)
        for k in range(per_day):
            start = datetime.combine(bar.day, SESSION_OPEN, tzinfo=NY) + timedelta(
                minutes=k * interval_min
            )
            if until is not None and start + timedelta(minutes=interval_min) > until:
                break
            p0 = _price_at(points, k * interval_min)
            p1 = _price_at(points, (k + 1) * interval_min)
            timestamps.append(int(start.timestamp()))
            cols["open"].append(round(p0, 4))
            cols["close"].append(round(p1, 4))
            cols["high"].append(round(max(p0, p1), 4))
            cols["low"].append(round(min(p0, p1), 4))
            cols["volume"].append(bar.volume // per_day)
            last_price = p1
    if live_trade_at is not None:
        timestamps.append(int(live_trade_at.timestamp()))
        for key in ("open", "high", "low", "close"):
            cols[key].append(round(last_price, 4))
        cols["volume"].append(0)
    return {
        "chart": {
            "result": [_result(symbol, days, timestamps, cols, f"{interval_min}m", "5d")],
            "error": None,
        }
    }


def daily_chart(symbol: str, days: Sequence[DayBar]) -> dict[str, Any]:
    """A /v8/finance/chart body of daily bars (interval=1d), one row per day at the open."""
    timestamps = [_epoch(b.day, SESSION_OPEN) for b in days]
    cols: dict[str, list[float | int | None]] = {
        "open": [b.open for b in days],
        "high": [b.high for b in days],
        "low": [b.low for b in days],
        "close": [b.close for b in days],
        "volume": [b.volume for b in days],
    }
    result = _result(symbol, days, timestamps, cols, "1d", "1mo")
    result["indicators"]["adjclose"] = [{"adjclose": list(cols["close"])}]
    return {"chart": {"result": [result], "error": None}}


def _result(
    symbol: str,
    days: Sequence[DayBar],
    timestamps: list[int],
    cols: dict[str, list[float | int | None]],
    granularity: str,
    range_: str,
) -> dict[str, Any]:
    name, exchange, full_exchange, kind = INSTRUMENTS.get(symbol, (symbol, "NYQ", "NYSE", "EQUITY"))
    last = days[-1]
    closes = [c for c in cols["close"] if isinstance(c, float)]
    meta = {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": exchange,
        "fullExchangeName": full_exchange,
        "instrumentType": kind,
        "firstTradeDate": 1411133400,
        "regularMarketTime": timestamps[-1] if timestamps else _epoch(last.day, SESSION_OPEN),
        "hasPrePostMarketData": True,
        "gmtoffset": -18000,
        "timezone": "EST",
        "exchangeTimezoneName": "America/New_York",
        "regularMarketPrice": closes[-1] if closes else last.close,
        "regularMarketDayHigh": last.high,
        "regularMarketDayLow": last.low,
        "regularMarketVolume": last.volume,
        "longName": name,
        "shortName": name,
        "chartPreviousClose": days[0].open,
        "previousClose": days[-2].close if len(days) > 1 else None,
        "scale": 3,
        "priceHint": 2,
        "currentTradingPeriod": {
            "pre": _period(last.day, time(4, 0), SESSION_OPEN),
            "regular": _period(last.day, SESSION_OPEN, SESSION_CLOSE),
            "post": _period(last.day, SESSION_CLOSE, time(20, 0)),
        },
        "tradingPeriods": [[_period(b.day, SESSION_OPEN, SESSION_CLOSE)] for b in days],
        "dataGranularity": granularity,
        "range": range_,
        "validRanges": VALID_RANGES,
    }
    return {"meta": meta, "timestamp": timestamps, "indicators": {"quote": [cols]}}


def with_close(chart: Mapping[str, Any], index: int, value: float | None) -> dict[str, Any]:
    """A copy of CHART whose bar INDEX has close VALUE (e.g. 0 or None for a bad print)."""
    copy: dict[str, Any] = json.loads(json.dumps(chart))
    quote = copy["chart"]["result"][0]["indicators"]["quote"][0]
    quote["close"][index] = value
    return copy


def ticker_news_body(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The /xhr/ncp (Ticker.news) response around nested 1.x items."""
    return {"data": {"tickerStream": {"stream": list(items), "pagination": {"uuids": ""}}}}


def search_news_item(uid: str, title: str, when: datetime, tickers: list[str]) -> dict[str, Any]:
    """A Search.news item in the flat legacy shape (sample text written for the tests)."""
    return {
        "uuid": uid,
        "title": title,
        "publisher": "Sample Daily",
        "link": f"https://example.org/{uid}",
        "providerPublishTime": int(when.timestamp()),
        "type": "STORY",
        "relatedTickers": tickers,
    }


def search_body(news: Sequence[Mapping[str, Any]], symbol: str) -> dict[str, Any]:
    """A /v1/finance/search response with flat legacy news items."""
    return {
        "explains": [],
        "count": 1 + len(news),
        "quotes": [{"exchange": "NYQ", "symbol": symbol, "quoteType": "EQUITY"}],
        "news": list(news),
        "nav": [],
        "lists": [],
        "researchReports": [],
    }


def info_body(symbol: str) -> dict[str, Any]:
    """quoteSummary(quoteType) for SYMBOL, as Yahoo sends it with formatted=false."""
    name = INSTRUMENTS.get(symbol, (symbol,))[0]
    return {
        "quoteSummary": {
            "result": [{"quoteType": {"symbol": symbol, "longName": name, "shortName": name}}],
            "error": None,
        }
    }


def earnings_page(rows: Sequence[tuple[str, str, str, str, str]], symbol: str) -> Reply:
    """finance.yahoo.com/calendar/earnings: an HTML page with one table of results dates.

    ROWS are (company, 'March 6, 2025 at 6 AM EST', estimate, reported, surprise) with '-'
    for a figure not known yet. No table at all when there are no rows, as Yahoo does.
    """
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Symbol",
            "Company",
            "Earnings Date",
            "EPS Estimate",
            "Reported EPS",
            "Surprise (%)",
        )
    )
    body = "".join(
        f"<tr><td>{symbol}</td>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" if rows else ""
    html = f"<html><head><title>Earnings</title></head><body><main>{table}</main></body></html>"
    return Reply.text(html, 200, "text/html; charset=utf-8")


ECONOMIC_COLUMNS = (
    ("Event", "STRING"),
    ("Country Code", "STRING"),
    ("Event Time", "DATEONLY_MS"),
    ("For", "STRING"),
    ("Actual", "NUMBER"),
    ("Market Expectation", "NUMBER"),
    ("Prior to This", "NUMBER"),
    ("Revised from", "NUMBER"),
)


def visualization_body(
    columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> dict[str, Any]:
    """A /v1/finance/visualization answer (Calendars, earnings screener): columns and rows."""
    return {
        "finance": {
            "result": [
                {
                    "total": len(rows),
                    "documents": [
                        {
                            "columns": [{"label": label, "type": kind} for label, kind in columns],
                            "rows": [list(r) for r in rows],
                        }
                    ],
                }
            ],
            "error": None,
        }
    }


MARKET_STATES = ("PREPRE", "PRE", "REGULAR", "POST", "POSTPOST", "CLOSED")


def quote_entry(
    symbol: str,
    price: float,
    previous_close: float,
    at: datetime,
    market_state: str = "REGULAR",
    *,
    pre: tuple[float, datetime] | None = None,
    post: tuple[float, datetime] | None = None,
    open_price: float | None = None,
) -> dict[str, Any]:
    """One /v7/finance/quote result in the shape Yahoo sends (the keys of a recorded answer,
    our own values). regularMarketChangePercent is in percent here, as on this endpoint."""
    assert market_state in MARKET_STATES
    name, exchange, full_exchange, kind = INSTRUMENTS.get(symbol, (symbol, "NYQ", "NYSE", "EQUITY"))
    change = price - previous_close
    entry: dict[str, Any] = {
        "language": "en-US",
        "region": "US",
        "quoteType": kind,
        "typeDisp": kind.title(),
        "quoteSourceName": "Nasdaq Real Time Price",
        "triggerable": True,
        "customPriceAlertConfidence": "HIGH",
        "currency": "USD",
        "shortName": name,
        "longName": name,
        "regularMarketChangePercent": round(change / previous_close * 100, 5),
        "regularMarketPrice": price,
        "hasPrePostMarketData": True,
        "firstTradeDateMilliseconds": 1411133400000,
        "priceHint": 2,
        "regularMarketChange": round(change, 5),
        "regularMarketDayHigh": round(max(price, previous_close) * 1.01, 2),
        "regularMarketDayRange": f"{min(price, previous_close):g} - {max(price, previous_close):g}",
        "regularMarketDayLow": round(min(price, previous_close) * 0.99, 2),
        "regularMarketVolume": 52_000_000,
        "regularMarketPreviousClose": previous_close,
        "bid": round(price * 0.999, 2),
        "ask": round(price * 1.001, 2),
        "bidSize": 12,
        "askSize": 18,
        "fullExchangeName": full_exchange,
        "financialCurrency": "USD",
        "regularMarketOpen": open_price if open_price is not None else previous_close,
        "averageDailyVolume3Month": 19_600_000,
        "averageDailyVolume10Day": 35_700_000,
        "fiftyTwoWeekLowChange": 56.37,
        "fiftyTwoWeekLowChangePercent": 0.8246,
        "fiftyTwoWeekRange": "68.36 - 126.8",
        "fiftyTwoWeekHighChange": -2.07,
        "fiftyTwoWeekHighChangePercent": -0.0163,
        "fiftyTwoWeekLow": 68.36,
        "fiftyTwoWeekHigh": 126.8,
        "fiftyTwoWeekChangePercent": 70.5,
        "earningsTimestamp": 1740058200,
        "trailingPE": 25.9,
        "epsTrailingTwelveMonths": 4.81,
        "sharesOutstanding": 2_375_950_080,
        "bookValue": 409.85,
        "fiftyDayAverage": 91.27,
        "fiftyDayAverageChange": 33.46,
        "fiftyDayAverageChangePercent": 0.3666,
        "twoHundredDayAverage": 87.16,
        "twoHundredDayAverageChange": 37.57,
        "twoHundredDayAverageChangePercent": 0.431,
        "marketCap": 302_870_626_304,
        "forwardPE": 12.6,
        "priceToBook": 0.304,
        "sourceInterval": 15,
        "exchangeDataDelayedBy": 0,
        "averageAnalystRating": "1.6 - Buy",
        "tradeable": False,
        "cryptoTradeable": False,
        "corporateActions": [],
        "regularMarketTime": int(at.timestamp()),
        "marketState": market_state,
        "exchange": exchange,
        "messageBoardId": f"finmb_{sum(map(ord, symbol)) * 7919}",
        "exchangeTimezoneName": "America/New_York",
        "exchangeTimezoneShortName": "EST",
        "gmtOffSetMilliseconds": -18000000,
        "market": "us_market",
        "esgPopulated": False,
        "displayName": name.split(",")[0],
        "symbol": symbol,
    }
    for key, ext in (("preMarket", pre), ("postMarket", post)):
        if ext is not None:
            ext_price, ext_at = ext
            entry[f"{key}Price"] = ext_price
            entry[f"{key}Change"] = round(ext_price - price, 5)
            entry[f"{key}ChangePercent"] = round((ext_price / price - 1) * 100, 5)
            entry[f"{key}Time"] = int(ext_at.timestamp())
    return entry


def quote_body(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A /v7/finance/quote response around its results."""
    return {"quoteResponse": {"result": list(entries), "error": None}}


Handler = Callable[[Recorded], Reply]


class LocalAdapter(BaseAdapter):
    """A transport adapter that answers in process: the transport options do not apply."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        return self.answer(request)

    def answer(self, request: requests.PreparedRequest) -> requests.Response:
        """The response to REQUEST."""
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass(eq=False)
class FakeYahoo(LocalAdapter):
    """Serves Yahoo's hosts by URL path and records every request it sees."""

    charts: dict[str, Reply] = field(default_factory=dict)
    daily_charts: dict[str, Reply] = field(default_factory=dict)
    ticker_news: dict[str, Reply] = field(default_factory=dict)
    searches: dict[str, Reply] = field(default_factory=dict)
    infos: dict[str, Reply] = field(default_factory=dict)
    # finance.yahoo.com/calendar/earnings?symbol=X (an HTML page) and the visualization API.
    earnings_pages: dict[str, Reply] = field(default_factory=dict)
    visualization: Reply | None = None
    # Symbol -> its /v7/finance/quote result; symbols not here are left out of the answer.
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # After this many v7 quote requests, every further one is answered 429 (None: never).
    quote_limit_after: int | None = None
    # Path prefix -> reply that wins over everything (429s, 500s, garbage).
    overrides: dict[str, Reply] = field(default_factory=dict)
    # Builds the 5-minute chart of a symbol not in charts (benchmarks of thousands of symbols).
    chart_for: Callable[[str], Reply] | None = None
    delay_s: float = 0.0
    seen: list[Recorded] = field(default_factory=list)
    # Body sizes of the answers, in the order of seen.
    sizes: list[int] = field(default_factory=list)
    jar: requests.cookies.RequestsCookieJar | None = None

    def __post_init__(self) -> None:
        super().__init__()
        self._release = threading.Event()
        self._lock = threading.Lock()

    def release(self) -> None:
        """End any delay now (teardown of a slow-server test)."""
        self._release.set()

    def answer(self, request: requests.PreparedRequest) -> requests.Response:
        """Record REQUEST and answer it as Yahoo would (after any delay)."""
        parts = urlsplit(request.url or "")
        body = request.body.encode() if isinstance(request.body, str) else request.body
        rec = Recorded(
            method=request.method or "GET",
            host=parts.hostname or "",
            path=parts.path,
            params=dict(parse_qsl(parts.query)),
            body=body,
        )
        with self._lock:
            self.seen.append(rec)
            index = len(self.seen) - 1
        if self.delay_s:
            self._release.wait(self.delay_s)
        reply = self._route(rec)
        with self._lock:
            self.sizes.extend([0] * (len(self.seen) - len(self.sizes)))
            self.sizes[index] = len(reply.body)
        return _response(request, reply)

    def _route(self, rec: Recorded) -> Reply:
        for prefix, reply in self.overrides.items():
            if rec.path.startswith(prefix) or rec.host.startswith(prefix):
                return reply
        if rec.host == "fc.yahoo.com":
            self._set_cookie()
            return Reply.text("", 404, "text/html")
        if rec.host.endswith("consent.yahoo.com") or rec.host == "guce.yahoo.com":
            return Reply.text("<html><body>no consent form here</body></html>", 200, "text/html")
        if rec.path == "/v1/test/getcrumb":
            return Reply.text("fAkEcRuMb0")
        if rec.is_chart and rec.params.get("interval") == "1d" and rec.params.get("range") != "1d":
            return self.daily_charts.get(rec.symbol, Reply.json(NOT_FOUND_CHART, 404))
        if rec.is_chart:
            if rec.symbol not in self.charts and self.chart_for is not None:
                return self.chart_for(rec.symbol)
            return self.charts.get(rec.symbol, Reply.json(NOT_FOUND_CHART, 404))
        if rec.path == "/xhr/ncp":
            symbols = json.loads(rec.body or b"{}").get("serviceConfig", {}).get("s", [])
            return self.ticker_news.get(
                symbols[0] if symbols else "", Reply.json(ticker_news_body([]))
            )
        if rec.path == "/v1/finance/search":
            return self.searches.get(rec.params.get("q", ""), Reply.json(search_body([], "")))
        if rec.path.startswith("/v10/finance/quoteSummary/"):
            return self.infos.get(rec.symbol, Reply.json({"quoteSummary": {"result": None}}, 404))
        if rec.path.startswith("/calendar/earnings"):
            page = earnings_page([], rec.params.get("symbol", ""))
            return self.earnings_pages.get(rec.params.get("symbol", ""), page)
        if rec.path == "/v1/finance/visualization":
            return self.visualization or Reply.json(visualization_body([], []))
        if rec.path.startswith("/v7/finance/quote"):
            return self._quote(rec)
        if rec.path.startswith("/ws/fundamentals-timeseries/"):
            return Reply.json({"timeseries": {"result": [], "error": None}})
        return Reply.text("not served by the fake", 404)

    def _quote(self, rec: Recorded) -> Reply:
        if rec.params.get("crumb") != "fAkEcRuMb0":
            return Reply.json({"finance": {"result": None, "error": {"code": "Unauthorized"}}}, 401)
        if self.quote_limit_after is not None:
            with self._lock:
                answered = sum(1 for r in self.seen if r.path.startswith("/v7/finance/quote"))
            if answered > self.quote_limit_after:
                return TOO_MANY
        asked = [s for s in rec.params.get("symbols", "").split(",") if s]
        return Reply.json(quote_body([self.quotes[s] for s in asked if s in self.quotes]))

    def quote_requests(self) -> list[Recorded]:
        return [r for r in self.seen if r.path.startswith("/v7/finance/quote")]

    def _set_cookie(self) -> None:
        """What fc.yahoo.com really does: hand out the A3 cookie on a 404 page."""
        if self.jar is not None:
            expires = int(datetime.now().timestamp()) + 365 * 86400
            self.jar.set("A3", "d=fake&S=cookie", domain=".yahoo.com", path="/", expires=expires)

    # Views for assertions.
    def charts_for(self, range_: str = "5d") -> list[Recorded]:
        return [r for r in self.seen if r.is_chart and r.params.get("range") == range_]

    def paths(self) -> Iterator[str]:
        return (f"{r.host}{r.path}" for r in self.seen)


def _response(request: requests.PreparedRequest, reply: Reply) -> requests.Response:
    resp = requests.Response()
    resp.status_code = reply.status
    resp._content = reply.body
    resp.headers = CaseInsensitiveDict(
        {"content-type": reply.content_type, "content-length": str(len(reply.body))}
    )
    resp.encoding = "utf-8"
    resp.url = request.url or ""
    resp.request = request
    resp.reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(reply.status, "")
    return resp


class FakeSession(requests.Session):
    """A real requests.Session whose every http(s) URL goes to the fake."""

    def __init__(self, fake: FakeYahoo) -> None:
        super().__init__()
        self.fake = fake
        fake.jar = self.cookies
        self.mount("https://", fake)
        self.mount("http://", fake)


class EscapeGuard(LocalAdapter):
    """Mounted on any session yfinance makes by itself: records and refuses the request."""

    def __init__(self) -> None:
        super().__init__()
        self.escaped: list[str] = []

    def answer(self, request: requests.PreparedRequest) -> requests.Response:
        """Record REQUEST's URL and refuse it."""
        self.escaped.append(request.url or "")
        raise requests.ConnectionError(f"test network guard: refused {request.url}")


def guarded_session_factory(guard: EscapeGuard) -> Callable[[], requests.Session]:
    """A stand-in for yfinance's new_session(): sessions that can never reach the network."""

    def make() -> requests.Session:
        session = requests.Session()
        session.mount("https://", guard)
        session.mount("http://", guard)
        return session

    return make
