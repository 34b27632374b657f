"""Group stage: moves of one group, one direction and one window become one alert."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta

from handlers.groups import GroupIndex
from handlers.models import Alert, Cause, Delivery, Destination, Direction, Explanation, Move

# When the symbols of one alert disagree, the broader explanation leads the headline.
_CAUSE_PRIORITY: dict[Cause, int] = {"macro": 0, "sector": 1, "unexplained": 2, "company": 3}


def alert_cause(explanations: Sequence[Explanation]) -> Cause:
    """The cause an alert leads with: the most common among its symbols, broader first on ties."""
    counts = Counter(e.cause for e in explanations)
    return min(counts, key=lambda c: (-counts[c], _CAUSE_PRIORITY[c]))


def _bucket_key(move: Move, exp: Explanation) -> tuple[str, Direction]:
    # A move on its own company news is its own story, never folded into a group alert; a
    # move the market does not explain is kept apart from the ones it does.
    if exp.cause == "company" or move.group is None:
        return f"symbol:{move.symbol}", move.direction
    shared = "alone" if exp.cause == "unexplained" else "shared"
    return f"group:{move.group}:{shared}", move.direction


def _split_by_window(moves: list[Move], window: timedelta) -> list[list[Move]]:
    moves = sorted(moves, key=lambda m: m.at)
    chunks: list[list[Move]] = []
    for move in moves:
        if chunks and move.at - chunks[-1][0].at <= window:
            chunks[-1].append(move)
        else:
            chunks.append([move])
    return chunks


def build_alert(
    moves: Sequence[Move], explanations: Mapping[str, Explanation], groups: GroupIndex
) -> Alert:
    """One Alert from moves that belong together, biggest move first."""
    ordered = tuple(sorted(moves, key=lambda m: -abs(m.pct)))
    exps = {m.symbol: explanations[m.symbol] for m in ordered}
    group_id = ordered[0].group
    return Alert(
        at=max(m.at for m in ordered),
        direction=ordered[0].direction,
        moves=ordered,
        explanations=exps,
        cause=alert_cause(list(exps.values())),
        group=groups.groups.get(group_id) if group_id else None,
    )


def group_alerts(
    triggered: Mapping[Destination, Sequence[Move]],
    explanations: Mapping[str, Explanation],
    groups: GroupIndex,
    window: timedelta,
) -> list[Delivery]:
    """Per channel, fold its triggered moves into alerts; channels with equal alerts share one."""
    by_alert: dict[str, tuple[Alert, list[Destination]]] = {}
    for dest, moves in triggered.items():
        buckets: dict[tuple[str, Direction], list[Move]] = {}
        for move in moves:
            if move.symbol in explanations:
                buckets.setdefault(_bucket_key(move, explanations[move.symbol]), []).append(move)
        for bucket in buckets.values():
            for chunk in _split_by_window(bucket, window):
                alert = build_alert(chunk, explanations, groups)
                by_alert.setdefault(alert.id, (alert, []))[1].append(dest)
    return [Delivery(alert, tuple(dests)) for alert, dests in by_alert.values()]
