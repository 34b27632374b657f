"""Second-opinion stage: the optional adjudicator reviews each verdict that is about to be told."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from handlers.group import group_alerts
from handlers.models import Alert, Delivery, Destination, Explanation, Move
from handlers.stages.base import StageContext, unique_moves

# Blocking (an LLM over HTTP at the edge); returns the explanation unchanged when it cannot
# do better. The engine runs in a worker thread.
Adjudicator = Callable[[Move, Explanation], Explanation]


@dataclass(frozen=True, slots=True)
class Adjudicate:
    """Asks the adjudicator about each symbol left after the guards, once, and regroups the
    alerts whose verdicts changed (a move now on company news is its own alert)."""

    adjudicator: Adjudicator
    group_window: timedelta

    def run(self, deliveries: list[Delivery], ctx: StageContext) -> list[Delivery]:
        reviewed: dict[str, Explanation] = {}
        changed = False
        for move, alert in unique_moves(deliveries):
            before = alert.explanations[move.symbol]
            reviewed[move.symbol] = self.adjudicator(move, before)
            changed = changed or reviewed[move.symbol] is not before
        if not changed:
            return deliveries
        return _regroup(deliveries, reviewed, ctx, self.group_window)


def _regroup(
    deliveries: list[Delivery],
    explanations: dict[str, Explanation],
    ctx: StageContext,
    window: timedelta,
) -> list[Delivery]:
    """The same channels and moves grouped anew on EXPLANATIONS, escalations kept."""
    moves: dict[Destination, list[Move]] = {}
    widened: dict[Destination, set[str]] = {}
    for delivery in deliveries:
        for dest in delivery.destinations:
            moves.setdefault(dest, []).extend(delivery.alert.moves)
            widened.setdefault(dest, set()).update(delivery.alert.escalated)
    merged: dict[str, tuple[Alert, list[Destination]]] = {}
    for dest, dest_moves in moves.items():
        for regrouped in group_alerts({dest: dest_moves}, explanations, ctx.groups, window):
            alert = regrouped.alert
            marked = tuple(s for s in alert.symbols if s in widened[dest])
            if marked:
                alert = dataclasses.replace(alert, escalated=marked)
            merged.setdefault(alert.id, (alert, []))[1].append(dest)
    return [Delivery(a, tuple(d)) for a, d in merged.values()]
