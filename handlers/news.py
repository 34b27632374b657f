"""Headline classification and parsing of news items from Yahoo's two JSON shapes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from handlers.models import HeadlineKind, NewsItem

log = logging.getLogger(__name__)

# Company-specific catalysts: what moves one stock on its own.
_CATALYST = re.compile(
    r"\b("
    r"earnings|results|quarter(ly)?|q[1-4]|fy\d{2,4}|revenue|sales|profit|loss(es)?|eps|"
    r"beats?|miss(es|ed)?|tops|guidance|outlook|forecasts?|"
    r"upgrades?d?|downgrades?d?|rating|overweight|underweight|outperform|underperform|"
    r"price target|target price|\bpt\b|fair value|initiat\w+ coverage|"
    r"acqui\w+|merger|merge|takeover|buyout|deal|stake|spin-?off|divest\w*|"
    r"launch\w*|unveil\w*|releas\w*|rolls? out|debut\w*|new model|ai model|product|"
    r"approv\w+|clearance|recall\w*|"
    r"probe|investigat\w+|antitrust|fine[ds]?|penalt\w+|sanction\w*|ban(s|ned)?|"
    r"lawsuit|sues?d?|suing|settle\w*|court|verdict|"
    r"ceo|cfo|chairman|founder|executive|steps down|resign\w*|appoint\w*|hires?|layoffs?|"
    r"buyback|repurchase|dividend|offering|ipo|listing|delist\w*|convertible|"
    r"contract|partner\w*|agreement|orders?|deliver(y|ies)|shipments?|"
    r"investment plan|invest\w* \$|plans? to|strike|outage|hack\w*|breach"
    r")\b",
    re.IGNORECASE,
)

# Economy, policy and whole-market drivers.
_MACRO = re.compile(
    r"\b("
    r"fed|federal reserve|fomc|powell|rate (cut|hike)s?|interest rates?|yields?|treasur(y|ies)|"
    r"inflation|cpi|ppi|pce|jobs report|payrolls|unemployment|gdp|recession|economy|economic|"
    r"growth target|stimulus|fiscal|central bank|pboc|ecb|boj|"
    r"tariffs?|trade war|trade talks|export controls?|sanctions on china|"
    r"national people'?s congress|npc|two sessions|politburo|state council|premier|"
    r"white house|congress|government shutdown|election|geopolitic\w*|"
    r"equities|stock market|wall street|s&p 500|nasdaq|dow|futures|pre-bell|midday|"
    r"markets?|oil prices?|opec|dollar|currency|yuan|gold"
    r")\b",
    re.IGNORECASE,
)

# Several companies or an industry moving together.
_SECTOR = re.compile(
    r"\b("
    r"(chinese|china|hong kong|u\.?s\.?|tech|technology|internet|chip|semiconductor|ev|auto|"
    r"bank|banking|oil|energy|airline|retail|e-commerce|ai|crypto|biotech|pharma|"
    r"software|cloud|solar|mining|gaming|media|growth|value|megacap|mega-cap|large-cap|small-cap)"
    r"[\w\s-]{0,20}?\b(stocks|shares|names|sector|makers|giants|peers|adrs|companies|firms)|"
    r"other \w+ stocks|sector|industry|peers|rival stocks|across the board"
    r")\b",
    re.IGNORECASE,
)

# About the company but no catalyst: opinion, listicles, screens, fund filings.
_NO_CATALYST = re.compile(
    r"\b("
    r"should you|is it time|buy and hold|to buy|to watch|stocks? to|top \d+|\d+ (best|top)|"
    r"\d+ (growth|dividend|value|ai|tech) stocks|trending stock|heavily search|"
    r"what you need to know|"
    r"facts to know|intrinsic value|exploration|here'?s why|here is why|long-term|"
    r"hedge funds?|13f|holdings? in|position in|shares (bought|sold) by|acquires? (new )?position|"
    r"buys? shares of|sells? shares of|among .* picks"
    r")\b",
    re.IGNORECASE,
)

_TICKER_IN_TEXT = re.compile(r"(?:\(|\$|NYSE:\s*|NASDAQ:\s*)([A-Z][A-Z0-9.\-]{0,9})\)?")

_NAME_SUFFIXES = re.compile(
    r"[,.]?\s+(group|holding|holdings|limited|ltd|inc|incorporated|corp|corporation|co|company|"
    r"plc|sa|ag|nv|se|adr|class [a-c]|com)\.?$",
    re.IGNORECASE,
)


def company_aliases(symbol: str, company: str | None, extra: Iterable[str] = ()) -> list[str]:
    """Names a headline may use for a company: its name without legal suffixes, and extras."""
    names: list[str] = [a for a in extra if a]
    if company:
        name = company.strip()
        names.append(name)
        previous = None
        while previous != name:
            previous = name
            name = _NAME_SUFFIXES.sub("", name).strip()
        if name:
            names.append(name)
            first = name.split()[0].rstrip(".,")
            if len(first) >= 4 and first.lower() not in {"the", "china", "first", "american"}:
                names.append(first)
        if name.lower().endswith(".com"):
            names.append(name[:-4])
    base = symbol.split(".")[0].split("-")[0]
    out: list[str] = []
    for n in names:
        if n and n.lower() not in {o.lower() for o in out} and n.upper() != base:
            out.append(n)
    return out


def _mentions_symbol(symbol: str, text: str) -> bool:
    base = re.escape(symbol.split("-")[0])
    return re.search(rf"(?<![A-Za-z0-9]){base}(?![A-Za-z0-9])", text) is not None


def _mentions_alias(aliases: Sequence[str], text: str) -> bool:
    lowered = text.lower()
    for alias in aliases:
        pattern = rf"(?<![a-z0-9]){re.escape(alias.lower())}(?![a-z0-9])"
        if re.search(pattern, lowered):
            return True
    return False


def _other_tickers(symbol: str, title: str, related: Sequence[str]) -> set[str]:
    base = symbol.upper()
    found = {t.upper() for t in _TICKER_IN_TEXT.findall(title)}
    found |= {r.upper() for r in related}
    return {t for t in found if t and t != base and not t.startswith("^")}


def _names_several(title: str) -> bool:
    """'Alibaba, JD, and Other ...' or 'Alibaba and Tencent': lists of proper names."""
    return bool(
        re.search(r"\b[A-Z][\w.&'-]+(,\s+[A-Z][\w.&'-]+)+,?\s+(and|&)\s+[A-Z]", title)
        or re.search(r"\b[A-Z][\w.'-]+\s+(and|&)\s+[A-Z][\w.'-]+\s+(stocks|shares)\b", title)
    )


def classify_headline(
    symbol: str,
    title: str,
    company: str | None = None,
    summary: str = "",
    related: Sequence[str] = (),
) -> HeadlineKind:
    """What a headline is for SYMBOL: its own catalyst, its sector, the macro picture, or other."""
    title = (title or "").strip()
    if not title:
        return "other"
    sym = symbol.upper()
    aliases = company_aliases(sym, company)
    about_this = _mentions_symbol(sym, title) or _mentions_alias(aliases, title)
    others = _other_tickers(sym, title, related)
    several = _names_several(title) or len(others) >= 2
    sector_words = bool(_SECTOR.search(title))
    macro_words = bool(_MACRO.search(title))
    catalyst = bool(_CATALYST.search(title))
    no_catalyst = bool(_NO_CATALYST.search(title))

    if about_this and (several or sector_words) and not _owns_catalyst(aliases, sym, title):
        return "sector"
    if about_this:
        if catalyst and not macro_words:
            return "company"
        if catalyst and macro_words:
            return "company" if _owns_catalyst(aliases, sym, title) else "macro"
        if macro_words and not no_catalyst:
            return "macro"
        if not no_catalyst and summary and _CATALYST.search(summary):
            return "company"
        return "other"
    if no_catalyst:
        return "other"
    if several or sector_words:
        return "sector"
    if macro_words:
        return "macro"
    return "other"


def _owns_catalyst(aliases: Sequence[str], symbol: str, title: str) -> bool:
    """The catalyst is this company's own: 'Alibaba's results', 'Alibaba reports', 'BABA beats'."""
    names = [*aliases, symbol]
    for name in names:
        n = re.escape(name)
        if re.search(
            rf"\b{n}(['’]s)?\s+([\w-]+\s+){{0,2}}?([\w]+-)?(q[1-4]|quarter\w*|earnings|results|reports?|"
            rf"beats?|miss\w*|guidance|launch\w*|unveil\w*|raises?|cuts?|sues?|agrees?|"
            rf"to (buy|acquire)|acquires?|wins?|posts?|announces?|ceo|cfo)\b",
            title,
            re.IGNORECASE,
        ):
            return True
    return False


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(float(value), tz=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _get(mapping: Any, *path: str) -> Any:
    current = mapping
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def parse_news_item(raw: Any) -> NewsItem | None:
    """Turn one Yahoo news item (1.x nested 'content' or legacy flat shape) into a NewsItem.

    Returns None, with a debug log, for anything without a title and a publish time.
    """
    if not isinstance(raw, Mapping):
        log.debug("news item skipped: not an object")
        return None
    nested = raw.get("content")
    content: Mapping[str, Any] = nested if isinstance(nested, Mapping) else raw
    title = content.get("title")
    published = _as_datetime(
        content.get("pubDate")
        or content.get("displayTime")
        or content.get("providerPublishTime")
        or content.get("published")
    )
    if not isinstance(title, str) or not title.strip() or published is None:
        log.debug("news item skipped: no title or publish time (%s)", raw.get("id", "?"))
        return None
    url = (
        _get(content, "canonicalUrl", "url")
        or _get(content, "clickThroughUrl", "url")
        or content.get("link")
        or content.get("url")
    )
    publisher = (
        _get(content, "provider", "displayName") or content.get("publisher") or raw.get("source")
    )
    related = content.get("relatedTickers") or content.get("related") or ()
    if not related:
        tickers = _get(content, "finance", "stockTickers") or []
        related = [t.get("symbol") for t in tickers if isinstance(t, Mapping)]
    summary = content.get("summary") or content.get("description") or ""
    return NewsItem(
        title=title.strip(),
        published=published,
        publisher=publisher if isinstance(publisher, str) else "",
        url=url if isinstance(url, str) else None,
        summary=summary if isinstance(summary, str) else "",
        related=tuple(str(r).upper() for r in related if isinstance(r, str) and r),
        id=str(raw.get("id") or raw.get("uuid") or content.get("id") or title),
    )


def parse_news(raw_items: Any) -> list[NewsItem]:
    """Parse a list of raw items, skipping (and counting in the log) what cannot be read."""
    if not isinstance(raw_items, list):
        log.warning("news feed returned %s, not a list: treated as no items", type(raw_items))
        return []
    items = [item for item in (parse_news_item(r) for r in raw_items) if item is not None]
    skipped = len(raw_items) - len(items)
    if skipped:
        log.info("news: %d of %d items skipped as unreadable", skipped, len(raw_items))
    return items
