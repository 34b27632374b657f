"""Explain stage: decide why a move happened (company news, sector, macro) and keep the evidence."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.evidence import (
    Evidence,
    describe_evidence,
    evidence_kind,
    item_id,
    single_source,
    story_key,
)
from handlers.freshness import fmt_time
from handlers.groups import GroupIndex
from handlers.models import (
    Cause,
    ClassifiedNews,
    Explanation,
    MacroEvent,
    Move,
    NewsItem,
    NewsSearch,
)

_KIND_ORDER = {"company": 0, "sector": 1, "macro": 2, "other": 3, "unknown": 4}
MAX_FOUND_CONTEXT = 3
MAX_CONTEXT_SUMMARY = 400


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


def classify_evidence(
    symbol: str, evidence: Evidence | None, company: str | None
) -> tuple[ClassifiedNews, ...]:
    """Classify every item of SYMBOL's evidence in its window, most relevant kinds first."""
    if evidence is None:
        return ()
    classified = [
        ClassifiedNews(item, *evidence_kind(symbol, item, company))
        for item in evidence.items
        if evidence.since <= item.published <= evidence.until
    ]
    classified.sort(key=lambda c: (_KIND_ORDER[c.kind], -c.item.published.timestamp()))
    return tuple(classified)


def classify_news(
    symbol: str, search: NewsSearch | None, company: str | None
) -> tuple[ClassifiedNews, ...]:
    """Classify the items of one news search for SYMBOL, most relevant kinds first."""
    return classify_evidence(symbol, _as_evidence(search), company)


def _as_evidence(found: Evidence | NewsSearch | None) -> Evidence | None:
    if isinstance(found, NewsSearch):
        return single_source(found.source, found)
    return found


def describe_search(search: NewsSearch | None, n_company: int) -> str:
    """'no company-specific news in 7 items since …', or why news was not searched."""
    return describe_evidence(_as_evidence(search), n_company)


def event_from_item(item: NewsItem) -> MacroEvent:
    """A macro story found in the day's evidence, as a context entry with source, time, link."""
    day = item.published.date()
    source = item.publisher or item.source
    found = f"Found in the day's evidence: {source or 'a source'}, {fmt_time(item.published)}"
    # Never empty: some platforms refuse an empty field, and the source and time belong shown.
    summary = item.summary or item.lead or found
    if len(summary) > MAX_CONTEXT_SUMMARY:
        summary = summary[: MAX_CONTEXT_SUMMARY - 1].rstrip() + "…"
    return MacroEvent(
        id=f"found:{item_id(item)}",
        title=item.title,
        start=day,
        end=day,
        summary=summary,
        links=(item.url,) if item.url else (),
        source=source,
        at=item.published,
    )


def found_context(
    news: Sequence[ClassifiedNews], evidence: Evidence | None, shared_stories: Set[str]
) -> list[MacroEvent]:
    """The day's macro stories in the evidence, best first.

    A macro headline in the benchmark's or the market's news, or in several moving symbols'
    news, ranks first; a scheduled economic release of the window next; a macro headline in
    the symbol's own news only last.
    """
    if evidence is None:
        return []
    market_keys = {
        story_key(i) for s in evidence.searches if s.scope == "market" for i in s.search.items
    }
    ranked: list[tuple[int, float, MacroEvent]] = []
    for cn in news:
        if cn.kind != "macro":
            continue
        key = story_key(cn.item)
        if cn.item.evidence == "economic":
            rank = 1
        elif key in market_keys or key in shared_stories:
            rank = 0
        else:
            rank = 2
        ranked.append((rank, -cn.item.published.timestamp(), event_from_item(cn.item)))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [event for _, _, event in ranked[:MAX_FOUND_CONTEXT]]


def explain_move(
    move: Move,
    evidence: Evidence | NewsSearch | None,
    events: Sequence[MacroEvent],
    groups: GroupIndex,
    params: ExplainParams,
    company: str | None = None,
    shared_stories: Set[str] = frozenset(),
) -> Explanation:
    """Say why MOVE happened: company news first, then a shared move, macro, or unexplained.

    SHARED_STORIES are the story keys found in the evidence of several moving symbols.
    """
    found = _as_evidence(evidence)
    news = classify_evidence(move.symbol, found, company)
    company_news = [n for n in news if n.kind == "company"]
    sector_news = [n for n in news if n.kind == "sector"]
    searched = describe_evidence(found, len(company_news))
    events_here = matching_events(move, events, groups)
    catalysts = [e for e in events_here if e.kind == "catalyst"]
    shared, market = shared_move(move, params)
    with_market = bool(shared or sector_news) and not company_news
    # A catalyst written into the macro events file overrides what the day's evidence found.
    looking = with_market and not catalysts
    stories = found_context(news, found, shared_stories) if looking else []
    verified = bool(company_news) or (found is not None and found.company_ruled_out)
    releases = {f"found:{item_id(n.item)}" for n in news if n.item.evidence == "economic"}
    headline = next((e for e in stories if e.id not in releases), None)

    unknown_news = [n for n in news if n.kind == "unknown"]
    cause: Cause
    if company_news:
        cause = "company"
        reason = company_news[0].item.title
    elif with_market:
        what = market or "sector news"
        if catalysts:
            cause = "macro"
            reason = f"moved with its market ({what}) as {catalysts[0].title}"
        elif headline is not None:
            cause = "macro"
            reason = f"moved with its market ({what}); the day's macro news: {headline.title}"
        else:
            # A scheduled release alone is context, not proof that it moved the market.
            cause = "sector"
            reason = f"moved with its market ({what})"
    elif any(move.symbol in e.symbols for e in catalysts):
        cause = "macro"
        reason = f"named in {catalysts[0].title}"
    elif unknown_news:
        cause = "unexplained"
        reason = f"a story says it moved but not why: {unknown_news[0].item.title}"
    else:
        cause = "unexplained"
        reason = f"moved on its own ({market})" if market else "moved on its own"
    confidence = verdict_confidence(cause, company_news, bool(shared), bool(catalysts), verified)
    if unknown_news and cause == "unexplained":
        confidence = min(confidence, UNKNOWN_CONFIDENCE)
    return Explanation(
        symbol=move.symbol,
        cause=cause,
        reason=reason,
        news=news,
        search=found.as_search() if found is not None else None,
        context=(*catalysts, *stories, *(e for e in events_here if e.kind != "catalyst")),
        company=company,
        searched=searched,
        verified=verified,
        confidence=confidence,
    )


# How sure each kind of verdict is, before the evidence's own confidence is taken into account.
SHARED_MOVE_CONFIDENCE = 0.8  # the benchmark or most peers moved the same way
SECTOR_NEWS_ONLY_CONFIDENCE = 0.55  # sector news, but the market did not move with it
MACRO_FROM_FILE_CONFIDENCE = 0.85  # an operator's catalyst for the day, and a shared move
MACRO_FROM_NEWS_CONFIDENCE = 0.75  # a macro headline found in several symbols' news
UNEXPLAINED_CONFIDENCE = 0.6  # every company source answered, and the market stayed put
UNKNOWN_CONFIDENCE = 0.35  # a story says it moved but not why
UNVERIFIED_CAP = 0.5  # company news could not be ruled out


def verdict_confidence(
    cause: Cause,
    company_news: Sequence[ClassifiedNews],
    shared: bool,
    from_file: bool,
    verified: bool,
) -> float:
    """0..1: the strongest company item's confidence, or how strong the market evidence is."""
    if cause == "company":
        best = max(n.confidence for n in company_news)
        # Two independent company items (a story and a filing) make the verdict firmer.
        return round(min(1.0, best + 0.1 * (len(company_news) - 1)), 3)
    if cause == "macro":
        base = MACRO_FROM_FILE_CONFIDENCE if from_file else MACRO_FROM_NEWS_CONFIDENCE
    elif cause == "sector":
        base = SHARED_MOVE_CONFIDENCE if shared else SECTOR_NEWS_ONLY_CONFIDENCE
    else:
        base = UNEXPLAINED_CONFIDENCE
    return base if verified else min(base, UNVERIFIED_CAP)


def shared_stories(evidence: Mapping[str, Evidence]) -> frozenset[str]:
    """Story keys that appear in the evidence of two or more symbols."""
    counts: Counter[str] = Counter()
    for ev in evidence.values():
        counts.update({story_key(i) for i in ev.items})
    return frozenset(key for key, n in counts.items() if n >= 2)


def news_window_start(
    previous_close_at: datetime | None, at: datetime, fallback_hours: float
) -> datetime:
    """News counts from the previous close; without one, from a fixed look-back."""
    if previous_close_at is not None and previous_close_at < at:
        return previous_close_at
    return at - timedelta(hours=fallback_hours)
