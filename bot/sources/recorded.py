"""Recorded evidence for replays: one JSON object a line, each item with its source and symbols.

A line: {"source": "Yahoo news", "scope": "company" | "market" (default: market for
"economic" items, else company), "symbols": ["BABA", ...] (empty: market-wide, every symbol),
"published": ISO 8601 with offset, "title", "url", "publisher", "summary", "lead",
"evidence": "news" | "filing" | "earnings" | "economic", "form": "6-K", "items": ["2.02"]}.
`marketbot evidence SYMBOL --json` prints its items in this form (less `symbols`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from handlers.evidence import SourceScope
from handlers.models import EvidenceType, NewsItem, NewsSearch

log = logging.getLogger(__name__)

EVIDENCE_TYPES = ("news", "filing", "earnings", "economic")


class RecordedEvidenceError(Exception):
    """A recorded evidence file that cannot be read at all."""


@dataclass
class RecordedSource:
    """One source's recorded items, answering searches as that source did."""

    name: str
    scope: SourceScope
    items: list[tuple[frozenset[str], NewsItem]] = field(default_factory=list)

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        found = tuple(
            item
            for symbols, item in self.items
            if (not symbols or symbol in symbols) and since <= item.published <= until
        )
        return NewsSearch(symbol, since, until, found, f"recorded {self.name}")


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value if v) if isinstance(value, list) else ()


def parse_line(raw: Any) -> tuple[str, SourceScope, frozenset[str], NewsItem] | str:
    """One recorded line -> (source, scope, symbols, item), or why it was skipped."""
    if not isinstance(raw, Mapping):
        return "not an object"
    title, published = raw.get("title"), _time(raw.get("published"))
    if not isinstance(title, str) or not title.strip() or published is None:
        return "no title or published time"
    kind = raw.get("evidence", "news")
    if kind not in EVIDENCE_TYPES:
        return f"unknown evidence type {kind!r}"
    source = str(raw.get("source") or "recorded")
    default_scope = "market" if kind == "economic" else "company"
    scope = raw.get("scope", default_scope)
    if scope not in ("company", "market"):
        return f"unknown scope {scope!r}"
    symbols = frozenset(s.upper() for s in _strings(raw.get("symbols")))
    url = raw.get("url")
    item = NewsItem(
        title=title.strip(),
        published=published,
        publisher=str(raw.get("publisher") or ""),
        url=url if isinstance(url, str) and url else None,
        summary=str(raw.get("summary") or ""),
        related=tuple(sorted(symbols)),
        id=str(raw.get("id") or ""),
        lead=str(raw.get("lead") or ""),
        evidence=cast(EvidenceType, kind),
        form=str(raw.get("form") or ""),
        filing_items=_strings(raw.get("items")),
        source=source,
    )
    return source, cast(SourceScope, scope), symbols, item


def load_recorded(paths: Sequence[Path]) -> list[RecordedSource]:
    """One RecordedSource per source name across PATHS; bad lines are logged and skipped."""
    sources: dict[str, RecordedSource] = {}
    for path in paths:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise RecordedEvidenceError(f"{path}: cannot read ({exc.strerror})") from exc
        for lineno, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                parsed = parse_line(json.loads(line))
            except json.JSONDecodeError as exc:
                parsed = f"not JSON ({exc.msg})"
            if isinstance(parsed, str):
                log.warning("evidence skipped: %s:%d: %s", path.name, lineno, parsed)
                continue
            name, scope, symbols, item = parsed
            source = sources.setdefault(name, RecordedSource(name, scope))
            source.items.append((symbols, item))
    return list(sources.values())
