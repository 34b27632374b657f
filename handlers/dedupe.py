"""Dedupe stage: drop what a channel was already told, unless the move widened or it is muted."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from handlers.group import build_alert
from handlers.groups import GroupIndex
from handlers.models import Alert, Delivery, Destination, Direction, Move

AlertKey = tuple[str, str, str, str]  # platform, channel, symbol, direction


@dataclass(frozen=True, slots=True)
class LoggedAlert:
    """The last alert a channel got for a symbol and direction."""

    pct: float
    at: datetime


class AlertLog(Protocol):
    """The persisted memory of what was sent; lives in the store, survives restarts."""

    def recent_alerts(self, since: datetime) -> Mapping[AlertKey, LoggedAlert]: ...

    def muted(self, now: datetime) -> set[tuple[str, str, str]]: ...

    def record(self, deliveries: Iterable[Delivery]) -> None: ...


@dataclass(frozen=True, slots=True)
class DedupePolicy:
    """Cooldown per (channel, symbol, direction) and the widening that earns a new alert."""

    cooldown: timedelta
    escalation_step_pct: float
    once_per_session: bool = True


@dataclass(frozen=True, slots=True)
class AlertMemory:
    """What the alert log says at one moment (recent alerts, active mutes), read once a tick."""

    recent: Mapping[AlertKey, LoggedAlert]
    muted: set[tuple[str, str, str]]

    @classmethod
    def read(cls, log: AlertLog, now: datetime, policy: DedupePolicy) -> AlertMemory:
        since = now - max(policy.cooldown, timedelta(days=1))
        return cls(log.recent_alerts(since), log.muted(now))


def alert_key(dest: Destination, symbol: str, direction: Direction) -> AlertKey:
    return dest.platform, dest.channel, symbol, direction.value


def _cooled_down(last: LoggedAlert, at: datetime, policy: DedupePolicy) -> bool:
    """Past the cooldown and, when once_per_session holds, on a later session day."""
    if at - last.at < policy.cooldown:
        return False
    return not (policy.once_per_session and last.at.astimezone(at.tzinfo).date() == at.date())


def _wanted(
    dest: Destination,
    move: Move,
    direction: Direction,
    at: datetime,
    memory: AlertMemory,
    policy: DedupePolicy,
) -> tuple[bool, bool]:
    """Whether DEST should hear about MOVE at AT, and whether that is an escalation."""
    if (dest.platform, dest.channel, move.symbol) in memory.muted:
        return False, False
    last = memory.recent.get(alert_key(dest, move.symbol, direction))
    if last is None or _cooled_down(last, at, policy):
        return True, False
    if abs(move.pct) >= abs(last.pct) + policy.escalation_step_pct:
        return True, True
    return False, False


def drop_already_alerted(
    triggered: Mapping[Destination, list[Move]],
    log: AlertLog,
    now: datetime,
    policy: DedupePolicy,
    memory: AlertMemory | None = None,
) -> dict[Destination, list[Move]]:
    """Triggered moves that dedupe would let through, so that only they are explained.

    Explaining costs news searches; a move a channel already heard about (and that has not
    widened) must not cost one on every tick. dedupe_alerts still decides on the built alerts.
    """
    if not triggered:
        return {}
    mem = memory or AlertMemory.read(log, now, policy)
    out: dict[Destination, list[Move]] = {}
    for dest, moves in triggered.items():
        kept = [m for m in moves if _wanted(dest, m, m.direction, m.at, mem, policy)[0]]
        if kept:
            out[dest] = kept
    return out


def _decide(
    alert: Alert,
    dest: Destination,
    memory: AlertMemory,
    policy: DedupePolicy,
) -> tuple[list[str], list[str]]:
    """Symbols of ALERT the channel should hear about now, and which of them are escalations."""
    keep: list[str] = []
    escalated: list[str] = []
    for move in alert.moves:
        wanted, escalation = _wanted(dest, move, alert.direction, alert.at, memory, policy)
        if wanted:
            keep.append(move.symbol)
        if escalation:
            escalated.append(move.symbol)
    return keep, escalated


def dedupe_alerts(
    deliveries: Iterable[Delivery],
    log: AlertLog,
    now: datetime,
    policy: DedupePolicy,
    groups: GroupIndex,
    memory: AlertMemory | None = None,
) -> list[Delivery]:
    """Filter each channel's alerts against the alert log; equal results are re-merged."""
    deliveries = list(deliveries)
    if not deliveries:
        return []
    mem = memory or AlertMemory.read(log, now, policy)
    merged: dict[str, tuple[Alert, list[Destination]]] = {}
    for delivery in deliveries:
        alert = delivery.alert
        for dest in delivery.destinations:
            keep, escalated = _decide(alert, dest, mem, policy)
            if not keep:
                continue
            if len(keep) == len(alert.moves) and not escalated:
                out = alert
            else:
                kept_moves = [m for m in alert.moves if m.symbol in keep]
                out = dataclasses.replace(
                    build_alert(kept_moves, alert.explanations, groups),
                    escalated=tuple(escalated),
                )
            merged.setdefault(out.id, (out, []))[1].append(dest)
    return [Delivery(a, tuple(d)) for a, d in merged.values()]
