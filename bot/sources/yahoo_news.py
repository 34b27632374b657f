"""Yahoo news JSON (yfinance 1.x nested 'content' or the legacy flat shape) -> NewsItem."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from handlers.models import NewsItem

log = logging.getLogger(__name__)


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
