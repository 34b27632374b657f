"""Every verdict carries a confidence; below set levels the cause is said as likely or unclear."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers.explain import ExplainParams, explain_move
from handlers.groups import GroupIndex
from handlers.models import (
    Alert,
    BenchmarkMove,
    ClassifiedNews,
    Direction,
    Explanation,
    Move,
    NewsItem,
    NewsSearch,
)
from handlers.render import cause_sentence, hedge

AT = datetime(2025, 3, 5, 20, 0, tzinfo=UTC)
SINCE = AT - timedelta(hours=4)
ALONE = Move("ZEPH", 7.5, 10.75, 10.0, AT, "test", BenchmarkMove("SPY", 0.1))
GROUPS = GroupIndex([], "SPY")


def _alert(exp: Explanation) -> Alert:
    return Alert(AT, Direction.UP, (ALONE,), {"ZEPH": exp}, exp.cause)


def _explain(*items: NewsItem) -> Explanation:
    search = NewsSearch("ZEPH", SINCE, AT, items, "test feed")
    return explain_move(ALONE, search, [], GROUPS, ExplainParams(), "Zephyr Air")


def test_hedge_levels() -> None:
    assert hedge("Company news", 0.9) == "Company news"
    assert hedge("Company news", 0.6) == "Likely company news"
    assert hedge("Company news", 0.3) == "Unclear, perhaps company news"


def test_a_weak_company_item_is_said_as_likely() -> None:
    item = NewsItem("Zephyr Air wins a contract", AT)
    exp = Explanation(
        "ZEPH",
        "company",
        item.title,
        (ClassifiedNews(item, "company", 0.6),),
        None,
        (),
        confidence=0.6,
    )
    assert cause_sentence(_alert(exp)).startswith("Likely company news: Zephyr Air wins")


def test_a_story_that_gives_no_cause_leaves_the_cause_unclear() -> None:
    # Written for this test: a move with no cause in the headline and no lead.
    exp = _explain(NewsItem("Why Zephyr Air stock soared today", AT - timedelta(hours=1)))
    assert exp.cause == "unexplained" and exp.confidence < 0.45
    assert [n.kind for n in exp.news] == ["unknown"]
    assert cause_sentence(_alert(exp)).startswith("Cause unclear")


def test_a_searched_quiet_day_is_a_firm_unexplained_and_a_stated_results_beat_firm_company() -> (
    None
):
    quiet = _explain()
    assert quiet.cause == "unexplained" and quiet.confidence >= 0.45
    assert cause_sentence(_alert(quiet)).startswith("No clear cause found")
    results = _explain(
        NewsItem(
            "Zephyr Air quarterly profit beats estimates, raises full-year outlook",
            AT - timedelta(hours=2),
            related=("ZEPH",),
        )
    )
    assert results.cause == "company" and results.confidence >= 0.7
    assert cause_sentence(_alert(results)).startswith("Company news: Zephyr Air quarterly")


def test_unverified_verdicts_are_never_firm() -> None:
    exp = explain_move(ALONE, None, [], GROUPS, ExplainParams(), "Zephyr Air")
    assert exp.cause == "unexplained" and not exp.verified and exp.confidence <= 0.5
