"""The alert pipeline stage by stage: detect, explain, group, dedupe."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.infra.store import Store
from config.loader import load_groups, load_macro_events
from handlers.detect import detect_moves
from handlers.models import Destination, NewsItem, NewsSearch, Quote, WatchEntry
from handlers.pipeline import Engine, EngineParams
from tests.helpers import at, quotes

CHINA = ["BABA", "JD", "PDD", "BIDU", "TCEHY"]


@pytest.fixture
def engine() -> Engine:
    return Engine(load_groups(), load_macro_events(), EngineParams(default_threshold_pct=5.0))


@pytest.fixture
def memory_store() -> Store:
    return Store("sqlite://")


def entries(
    symbols: list[str], channel: str = "c1", threshold: float | None = None
) -> list[WatchEntry]:
    return [WatchEntry("test", channel, s, threshold) for s in symbols]


class FixedNews:
    """A news provider with fixed items (our own sample text)."""

    def __init__(self, *items: NewsItem) -> None:
        self.items = items

    def search(self, symbol: str, since, until) -> NewsSearch:  # type: ignore[no-untyped-def]
        found = tuple(
            i for i in self.items if symbol in i.related and since <= i.published <= until
        )
        return NewsSearch(symbol, since, until, found, "fixed test feed")


NPC_DAY = {"BABA": 8.6, "JD": 6.9, "TCEHY": 6.5, "PDD": 6.0, "BIDU": 5.4, "KWEB": 7.1, "SPY": 1.1}


def test_group_move_on_npc_day_is_one_macro_alert(engine: Engine, memory_store: Store) -> None:
    now = at("2025-03-05", "16:00")
    result = engine.process_tick(
        quotes(NPC_DAY, now), entries([*CHINA, "SPY"]), {}, memory_store, now, FixedNews()
    )
    assert len(result.deliveries) == 1
    alert = result.deliveries[0].alert
    assert set(alert.symbols) == set(CHINA)
    assert alert.cause == "macro"
    assert alert.benchmark.symbol == "KWEB" and alert.benchmark.pct == pytest.approx(7.1)
    assert "cn-npc-2025-opening" in [e.id for e in alert.context]
    assert all(
        "no company-specific news: no items at all" in e.searched
        for e in alert.explanations.values()
    )


def test_lone_move_without_news_is_unexplained(engine: Engine, memory_store: Store) -> None:
    now = at("2025-01-15", "11:00")
    moves = {
        "BABA": 9.0,
        "JD": 0.5,
        "PDD": -0.2,
        "BIDU": 0.1,
        "TCEHY": 0.3,
        "KWEB": 0.4,
        "SPY": 0.1,
    }
    result = engine.process_tick(
        quotes(moves, now), entries(["BABA"]), {}, memory_store, now, FixedNews()
    )
    [delivery] = result.deliveries
    assert delivery.alert.cause == "unexplained"
    assert delivery.alert.context == ()


def test_company_news_makes_its_own_alert(engine: Engine, memory_store: Store) -> None:
    now = at("2025-02-20", "09:30")
    results = NewsItem(
        "Alibaba quarterly revenue tops forecasts",
        now - timedelta(hours=2),
        related=("BABA",),
        id="r",
    )
    moves = {
        "BABA": 9.5,
        "JD": 5.8,
        "PDD": 2.9,
        "BIDU": 2.4,
        "TCEHY": 2.1,
        "KWEB": 2.9,
        "SPY": -0.2,
    }
    engine.companies = {"BABA": "Alibaba Group Holding Limited"}
    result = engine.process_tick(
        quotes(moves, now), entries(["BABA", "JD"]), {}, memory_store, now, FixedNews(results)
    )
    causes = {d.alert.symbols: d.alert.cause for d in result.deliveries}
    assert causes[("BABA",)] == "company"
    assert ("JD",) in causes and causes[("JD",)] != "company"


def test_without_a_news_source_nothing_is_called_company(
    engine: Engine, memory_store: Store
) -> None:
    now = at("2025-02-20", "09:30")
    result = engine.process_tick(
        quotes({"BABA": 9.5, "KWEB": 2.9, "SPY": 0.0}, now),
        entries(["BABA"]),
        {},
        memory_store,
        now,
    )
    [delivery] = result.deliveries
    assert delivery.alert.cause != "company"
    assert "not searched" in delivery.alert.explanations["BABA"].searched


def test_channel_and_symbol_thresholds(engine: Engine, memory_store: Store) -> None:
    now = at("2025-03-05")
    q = quotes({"BABA": 3.0, "JD": 3.0, "KWEB": 3.0, "SPY": 0.0}, now)
    watch = [WatchEntry("test", "c1", "BABA", 2.5), WatchEntry("test", "c1", "JD")]
    result = engine.process_tick(q, watch, {}, memory_store, now)
    assert [d.alert.symbols for d in result.deliveries] == [("BABA",)]
    result = engine.process_tick(
        q, watch, {Destination("test", "c1"): 2.0}, Store("sqlite://"), now
    )
    assert set(result.deliveries[0].alert.symbols) == {"BABA", "JD"}


@pytest.mark.parametrize(
    ("quote_change", "reason"),
    [
        ({"price": 0.0}, "unusable price"),
        ({"price": -5.0}, "unusable price"),
        ({"price": math.nan}, "unusable price"),
        ({"previous_close": None}, "no usable previous close"),
        ({"previous_close": 0.0}, "no usable previous close"),
        ({"stale": True}, "stale"),
    ],
)
def test_bad_quotes_never_alert(
    engine: Engine, quote_change: dict[str, object], reason: str
) -> None:
    now = at("2025-03-05")
    good = quotes({"BABA": 10.0}, now)["BABA"]
    bad: Quote = replace(good, **quote_change)  # type: ignore[arg-type]
    moves, skips = detect_moves({"BABA": bad}, ["BABA"], engine.groups, now, timedelta(minutes=15))
    assert moves == {}
    assert reason in skips[0].reason


def test_old_quote_is_stale(engine: Engine) -> None:
    now = at("2025-03-05")
    old = quotes({"BABA": 10.0}, now - timedelta(hours=1))
    moves, skips = detect_moves(old, ["BABA"], engine.groups, now, timedelta(minutes=15))
    assert moves == {} and "old" in skips[0].reason


def test_split_sized_jump_without_news_is_skipped(engine: Engine, memory_store: Store) -> None:
    now = at("2025-03-05")
    result = engine.process_tick(
        quotes({"BABA": -50.0, "KWEB": 0.1, "SPY": 0.0}, now),
        entries(["BABA"]),
        {},
        memory_store,
        now,
    )
    assert result.deliveries == []
    assert any("split" in s.reason for s in result.skips)


def test_zscore_uses_trailing_daily_returns(engine: Engine) -> None:
    now = at("2025-03-05")
    history = {"BABA": [1.0, -1.0] * 10}
    moves, _ = detect_moves(
        quotes({"BABA": 5.0}, now), ["BABA"], engine.groups, now, timedelta(minutes=15), history
    )
    assert moves["BABA"].zscore == pytest.approx(5.0)
    moves, _ = detect_moves(
        quotes({"BABA": 5.0}, now),
        ["BABA"],
        engine.groups,
        now,
        timedelta(minutes=15),
        {"BABA": [1.0]},
    )
    assert moves["BABA"].zscore is None


def _run(
    engine: Engine, store: Store, pct: float, hhmm: str, day: str = "2025-03-05"
) -> list[tuple[str, ...]]:
    now = at(day, hhmm)
    moves = {"BABA": pct, "JD": 0.0, "PDD": 0.0, "BIDU": 0.0, "TCEHY": 0.0, "KWEB": 0.0, "SPY": 0.0}
    result = engine.process_tick(quotes(moves, now), entries(["BABA"]), {}, store, now)
    store.record(result.deliveries)
    return [d.alert.symbols for d in result.deliveries]


def test_cooldown_escalation_and_next_session(engine: Engine, memory_store: Store) -> None:
    assert _run(engine, memory_store, 6.0, "10:00") == [("BABA",)]
    assert _run(engine, memory_store, 6.5, "10:05") == []  # same move, cooling down
    assert _run(engine, memory_store, 8.1, "10:10") == [("BABA",)]  # widened by >= 2 pp
    assert _run(engine, memory_store, 8.5, "15:30") == []  # same session, not widened enough
    assert _run(engine, memory_store, -6.0, "15:45") == [("BABA",)]  # other direction
    assert _run(engine, memory_store, 6.0, "10:00", "2025-03-06") == [("BABA",)]  # next session


def test_dedupe_state_survives_a_restart(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'log.db'}"
    assert _run(engine, Store(url), 6.0, "10:00") == [("BABA",)]
    assert _run(engine, Store(url), 6.2, "10:30") == []


def test_muted_symbol_is_not_alerted(engine: Engine, memory_store: Store) -> None:
    memory_store.mute(Destination("test", "c1"), "BABA", at("2025-03-05", "23:00"), "u1")
    assert _run(engine, memory_store, 9.0, "10:00") == []
    assert _run(engine, memory_store, 9.0, "10:00", "2025-03-06") == [("BABA",)]


def test_two_channels_share_one_alert(engine: Engine, memory_store: Store) -> None:
    now = at("2025-03-05", "16:00")
    watch = entries(CHINA, "c1") + entries(CHINA, "c2")
    result = engine.process_tick(quotes(NPC_DAY, now), watch, {}, memory_store, now)
    [delivery] = result.deliveries
    assert {d.channel for d in delivery.destinations} == {"c1", "c2"}


def test_split_sized_drop_without_news_is_skipped_and_logged(
    engine: Engine, memory_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A 2-for-1 split shows up as -50 %: no alert, and the reason in the log."""
    now = at("2025-03-05", "13:30")
    result = engine.process_tick(
        quotes({"BABA": -50.0, "KWEB": 0.4, "SPY": 0.2}, now),
        entries(["BABA"]),
        {},
        memory_store,
        now,
        FixedNews(),
    )
    assert result.deliveries == []
    assert any("split" in s.reason for s in result.skips if s.symbol == "BABA")
    assert "split or bad data" in caplog.text


def test_split_sized_jump_with_company_news_still_alerts(
    engine: Engine, memory_store: Store
) -> None:
    now = at("2025-03-05", "13:30")
    engine.companies = {"BABA": "Alibaba Group Holding"}  # as config/companies.yaml gives it
    deal = NewsItem(
        "Alibaba agrees to be acquired in an all-cash deal",
        now - timedelta(hours=2),
        related=("BABA",),
    )
    result = engine.process_tick(
        quotes({"BABA": 45.0, "KWEB": 0.4, "SPY": 0.2}, now),
        entries(["BABA"]),
        {},
        memory_store,
        now,
        FixedNews(deal),
    )
    assert [d.alert.cause for d in result.deliveries] == ["company"]


def test_a_move_already_alerted_costs_no_news_search_on_the_next_tick(
    engine: Engine, memory_store: Store
) -> None:
    class CountingNews(FixedNews):
        searches = 0

        def search(self, symbol, since, until):  # type: ignore[no-untyped-def]
            CountingNews.searches += 1
            return super().search(symbol, since, until)

    news = CountingNews()
    now = at("2025-03-05", "13:30")
    first = engine.process_tick(quotes(NPC_DAY, now), entries(CHINA), {}, memory_store, now, news)
    memory_store.record(first.deliveries)
    searched = CountingNews.searches
    assert searched == len(CHINA)
    later = now + timedelta(minutes=1)
    again = engine.process_tick(
        quotes(NPC_DAY, later), entries(CHINA), {}, memory_store, later, news
    )
    assert again.deliveries == [] and CountingNews.searches == searched
    wider = {**NPC_DAY, "BABA": 12.0}  # widened by more than the escalation step
    third = engine.process_tick(quotes(wider, later), entries(CHINA), {}, memory_store, later, news)
    assert [d.alert.symbols for d in third.deliveries] == [("BABA",)]
    assert CountingNews.searches == searched + 1


def test_an_alert_pickled_before_its_id_was_stored_still_has_its_id() -> None:
    """Outbox rows written by the previous version hold alerts without the cached id: unpickling
    one sets the fields its state has (as __setstate__ does here) and leaves _id unset."""
    from datetime import UTC, datetime

    from handlers.models import Alert, BenchmarkMove, Direction, Move

    at = datetime(2025, 3, 5, 21, 0, tzinfo=UTC)
    move = Move("BABA", 8.6, 141.03, 129.85, at, "test", BenchmarkMove("KWEB", 7.1))
    alert = Alert(at, Direction.UP, (move,), {}, "macro")
    old = object.__new__(Alert)
    old.__setstate__(alert.__getstate__()[:-1])  # type: ignore[attr-defined]
    assert old.id == alert.id
