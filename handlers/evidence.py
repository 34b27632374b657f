"""Evidence from several sources for one symbol: merged once per story, and described honestly."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Literal

from handlers.freshness import fmt_time
from handlers.models import ItemKind, NewsItem, NewsSearch
from handlers.news import classify_item
from handlers.ports import EvidenceGatherer, NewsSearcher

# "company" sources can rule company news out; "market" sources only give macro context;
# "lead" adds article leads to items found by the others.
SourceScope = Literal["company", "market", "lead"]
# A source that did not even try (not configured, no filings for this exchange) starts its
# error with this; anything else is a failure of a source that should have answered.
NOT_CHECKED = "not checked"
MAX_ERROR_CHARS = 90


@dataclass(frozen=True, slots=True)
class EvidenceQuery:
    """One symbol's window to gather evidence for."""

    symbol: str
    since: datetime
    until: datetime


@dataclass(frozen=True, slots=True)
class SourceSearch:
    """What one source answered for one symbol (or why it did not)."""

    name: str
    scope: SourceScope
    search: NewsSearch

    @property
    def checked(self) -> bool:
        return self.search.ok or not self.search.error.startswith(NOT_CHECKED)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Every source's answer for one symbol and window, and their items merged once each."""

    symbol: str
    since: datetime
    until: datetime
    searches: tuple[SourceSearch, ...]
    items: tuple[NewsItem, ...]

    @classmethod
    def of(
        cls, symbol: str, since: datetime, until: datetime, searches: Iterable[SourceSearch]
    ) -> Evidence:
        found = tuple(searches)
        items = merge_items(i for s in found for i in s.search.items)
        return cls(symbol, since, until, found, tuple(items))

    @property
    def company_searches(self) -> tuple[SourceSearch, ...]:
        return tuple(s for s in self.searches if s.scope == "company")

    @property
    def company_ruled_out(self) -> bool:
        """True when every company source answered: only then may 'no company news' be said."""
        company = self.company_searches
        return bool(company) and all(s.search.ok for s in company)

    def as_search(self) -> NewsSearch:
        """One NewsSearch over all sources (ok only when company news could be ruled out)."""
        names = ", ".join(s.name for s in self.searches if s.search.ok)
        failed = "; ".join(f"{s.name}: {s.search.error}" for s in self.searches if not s.search.ok)
        return NewsSearch(
            self.symbol,
            self.since,
            self.until,
            self.items,
            names or "no source answered",
            ok=self.company_ruled_out,
            error=failed,
        )


@lru_cache(maxsize=65536)
def story_key(item: NewsItem) -> str:
    """What makes two items the same story: the URL without its query, else the title."""
    if item.url:
        url = item.url.split("#", 1)[0].split("?", 1)[0].rstrip("/").lower()
        return "url:" + re.sub(r"^https?://(www\.)?", "", url)
    return "title:" + normalise_title(item.title)


@lru_cache(maxsize=65536)
def normalise_title(title: str) -> str:
    return " ".join(re.sub(r"[^\w%]+", " ", title.lower()).split())


def merge_items(items: Iterable[NewsItem]) -> list[NewsItem]:
    """Items once each (same URL or same normalised title), newest first; a lead is kept."""
    out: dict[str, NewsItem] = {}
    alias: dict[str, str] = {}
    for item in sorted(items, key=lambda i: i.published, reverse=True):
        keys = [story_key(item), "title:" + normalise_title(item.title)]
        known = next((alias[k] for k in keys if k in alias), None)
        if known is None:
            known = keys[0]
            out[known] = item
        elif not out[known].lead and item.lead:
            out[known] = replace(out[known], lead=item.lead)
        for key in keys:
            alias.setdefault(key, known)
    return list(out.values())


def item_id(item: NewsItem) -> str:
    """A stable id for an item (its own, else a hash of its story key)."""
    if item.id:
        return item.id
    return hashlib.sha1(story_key(item).encode()).hexdigest()[:12]


def evidence_kind(symbol: str, item: NewsItem, company: str | None) -> tuple[ItemKind, float]:
    """What an item says about SYMBOL, and how sure: the classifier's verdict on all it carries."""
    verdict = classify_item(symbol, item, company)
    return verdict.kind, verdict.confidence


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def _failure(s: SourceSearch) -> str:
    if not s.checked:
        reason = s.search.error[len(NOT_CHECKED) :].lstrip(" :;,-")
        return f"{s.name} not checked" + (f" ({reason})" if reason else "")
    error = s.search.error
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 1].rstrip() + "…"
    return f"{s.name} unreachable ({error})" if error else f"{s.name} failed"


def describe_evidence(evidence: Evidence | None, n_company: int) -> str:
    """The honest basis of a verdict: what was searched, how much, since when, what failed."""
    if evidence is None:
        return "news was not searched (no news source configured)"
    company = evidence.company_searches
    # A lead fetcher with nothing to read is no gap in the evidence.
    failed = [s for s in evidence.searches if not s.search.ok and (s.scope != "lead" or s.checked)]
    answered = [s for s in company if s.search.ok]
    n = len([i for i in evidence.items if evidence.since <= i.published <= evidence.until])
    where = ", ".join(s.name for s in answered)
    since = fmt_time(evidence.since)
    if n_company:
        found = f"{n_company} company-specific of {_items(n)} from {where or 'the sources'}"
        line = f"{found} since {since}"
    elif not company:
        line = "company news was not searched (no company source configured)"
    elif evidence.company_ruled_out and n:
        line = f"no company-specific news in {_items(n)} from {where} since {since}"
    elif evidence.company_ruled_out:
        line = f"no company-specific news: no items at all from {where} since {since}"
    else:
        searched = f"; searched {where} since {since}" if where else ""
        line = "company news cannot be ruled out" + searched
    if failed:
        line = "; ".join(_failure(s) for s in failed) + "; " + line
    return line


def evidence_json(evidence: Evidence, verdict: str) -> dict[str, object]:
    """The public JSON of `marketbot evidence`: symbol, since, until, sources, verdict."""
    return {
        "symbol": evidence.symbol,
        "since": evidence.since.isoformat(),
        "until": evidence.until.isoformat(),
        "sources": [
            {
                "name": s.name,
                "ok": s.search.ok,
                "items": [item_json(i) for i in s.search.items],
                "error": s.search.error or None,
            }
            for s in evidence.searches
        ],
        "verdict": verdict,
    }


def item_json(item: NewsItem) -> dict[str, object]:
    """One item in the documented JSON form (also the recorded-evidence line, less its symbol)."""
    out: dict[str, object] = {
        "source": item.source,
        "published": item.published.isoformat(),
        "title": item.title,
        "url": item.url,
        "publisher": item.publisher,
        "evidence": item.evidence,
    }
    optional: dict[str, object] = {
        "summary": item.summary,
        "lead": item.lead,
        "related": list(item.related),
        "form": item.form,
        "items": list(item.filing_items),
    }
    out.update({k: v for k, v in optional.items() if v})
    return out


def single_source(name: str, search: NewsSearch) -> Evidence:
    """Evidence from one plain news provider (a news file, a test feed)."""
    source = SourceSearch(name, "company", search)
    return Evidence.of(search.symbol, search.since, search.until, [source])


def gather_from(
    provider: NewsSearcher | EvidenceGatherer | None, queries: Sequence[EvidenceQuery]
) -> dict[str, Evidence]:
    """Evidence per symbol from a gatherer, or from one plain provider asked in turn."""
    if provider is None or not queries:
        return {}
    if isinstance(provider, EvidenceGatherer):
        return dict(provider.gather(queries))
    out: dict[str, Evidence] = {}
    for q in queries:
        search = provider.search(q.symbol, q.since, q.until)
        out[q.symbol] = single_source(search.source, search)
    return out
