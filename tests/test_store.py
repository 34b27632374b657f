"""The store on SQLite and the local PostgreSQL: watch entries, alert log, mutes, sent messages."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.delivery import sentlog
from bot.infra.store import SCHEMA_VERSION, Store, StoreError
from handlers.explain import ExplainParams, explain_move
from handlers.groups import GroupIndex
from handlers.models import (
    Alert,
    BenchmarkMove,
    Delivery,
    Destination,
    Direction,
    Move,
    QuietWindow,
    WatchEntry,
)
from handlers.stages.dedupe import DedupePolicy, dedupe_alerts
from handlers.stages.quiet_hours import held_items

T0 = datetime(2025, 3, 5, 18, 30, tzinfo=UTC)
CHAN = Destination("discord", "111")
OTHER = Destination("slack", "C222")


def _alert(symbol: str, pct: float, at: datetime = T0) -> Alert:
    move = Move(symbol, pct, 100 + pct, 100.0, at, "test", BenchmarkMove("SPY", 0.2))
    direction = Direction.UP if pct > 0 else Direction.DOWN
    why = explain_move(move, None, [], GroupIndex([], "SPY"), ExplainParams())
    return Alert(at, direction, (move,), {symbol: why}, why.cause)


def test_watch_entries_add_update_remove(store: Store) -> None:
    store.add_watch(
        [
            WatchEntry("discord", "111", "BABA", 5.0, "alice", T0),
            WatchEntry("discord", "111", "JD", None, "alice", T0),
            WatchEntry("slack", "C222", "BABA", 3.0, "bob", T0),
        ]
    )
    store.add_watch([WatchEntry("discord", "111", "BABA", 4.0, "carol", T0)])
    entries = store.watch_entries(CHAN)
    assert [(e.symbol, e.threshold_pct, e.added_by) for e in entries] == [
        ("BABA", 4.0, "alice"),
        ("JD", None, "alice"),
    ]
    assert entries[0].added_at == T0
    assert store.set_threshold(CHAN, "JD", 7.5)
    assert not store.set_threshold(CHAN, "PDD", 7.5)
    assert store.remove_watch(CHAN, ["JD", "PDD"]) == ["JD"]
    assert [e.symbol for e in store.watch_entries()] == ["BABA", "BABA"]


def test_channel_thresholds(store: Store) -> None:
    store.set_channel_threshold(CHAN, 3.5)
    store.set_channel_threshold(OTHER, 2.0)
    store.set_channel_threshold(OTHER, None)
    assert store.channel_thresholds() == {CHAN: 3.5}


def test_alert_log_drives_dedupe_across_reopen(store: Store) -> None:
    """A cooldown survives a restart: the second identical tick sends nothing."""
    groups = GroupIndex([], "SPY")
    policy = DedupePolicy(timedelta(hours=2), 2.0, once_per_session=False)
    first = dedupe_alerts([Delivery(_alert("BABA", 6.0), (CHAN,))], store, T0, policy, groups)
    assert len(first) == 1
    store.record(first)
    reopened = Store(store.url)
    later = T0 + timedelta(minutes=30)
    again = dedupe_alerts(
        [Delivery(_alert("BABA", 6.5, later), (CHAN,))], reopened, later, policy, groups
    )
    assert again == []
    wider = dedupe_alerts(
        [Delivery(_alert("BABA", 8.5, later), (CHAN,))], reopened, later, policy, groups
    )
    assert len(wider) == 1
    reopened.close()


def test_record_keeps_latest_move_and_prune(store: Store) -> None:
    store.record([Delivery(_alert("BABA", 6.0), (CHAN, OTHER))])
    store.record([Delivery(_alert("BABA", 8.0, T0 + timedelta(hours=1)), (CHAN,))])
    log = store.recent_alerts(T0 - timedelta(days=1))
    assert log[("discord", "111", "BABA", "up")].pct == 8.0
    assert log[("slack", "C222", "BABA", "up")].pct == 6.0
    assert store.prune_alert_log(T0 + timedelta(minutes=1)) == 1
    assert list(store.recent_alerts(T0 - timedelta(days=1))) == [("discord", "111", "BABA", "up")]


def test_mutes_expire(store: Store) -> None:
    store.mute(CHAN, "BABA", T0 + timedelta(hours=1), "alice")
    assert store.muted(T0) == {("discord", "111", "BABA")}
    assert store.muted(T0 + timedelta(hours=2)) == set()
    assert store.mutes(CHAN, T0) == {"BABA": T0 + timedelta(hours=1)}
    assert store.unmute(CHAN, "BABA")
    assert not store.unmute(CHAN, "BABA")


def test_sent_messages_are_idempotent(store: Store) -> None:
    assert not sentlog.was_sent(store, "a1", "discord", "111")
    for message_id in ("999", ""):
        with store.session() as s:
            sentlog.record_in(s, ("a1", "discord", "111"), message_id, T0)
    assert sentlog.was_sent(store, "a1", "discord", "111")
    assert sentlog.message_id(store, "a1", "discord", "111") == "999"
    assert not sentlog.was_sent(store, "a1", "slack", "111")
    states = sentlog.start_many(store, [("a1", "discord", "111"), ("a1", "slack", "111")], T0)
    assert states == {("a1", "discord", "111"): "sent", ("a1", "slack", "111"): "new"}
    again = sentlog.start_many(store, [("a1", "slack", "111")], T0)
    assert again == {("a1", "slack", "111"): "unknown"}  # started, never recorded


def test_migrate_is_idempotent_and_refuses_newer_schema(store: Store) -> None:
    store.migrate()
    store.migrate()
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1})
    with pytest.raises(StoreError, match="newer than this bot"):
        Store(store.url)


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the store") as info:
        Store(f"sqlite:///{tmp_path}/missing-dir/x.db")
    url = "postgresql+psycopg://bot:s3cret@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(StoreError) as pg_info:
        Store(url)
    assert "s3cret" not in str(pg_info.value)
    assert "missing-dir" in str(info.value)


def test_status_command_shows_what_the_bot_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    assert main(["--db", url, "status"]) == 1  # nothing running: a health check fails
    assert "No instance has reported" in capsys.readouterr().out
    store = Store(url)
    store.report_status(
        "host:42", {"feed": "polling", "next_poll": "2025-03-05T14:31:00+00:00"}, datetime.now(UTC)
    )
    assert main(["--db", url, "status"]) == 0
    out = capsys.readouterr().out
    assert "host:42: running" in out and "feed: polling" in out
    assert "next poll: 2025-03-05 14:31:00 UTC (due now)" in out
    assert "deliveries: none" in out


NY_NIGHT = QuietWindow(time(22, 0), time(7, 0), "America/New_York")


def test_quiet_hours_set_show_clear(store: Store) -> None:
    assert store.quiet_hours() == {}
    store.set_quiet_hours(CHAN, NY_NIGHT, "alice")
    store.set_quiet_hours(OTHER, QuietWindow(time(12, 0), time(13, 30), "Europe/London"), "bob")
    assert store.quiet_hours(CHAN) == {CHAN: NY_NIGHT}
    assert str(store.quiet_hours()[OTHER]) == "12:00-13:30 Europe/London"
    store.set_quiet_hours(CHAN, QuietWindow(time(23, 0), time(6, 0), "Asia/Tokyo"), "carol")
    assert str(store.quiet_hours(CHAN)[CHAN]) == "23:00-06:00 Asia/Tokyo"
    assert store.clear_quiet_hours(CHAN) and not store.clear_quiet_hours(CHAN)
    assert list(store.quiet_hours()) == [OTHER]


def test_held_alerts_are_logged_as_told_and_taken_once(store: Store) -> None:
    store.set_quiet_hours(CHAN, NY_NIGHT, "alice")
    held_at = T0 + timedelta(hours=10)
    held_now = [Delivery(_alert("BABA", 6.0), (CHAN, OTHER))]
    added = store.hold(held_now, held_items(held_now, store.quiet_hours(), held_at))
    assert added == 2
    # Noted in the alert log: the next tick's dedupe does not hold the same move again.
    assert store.recent_alerts(T0 - timedelta(days=1))[("discord", "111", "BABA", "up")].pct == 6.0
    held = store.held_alerts()
    [mine] = held[CHAN]
    assert (mine.symbol, mine.pct, mine.cause, mine.at, mine.held_at) == (
        "BABA",
        6.0,
        "unexplained",
        T0,
        held_at,
    )
    assert (mine.window, mine.zone) == ("22:00-07:00 America/New_York", "America/New_York")
    assert held[OTHER][0].window == ""  # the other channel had no quiet hours
    assert store.take_held([mine.id]) == [mine]
    assert store.take_held([mine.id]) == []  # a second caller gets nothing: one summary
    assert list(store.held_alerts()) == [OTHER]
