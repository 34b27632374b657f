"""Quiet hours stage: a channel's alerts in its quiet hours are held, then summarised once."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from handlers.models import (
    Alert,
    Delivery,
    Destination,
    Direction,
    HeldAlert,
    QuietSummary,
    QuietWindow,
)
from handlers.ports import HeldAlerts
from handlers.stages.base import StageContext

log = logging.getLogger(__name__)


class QuietHours:
    """Takes the channels in their quiet hours out of each delivery and holds their alerts in
    the store (noted as told there, so a later tick does not hold the same move again)."""

    def run(self, deliveries: list[Delivery], ctx: StageContext) -> list[Delivery]:
        if ctx.held is None or not deliveries:
            return deliveries
        windows = ctx.held.quiet_hours()
        quiet = {d for d, w in windows.items() if w.contains(ctx.now)}
        if not quiet:
            return deliveries
        out: list[Delivery] = []
        held: list[Delivery] = []
        for delivery in deliveries:
            loud = tuple(d for d in delivery.destinations if d not in quiet)
            hush = tuple(d for d in delivery.destinations if d in quiet)
            if hush:
                held.append(Delivery(delivery.alert, hush))
            if loud:
                out.append(Delivery(delivery.alert, loud))
        if held:
            count = ctx.held.hold(held, held_items(held, windows, ctx.now))
            log.info("held %d alert(s) for channels in their quiet hours", count)
        return out


def held_items(
    deliveries: Iterable[Delivery], windows: Mapping[Destination, QuietWindow], held_at: datetime
) -> list[HeldAlert]:
    """Each channel's symbols of DELIVERIES as held alerts, with the quiet hours they were
    held in (id 0: the store numbers them)."""
    items: list[HeldAlert] = []
    for delivery in deliveries:
        alert = delivery.alert
        for dest in delivery.destinations:
            window = windows.get(dest)
            for move in alert.moves:
                explanation = alert.explanations.get(move.symbol)
                items.append(
                    HeldAlert(
                        id=0,
                        destination=dest,
                        alert_id=alert.id,
                        symbol=move.symbol,
                        pct=move.pct,
                        cause=explanation.cause if explanation else alert.cause,
                        at=move.at,
                        held_at=held_at,
                        window=str(window) if window else "",
                        zone=window.zone if window else "UTC",
                    )
                )
    return items


def due_summaries(store: HeldAlerts, now: datetime) -> list[Delivery]:
    """One summary delivery per channel whose held alerts' quiet period is over at NOW.

    A held alert is due at the first end of the quiet hours after it was held (or at once
    when the channel's quiet hours were turned off). Each held alert is taken from the store
    by exactly one caller, so a tick and the scheduler's check never both summarise it.
    """
    held = store.held_alerts()
    if not held:
        return []
    windows = store.quiet_hours()
    out: list[Delivery] = []
    for dest, items in held.items():
        window = windows.get(dest)
        due = [h for h in items if window is None or window.period_end(h.held_at) <= now]
        taken = store.take_held([h.id for h in due])
        if taken:
            out.append(summary_delivery(dest, taken, now))
    return out


def summary_delivery(dest: Destination, items: list[HeldAlert], now: datetime) -> Delivery:
    """The summary of ITEMS as an ordinary delivery to DEST (an alert with no moves)."""
    alert = Alert(
        at=now,
        direction=Direction.UP,
        moves=(),
        explanations={},
        cause="unexplained",
        summary=QuietSummary(tuple(items)),
    )
    return Delivery(alert, (dest,))
