"""Detect stage: turn one tick's quotes into moves, and moves into per-channel triggers."""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.groups import GroupIndex
from handlers.models import BenchmarkMove, Destination, Move, Quote, WatchEntry

log = logging.getLogger(__name__)

MIN_HISTORY_FOR_ZSCORE = 5
ZSCORE_WINDOW = 20


@dataclass(frozen=True, slots=True)
class Skip:
    """A quote the engine refused to alert on, and why."""

    symbol: str
    reason: str


def quote_problem(quote: Quote, now: datetime, stale_after: timedelta) -> str | None:
    """Why a quote must not produce an alert, or None when it is usable."""
    price = quote.price
    if price is None or not math.isfinite(price) or price <= 0:
        return f"unusable price {price!r}"
    prev = quote.previous_close
    if prev is None or not math.isfinite(prev) or prev <= 0:
        return f"no usable previous close ({prev!r})"
    if quote.stale:
        return "quote marked stale by its source"
    if now - quote.at > stale_after:
        return f"quote is {int((now - quote.at).total_seconds())} s old"
    return None


def _pct(quote: Quote | None) -> float | None:
    if quote is None or not quote.previous_close or quote.previous_close <= 0:
        return None
    if not math.isfinite(quote.price) or quote.price <= 0:
        return None
    return (quote.price / quote.previous_close - 1.0) * 100.0


def volatility_zscore(pct: float, daily_returns_pct: Sequence[float]) -> float | None:
    """How many trailing daily standard deviations this move is, when history allows."""
    recent = [r for r in daily_returns_pct[-ZSCORE_WINDOW:] if math.isfinite(r)]
    if len(recent) < MIN_HISTORY_FOR_ZSCORE:
        return None
    stdev = statistics.pstdev(recent)
    if stdev <= 0:
        return None
    return pct / stdev


def detect_moves(
    quotes: Mapping[str, Quote],
    symbols: Iterable[str],
    groups: GroupIndex,
    now: datetime,
    stale_after: timedelta,
    history: Mapping[str, Sequence[float]] | None = None,
    min_abs_pct: float = 0.0,
) -> tuple[dict[str, Move], list[Skip]]:
    """Build a Move for every watched symbol with a usable quote; list the ones skipped.

    Symbols moving less than MIN_ABS_PCT (the lowest threshold anyone set) get no Move: on a
    big watchlist most symbols barely move, and building their Moves is most of a tick's cost.
    """
    moves: dict[str, Move] = {}
    skips: list[Skip] = []
    history = history or {}
    # One pass over the quotes with the cheap checks inline (a tick at 5,000 symbols spends
    # most of its detect time here); quote_problem() only words the reason of a bad one.
    try:
        oldest = now - stale_after
    except OverflowError:  # "never stale" (answers pass timedelta.max)
        oldest = datetime.min.replace(tzinfo=now.tzinfo)
    usable: dict[str, float] = {}
    problems: dict[str, str] = {}
    for sym, q in quotes.items():
        price, prev = q.price, q.previous_close
        if (
            prev is not None
            and price is not None
            and prev > 0
            and price > 0
            and not q.stale
            and q.at >= oldest
            and math.isfinite(price)
            and math.isfinite(prev)
        ):
            usable[sym] = (price / prev - 1.0) * 100.0
        else:
            problems[sym] = quote_problem(q, now, stale_after) or "unusable quote"
    market = groups.default_benchmark
    for sym in symbols:
        pct = usable.get(sym)
        if pct is None:
            skips.append(Skip(sym, problems.get(sym, "no quote this tick")))
            continue
        if abs(pct) < min_abs_pct:
            continue
        quote = quotes[sym]
        assert quote.previous_close is not None
        bench = groups.benchmark_of(sym)
        group = groups.group_of(sym)
        moves[sym] = Move(
            symbol=sym,
            pct=pct,
            price=quote.price,
            previous_close=quote.previous_close,
            at=quote.at,
            source=quote.source,
            benchmark=BenchmarkMove(bench, None if bench == sym else usable.get(bench)),
            peers={p: usable[p] for p in groups.peers_of(sym) if p in usable},
            market=(
                BenchmarkMove(market, usable.get(market)) if market not in (bench, sym) else None
            ),
            group=group.id if group else None,
            zscore=volatility_zscore(pct, history.get(sym, ())),
            delayed=quote.delayed,
            session=quote.session,
            simulated=quote.simulated,
            closing=quote.closing,
            age_s=max(0.0, (now - quote.at).total_seconds()),
        )
    return moves, skips


@dataclass(frozen=True, slots=True)
class ThresholdPolicy:
    """Where a channel's threshold for a symbol comes from: entry, then channel, then default."""

    default_pct: float
    channel_pct: Mapping[Destination, float]

    def threshold(self, entry: WatchEntry) -> float:
        if entry.threshold_pct is not None:
            return entry.threshold_pct
        if not self.channel_pct:  # the usual case; skips building a Destination per entry
            return self.default_pct
        return self.channel_pct.get(entry.destination, self.default_pct)

    def floor(self, entries: Sequence[WatchEntry]) -> float:
        """The lowest threshold of any entry: a smaller move matters to no one."""
        own = {e.threshold_pct for e in entries}
        if None in own and self.channel_pct:  # inherited thresholds differ per channel
            return min((self.threshold(e) for e in entries), default=0.0)
        found = [t for t in own if t is not None]
        if None in own:
            found.append(self.default_pct)
        return min(found, default=0.0)


def find_triggers(
    moves: Mapping[str, Move], entries: Iterable[WatchEntry], policy: ThresholdPolicy
) -> dict[Destination, list[Move]]:
    """For each channel, the moves at or beyond that channel's threshold for the symbol."""
    triggered: dict[Destination, list[Move]] = {}
    for entry in entries:
        move = moves.get(entry.symbol)
        if move is None:
            continue
        if abs(move.pct) >= policy.threshold(entry):
            triggered.setdefault(entry.destination, []).append(move)
    return triggered
