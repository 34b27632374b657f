"""Confirmation stage: an extreme move with no company news waits for a second, agreeing quote."""

from __future__ import annotations

from dataclasses import dataclass

from handlers.detect import Skip
from handlers.guards import MoveConfirmation
from handlers.models import Delivery
from handlers.stages.base import StageContext, unique_moves, without_symbols


@dataclass(frozen=True, slots=True)
class Confirm:
    """Holds each symbol MoveConfirmation does not yet believe (one bad print raises no alarm)."""

    guard: MoveConfirmation

    def run(self, deliveries: list[Delivery], ctx: StageContext) -> list[Delivery]:
        waiting: set[str] = set()
        for move, alert in unique_moves(deliveries):
            company = alert.explanations[move.symbol].cause == "company"
            held = self.guard.check(move, company)
            if held is not None:
                ctx.skips.append(Skip(move.symbol, held))
                waiting.add(move.symbol)
        return without_symbols(deliveries, ctx.groups, waiting)
