"""The stages after grouping, one module each, assembled in one place: default_stages()."""

from __future__ import annotations

from datetime import timedelta

from handlers.guards import MoveConfirmation
from handlers.stages.adjudicate import Adjudicate, Adjudicator
from handlers.stages.base import Stage
from handlers.stages.confirm import Confirm
from handlers.stages.dedupe import Dedupe, DedupePolicy
from handlers.stages.mute import Mute
from handlers.stages.quiet_hours import QuietHours
from handlers.stages.split_guard import SplitGuard


def default_stages(
    dedupe: DedupePolicy,
    split_jump_pct: float,
    confirm: MoveConfirmation,
    adjudicator: Adjudicator | None = None,
    group_window: timedelta = timedelta(minutes=30),
) -> list[Stage]:
    """Mute, dedupe, split guard, confirmation, the adjudicator if any, then quiet hours.

    The guards judge the rule verdicts, and the adjudicator is asked only about moves that
    passed them (it costs a request). Quiet hours come last so that what they hold is only
    what would have been sent: no duplicate, no split-sized bad print, no unconfirmed move.
    """
    stages: list[Stage] = [Mute(), Dedupe(dedupe), SplitGuard(split_jump_pct), Confirm(confirm)]
    if adjudicator is not None:
        stages.append(Adjudicate(adjudicator, group_window))
    stages.append(QuietHours())
    return stages
