"""What a move's chart shows: which lines, rebased to 0 % at the previous close, and the marks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Literal

from handlers.groups import GroupIndex
from handlers.ports import PricePoint, SessionPaths

Role = Literal["subject", "peer", "benchmark", "market"]
# Every alerted symbol of a group is drawn (a China-internet group alert has five or six).
MAX_SUBJECTS = 10
MAX_PEERS = 2
OVERNIGHT = timedelta(hours=2)
# Points further apart than this (e.g. one close a day) are not an intraday path.
# Fewer session prices than this are points (a daily close), never a path.
MIN_PATH_POINTS = 3
SPARSE_GAP = timedelta(minutes=20)


@dataclass(frozen=True, slots=True)
class ChartSeries:
    symbol: str
    role: Role
    points: tuple[tuple[datetime, float], ...]  # (time, % vs previous close)

    @property
    def last_pct(self) -> float:
        return self.points[-1][1]


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """Everything needed to draw the picture; the renderer decides nothing of substance."""

    title: str
    series: tuple[ChartSeries, ...]
    threshold_pct: float
    marker_at: datetime
    tz: str
    source: str
    event_label: str | None = None
    event_at: datetime | None = None
    sparse: bool = False  # a few prices a day: drawn as points, not joined as a path

    @property
    def cache_key(self) -> str:
        """Same symbols and same data time give the same picture."""
        last = max(p[0] for s in self.series for p in s.points)
        parts = [*(s.symbol for s in self.series), last.isoformat(), self.title]
        return "|".join([*parts, self.event_label or "", f"{self.threshold_pct:g}"])


def rebase(points: Sequence[PricePoint]) -> tuple[tuple[datetime, float], ...]:
    """Percent change of each point against the first one (the previous close).

    The previous close is placed at the session's first price, so the line steps from 0 % at
    the open (the overnight gap) and the night between takes no room in the picture.
    """
    if not points or points[0][1] <= 0:
        return ()
    base = points[0][1]
    moved = list(points)
    if len(moved) >= 2 and moved[1][0] - moved[0][0] > OVERNIGHT:
        moved[0] = (moved[1][0], base)
    return tuple((at, (price / base - 1.0) * 100.0) for at, price in moved)


def is_sparse(points: Sequence[tuple[datetime, float]]) -> bool:
    """True when the session's prices (after the previous close) are too few or far apart."""
    session = points[1:]
    if len(session) < MIN_PATH_POINTS:
        return True
    gaps = sorted(b[0] - a[0] for a, b in pairwise(session))
    return gaps[len(gaps) // 2] > SPARSE_GAP


def chart_symbols(
    symbols: Sequence[str], groups: GroupIndex, peer_moves: Mapping[str, float] | None = None
) -> list[tuple[str, Role]]:
    """The alerted symbols (up to 4), the largest other peers, the benchmark and the market."""
    subjects = list(dict.fromkeys(symbols))[:MAX_SUBJECTS]
    chosen: list[tuple[str, Role]] = [(s, "subject") for s in subjects]
    if len(subjects) < MAX_SUBJECTS and subjects:
        peers = [p for p in groups.peers_of(subjects[0]) if p not in subjects]
        if peer_moves:
            peers.sort(key=lambda p: -abs(peer_moves.get(p, 0.0)))
        chosen += [(p, "peer") for p in peers[:MAX_PEERS]]
    if subjects:
        benchmark = groups.benchmark_of(subjects[0])
        if benchmark not in subjects:
            chosen.append((benchmark, "benchmark"))
    market = groups.default_benchmark
    if all(s != market for s, _ in chosen):
        chosen.append((market, "market"))
    return chosen


def build_chart_spec(
    symbols: Sequence[str],
    at: datetime,
    paths: SessionPaths,
    groups: GroupIndex,
    threshold_pct: float,
    tz: str,
    source: str,
    context: Sequence[str] = (),
    peer_moves: Mapping[str, float] | None = None,
) -> ChartSpec | None:
    """The chart of SYMBOLS' session up to AT, or None when the subject has no prices."""
    series: list[ChartSeries] = []
    for symbol, role in chart_symbols(symbols, groups, peer_moves):
        points = rebase(paths.session_path(symbol, at))
        if len(points) >= 2:
            series.append(ChartSeries(symbol, role, points))
    if not any(s.role == "subject" for s in series):
        return None
    subject = next(s for s in series if s.role == "subject")
    moves = ", ".join(f"{s.symbol} {s.last_pct:+.1f} %" for s in series if s.role == "subject")
    title = f"{moves} vs previous close"
    event = context[0] if context else None
    first = min(p[0] for s in series for p in s.points)
    return ChartSpec(
        title=title,
        series=tuple(series),
        threshold_pct=abs(threshold_pct) if subject.last_pct >= 0 else -abs(threshold_pct),
        marker_at=subject.points[-1][0],
        tz=tz,
        source=source,
        event_label=event,
        event_at=first if event else None,
        sparse=is_sparse(subject.points),
    )
