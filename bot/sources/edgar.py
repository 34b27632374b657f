"""SEC EDGAR filings (8-K with item numbers, 6-K) from the submissions JSON, as evidence."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests

from bot.infra.ratelimit import TokenBucket
from handlers.evidence import NOT_CHECKED, SourceScope
from handlers.models import NewsItem, NewsSearch

log = logging.getLogger(__name__)

SEC_WWW = "https://www.sec.gov"
SEC_DATA = "https://data.sec.gov"
TICKER_MAP_TTL_S = 24 * 3600.0
# The SEC's fair-access rule: at most 10 requests a second per user agent.
MAX_REQUESTS_PER_S = 10.0
FORMS = ("8-K", "8-K/A", "6-K", "6-K/A")
NEW_YORK = ZoneInfo("America/New_York")
EDGAR_OPENS, EDGAR_CLOSES = 6, 22  # hours, New York time
ITEM_NAMES = {
    "1.01": "material agreement",
    "1.02": "end of a material agreement",
    "1.03": "bankruptcy",
    "2.01": "acquisition or disposal",
    "2.02": "results of operations",
    "2.05": "exit or restructuring costs",
    "2.06": "impairment",
    "3.01": "listing notice",
    "4.02": "non-reliance on past statements",
    "5.01": "change of control",
    "5.02": "officers or directors",
    "5.07": "shareholder vote",
    "7.01": "Regulation FD disclosure",
    "8.01": "other events",
    "9.01": "exhibits",
}


class EdgarError(Exception):
    """An answer from EDGAR that cannot be used."""


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def acceptance_times(text: Any) -> list[datetime]:
    """The instants an acceptanceDateTime may mean, likeliest first.

    The field ends in 'Z', but for some filers it holds the New York wall clock instead of UTC
    (the convention is the filer's; nothing in the string tells). EDGAR accepts filings from
    06:00 to 22:00 New York time, so a UTC reading outside those hours is the wall clock;
    otherwise both readings stay possible, UTC first.
    """
    parsed = _parse_time(text)
    if parsed is None:
        return []
    if not isinstance(text, str) or not text.endswith("Z"):
        return [parsed]
    wall = parsed.replace(tzinfo=NEW_YORK)
    local = parsed.astimezone(NEW_YORK)
    if not EDGAR_OPENS <= local.hour < EDGAR_CLOSES:
        return [wall]
    return [parsed, wall]


def describe_items(form: str, items: tuple[str, ...]) -> str:
    named = [f"{i} {ITEM_NAMES[i]}" if i in ITEM_NAMES else i for i in items]
    return f"{form} ({', '.join(named)})" if named else form


def parse_submissions(
    body: Any, symbol: str, since: datetime, until: datetime, archives: str
) -> list[NewsItem]:
    """8-K and 6-K filings accepted in [SINCE, UNTIL] from a submissions JSON body."""
    if not isinstance(body, Mapping):
        raise EdgarError("submissions answer is not a JSON object")
    filings = body.get("filings")
    recent = filings.get("recent") if isinstance(filings, Mapping) else None
    if not isinstance(recent, Mapping) or not isinstance(recent.get("form"), list):
        raise EdgarError("submissions answer has no filings.recent.form list")
    name = str(body.get("name") or symbol)
    cik = str(body.get("cik") or "").lstrip("0")
    columns = {k: v for k, v in recent.items() if isinstance(v, list)}

    def col(key: str, i: int) -> Any:
        values = columns.get(key, [])
        return values[i] if i < len(values) else None

    out: list[NewsItem] = []
    for i, form in enumerate(columns["form"]):
        if form not in FORMS:
            continue
        readings = acceptance_times(col("acceptanceDateTime", i))
        accepted = next((t for t in readings if since <= t <= until), None)
        if accepted is None:
            continue
        raw_items = col("items", i)
        items = tuple(p.strip() for p in str(raw_items or "").split(",") if p.strip())
        accession = str(col("accessionNumber", i) or "")
        document = str(col("primaryDocument", i) or "")
        url = (
            f"{archives}/Archives/edgar/data/{cik}/{accession.replace('-', '')}/{document}"
            if cik and accession and document
            else None
        )
        out.append(
            NewsItem(
                title=f"{name} filed a {describe_items(form, items)}",
                published=accepted,
                publisher="SEC EDGAR",
                url=url,
                summary=str(col("primaryDocDescription", i) or ""),
                related=(symbol,),
                id=f"sec:{accession}" if accession else "",
                evidence="filing",
                form=form,
                filing_items=items,
                source=EdgarFilings.name,
            )
        )
    return out


class EdgarFilings:
    """Recent 8-K/6-K filings of a US-listed issuer, by its CIK from the SEC's ticker map."""

    name = "SEC filings"
    scope: SourceScope = "company"

    def __init__(
        self,
        user_agent: str | None,
        www_url: str = SEC_WWW,
        data_url: str = SEC_DATA,
        timeout_s: float = 5.0,
        requests_per_second: float = MAX_REQUESTS_PER_S,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.user_agent = (user_agent or "").strip()
        self.www_url = www_url.rstrip("/")
        self.data_url = data_url.rstrip("/")
        self.timeout_s = timeout_s
        self.bucket = TokenBucket(min(requests_per_second, MAX_REQUESTS_PER_S))
        self.session = session or requests.Session()
        self.clock = clock
        self.requests = 0
        self._ciks: dict[str, int] = {}
        self._ciks_at: float | None = None
        self._lock = threading.Lock()

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        """Filings accepted in the window; 'not checked' when it cannot apply to SYMBOL."""
        sym = symbol.upper()

        def fail(error: str) -> NewsSearch:
            return NewsSearch(sym, since, until, (), self.name, ok=False, error=error)

        if not self.user_agent:
            return fail(
                f"{NOT_CHECKED}: set MARKETBOT_SEC_USER_AGENT (name and e-mail) to enable it"
            )
        if any(c in sym for c in ".^=") or sym.endswith("-USD"):
            return fail(f"{NOT_CHECKED}: no filings source for {sym}'s exchange")
        try:
            cik = self._cik(sym)
            if cik is None:
                return fail(f"{NOT_CHECKED}: {sym} is not in the SEC's list of filers")
            body = self._get(f"{self.data_url}/submissions/CIK{cik:010d}.json")
            items = parse_submissions(body, sym, since, until, self.www_url)
        except (requests.RequestException, EdgarError, ValueError) as exc:
            log.warning("edgar: filings for %s unavailable: %s", sym, exc)
            return fail(_short(exc))
        return NewsSearch(sym, since, until, tuple(items), "SEC EDGAR submissions")

    def warm_up(self) -> None:
        """The ticker-to-CIK map, fetched at start so that the first alert asks one request."""
        if self.user_agent:
            with self._lock:
                self._refresh_ticker_map()

    def _cik(self, symbol: str) -> int | None:
        with self._lock:  # a search during the warm-up waits for its map instead of asking
            self._refresh_ticker_map()
            return self._ciks.get(symbol.replace("-", "."), self._ciks.get(symbol))

    def _refresh_ticker_map(self) -> None:
        """Fetch company_tickers.json unless the map is younger than a day (lock held)."""
        fresh = self._ciks_at is not None and self.clock() - self._ciks_at < TICKER_MAP_TTL_S
        if not fresh:
            body = self._get(f"{self.www_url}/files/company_tickers.json")
            self._ciks = _ticker_map(body)
            self._ciks_at = self.clock()

    def _get(self, url: str) -> Any:
        self.bucket.acquire()
        self.requests += 1
        response = self.session.get(
            url,
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=self.timeout_s,
        )
        if response.status_code != 200:
            raise EdgarError(f"HTTP {response.status_code} from {url}")
        return response.json()


def _ticker_map(body: Any) -> dict[str, int]:
    """company_tickers.json ({"0": {"cik_str", "ticker", "title"}, ...}) -> ticker: CIK."""
    if not isinstance(body, Mapping):
        raise EdgarError("company_tickers.json is not a JSON object")
    out: dict[str, int] = {}
    for row in body.values():
        if isinstance(row, Mapping) and isinstance(row.get("ticker"), str):
            try:
                out.setdefault(row["ticker"].upper(), int(row["cik_str"]))
            except (TypeError, ValueError, KeyError):
                continue
    if not out:
        raise EdgarError("company_tickers.json holds no tickers")
    return out


def _short(exc: BaseException) -> str:
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect to the SEC"
    if isinstance(exc, requests.Timeout):
        return "the SEC did not answer in time"
    text = f"{exc}" or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
