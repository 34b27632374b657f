"""Dedupe stage: drop what a channel was already told, unless the move widened or cooled down."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.groups import GroupIndex
from handlers.models import Alert, AlertKey, Delivery, Destination, Direction, LoggedAlert, Move
from handlers.ports import AlertLog
from handlers.stages.base import AlertMemory, StageContext, filter_moves, filter_symbols


@dataclass(frozen=True, slots=True)
class DedupePolicy:
    """Cooldown per (channel, symbol, direction) and the widening that earns a new alert."""

    cooldown: timedelta
    escalation_step_pct: float
    once_per_session: bool = True


def alert_key(dest: Destination, symbol: str, direction: Direction) -> AlertKey:
    return dest.platform, dest.channel, symbol, direction.value


def _cooled_down(last: LoggedAlert, at: datetime, policy: DedupePolicy) -> bool:
    """Past the cooldown and, when once_per_session holds, on a later session day."""
    if at - last.at < policy.cooldown:
        return False
    return not (policy.once_per_session and last.at.astimezone(at.tzinfo).date() == at.date())


def wanted(
    dest: Destination,
    move: Move,
    direction: Direction,
    at: datetime,
    recent: Mapping[AlertKey, LoggedAlert],
    policy: DedupePolicy,
) -> tuple[bool, bool]:
    """Whether DEST should hear about MOVE at AT, and whether that is an escalation."""
    last = recent.get(alert_key(dest, move.symbol, direction))
    if last is None or _cooled_down(last, at, policy):
        return True, False
    if abs(move.pct) >= abs(last.pct) + policy.escalation_step_pct:
        return True, True
    return False, False


def dedupe_recent(
    deliveries: Iterable[Delivery],
    recent: Mapping[AlertKey, LoggedAlert],
    policy: DedupePolicy,
    groups: GroupIndex,
) -> list[Delivery]:
    """Filter each channel's alerts against the RECENT alerts; equal results are re-merged."""

    def decide(alert: Alert, dest: Destination) -> tuple[list[str], list[str]]:
        keep: list[str] = []
        escalated: list[str] = []
        for move in alert.moves:
            send, widened = wanted(dest, move, alert.direction, alert.at, recent, policy)
            if send:
                keep.append(move.symbol)
            if widened:
                escalated.append(move.symbol)
        return keep, escalated

    return filter_symbols(deliveries, groups, decide)


def dedupe_alerts(
    deliveries: Iterable[Delivery],
    log: AlertLog,
    now: datetime,
    policy: DedupePolicy,
    groups: GroupIndex,
) -> list[Delivery]:
    """dedupe_recent() against what the alert LOG holds at NOW."""
    deliveries = list(deliveries)
    if not deliveries:
        return []
    recent = AlertMemory.read(log, now, policy.cooldown).recent
    return dedupe_recent(deliveries, recent, policy, groups)


@dataclass(frozen=True, slots=True)
class Dedupe:
    """The stage: the alert log (persisted, read once a tick) decides what is news."""

    policy: DedupePolicy

    def filter_moves(
        self, triggered: Mapping[Destination, list[Move]], ctx: StageContext
    ) -> dict[Destination, list[Move]]:
        """Only moves a channel has not heard about are explained: a move that stays above its
        threshold must not cost a news search on every tick."""
        recent = ctx.memory.recent
        return filter_moves(
            triggered, lambda d, m: wanted(d, m, m.direction, m.at, recent, self.policy)[0]
        )

    def run(self, deliveries: list[Delivery], ctx: StageContext) -> list[Delivery]:
        return dedupe_recent(deliveries, ctx.memory.recent, self.policy, ctx.groups)
