"""What every stage after grouping shares: its signature, the tick's context, symbol filtering."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from handlers.detect import Skip
from handlers.group import build_alert
from handlers.groups import GroupIndex
from handlers.models import Alert, AlertKey, Delivery, Destination, LoggedAlert, Move
from handlers.ports import AlertLog, HeldAlerts


@dataclass(frozen=True, slots=True)
class AlertMemory:
    """What the alert log says at one moment (recent alerts, active mutes), read once a tick."""

    recent: Mapping[AlertKey, LoggedAlert]
    muted: set[tuple[str, str, str]]

    @classmethod
    def read(cls, log: AlertLog, now: datetime, look_back: timedelta) -> AlertMemory:
        return cls(log.recent_alerts(now - max(look_back, timedelta(days=1))), log.muted(now))


@dataclass
class StageContext:
    """One tick as the stages see it: its time, what the store remembers, and the skips."""

    now: datetime
    groups: GroupIndex
    memory: AlertMemory
    # Where quiet hours keep what they hold; None turns quiet hours off (replays, tests).
    held: HeldAlerts | None = None
    skips: list[Skip] = field(default_factory=list)


class Stage(Protocol):
    """One step after grouping (Alertmanager's Exec(ctx, alerts)): deliveries in, deliveries out."""

    def run(self, deliveries: list[Delivery], ctx: StageContext) -> list[Delivery]: ...


@runtime_checkable
class MoveFilter(Protocol):
    """A stage that can also drop moves before they are explained (explaining costs searches)."""

    def filter_moves(
        self, triggered: Mapping[Destination, list[Move]], ctx: StageContext
    ) -> dict[Destination, list[Move]]: ...


# For one alert and channel: the symbols to keep, and those of them that widened.
Decide = Callable[[Alert, Destination], tuple[list[str], list[str]]]


def filter_symbols(
    deliveries: Iterable[Delivery], groups: GroupIndex, decide: Decide
) -> list[Delivery]:
    """Each channel's alerts cut to the symbols DECIDE keeps; equal results are re-merged."""
    merged: dict[str, tuple[Alert, list[Destination]]] = {}
    for delivery in deliveries:
        alert = delivery.alert
        for dest in delivery.destinations:
            keep, escalated = decide(alert, dest)
            if not keep:
                continue
            out = alert
            if len(keep) < len(alert.moves) or escalated:
                out = _cut(alert, keep, escalated, groups)
            merged.setdefault(out.id, (out, []))[1].append(dest)
    return [Delivery(a, tuple(d)) for a, d in merged.values()]


def without_symbols(
    deliveries: list[Delivery], groups: GroupIndex, dropped: set[str]
) -> list[Delivery]:
    """DELIVERIES with the moves of DROPPED taken out of every channel's alerts."""
    if not dropped:
        return deliveries

    def decide(alert: Alert, dest: Destination) -> tuple[list[str], list[str]]:
        return [s for s in alert.symbols if s not in dropped], []

    return filter_symbols(deliveries, groups, decide)


def _cut(alert: Alert, keep: list[str], escalated: list[str], groups: GroupIndex) -> Alert:
    """ALERT rebuilt from the moves in KEEP, with the widened ones among them marked."""
    kept = [m for m in alert.moves if m.symbol in keep]
    widened = dict.fromkeys(s for s in (*alert.escalated, *escalated) if s in keep)
    rebuilt = build_alert(kept, alert.explanations, groups)
    return dataclasses.replace(rebuilt, escalated=tuple(widened))


def filter_moves(
    triggered: Mapping[Destination, list[Move]], wanted: Callable[[Destination, Move], bool]
) -> dict[Destination, list[Move]]:
    """TRIGGERED without the moves WANTED refuses; channels left with none are dropped."""
    out: dict[Destination, list[Move]] = {}
    for dest, moves in triggered.items():
        kept = [m for m in moves if wanted(dest, m)]
        if kept:
            out[dest] = kept
    return out


def unique_moves(deliveries: Iterable[Delivery]) -> list[tuple[Move, Alert]]:
    """Each symbol's move once (first seen), with an alert that carries its explanation."""
    seen: dict[str, tuple[Move, Alert]] = {}
    for delivery in deliveries:
        for move in delivery.alert.moves:
            seen.setdefault(move.symbol, (move, delivery.alert))
    return list(seen.values())
