"""The alert pipeline: detect -> explain -> group -> the stages, one tick at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from handlers.detect import Skip, ThresholdPolicy, detect_moves, find_triggers
from handlers.evidence import EvidenceQuery, gather_from
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
from handlers.ports import AlertLog, EvidenceGatherer, HeldAlerts, NewsSearcher
from handlers.stages import default_stages
from handlers.stages.base import AlertMemory, MoveFilter, Stage, StageContext
from handlers.stages.dedupe import DedupePolicy
from handlers.stages.quiet_hours import due_summaries

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
    # The stages after grouping; empty means default_stages() of the params above.
    stages: Sequence[Stage] = ()

    @property
    def dedupe_policy(self) -> DedupePolicy:
        p = self.params
        return DedupePolicy(p.cooldown, p.escalation_step_pct, p.once_per_session)

    def pipeline(self) -> Sequence[Stage]:
        """The stages after grouping: the engine's own, else default_stages()."""
        if self.stages:
            return self.stages
        p = self.params
        return default_stages(
            self.dedupe_policy, p.split_jump_pct, self.confirm, self.adjudicate, p.group_window
        )

    def explain(
        self, moves: Iterable[Move], quotes: Mapping[str, Quote], news: NewsProvider | None
    ) -> dict[str, Explanation]:
        """Explain each distinct symbol of MOVES by the rules, asking every source at once (the
        adjudicator, if any, is a stage: asked only about what passes the guards)."""
        explanations: dict[str, Explanation] = {}
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
            explanations[move.symbol] = exp
        return explanations

    def _query(self, move: Move, quote: Quote | None) -> EvidenceQuery:
        since = news_window_start(
            quote.previous_close_at if quote else None, move.at, self.params.news_fallback_hours
        )
        return EvidenceQuery(move.symbol, since, move.at)

    def due_quiet_summaries(self, held: HeldAlerts, now: datetime) -> list[Delivery]:
        """One summary per channel whose quiet hours are over at NOW and held alerts (the
        scheduler calls this when no tick runs, e.g. with the market closed)."""
        return due_summaries(held, now)

    def process_tick(
        self,
        quotes: Mapping[str, Quote],
        entries: Sequence[WatchEntry],
        channel_thresholds: Mapping[Destination, float],
        alert_log: AlertLog,
        now: datetime,
        news: NewsProvider | None = None,
        history: Mapping[str, Sequence[float]] | None = None,
        *,
        held: HeldAlerts | None = None,
    ) -> TickResult:
        """Detect -> explain -> group -> the stages, on one tick's quotes.

        Stages that can (mute, dedupe) also drop moves before explain, so an alert that stays
        above its threshold does not cost a news search on every tick. With HELD (the store
        of quiet hours), summaries whose quiet hours are over come first in the deliveries.
        """
        p = self.params
        summaries = due_summaries(held, now) if held is not None else []
        quotes, future = drop_future_quotes(quotes, now)
        watched = {e.symbol for e in entries}
        policy = ThresholdPolicy(p.default_threshold_pct, channel_thresholds)
        floor = policy.floor(entries)
        moves, skips = detect_moves(
            quotes, watched, self.groups, now, p.stale_after, history, min_abs_pct=floor
        )
        for skip in skips:
            log.debug("skipped %s: %s", skip.symbol, skip.reason)
        triggered = find_triggers(moves, entries, policy)
        if not triggered:
            return TickResult(summaries, moves, future + skips)
        memory = AlertMemory.read(alert_log, now, p.cooldown)  # one read serves every stage
        ctx = StageContext(now, self.groups, memory, held)
        stages = self.pipeline()
        for stage in stages:
            if isinstance(stage, MoveFilter):
                triggered = stage.filter_moves(triggered, ctx)
        candidates = [m for ms in triggered.values() for m in ms]
        explanations = self.explain(candidates, quotes, news)
        deliveries = group_alerts(triggered, explanations, self.groups, p.group_window)
        for stage in stages:
            deliveries = stage.run(deliveries, ctx)
        return TickResult(summaries + deliveries, moves, future + skips + ctx.skips)
