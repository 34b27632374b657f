"""Split guard stage: a split-sized jump with no company news is bad data until shown otherwise."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from handlers.detect import Skip
from handlers.models import Delivery, Explanation, Move
from handlers.stages.base import StageContext, unique_moves, without_symbols

log = logging.getLogger(__name__)


def split_reason(move: Move, exp: Explanation, jump_pct: float) -> str | None:
    """Why MOVE looks like a split or bad data, or None when it may be told."""
    if abs(move.pct) >= jump_pct and exp.cause != "company":
        return f"{move.pct:+.1f} % with no company news looks like a split or bad data"
    return None


@dataclass(frozen=True, slots=True)
class SplitGuard:
    """Drops every symbol whose move is at least JUMP_PCT without company news, with a skip."""

    jump_pct: float = 40.0

    def run(self, deliveries: list[Delivery], ctx: StageContext) -> list[Delivery]:
        refused: set[str] = set()
        for move, alert in unique_moves(deliveries):
            reason = split_reason(move, alert.explanations[move.symbol], self.jump_pct)
            if reason is not None:
                log.warning("skipped %s: %s", move.symbol, reason)
                ctx.skips.append(Skip(move.symbol, reason))
                refused.add(move.symbol)
        return without_symbols(deliveries, ctx.groups, refused)
