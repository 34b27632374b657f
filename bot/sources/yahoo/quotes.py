"""Prices and news from Yahoo Finance through yfinance: batched, rate-limited, honest on failure."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from typing import Any, TypeVar

import multitasking
import requests
import yfinance
import yfinance as yf
from yfinance.data import YfData
from yfinance.exceptions import YFRateLimitError

from bot.infra.ratelimit import TokenBucket
from handlers.guards import FUTURE_SKEW
from handlers.models import Quote, Session
from handlers.symbols import SymbolError, normalize_symbol

log = logging.getLogger(__name__)

T = TypeVar("T")

SOURCE = "yfinance"
QUOTE_SOURCE = "yahoo-quote"
QUOTE_URL = "https://query1.finance.yahoo.com/v7/finance/quote"
# Symbols per v7 quote request: Yahoo answers for many at once (a URL of ~1,500 characters).
DEFAULT_BATCH_SIZE = 150
MAX_BATCH_SIZE = 500
# Symbols per daily-history download (yf.download asks one chart per symbol).
HISTORY_CHUNK = 50
# Yahoo has no batch chart endpoint: yf.download asks per symbol, these many at once.
MAX_DOWNLOAD_THREADS = 8
DOWNLOAD_POOL = "marketbot-yahoo"
INTRADAY_INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "2m": timedelta(minutes=2),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "60m": timedelta(hours=1),
    "90m": timedelta(minutes=90),
    "1h": timedelta(hours=1),
}
FIRST_BACKOFF_S = 60.0
# Bars further apart than this belong to different sessions (nights, weekends); lunch breaks
# in Asia (1-1.5 h) and thin trading inside a US session stay well below it.
SESSION_GAP = timedelta(hours=4)
RATE_LIMITED = "rate limited by Yahoo (HTTP 429)"
_RATE_LIMIT_MARKERS = ("YFRateLimitError", "Too Many Requests")
_CRUMB = re.compile(r"(crumb=)[^&\s'\")]+")
_LIST_MESSAGE = re.compile(r"^\[(?P<symbols>[^\]]*)\]: (?P<reason>.*)$", re.DOTALL)
_ONE_MESSAGE = re.compile(r"^\$(?P<symbol>[^:\s]+): (?P<reason>.*)$", re.DOTALL)

_shared_lock = threading.Lock()
_caches_lock = threading.Lock()
_shared: Any = None


def shared_session() -> Any:
    """The HTTP session every yfinance call of this process uses when none is given.

    yfinance keeps one global session (its YfData singleton) and swaps it whenever a call
    passes another, losing cookie and crumb; one shared session avoids that churn. curl_cffi
    (browser TLS, what yfinance prefers) when installed, else plain requests.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            try:
                from curl_cffi import requests as curl_requests
            except ImportError:
                _shared = requests.Session()
            else:
                _shared = curl_requests.Session(impersonate="chrome")
        return _shared


class _HideCrumb(logging.Filter):
    """Masks Yahoo's session crumb in the URLs yfinance puts in its error messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's to report, not ours
            return True
        if "crumb=" in message:
            record.msg, record.args = _CRUMB.sub(r"\1<hidden>", message), None
        return True


_hide_crumb = _HideCrumb()


def configure_yfinance() -> None:
    """Make yfinance raise instead of returning empty data, and keep its crumb out of logs.

    With its default (hide_exceptions=True) a failed news or info fetch comes back as an
    empty list, which would read as "no news"; raised, it is reported as a failed search.
    """
    yf.config.debug.hide_exceptions = False
    # yf.download(threads=N) only changes a setting: the thread pool it draws from was sized
    # at import (one thread per core). A pool of our own lets N downloads really run at once.
    if multitasking.config["POOL_NAME"] != DOWNLOAD_POOL:
        multitasking.createPool(DOWNLOAD_POOL, threads=MAX_DOWNLOAD_THREADS, engine="thread")
    yf_log = logging.getLogger("yfinance")
    if _hide_crumb not in yf_log.filters:
        yf_log.addFilter(_hide_crumb)


def open_yfinance_caches() -> None:
    """Open yfinance's SQLite caches in this thread before its download threads race to do it
    (seen here: "database is locked" skipping symbols on the first threaded download)."""
    with _caches_lock:
        try:
            yfinance.cache.get_tz_cache().lookup("SPY")
            yfinance.cache.get_cookie_cache().lookup("basic")
        except Exception as exc:  # a cache yfinance cannot open just makes it slower
            log.info("yfinance caches unavailable: %s", describe_error(exc))


class YahooAnswerError(Exception):
    """An answer from Yahoo that parsed but is not what the request asks for."""


class DownloadTimeout(TimeoutError):
    """A yfinance call that did not finish in time; its thread may still be running."""

    def __init__(self, what: str, timeout_s: float, thread: threading.Thread) -> None:
        super().__init__(f"{what} took longer than {timeout_s:g} s")
        self.thread = thread


def run_with_timeout(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run a blocking call in a daemon thread; raise DownloadTimeout when it overruns."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed back to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"yahoo: {what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise DownloadTimeout(what, timeout_s, thread)
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


class Backoff:
    """Exponential backoff after rate limits: FIRST seconds, doubling up to MAX."""

    def __init__(
        self, max_s: float, clock: Callable[[], float], first_s: float = FIRST_BACKOFF_S
    ) -> None:
        if not max_s > 0:
            raise ValueError(f"max_backoff_s must be above 0, not {max_s!r}")
        self.first_s = min(first_s, max_s)
        self.max_s = max_s
        self._clock = clock
        self.delay_s = 0.0
        self._until = 0.0

    def engage(self) -> float:
        """Start (or lengthen) a backoff; returns its length in seconds."""
        self.delay_s = self.first_s if not self.delay_s else min(self.delay_s * 2, self.max_s)
        self._until = self._clock() + self.delay_s
        return self.delay_s

    def remaining(self) -> float:
        return max(0.0, self._until - self._clock())

    def reset(self) -> None:
        self.delay_s = 0.0
        self._until = 0.0


def normalize_all(symbols: Iterable[str], what: str = "symbol") -> list[str]:
    """Yahoo forms of SYMBOLS, each once, in order; invalid ones are logged and dropped."""
    out: list[str] = []
    for raw in symbols:
        try:
            sym = normalize_symbol(raw)
        except SymbolError as exc:
            log.warning("yahoo: %s %r skipped: %s", what, raw, exc)
            continue
        if sym not in out:
            out.append(sym)
    return out


def describe_error(error: BaseException | str) -> str:
    """A short, secret-free reason for a yfinance failure, fit for a log line or a reply."""
    if isinstance(error, YahooAnswerError | DownloadTimeout):
        return str(error)
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = _CRUMB.sub(r"\1<hidden>", text)
    if any(marker in text for marker in _RATE_LIMIT_MARKERS):
        return RATE_LIMITED
    if "JSONDecodeError" in text or "Expecting value" in text:
        return "Yahoo's answer was not JSON (an error page?)"
    return text if len(text) <= 200 else text[:199] + "…"


class _ThreadErrors(logging.Handler):
    """What yfinance logs at WARNING and above from one thread.

    yf.download() catches every per-symbol failure (rate limits included) and only logs it,
    so its log is the one place that says why a symbol came back empty.
    """

    def __init__(self, thread_id: int) -> None:
        super().__init__(logging.WARNING)
        self.thread_id = thread_id
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread_id:
            try:
                self.messages.append(record.getMessage())
            except Exception:  # a malformed record must not break the download
                self.messages.append(str(record.msg))


def errors_by_symbol(messages: Iterable[str]) -> dict[str, str]:
    """yfinance's "['BABA', 'JD']: reason" and "$BABA: reason" lines, by symbol."""
    out: dict[str, str] = {}
    for msg in messages:
        if match := _LIST_MESSAGE.match(msg):
            for sym in re.findall(r"'([^']+)'", match["symbols"]):
                out.setdefault(sym.upper(), describe_error(match["reason"]))
        elif match := _ONE_MESSAGE.match(msg):
            out.setdefault(match["symbol"].upper(), describe_error(match["reason"]))
    return out


def is_rate_limited(messages: Iterable[str]) -> bool:
    return any(marker in msg for msg in messages for marker in _RATE_LIMIT_MARKERS)


@dataclass(frozen=True, slots=True)
class BarPoint:
    """One intraday bar: its start time, open and close."""

    start: datetime
    open: float | None
    close: float


def frame_points(frame: Any, symbol: str) -> list[BarPoint]:
    """The usable bars of SYMBOL in a yf.download(group_by='ticker') frame, oldest first."""
    if frame is None or getattr(frame, "empty", True):
        return []
    try:
        bars = frame[symbol]
    except KeyError:
        return []
    points: list[BarPoint] = []
    for ts, open_, close in zip(bars.index, bars["Open"], bars["Close"], strict=True):
        value = _number(close)
        if value is None:
            continue  # Yahoo's null rows: minutes without trades
        start = ts.to_pydatetime()  # in the exchange's time zone, which reads best in alerts
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        points.append(BarPoint(start, _number(open_), value))
    points.sort(key=lambda p: p.start)
    return points


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def split_sessions(points: Sequence[BarPoint]) -> list[list[BarPoint]]:
    """Bars grouped into trading sessions by the overnight gaps between them.

    A market that never pauses (crypto) has no gaps; its sessions are UTC days.
    """
    sessions: list[list[BarPoint]] = []
    for point in points:
        if sessions and point.start - sessions[-1][-1].start <= SESSION_GAP:
            sessions[-1].append(point)
        else:
            sessions.append([point])
    if len(sessions) == 1 and points[-1].start - points[0].start > timedelta(hours=24):
        by_day: dict[Any, list[BarPoint]] = {}
        for point in points:
            by_day.setdefault(point.start.astimezone(UTC).date(), []).append(point)
        sessions = list(by_day.values())
    return sessions


def quote_from_points(
    symbol: str,
    points: Sequence[BarPoint],
    now: datetime,
    interval: timedelta,
    stale_after: timedelta,
) -> Quote | str:
    """The quote for SYMBOL from its bars, or the reason there is none.

    Price is the latest bar's close, previous close the last close of the session before.
    A bar's close is the price at its end (or now, for the bar still forming).
    """
    if not points:
        return "no price bars in Yahoo's answer"
    sessions = split_sessions(points)
    latest = sessions[-1][-1]
    if latest.close <= 0:
        return f"latest price from Yahoo is {latest.close:g}"
    if len(sessions) < 2:
        return "only one session in Yahoo's answer, so no previous close"
    before = sessions[-2][-1]
    if before.close <= 0:
        return f"previous close from Yahoo is {before.close:g}"
    at = max(latest.start, min(latest.start + interval, now))
    first_open = sessions[-1][0].open
    return Quote(
        symbol=symbol,
        price=latest.close,
        previous_close=before.close,
        at=at,
        source=SOURCE,
        open=first_open if first_open and first_open > 0 else None,
        stale=now - at > stale_after,
        session="regular",
        previous_close_at=before.start + interval,
    )


def session_points(
    quote: Quote, points: Sequence[BarPoint], interval: timedelta
) -> list[tuple[datetime, float]]:
    """Chart points of the quote's session: its previous close, then each bar's end price."""
    session = split_sessions(points)[-1]
    start = quote.previous_close_at or session[0].start
    assert quote.previous_close is not None
    path = [(start, quote.previous_close)]
    path += [(min(p.start + interval, quote.at), p.close) for p in session]
    return path


def _epoch_time(value: Any) -> datetime | None:
    number = _number(value)
    if number is None or number <= 0:
        return None
    return datetime.fromtimestamp(number, tz=UTC)


def quote_from_v7(entry: Mapping[str, Any], now: datetime, stale_after: timedelta) -> Quote | str:
    """The Quote in one /v7/finance/quote result, or the reason there is none.

    The session is the newest of the regular, pre- and post-market prices; an extended-hours
    price is judged against the last regular close (regularMarketPrice), as Yahoo's own
    pre/postMarketChangePercent is. The change is computed from the prices, never read from
    regularMarketChangePercent: this endpoint gives it in percent, quoteSummary in fractions.
    """
    symbol = str(entry.get("symbol") or "")
    price = _number(entry.get("regularMarketPrice"))
    at = _epoch_time(entry.get("regularMarketTime"))
    if price is None or price <= 0 or at is None:
        return "no regular market price or time in Yahoo's answer (delisted?)"
    previous = _number(entry.get("regularMarketPreviousClose"))
    session: Session = "regular"
    latest, latest_at, previous_at = price, at, None
    for kind, key in (("pre", "preMarket"), ("post", "postMarket")):
        ext_price = _number(entry.get(f"{key}Price"))
        ext_at = _epoch_time(entry.get(f"{key}Time"))
        if ext_price and ext_price > 0 and ext_at and ext_at > latest_at and ext_at > at:
            session, latest, latest_at = kind, ext_price, ext_at  # type: ignore[assignment]
    if session != "regular":
        previous, previous_at = price, at
    if previous is None or previous <= 0:
        return f"no usable previous close from Yahoo ({previous!r})"
    if latest_at > now + FUTURE_SKEW:  # the core's guard, applied here for /why too
        return f"quote time {latest_at.isoformat()} is in the future"
    opened = _number(entry.get("regularMarketOpen"))
    return Quote(
        symbol=symbol,
        price=latest,
        previous_close=previous,
        at=latest_at,
        source=QUOTE_SOURCE,
        open=opened if session == "regular" and opened and opened > 0 else None,
        delayed=bool(_number(entry.get("exchangeDataDelayedBy"))),
        stale=now - latest_at > stale_after,
        session=session,
        previous_close_at=previous_at,
    )


def v7_results(payload: Any) -> list[Mapping[str, Any]]:
    """The result list of a /v7/finance/quote answer; YahooAnswerError when it has none."""
    body = payload.get("quoteResponse") if isinstance(payload, Mapping) else None
    results = body.get("result") if isinstance(body, Mapping) else None
    if not isinstance(results, list):
        error = body.get("error") if isinstance(body, Mapping) else None
        raise YahooAnswerError(f"Yahoo's quote answer has no result list ({error or 'no error'})")
    return [r for r in results if isinstance(r, Mapping) and isinstance(r.get("symbol"), str)]


def batches(symbols: Sequence[str], size: int) -> list[list[str]]:
    return [list(symbols[i : i + size]) for i in range(0, len(symbols), size)]


class YahooPrices:
    """Yahoo prices, blocking (use a thread): batched v7 quotes for the poll (batch_quotes),
    5-minute chart downloads for /why and charts (quotes, session_path)."""

    source = SOURCE

    def __init__(
        self,
        session: requests.Session | Any | None = None,
        timeout_s: float = 20.0,
        requests_per_second: float = 2.0,
        max_backoff_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        interval: str = "5m",
        stale_after: timedelta = timedelta(minutes=20),
        batch_size: int = DEFAULT_BATCH_SIZE,
        charts_on_demand: bool = False,
    ) -> None:
        if interval not in INTRADAY_INTERVALS:
            raise ValueError(
                f"interval {interval!r} is not an intraday interval "
                f"({', '.join(INTRADAY_INTERVALS)}): daily bars carry no time of day"
            )
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be above 0, not {timeout_s!r}")
        if not requests_per_second > 0:
            raise ValueError(f"requests_per_second must be above 0, not {requests_per_second!r}")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(
                f"batch_size must be between 1 and {MAX_BATCH_SIZE}, not {batch_size!r}"
            )
        self._session = session
        self.batch_size = batch_size
        # Download a symbol's 5-minute chart when a chart asks for a path no download made.
        self.charts_on_demand = charts_on_demand
        self.timeout_s = timeout_s
        self.interval = interval
        self.stale_after = stale_after
        self._bucket = TokenBucket(requests_per_second, clock, sleep)
        self.backoff = Backoff(max_backoff_s, clock)
        self._last: dict[str, Quote] = {}
        self._paths: dict[str, list[tuple[datetime, float]]] = {}
        self._names: dict[str, str] = {}
        self._running: threading.Thread | None = None
        self._lock = threading.Lock()
        self._batch_lock = threading.Lock()
        self._path_at: dict[str, float] = {}
        self._clock = clock
        configure_yfinance()

    @property
    def session(self) -> Any:
        return self._session if self._session is not None else shared_session()

    def batched(self) -> BatchedQuotes:
        """This source as a QuoteProvider whose quotes are batch_quotes (for the Poller)."""
        return BatchedQuotes(self)

    def batch_quotes(self, symbols: Sequence[str], now: datetime) -> dict[str, Quote]:
        """Quotes from /v7/finance/quote, batch_size symbols a request, one token each.

        A symbol missing from an answer is a logged skip; a failed batch skips its symbols;
        a 429 stops the cycle (the rest are served from the last quotes, marked stale).
        """
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        wanted = normalize_all(symbols)
        if not wanted:
            return {}
        if not self._batch_lock.acquire(blocking=False):
            log.warning("yahoo: the previous quote cycle is still running; this poll is skipped")
            return {}
        try:
            out: dict[str, Quote] = {}
            for batch in batches(wanted, self.batch_size):
                if waiting := self.backoff.remaining():
                    served = self._stale_last(s for s in wanted if s not in out)
                    log.warning(
                        "yahoo: rate limited, backing off %.0f s more; %d symbol(s) answered "
                        "from the last quotes, marked stale",
                        waiting,
                        len(served),
                    )
                    return {**served, **out}
                out.update(self._quote_batch(batch, now))
            return out
        finally:
            self._batch_lock.release()

    def _quote_batch(self, batch: list[str], now: datetime) -> dict[str, Quote]:
        self._bucket.acquire()
        try:
            payload = run_with_timeout(
                partial(self._get_quotes, batch), self.timeout_s, "quote batch"
            )
            results = v7_results(payload)
        except YFRateLimitError:
            self._rate_limited([])
            return {}
        except Exception as exc:
            log.warning(
                "yahoo: quote batch of %d symbol(s) from %s failed: %s",
                len(batch),
                batch[0],
                describe_error(exc),
            )
            return {}
        self.backoff.reset()
        by_symbol = {str(r["symbol"]).upper(): r for r in results}
        out: dict[str, Quote] = {}
        for sym in batch:
            entry = by_symbol.get(sym)
            result = (
                quote_from_v7(entry, now, self.stale_after)
                if entry is not None
                else "not in Yahoo's answer (unknown or delisted symbol?)"
            )
            if isinstance(result, str):
                log.warning("yahoo: %s skipped: %s", sym, result)
                continue
            out[sym] = replace(result, symbol=sym)
        self._last.update(out)
        return out

    def _get_quotes(self, symbols: list[str]) -> Any:
        """One v7 request through yfinance's data layer (its session, cookie and crumb)."""
        params = {"symbols": ",".join(symbols), "formatted": "false", "lang": "en-US"}
        return YfData(session=self.session).get_raw_json(
            QUOTE_URL, params=params, timeout=self.timeout_s
        )

    def previous_close(self, symbol: str) -> float | None:
        """The previous close of SYMBOL's latest quote (streamed quotes lacking one use it)."""
        quote = self._last.get(symbol)
        return quote.previous_close if quote is not None else None

    def quotes(self, symbols: Sequence[str], now: datetime) -> dict[str, Quote]:
        """Quotes by Yahoo symbol (BRK.B comes back as BRK-B) for those with usable data."""
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        wanted = normalize_all(symbols)
        if not wanted:
            return {}
        # The poller and /why may ask at once; one download at a time, the other waits.
        if not self._lock.acquire(timeout=self.timeout_s):
            log.warning("yahoo: another price download is still running; last quotes served")
            return self._stale_last(wanted)
        try:
            return self._fetch_locked(wanted, now)
        finally:
            self._lock.release()

    def _fetch_locked(self, wanted: list[str], now: datetime) -> dict[str, Quote]:
        if waiting := self.backoff.remaining():
            served = self._stale_last(wanted)
            log.warning(
                "yahoo: rate limited, backing off %.0f s more; %d symbol(s) answered from "
                "the last quotes, marked stale",
                waiting,
                len(served),
            )
            return served
        if self._running is not None and self._running.is_alive():
            log.warning("yahoo: the previous download is still running; this poll is skipped")
            return {}
        self._bucket.acquire()
        try:
            frame, messages = run_with_timeout(
                partial(self._download, wanted), self.timeout_s, "price download"
            )
        except DownloadTimeout as exc:
            self._running = exc.thread
            log.warning("yahoo: %s for %d symbol(s); no quotes this poll", exc, len(wanted))
            return {}
        except YFRateLimitError:
            return self._rate_limited(wanted)
        except Exception as exc:
            log.warning("yahoo: price download failed: %s", describe_error(exc))
            return {}
        fresh = self._build(wanted, frame, messages, now)
        if is_rate_limited(messages):
            return {**self._rate_limited(wanted), **fresh}
        self.backoff.reset()
        return fresh

    def _download(
        self, symbols: list[str], period: str = "5d", interval: str | None = None
    ) -> tuple[Any, list[str]]:
        """One yf.download for all SYMBOLS, with what yfinance logged about them."""
        open_yfinance_caches()
        errors = _ThreadErrors(threading.get_ident())
        yf_log = logging.getLogger("yfinance")
        yf_log.addHandler(errors)
        try:
            frame = yf.download(
                symbols,
                period=period,
                interval=interval or self.interval,
                group_by="ticker",
                session=self.session,
                progress=False,
                threads=min(MAX_DOWNLOAD_THREADS, len(symbols)),
                auto_adjust=False,
                timeout=self.timeout_s,
            )
        finally:
            yf_log.removeHandler(errors)
        return frame, errors.messages

    def _build(
        self, wanted: list[str], frame: Any, messages: list[str], now: datetime
    ) -> dict[str, Quote]:
        reasons = errors_by_symbol(messages)
        interval = INTRADAY_INTERVALS[self.interval]
        out: dict[str, Quote] = {}
        for sym in wanted:
            points = frame_points(frame, sym)
            result = quote_from_points(sym, points, now, interval, self.stale_after)
            if isinstance(result, str):
                detail = f" ({reasons[sym]})" if sym in reasons else ""
                log.warning("yahoo: %s skipped: %s%s", sym, result, detail)
                continue
            out[sym] = result
            self._paths[sym] = session_points(result, points, interval)
            self._path_at[sym] = self._clock()
        self._last.update(out)
        return out

    def daily_returns(
        self, symbols: Sequence[str], before: datetime | None = None
    ) -> dict[str, list[float]]:
        """Close-to-close daily returns in percent over about three months, for z-scores.

        Only sessions that ended before BEFORE count (today's move must not dilute its own
        z-score). Daily downloads of HISTORY_CHUNK symbols, one token per symbol (a daily job,
        not the poll); a failed chunk is logged and left out, a 429 stops the rest.
        """
        out: dict[str, list[float]] = {}
        for chunk in batches(normalize_all(symbols), HISTORY_CHUNK):
            if self.backoff.remaining():
                log.warning("yahoo: rate limited; daily history stops at %d symbol(s)", len(out))
                break
            out.update(self._daily_chunk(chunk, before))
        return out

    def _daily_chunk(self, chunk: list[str], before: datetime | None) -> dict[str, list[float]]:
        # One chart request per symbol: one token each, so thousands of symbols keep to the
        # request budget instead of bursting (the poll's batches take their turns between).
        for _ in chunk:
            self._bucket.acquire()
        try:
            frame, messages = run_with_timeout(
                partial(self._download, chunk, period="3mo", interval="1d"),
                self.timeout_s,
                "daily history download",
            )
        except YFRateLimitError:
            self._rate_limited([])
            return {}
        except Exception as exc:
            log.warning("yahoo: daily history not refreshed: %s", describe_error(exc))
            return {}
        if is_rate_limited(messages):
            self._rate_limited([])
        out: dict[str, list[float]] = {}
        for sym in chunk:
            closes = [
                p.close
                for p in frame_points(frame, sym)
                if p.close > 0
                and (before is None or p.start.date() < before.astimezone(p.start.tzinfo).date())
            ]
            if len(closes) >= 2:
                out[sym] = [(b / a - 1.0) * 100.0 for a, b in pairwise(closes)]
        return out

    def session_path(self, symbol: str, until: datetime) -> list[tuple[datetime, float]]:
        """The previous close, then the latest session's prices up to UNTIL, from the last
        download (charts ask right after a poll or /why fetched, so no request is made)."""
        if self.charts_on_demand:
            self._fetch_path_if_old(symbol, until)
        path = self._paths.get(symbol, [])
        return [p for i, p in enumerate(path) if i == 0 or p[0] <= until]

    def _fetch_path_if_old(self, symbol: str, until: datetime) -> None:
        """One chart download for SYMBOL unless a path at most one bar old is at hand."""
        try:
            sym = normalize_symbol(symbol)
        except SymbolError:
            return
        fetched = self._path_at.get(sym)
        if (
            fetched is not None
            and self._clock() - fetched < INTRADAY_INTERVALS[self.interval].total_seconds()
        ):
            return
        self._path_at[sym] = self._clock()
        self.quotes([sym], until)

    def _rate_limited(self, wanted: list[str]) -> dict[str, Quote]:
        delay = self.backoff.engage()
        log.warning("yahoo: rate limited (HTTP 429); no requests for %.0f s", delay)
        return self._stale_last(wanted)

    def _stale_last(self, wanted: Iterable[str]) -> dict[str, Quote]:
        return {s: replace(self._last[s], stale=True) for s in wanted if s in self._last}

    def company_names(self, symbols: Sequence[str]) -> dict[str, str]:
        """Long (else short) company names from Yahoo; failures are logged and skipped."""
        out: dict[str, str] = {}
        for sym in normalize_all(symbols):
            if sym not in self._names and not self._fetch_name(sym):
                continue
            out[sym] = self._names[sym]
        return out

    def _fetch_name(self, sym: str) -> bool:
        """Look SYM's name up once (names do not change); False when there is none."""
        if self.backoff.remaining():
            log.info("yahoo: rate limited; company name of %s not fetched", sym)
            return False
        self._bucket.acquire()
        try:
            info = run_with_timeout(partial(self._info, sym), self.timeout_s, "company info")
        except YFRateLimitError:
            self._rate_limited([])
            return False
        except Exception as exc:
            log.warning("yahoo: no company name for %s: %s", sym, describe_error(exc))
            return False
        name = _company_name(info)
        if name is None:
            log.info("yahoo: Yahoo has no company name for %s", sym)
            return False
        self._names[sym] = name
        return True

    def _info(self, symbol: str) -> Any:
        # A fresh Ticker each time: yfinance memoizes info, news and fast_info per instance.
        return yf.Ticker(symbol, session=self.session).info


@dataclass(frozen=True)
class BatchedQuotes:
    """A YahooPrices polled through its batched v7 quotes; names and history pass through."""

    prices: YahooPrices

    def quotes(self, symbols: Sequence[str], now: datetime) -> dict[str, Quote]:
        return self.prices.batch_quotes(symbols, now)

    def previous_close(self, symbol: str) -> float | None:
        return self.prices.previous_close(symbol)

    def company_names(self, symbols: Sequence[str]) -> dict[str, str]:
        return self.prices.company_names(symbols)

    def daily_returns(
        self, symbols: Sequence[str], before: datetime | None = None
    ) -> dict[str, list[float]]:
        return self.prices.daily_returns(symbols, before)


def _company_name(info: Any) -> str | None:
    if not isinstance(info, Mapping):
        return None
    for key in ("longName", "shortName"):
        value = info.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def forget_cached_responses() -> None:
    """Clear yfinance's in-memory GET cache (Search, tz lookups, past price ranges)."""
    cache_clear = getattr(YfData.cache_get, "cache_clear", None)
    if callable(cache_clear):
        cache_clear()
