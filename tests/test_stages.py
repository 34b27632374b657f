"""The stages after grouping, each alone and chained, with quiet hours held and summarised."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from bot.infra.store import Store
from config.loader import load_groups, load_macro_events
from handlers.explain import ExplainParams, explain_move
from handlers.groups import GroupIndex
from handlers.guards import MoveConfirmation
from handlers.models import (
    Alert,
    BenchmarkMove,
    Cause,
    Delivery,
    Destination,
    Direction,
    Explanation,
    LoggedAlert,
    Move,
    QuietWindow,
    WatchEntry,
)
from handlers.pipeline import Engine, EngineParams
from handlers.ports import AlertLog, HeldAlerts, WatchStore
from handlers.render import render_alert
from handlers.stages import default_stages
from handlers.stages.adjudicate import Adjudicate
from handlers.stages.base import AlertMemory, StageContext
from handlers.stages.confirm import Confirm
from handlers.stages.dedupe import Dedupe, DedupePolicy
from handlers.stages.mute import Mute
from handlers.stages.quiet_hours import QuietHours, due_summaries
from handlers.stages.split_guard import SplitGuard
from tests.fakes.store import MemoryStore
from tests.helpers import NY, at, quotes

C1 = Destination("test", "c1")
C2 = Destination("test", "c2")
NOGROUPS = GroupIndex([], "SPY")
NIGHT = QuietWindow(time(22, 0), time(7, 0), "America/New_York")
POLICY = DedupePolicy(timedelta(hours=2), 2.0, once_per_session=False)
T0 = at("2025-03-05", "13:30")


def _move(symbol: str, pct: float, when: datetime = T0) -> Move:
    return Move(symbol, pct, 100 + pct, 100.0, when, "test", BenchmarkMove("SPY", 0.1))


def _alert(moves: dict[str, float], cause: Cause = "unexplained", when: datetime = T0) -> Alert:
    built = [_move(s, p, when) for s, p in moves.items()]
    exps = {
        m.symbol: replace(explain_move(m, None, [], NOGROUPS, ExplainParams()), cause=cause)
        for m in built
    }
    direction = Direction.of(built[0].pct)
    return Alert(when, direction, tuple(built), exps, cause)


def _ctx(store: MemoryStore, now: datetime = T0, held: bool = False) -> StageContext:
    memory = AlertMemory.read(store, now, POLICY.cooldown)
    return StageContext(now, NOGROUPS, memory, store if held else None)


def _sent(deliveries: list[Delivery]) -> dict[Destination, list[tuple[str, ...]]]:
    out: dict[Destination, list[tuple[str, ...]]] = {}
    for d in deliveries:
        for dest in d.destinations:
            out.setdefault(dest, []).append(d.alert.symbols)
    return out


def test_the_fake_implements_the_store_ports() -> None:
    fake = MemoryStore()
    ports: tuple[AlertLog, HeldAlerts, WatchStore] = (fake, fake, fake)
    assert all(p is fake for p in ports)


# --- each stage alone --------------------------------------------------------------------


def test_mute_cuts_the_muted_symbol_for_that_channel_only() -> None:
    store = MemoryStore()
    store.mute(C1, "BABA", T0 + timedelta(hours=1), "u1")
    out = Mute().run([Delivery(_alert({"BABA": 6.0, "JD": 5.5}), (C1, C2))], _ctx(store))
    assert _sent(out) == {C1: [("JD",)], C2: [("BABA", "JD")]}
    later = _ctx(store, T0 + timedelta(hours=2))  # the mute is over
    assert _sent(Mute().run([Delivery(_alert({"BABA": 6.0}), (C1,))], later)) == {C1: [("BABA",)]}


def test_mute_also_drops_moves_before_they_are_explained() -> None:
    store = MemoryStore()
    store.mute(C1, "BABA", T0 + timedelta(hours=1), "u1")
    triggered = {C1: [_move("BABA", 6.0), _move("JD", 6.0)], C2: [_move("BABA", 6.0)]}
    kept = Mute().filter_moves(triggered, _ctx(store))
    assert {d: [m.symbol for m in ms] for d, ms in kept.items()} == {C1: ["JD"], C2: ["BABA"]}


def test_dedupe_drops_a_repeat_and_lets_a_widened_move_through_marked() -> None:
    store = MemoryStore()
    store.log[("test", "c1", "BABA", "up")] = LoggedAlert(6.0, T0 - timedelta(minutes=30))
    stage = Dedupe(POLICY)
    assert stage.run([Delivery(_alert({"BABA": 6.5}), (C1,))], _ctx(store)) == []
    [wider] = stage.run([Delivery(_alert({"BABA": 8.5}), (C1,))], _ctx(store))
    assert wider.alert.escalated == ("BABA",)
    # Another channel never heard about it; a mute is not dedupe's business.
    store.mute(C2, "BABA", T0 + timedelta(hours=1), "u1")
    assert _sent(stage.run([Delivery(_alert({"BABA": 6.5}), (C1, C2))], _ctx(store))) == {
        C2: [("BABA",)]
    }


def test_split_guard_drops_an_unexplained_split_sized_move_and_says_why() -> None:
    ctx = _ctx(MemoryStore())
    out = SplitGuard(40.0).run([Delivery(_alert({"BABA": -50.0, "JD": -6.0}), (C1,))], ctx)
    assert _sent(out) == {C1: [("JD",)]}
    assert [(s.symbol, "split" in s.reason) for s in ctx.skips] == [("BABA", True)]
    news = [Delivery(_alert({"BABA": 45.0}, cause="company"), (C1,))]
    assert SplitGuard(40.0).run(news, _ctx(MemoryStore())) == news


def test_confirm_holds_an_extreme_move_until_a_newer_quote_agrees() -> None:
    stage = Confirm(MoveConfirmation())
    first = _ctx(MemoryStore())
    assert stage.run([Delivery(_alert({"BABA": 30.0}), (C1,))], first) == []
    assert "held until a newer quote" in first.skips[0].reason
    later = T0 + timedelta(minutes=5)
    agreeing = [Delivery(_alert({"BABA": 30.5}, when=later), (C1,))]
    assert stage.run(agreeing, _ctx(MemoryStore(), later)) == agreeing


def test_quiet_hours_hold_the_quiet_channel_and_send_the_others() -> None:
    store = MemoryStore(windows={C1: NIGHT})
    night = at("2025-03-05", "23:30")
    alert = _alert({"BABA": 7.0}, when=night)
    out = QuietHours().run([Delivery(alert, (C1, C2))], _ctx(store, night, held=True))
    assert _sent(out) == {C2: [("BABA",)]}
    [held] = store.held_alerts()[C1]
    assert (held.symbol, held.pct, held.window) == ("BABA", 7.0, str(NIGHT))
    # Held counts as told: the same move next tick is not held a second time.
    assert ("test", "c1", "BABA", "up") in store.log
    # Without a store of held alerts (replays) nothing is held.
    assert QuietHours().run([Delivery(alert, (C1,))], _ctx(store, night)) != []


# --- quiet windows: midnight and daylight saving ---------------------------------------


def test_a_window_across_midnight() -> None:
    assert NIGHT.contains(at("2025-03-05", "22:00"))
    assert NIGHT.contains(at("2025-03-05", "23:59"))
    assert NIGHT.contains(at("2025-03-06", "03:00"))
    assert not NIGHT.contains(at("2025-03-06", "07:00"))
    assert not NIGHT.contains(at("2025-03-05", "21:59"))
    assert NIGHT.period_end(at("2025-03-05", "23:30")) == at("2025-03-06", "07:00")
    assert NIGHT.period_end(at("2025-03-06", "01:00")) == at("2025-03-06", "07:00")
    day = QuietWindow(time(12, 0), time(13, 0), "Europe/London")
    assert day.contains(datetime(2025, 1, 6, 12, 30, tzinfo=UTC))
    assert not day.contains(datetime(2025, 1, 6, 13, 0, tzinfo=UTC))


def test_a_window_across_the_spring_and_autumn_clock_changes() -> None:
    # New York moved its clocks forward on 2025-03-09: 07:00 that morning is 11:00 UTC.
    held = datetime(2025, 3, 8, 23, 0, tzinfo=NY)
    end = NIGHT.period_end(held)
    assert end.astimezone(UTC) == datetime(2025, 3, 9, 11, 0, tzinfo=UTC)
    assert not NIGHT.contains(datetime(2025, 3, 9, 11, 30, tzinfo=UTC))  # 07:30 EDT
    assert NIGHT.contains(datetime(2025, 3, 8, 11, 30, tzinfo=UTC))  # 06:30 EST the day before
    # Back on 2025-11-02: 07:00 EST is 12:00 UTC, and 11:30 UTC is still quiet (06:30).
    autumn = NIGHT.period_end(datetime(2025, 11, 1, 23, 0, tzinfo=NY))
    assert autumn.astimezone(UTC) == datetime(2025, 11, 2, 12, 0, tzinfo=UTC)
    assert NIGHT.contains(datetime(2025, 11, 2, 11, 30, tzinfo=UTC))


# --- the chain through the engine ---------------------------------------------------------

QUIET_MOVES = {"BABA": 9.0, "JD": 0.5, "PDD": -0.2, "BIDU": 0.1, "TCEHY": 0.3, "KWEB": 0.4}


@pytest.fixture
def engine() -> Engine:
    # A night-long cooldown: the channel that is not quiet hears each move once overnight.
    params = EngineParams(default_threshold_pct=5.0, cooldown=timedelta(hours=12))
    return Engine(load_groups(), load_macro_events(), params)


def _tick(
    engine: Engine, store: AlertLog, held: HeldAlerts, when: datetime, pct: float = 9.0
) -> list[Delivery]:
    watch = [WatchEntry("test", c, "BABA") for c in ("c1", "c2")]
    moves = {**QUIET_MOVES, "BABA": pct, "SPY": 0.1}
    result = engine.process_tick(quotes(moves, when), watch, {}, store, when, held=held)
    store.record(result.deliveries)  # as the outbox does
    return result.deliveries


def test_the_engine_uses_default_stages_in_order(engine: Engine) -> None:
    names = [type(s).__name__ for s in engine.pipeline()]
    assert names == ["Mute", "Dedupe", "SplitGuard", "Confirm", "QuietHours"]
    assert [type(s).__name__ for s in default_stages(POLICY, 40.0, MoveConfirmation())] == names


def test_held_overnight_then_summarised_once_at_the_first_tick_after_the_end(
    engine: Engine,
) -> None:
    store = MemoryStore(windows={C1: NIGHT})
    first = _tick(engine, store, store, at("2025-03-05", "23:30"))
    assert _sent(first) == {C2: [("BABA",)]}  # the other channel is not quiet
    assert _tick(engine, store, store, at("2025-03-06", "02:00"), 9.2) == []  # nothing new
    assert _tick(engine, store, store, at("2025-03-06", "03:00"), 12.0) != []  # widened
    assert [round(h.pct, 6) for h in store.held_alerts()[C1]] == [9.0, 12.0]
    assert _tick(engine, store, store, at("2025-03-06", "06:59"), 12.1) == []
    # The first tick after 07:00 (at 07:20, none came at 07:00) brings the one summary.
    [summary] = _tick(engine, store, store, at("2025-03-06", "07:20"), 12.1)
    assert summary.destinations == (C1,) and summary.alert.summary is not None
    assert [(h.symbol, round(h.pct, 6)) for h in summary.alert.summary.items] == [
        ("BABA", 9.0),
        ("BABA", 12.0),
    ]
    assert _tick(engine, store, store, at("2025-03-06", "07:25"), 12.1) == []
    assert store.held == {}


def test_the_summary_message_says_what_was_held_and_when() -> None:
    store = MemoryStore(windows={C1: NIGHT})
    night = at("2025-03-05", "23:30")
    QuietHours().run(
        [Delivery(_alert({"BABA": -7.25}, when=night), (C1,))], _ctx(store, night, True)
    )
    [summary] = due_summaries(store, at("2025-03-06", "07:00"))
    message = render_alert(summary.alert)
    assert message.title == "Held during quiet hours 22:00-07:00 America/New_York: 1 alert"
    assert "held during quiet hours 22:00-07:00 America/New_York" in message.cause_line
    [field] = message.fields
    assert field.name == "BABA"
    assert field.value == "-7.2 % · no clear cause found · 2025-03-05 23:30 EST"
    assert message.buttons == ()


def test_the_summary_counts_alerts_and_their_moves_apart() -> None:
    store = MemoryStore(windows={C1: NIGHT})
    night = at("2025-03-05", "23:30")
    grouped = _alert({"BABA": -7.25, "JD": -6.5}, when=night)
    single = _alert({"PDD": -8.0}, when=at("2025-03-06", "01:10"))
    QuietHours().run([Delivery(grouped, (C1,)), Delivery(single, (C1,))], _ctx(store, night, True))
    [summary] = due_summaries(store, at("2025-03-06", "07:00"))
    message = render_alert(summary.alert)
    assert message.title.endswith(": 2 alerts (3 moves)")
    assert [f.name for f in message.fields] == ["BABA", "JD", "PDD"]


def test_summary_due_without_any_tick(engine: Engine) -> None:
    """The market is closed, no tick runs: the scheduler's check sends the summary."""
    store = MemoryStore(windows={C1: NIGHT})
    _tick(engine, store, store, at("2025-03-07", "23:00"))  # a Friday night
    assert engine.due_quiet_summaries(store, at("2025-03-08", "06:59")) == []
    [summary] = engine.due_quiet_summaries(store, at("2025-03-08", "07:00"))
    assert summary.destinations == (C1,)
    assert engine.due_quiet_summaries(store, at("2025-03-08", "07:01")) == []


def test_turning_quiet_hours_off_releases_what_was_held(engine: Engine) -> None:
    store = MemoryStore(windows={C1: NIGHT})
    _tick(engine, store, store, at("2025-03-05", "23:30"))
    store.clear_quiet_hours(C1)
    [summary] = engine.due_quiet_summaries(store, at("2025-03-05", "23:45"))
    assert summary.alert.summary is not None
    assert summary.alert.summary.window == str(NIGHT)  # said as it was when held


def test_a_mute_is_still_honoured_in_quiet_hours(engine: Engine) -> None:
    store = MemoryStore(windows={C1: NIGHT})
    store.mute(C1, "BABA", at("2025-03-06", "12:00"), "u1")
    _tick(engine, store, store, at("2025-03-05", "23:30"))
    assert store.held == {}
    assert engine.due_quiet_summaries(store, at("2025-03-06", "07:30")) == []


def test_held_alerts_survive_a_restart(engine: Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'quiet.db'}"
    before = Store(url)
    before.set_quiet_hours(C1, NIGHT, "u1")
    assert _sent(_tick(engine, before, before, at("2025-03-05", "23:30"))) == {C2: [("BABA",)]}
    before.close()
    after = Store(url)  # the bot restarted in the night
    assert _tick(engine, after, after, at("2025-03-06", "01:00"), 9.3) == []  # still told
    [summary] = _tick(engine, after, after, at("2025-03-06", "07:05"), 9.3)
    assert summary.alert.summary is not None
    assert [(h.symbol, round(h.pct, 6)) for h in summary.alert.summary.items] == [("BABA", 9.0)]
    assert after.held_alerts() == {}
    after.close()


def test_an_alert_stored_before_summaries_existed_still_loads() -> None:
    """Outbox rows pickled by the previous version carry no summary field."""
    alert = _alert({"BABA": 6.0})
    state = [getattr(alert, f.name) for f in fields(alert) if f.name != "summary"]
    old = Alert.__new__(Alert)
    old.__setstate__(state)  # type: ignore[attr-defined]
    assert old.held_summary is None and old.id == alert.id
    assert render_alert(old).title == render_alert(alert).title


def test_the_adjudicator_is_asked_only_about_what_passed_the_guards(engine: Engine) -> None:
    asked: list[str] = []

    def adjudicator(move: Move, exp: Explanation) -> Explanation:
        asked.append(move.symbol)
        return replace(exp, cause="company") if move.symbol == "JD" else exp

    engine.adjudicate = adjudicator
    now = at("2025-03-05", "16:00")
    moves = {"BABA": 8.6, "JD": 6.9, "TCEHY": 6.5, "PDD": -55.0, "KWEB": 7.1, "SPY": 1.1}
    watch = [WatchEntry("test", "c1", s) for s in ("BABA", "JD", "TCEHY", "PDD")]
    result = engine.process_tick(quotes(moves, now), watch, {}, MemoryStore(), now)
    assert sorted(asked) == ["BABA", "JD", "TCEHY"]  # not PDD: the split guard refused it
    # JD, now on company news, is its own alert; the others stay one group alert.
    assert sorted(d.alert.symbols for d in result.deliveries) == [("BABA", "TCEHY"), ("JD",)]
    assert {d.alert.symbols: d.alert.cause for d in result.deliveries}[("JD",)] == "company"


def test_a_regrouped_alert_keeps_its_escalation() -> None:
    store = MemoryStore()
    alert = replace(_alert({"BABA": 8.5, "JD": 6.0}), escalated=("BABA",))
    flip = Adjudicate(lambda m, e: replace(e, cause="company"), timedelta(minutes=30))
    out = flip.run([Delivery(alert, (C1,))], _ctx(store))
    assert sorted((d.alert.symbols, d.alert.escalated) for d in out) == [
        (("BABA",), ("BABA",)),
        (("JD",), ()),
    ]


def test_the_summary_follows_the_clock_change(engine: Engine) -> None:
    """Held on the Saturday night before clocks go forward: due at 07:00 EDT, 11:00 UTC."""
    store = MemoryStore(windows={C1: NIGHT})
    _tick(engine, store, store, datetime(2025, 3, 8, 23, 30, tzinfo=NY))
    assert engine.due_quiet_summaries(store, datetime(2025, 3, 9, 10, 59, tzinfo=UTC)) == []
    [summary] = engine.due_quiet_summaries(store, datetime(2025, 3, 9, 11, 0, tzinfo=UTC))
    assert summary.destinations == (C1,)
