"""News from a JSON Lines file: one item a line, in Yahoo's flat or nested shape or our own."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

from bot.sources.yahoo.news import parse_news_item
from handlers.models import NewsItem, NewsSearch

log = logging.getLogger(__name__)


class NewsFileError(Exception):
    """A news file that cannot be read at all."""


class NewsFile:
    """An in-memory news feed loaded from JSONL; bad lines are skipped and counted."""

    def __init__(self, items: list[NewsItem], source: str) -> None:
        self.items = sorted(items, key=lambda i: i.published)
        self.source = source
        self.skipped: list[str] = []

    @classmethod
    def load(cls, path: Path) -> NewsFile:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise NewsFileError(f"{path}: cannot read ({exc.strerror})") from exc
        items: list[NewsItem] = []
        skipped: list[str] = []
        for lineno, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                skipped.append(f"{path.name}:{lineno}: not JSON ({exc.msg})")
                continue
            item = parse_news_item(raw)
            if item is None:
                skipped.append(f"{path.name}:{lineno}: no title or publish time")
                continue
            items.append(item)
        for msg in skipped:
            log.warning("news skipped: %s", msg)
        feed = cls(items, f"news file {path.name}")
        feed.skipped = skipped
        return feed

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        """Items in the window that name the symbol among their related tickers or title."""
        found = tuple(
            item
            for item in self.items
            if since <= item.published <= until and _concerns(item, symbol)
        )
        return NewsSearch(symbol, since, until, found, self.source)


def _concerns(item: NewsItem, symbol: str) -> bool:
    if item.related:
        return symbol in item.related
    return symbol in item.title.upper().split()
