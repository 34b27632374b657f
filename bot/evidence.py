"""Ask every configured evidence source at once, in threads, under one deadline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Protocol

from handlers.evidence import (
    NOT_CHECKED,
    Evidence,
    EvidenceQuery,
    SourceScope,
    SourceSearch,
)
from handlers.models import NewsItem, NewsSearch
from handlers.ports import EvidenceSource

log = logging.getLogger(__name__)

MAX_WORKERS = 32


class LeadFetcher(Protocol):
    """Adds article leads to the items that need them (bot/sources/article.py)."""

    name: str

    def enrich(
        self, symbol: str, items: Sequence[NewsItem], timeout_s: float
    ) -> tuple[list[NewsItem], str]: ...


def _failed(query: EvidenceQuery, name: str, error: str) -> NewsSearch:
    return NewsSearch(query.symbol, query.since, query.until, (), name, ok=False, error=error)


def _search(source: EvidenceSource, query: EvidenceQuery) -> NewsSearch:
    """One source's answer; whatever it raises becomes a failed search, never a traceback."""
    try:
        return source.search(query.symbol, query.since, query.until)
    except Exception as exc:
        log.warning("evidence: %s failed for %s: %s", source.name, query.symbol, exc)
        return _failed(query, source.name, f"{type(exc).__name__}: {exc}"[:200])


def _warm(name: str, warm: Callable[[], object]) -> None:
    """One source's warm-up; a failure is one logged line (its first search fetches again)."""
    started = time.monotonic()
    try:
        warm()
    except Exception as exc:
        log.warning(
            "evidence: warming up %s failed (%s); its first search will fetch again",
            name,
            f"{type(exc).__name__}: {exc}"[:200],
        )
    else:
        log.info("evidence: %s warmed up in %.1f s", name, time.monotonic() - started)


class Gatherer:
    """Evidence for several symbols from every source at once; late answers are 'timed out'."""

    def __init__(
        self,
        sources: Sequence[EvidenceSource],
        deadline_s: float,
        leads: LeadFetcher | None = None,
        max_workers: int = MAX_WORKERS,
    ) -> None:
        if not deadline_s > 0:
            raise ValueError(f"the evidence deadline must be above 0 s, not {deadline_s!r}")
        self.sources = list(sources)
        self.deadline_s = deadline_s
        self.leads = leads
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="evidence")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources] + ([self.leads.name] if self.leads else [])

    def warm_up(self) -> list[Future[None]]:
        """Start every source's one-time fetches (Yahoo's cookie and crumb, the SEC's ticker
        map, the article extractor) in the background, all at once, and return at once."""
        parts: list[object] = [*self.sources, *([self.leads] if self.leads else [])]
        jobs: list[Future[None]] = []
        for part in parts:
            warm = getattr(part, "warm_up", None)
            if callable(warm):
                jobs.append(self._pool.submit(_warm, str(getattr(part, "name", part)), warm))
        return jobs

    def gather(self, queries: Sequence[EvidenceQuery]) -> Mapping[str, Evidence]:
        """Every source for every query, all at once; then article leads in the time left."""
        ends_at = time.monotonic() + self.deadline_s
        jobs = {
            (q.symbol, i): self._pool.submit(_search, src, q)
            for q in queries
            for i, src in enumerate(self.sources)
        }
        wait(jobs.values(), timeout=self.deadline_s)
        found: dict[str, list[SourceSearch]] = {}
        for q in queries:
            found[q.symbol] = [
                SourceSearch(src.name, src.scope, self._answer(jobs[(q.symbol, i)], q, src.name))
                for i, src in enumerate(self.sources)
            ]
        if self.leads is not None:
            self._add_leads(queries, found, ends_at)
        return {q.symbol: Evidence.of(q.symbol, q.since, q.until, found[q.symbol]) for q in queries}

    def _answer(self, job: Future[NewsSearch], query: EvidenceQuery, name: str) -> NewsSearch:
        if job.done():
            return job.result()
        job.cancel()
        log.warning("evidence: %s gave no answer for %s in time", name, query.symbol)
        return _failed(query, name, f"timed out after {self.deadline_s:g} s")

    def _add_leads(
        self, queries: Sequence[EvidenceQuery], found: dict[str, list[SourceSearch]], ends_at: float
    ) -> None:
        assert self.leads is not None
        leads = self.leads
        left = ends_at - time.monotonic()
        jobs: dict[str, Future[tuple[list[NewsItem], str]]] = {}
        for q in queries:
            items = Evidence.of(q.symbol, q.since, q.until, found[q.symbol]).items
            if items and left > 0:
                jobs[q.symbol] = self._pool.submit(leads.enrich, q.symbol, items, left)
        wait(jobs.values(), timeout=max(0.0, left))
        scope: SourceScope = "lead"
        for q in queries:
            job = jobs.get(q.symbol)
            if job is None and left > 0:
                search = _failed(q, leads.name, f"{NOT_CHECKED}: no item to read")
            elif job is None or not job.done():
                error = f"timed out after {self.deadline_s:g} s"
                search = _failed(q, leads.name, error)
            elif job.exception() is not None:
                search = _failed(q, leads.name, f"{type(job.exception()).__name__}")
            else:
                enriched, error = job.result()
                search = NewsSearch(
                    q.symbol, q.since, q.until, tuple(enriched), leads.name, not error, error
                )
            found[q.symbol].append(SourceSearch(leads.name, scope, search))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
