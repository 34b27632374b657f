"""Article leads: the opening paragraphs of a story whose headline states no cause (trafilatura)."""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import requests
import trafilatura

from handlers.models import NewsItem
from handlers.news import classify_item

log = logging.getLogger(__name__)

# "Why Alibaba stock soared today", "Here's why JD shares are falling": a move, no cause.
_WHY = re.compile(r"^\s*(here'?s |this is )?why\b|\bwhy .* (stock|shares)\b", re.IGNORECASE)
MAX_REDIRECTS = 3
USER_AGENT = "marketbot (article lead fetcher)"


class FetchRefused(Exception):
    """A URL the fetcher will not open (scheme, private address, too big, not HTML)."""


def needs_lead(symbol: str, item: NewsItem, company: str | None = None) -> bool:
    """An item worth opening: its headline states no cause, or the classifier cannot tell."""
    if item.lead or not item.url or item.evidence != "news":
        return False
    if _WHY.search(item.title):
        return True
    return classify_item(symbol, item, company).kind in ("unknown", "other")


def check_address(url: str, allow_private: bool) -> None:
    """http(s) only; loopback, private, link-local and reserved addresses refused unless allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"not an http(s) URL: {url[:80]}")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise FetchRefused(f"cannot resolve {parts.hostname}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise FetchRefused(f"{parts.hostname} is a private or local address")


def first_paragraphs(text: str, max_chars: int, title: str = "") -> str:
    """The opening paragraphs of extracted text, whole paragraphs up to MAX_CHARS.

    The headline itself, when the extractor kept it, is not part of the lead.
    """
    out: list[str] = []
    for para in (p.strip() for p in text.splitlines()):
        if not para or (not out and para.casefold() == title.strip().casefold()):
            continue
        if out and sum(len(p) + 1 for p in out) + len(para) > max_chars:
            break
        out.append(para)
    joined = " ".join(out)
    return joined if len(joined) <= max_chars else joined[: max_chars - 1].rstrip() + "…"


_warmed = threading.Event()
_warm_lock = threading.Lock()


def warm_extractor() -> None:
    """trafilatura's first extraction loads its models of a page (~0.6 s); pay it once, early."""
    with _warm_lock:
        if not _warmed.is_set():
            trafilatura.extract("<html><body><article><p>warm up</p></article></body></html>")
            _warmed.set()


class ArticleLeads:
    """Fetches each article once (cached by URL) with a timeout, a size cap and address checks."""

    name = "article leads"

    def __init__(
        self,
        companies: Mapping[str, str] | None = None,
        timeout_s: float = 4.0,
        max_bytes: int = 1_000_000,
        max_chars: int = 700,
        max_per_symbol: int = 4,
        allow_private: bool = False,
        session: requests.Session | None = None,
    ) -> None:
        self.companies = dict(companies or {})
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_chars = max_chars
        self.max_per_symbol = max_per_symbol
        self.allow_private = allow_private
        self.session = session or requests.Session()
        self.fetches = 0
        self._cache: dict[str, str | Exception] = {}
        self._inflight: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(16, thread_name_prefix="article")
        # While the sources search, so that the first lead does not wait for it.
        self._pool.submit(warm_extractor)

    def warm_up(self) -> None:
        """trafilatura's one-time load (the constructor only starts it), and the classifier's
        model that needs_lead asks: loaded by five threads at once on the first alert, it
        cost that alert about 0.3 s."""
        warm_extractor()
        sample = NewsItem("Sample Co opens a new office", datetime.now(UTC), "warm-up")
        classify_item("SAMPLE", sample)

    def enrich(
        self, symbol: str, items: Sequence[NewsItem], timeout_s: float
    ) -> tuple[list[NewsItem], str]:
        """The items that needed a lead, with it; and what could not be fetched ('' if none)."""
        company = self.companies.get(symbol)
        wanted = [i for i in items if needs_lead(symbol, i, company)][: self.max_per_symbol]
        limit = min(self.timeout_s, timeout_s)
        jobs = {i.url: self._pool.submit(self.lead, i.url, limit, i.title) for i in wanted if i.url}
        wait(jobs.values(), timeout=limit)
        out: list[NewsItem] = []
        failures: list[str] = []
        for item in wanted:
            job = jobs.get(item.url or "")
            if job is None or not job.done():
                failures.append("timed out")
                continue
            result = job.result()
            if isinstance(result, Exception):
                failures.append(str(result) or type(result).__name__)
            elif result:
                out.append(replace(item, lead=result))
        error = ""
        if failures:
            error = f"{len(failures)} of {len(wanted)} articles not read ({failures[0]})"
        return out, error

    def lead(self, url: str, timeout_s: float, title: str = "") -> str | Exception:
        """The article's lead, fetched at most once per URL (callers of a URL in flight wait)."""
        with self._lock:
            if url in self._cache:
                return self._cache[url]
            event = self._inflight.get(url)
            owner = event is None
            if owner:
                event = self._inflight[url] = threading.Event()
        assert event is not None
        if not owner:
            event.wait(timeout_s)
            return self._cache.get(url, TimeoutError("timed out"))
        try:
            result: str | Exception = self._fetch(url, timeout_s, title)
        except (FetchRefused, requests.RequestException, ValueError) as exc:
            log.info("article lead for %s not fetched: %s", url[:120], exc)
            result = exc if isinstance(exc, FetchRefused) else FetchRefused(_short(exc))
        with self._lock:
            self._cache[url] = result
            self._inflight.pop(url, None)
        event.set()
        return result

    def _fetch(self, url: str, timeout_s: float, title: str) -> str:
        for _ in range(MAX_REDIRECTS + 1):
            check_address(url, self.allow_private)
            self.fetches += 1
            with self.session.get(
                url,
                timeout=timeout_s,
                stream=True,
                allow_redirects=False,
                headers={"User-Agent": USER_AGENT, "Accept": "text/html"},
            ) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise FetchRefused(f"HTTP {response.status_code}")
                html = self._read(response)
            text = trafilatura.extract(html, include_comments=False, include_tables=False)
            return first_paragraphs(text or "", self.max_chars, title)
        raise FetchRefused("too many redirects")

    def _read(self, response: requests.Response) -> str:
        kind = response.headers.get("content-type", "")
        if kind and "html" not in kind:
            raise FetchRefused(f"not HTML ({kind.split(';')[0]})")
        body = b""
        for chunk in response.iter_content(65536):
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchRefused(f"page larger than {self.max_bytes} bytes")
        return body.decode(response.encoding or "utf-8", errors="replace")


def _short(exc: BaseException) -> str:
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    return f"{type(exc).__name__}"
