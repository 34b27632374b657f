"""Mute stage: a channel that muted a symbol hears nothing about it until the mute ends."""

from __future__ import annotations

from collections.abc import Mapping

from handlers.models import Alert, Delivery, Destination, Move
from handlers.stages.base import StageContext, filter_moves, filter_symbols


def is_muted(ctx: StageContext, dest: Destination, symbol: str) -> bool:
    return (dest.platform, dest.channel, symbol) in ctx.memory.muted


class Mute:
    """Drops each channel's muted symbols (mutes are read once a tick, from the store)."""

    def filter_moves(
        self, triggered: Mapping[Destination, list[Move]], ctx: StageContext
    ) -> dict[Destination, list[Move]]:
        return filter_moves(triggered, lambda dest, move: not is_muted(ctx, dest, move.symbol))

    def run(self, deliveries: list[Delivery], ctx: StageContext) -> list[Delivery]:
        def decide(alert: Alert, dest: Destination) -> tuple[list[str], list[str]]:
            return [s for s in alert.symbols if not is_muted(ctx, dest, s)], []

        return filter_symbols(deliveries, ctx.groups, decide)
