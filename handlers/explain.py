"""Explain stage: decide why a move happened (company news, sector, macro) and keep the evidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.groups import GroupIndex
from handlers.models import (
    Cause,
    ClassifiedNews,
    Explanation,
    MacroEvent,
    Move,
    NewsSearch,
)
from handlers.news import classify_headline

_KIND_ORDER = {"company": 0, "sector": 1, "macro": 2, "other": 3}


@dataclass(frozen=True, slots=True)
class ExplainParams:
    """Tunables for how much company must move with its market to count as a shared move."""

    co_move_ratio: float = 0.5
    min_peers_for_sector: int = 2


def matching_events(
    move: Move, events: Sequence[MacroEvent], groups: GroupIndex
) -> list[MacroEvent]:
    """Macro events active on the move's date that concern its symbol, group, region or themes."""
    day = move.at.date()
    group = groups.group_of(move.symbol)
    region = groups.region_of(move.symbol)
    themes = set(group.themes) if group else set()
    out = []
    for event in events:
        if not (event.start <= day <= event.end):
            continue
        if (
            move.symbol in event.symbols
            or (group is not None and group.id in event.groups)
            or region in event.regions
            or themes.intersection(event.themes)
        ):
            out.append(event)
    return out


def _same_way(pct: float, other: float | None, ratio: float) -> bool:
    if other is None or pct == 0:
        return False
    return (other > 0) == (pct > 0) and abs(other) >= ratio * abs(pct)


def shared_move(move: Move, params: ExplainParams) -> tuple[bool, str]:
    """Did the benchmark or most peers move the same way? Returns (verdict, evidence)."""
    bench = move.benchmark
    bench_with = _same_way(move.pct, bench.pct, params.co_move_ratio)
    peers_with = [p for p, v in move.peers.items() if _same_way(move.pct, v, params.co_move_ratio)]
    enough_peers = len(move.peers) >= params.min_peers_for_sector and len(peers_with) * 2 > len(
        move.peers
    )
    parts = []
    if bench.pct is not None:
        parts.append(f"{bench.symbol} {bench.pct:+.1f} %")
    if move.peers:
        parts.append(f"{len(peers_with)} of {len(move.peers)} peers moved the same way")
    return bench_with or enough_peers, "; ".join(parts)


def classify_news(
    symbol: str, search: NewsSearch | None, company: str | None
) -> tuple[ClassifiedNews, ...]:
    """Classify the items of a news search for SYMBOL, most relevant kinds first."""
    if search is None:
        return ()
    classified = [
        ClassifiedNews(
            item,
            classify_headline(symbol, item.title, company, item.summary, item.related),
        )
        for item in search.items
        if search.since <= item.published <= search.until
    ]
    classified.sort(key=lambda c: (_KIND_ORDER[c.kind], -c.item.published.timestamp()))
    return tuple(classified)


def _items(n: int) -> str:
    return f"{n} item" if n == 1 else f"{n} items"


def describe_search(search: NewsSearch | None, n_company: int) -> str:
    """'no company-specific news in 7 items since …', or why news was not searched."""
    if search is None:
        return "news was not searched (no news source configured)"
    if not search.ok:
        return f"news search failed ({search.error}); company news cannot be ruled out"
    label = search.since.tzname() or ""
    since = search.since.strftime("%Y-%m-%d %H:%M") + (f" {label}" if label else "")
    n = sum(1 for i in search.items if search.since <= i.published <= search.until)
    if n_company:
        return f"{n_company} company-specific of {_items(n)} from {search.source} since {since}"
    return f"no company-specific news in {_items(n)} from {search.source} since {since}"


def explain_move(
    move: Move,
    search: NewsSearch | None,
    events: Sequence[MacroEvent],
    groups: GroupIndex,
    params: ExplainParams,
    company: str | None = None,
) -> Explanation:
    """Say why MOVE happened: company news first, then a shared move, macro, or unexplained."""
    news = classify_news(move.symbol, search, company)
    company_news = [n for n in news if n.kind == "company"]
    sector_news = [n for n in news if n.kind == "sector"]
    searched = describe_search(search, len(company_news))
    events_here = matching_events(move, events, groups)
    catalysts = [e for e in events_here if e.kind == "catalyst"]
    shared, market = shared_move(move, params)

    cause: Cause
    if company_news:
        cause = "company"
        reason = company_news[0].item.title
    elif shared or sector_news:
        what = market or "sector news"
        if catalysts:
            cause = "macro"
            reason = f"moved with its market ({what}) as {catalysts[0].title}"
        else:
            cause = "sector"
            reason = f"moved with its market ({what})"
    elif any(move.symbol in e.symbols for e in catalysts):
        cause = "macro"
        reason = f"named in {catalysts[0].title}"
    else:
        cause = "unexplained"
        reason = f"moved on its own ({market})" if market else "moved on its own"
    return Explanation(
        symbol=move.symbol,
        cause=cause,
        reason=reason,
        news=news,
        search=search,
        context=tuple(events_here),
        company=company,
        searched=searched,
    )


def news_window_start(
    previous_close_at: datetime | None, at: datetime, fallback_hours: float
) -> datetime:
    """News counts from the previous close; without one, from a fixed look-back."""
    if previous_close_at is not None and previous_close_at < at:
        return previous_close_at
    return at - timedelta(hours=fallback_hours)
