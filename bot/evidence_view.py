"""`marketbot evidence`: one symbol's evidence window, every source's answer, and the verdict."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.table import Table
from rich.text import Text

from handlers.evidence import Evidence, EvidenceQuery, describe_evidence, gather_from
from handlers.explain import classify_evidence
from handlers.pipeline import Engine, NewsProvider

log = logging.getLogger(__name__)


def window_start(symbol: str, until: datetime, fallback_hours: float) -> datetime:
    """The previous regular close of SYMBOL's exchange before UNTIL, else a fixed look-back."""
    try:
        import pandas as pd

        from bot.infra.calendars import ALWAYS_OPEN, calendar, exchange_of

        mic = exchange_of(symbol)
        if mic != ALWAYS_OPEN:
            cal = calendar(mic)
            minute = pd.Timestamp(until).tz_convert("UTC").floor("min")
            if cal.first_minute < minute <= cal.last_minute:
                close: datetime = cal.previous_close(minute).to_pydatetime()
                return close.astimezone(ZoneInfo(str(cal.tz)))
    except Exception as exc:  # no calendar for this exchange: the look-back will do
        log.info("no exchange calendar for %s: %s", symbol, exc)
    return until - timedelta(hours=fallback_hours)


def verdict_of(engine: Engine, evidence: Evidence) -> str:
    """What the evidence alone says: the company item found, or the honest 'no news' line."""
    company = engine.companies.get(evidence.symbol)
    news = classify_evidence(evidence.symbol, evidence, company)
    own = [n for n in news if n.kind == "company"]
    basis = describe_evidence(evidence, len(own))
    if own:
        return f"company evidence: {own[0].item.title} ({basis})"
    macro = [n for n in news if n.kind == "macro"]
    if macro:
        return f"{basis}; macro news of the day: {macro[0].item.title}"
    return basis


def gather_one(
    engine: Engine, provider: NewsProvider | None, symbol: str, until: datetime
) -> tuple[Evidence, str]:
    """SYMBOL's evidence from the previous close to UNTIL, and its verdict."""
    since = window_start(symbol, until, engine.params.news_fallback_hours)
    until = until.astimezone(since.tzinfo)  # both ends in the exchange's time
    query = EvidenceQuery(symbol, since, until)
    found = gather_from(provider, [query]).get(symbol)
    evidence = found or Evidence.of(symbol, since, until, [])
    return evidence, verdict_of(engine, evidence)


def evidence_table(evidence: Evidence, verdict: str) -> Table:
    """A table of sources: answered or not, how many items, the first items, the error."""
    table = Table(
        title=f"Evidence for {evidence.symbol}: {evidence.since:%Y-%m-%d %H:%M %Z} to "
        f"{evidence.until:%Y-%m-%d %H:%M %Z}",
        caption=Text(verdict),
        show_lines=True,
    )
    for column in ("source", "ok", "items", "found / error"):
        table.add_column(column, overflow="fold")
    for s in evidence.searches:
        zone = evidence.since.tzinfo
        found = "\n".join(
            f"{i.published.astimezone(zone):%m-%d %H:%M} {i.title}" for i in s.search.items[:5]
        )
        detail = found if s.search.ok else s.search.error
        # External text as Text: rich would read "[...]" in a headline as markup.
        table.add_row(
            Text(s.name), "yes" if s.search.ok else "no", str(len(s.search.items)), Text(detail)
        )
    return table
