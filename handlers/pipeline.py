"""The alert pipeline: detect -> explain -> group -> dedupe, one tick at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from handlers.dedupe import (
    AlertLog,
    AlertMemory,
    DedupePolicy,
    dedupe_alerts,
    drop_already_alerted,
)
from handlers.detect import Skip, ThresholdPolicy, detect_moves, find_triggers
from handlers.evidence import EvidenceGatherer, EvidenceQuery, NewsSearcher, gather_from
from handlers.explain import ExplainParams, explain_move, news_window_start, shared_stories
from handlers.group import group_alerts
from handlers.groups import GroupIndex
from handlers.guards import MoveConfirmation, drop_future_quotes
from handlers.models import (
    Delivery,
    Destination,
    Explanation,
    MacroEvent,
    Move,
    Quote,
    WatchEntry,
)

log = logging.getLogger(__name__)


# A single news source (searched symbol by symbol) or a gatherer asking every source at once.
NewsProvider = NewsSearcher | EvidenceGatherer


@dataclass(frozen=True, slots=True)
class EngineParams:
    """Every tunable of the pipeline, filled from settings."""

    default_threshold_pct: float = 5.0
    cooldown: timedelta = timedelta(hours=2)
    escalation_step_pct: float = 2.0
    once_per_session: bool = True
    group_window: timedelta = timedelta(minutes=30)
    stale_after: timedelta = timedelta(minutes=15)
    split_jump_pct: float = 40.0
    news_fallback_hours: float = 24.0
    explain: ExplainParams = field(default_factory=ExplainParams)


@dataclass
class TickResult:
    """What one tick produced: deliveries to make, moves seen, and what was skipped and why."""

    deliveries: list[Delivery]
    moves: dict[str, Move]
    skips: list[Skip]


@dataclass
class Engine:
    """Holds the static context (groups, macro events, params) and runs the stages."""

    groups: GroupIndex
    events: Sequence[MacroEvent]
    params: EngineParams
    companies: Mapping[str, str] = field(default_factory=dict)
    # Optional second opinion on each verdict (the LLM adjudicator); blocking, so the engine
    # runs in a worker thread. It returns the explanation unchanged when it cannot do better.
    adjudicate: Callable[[Move, Explanation], Explanation] | None = None
    confirm: MoveConfirmation = field(default_factory=MoveConfirmation)

    def explain(
        self, moves: Iterable[Move], quotes: Mapping[str, Quote], news: NewsProvider | None
    ) -> tuple[dict[str, Explanation], list[Skip]]:
        """Explain each distinct triggered symbol; drop split-sized jumps with no news."""
        explanations: dict[str, Explanation] = {}
        skips: list[Skip] = []
        first: dict[str, Move] = {}
        for move in moves:
            first.setdefault(move.symbol, move)
        unique = list(first.values())
        queries = [self._query(move, quotes.get(move.symbol)) for move in unique]
        evidence = gather_from(news, queries)  # every symbol and source at once
        stories = shared_stories(evidence)
        for move in unique:
            exp = explain_move(
                move,
                evidence.get(move.symbol),
                self.events,
                self.groups,
                self.params.explain,
                self.companies.get(move.symbol),
                stories,
            )
            if abs(move.pct) >= self.params.split_jump_pct and exp.cause != "company":
                reason = f"{move.pct:+.1f} % with no company news looks like a split or bad data"
                log.warning("skipped %s: %s", move.symbol, reason)
                skips.append(Skip(move.symbol, reason))
                continue
            held = self.confirm.check(move, exp.cause == "company")
            if held is not None:
                skips.append(Skip(move.symbol, held))
                continue
            if self.adjudicate is not None:  # asked only about moves that will be told
                exp = self.adjudicate(move, exp)
            explanations[move.symbol] = exp
        return explanations, skips

    def _query(self, move: Move, quote: Quote | None) -> EvidenceQuery:
        since = news_window_start(
            quote.previous_close_at if quote else None, move.at, self.params.news_fallback_hours
        )
        return EvidenceQuery(move.symbol, since, move.at)

    def process_tick(
        self,
        quotes: Mapping[str, Quote],
        entries: Sequence[WatchEntry],
        channel_thresholds: Mapping[Destination, float],
        alert_log: AlertLog,
        now: datetime,
        news: NewsProvider | None = None,
        history: Mapping[str, Sequence[float]] | None = None,
    ) -> TickResult:
        """Run detect -> explain -> group -> dedupe on one tick's quotes.

        Moves a channel already heard about are dropped before explain, so an alert that stays
        above its threshold does not cost a news search on every tick.
        """
        p = self.params
        quotes, future = drop_future_quotes(quotes, now)
        watched = {e.symbol for e in entries}
        policy = ThresholdPolicy(p.default_threshold_pct, channel_thresholds)
        floor = policy.floor(entries)
        moves, skips = detect_moves(
            quotes, watched, self.groups, now, p.stale_after, history, min_abs_pct=floor
        )
        for skip in skips:
            log.debug("skipped %s: %s", skip.symbol, skip.reason)
        dedupe = DedupePolicy(p.cooldown, p.escalation_step_pct, p.once_per_session)
        triggered = find_triggers(moves, entries, policy)
        if not triggered:
            return TickResult([], moves, future + skips)
        memory = AlertMemory.read(alert_log, now, dedupe)  # one read serves both filters
        triggered = drop_already_alerted(triggered, alert_log, now, dedupe, memory)
        candidates = [m for ms in triggered.values() for m in ms]
        explanations, explain_skips = self.explain(candidates, quotes, news)
        grouped = group_alerts(triggered, explanations, self.groups, p.group_window)
        deliveries = dedupe_alerts(grouped, alert_log, now, dedupe, self.groups, memory)
        return TickResult(deliveries, moves, future + skips + explain_skips)
