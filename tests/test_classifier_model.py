"""The attribution model: held-back news_dev figures, our own sentences, rules and hashing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bench import news_dev
from bench.classifier_speed import sample_items
from handlers.classifier import (
    LinearModel,
    feature_groups,
    features,
    normalise,
    parse_model,
    shipped_model,
    stable_hash,
    word_pieces,
)
from handlers.models import NewsItem
from handlers.news import classify_headline, classify_item

SYNTHETIC = Path(__file__).resolve().parent.parent / "bench" / "data" / "synthetic_news.yaml"
AT = datetime(2025, 3, 5, 14, 0, tzinfo=UTC)
# Held-back side of news_dev (bench/news_dev.py split, fixed before tuning), as measured with
# the shipped weights and rounded down: (company-vs-not accuracy, company recall, 4-way).
FLOORS = {"title": (0.75, 0.48, 0.60), "title+lead": (0.88, 0.85, 0.82)}


@pytest.fixture(scope="module")
def held() -> list[news_dev.DevItem]:
    if not news_dev.DEFAULT_PATH.is_file():
        pytest.skip(
            f"news_dev not found at {news_dev.DEFAULT_PATH} (shared/ is not beside the repo)"
        )
    return news_dev.split(news_dev.load(), "held")


def test_split_keeps_every_ticker_on_one_side() -> None:
    assert news_dev.side_of("BABA") == news_dev.side_of(" baba ")
    sides = {news_dev.side_of(f"T{n}") for n in range(40)}
    assert sides == {"tune", "held"}


@pytest.mark.parametrize("mode", ["title", "title+lead"])
def test_held_back_figures_hold_and_beat_the_keyword_rule(
    held: list[news_dev.DevItem], mode: str
) -> None:
    preds = news_dev.predictors()
    ours = news_dev.score(held, preds[f"classifier {mode}"])
    naive = news_dev.score(held, preds[f"baseline {mode}"])
    accuracy, recall, four_way = FLOORS[mode]
    print(f"{mode}: ours {ours}, baseline acc {naive.accuracy:.3f} R {naive.recall:.3f}")
    assert ours.n == len(held) > 100
    assert ours.accuracy >= max(accuracy, naive.accuracy)
    assert ours.recall >= max(recall, naive.recall)
    assert ours.f1 >= naive.f1
    assert ours.four_way >= max(four_way, naive.four_way)


def _synthetic() -> list[list[str]]:
    rows: list[list[str]] = yaml.safe_load(SYNTHETIC.read_text(encoding="utf-8"))["items"]
    return rows


def test_our_synthetic_sentences_are_mostly_right() -> None:
    # They are training items: a floor, not 100 %, since a regularised model may miss a few.
    rows = _synthetic()
    right = sum(
        classify_headline(symbol, title, company, summary=lead) == label
        for label, symbol, company, title, lead in rows
    )
    assert right / len(rows) >= 0.9


# New sentences of our own, in none of the training files.
UNSEEN = [
    ("ZEPH", "Zephyr Air sheds 11% after it warns on summer bookings", "Zephyr Air", "company"),
    ("ZEPH", "Zephyr Air jumps as it wins approval for new routes", "Zephyr Air", "company"),
    ("ZEPH", "Zephyr Air earnings preview: what to expect", "Zephyr Air", "other"),
    ("ZEPH", "Stocks slide after the Fed signals higher rates for longer", "Zephyr Air", "macro"),
    ("ZEPH", "Airline stocks tumble as a rival cuts its outlook", "Zephyr Air", "sector"),
]


@pytest.mark.parametrize(("symbol", "title", "company", "kind"), UNSEEN)
def test_unseen_sentences(symbol: str, title: str, company: str, kind: str) -> None:
    assert classify_headline(symbol, title, company) == kind


def test_a_move_with_no_cause_and_no_lead_is_unknown() -> None:
    item = NewsItem(title="Why Zephyr Air Stock Soared Today", published=AT)
    assert classify_item("ZEPH", item, "Zephyr Air").kind == "unknown"
    told = NewsItem(
        title=item.title,
        published=AT,
        lead="Zephyr Air rose after the carrier reported record quarterly revenue.",
    )
    assert classify_item("ZEPH", told, "Zephyr Air").kind == "company"


def test_summary_may_be_none_and_empty_titles_are_other() -> None:
    assert classify_headline("ZEPH", "Zephyr Air wins approval for new routes", None, None) in {
        "company",
        "sector",
        "macro",
        "other",
    }
    assert classify_item("ZEPH", NewsItem(title="", published=AT)).kind == "other"


def test_results_filings_and_dates_are_company_releases_are_macro() -> None:
    filing = NewsItem(
        title="8-K", published=AT, evidence="filing", form="8-K", filing_items=("2.02", "9.01")
    )
    six_k = NewsItem(title="6-K", published=AT, evidence="filing", form="6-K")
    session = NewsItem(title="Q3 results", published=AT, evidence="earnings")
    release = NewsItem(title="CPI", published=AT, evidence="economic")
    assert classify_item("ZEPH", filing) == classify_item("ZEPH", six_k)
    assert classify_item("ZEPH", filing).kind == "company"
    assert classify_item("ZEPH", session).kind == "company"
    assert classify_item("ZEPH", release).kind == "macro"


def test_brand_aliases_from_companies_yaml_name_the_company() -> None:
    text = normalise("Temu owner rallies; J&J slips", "PDD", ["Temu", "PDD Holdings"])
    assert text.split()[:2] == ["zzco", "owner"]
    assert normalise("Price target cut", "TGT", ["Target"]) == "Price target cut"
    assert "zzoth" in normalise("Rival (NASDAQ: RVL) gains", "ZEPH", ["Zephyr Air"])


def test_confidence_is_a_probability() -> None:
    for symbol, company, item in sample_items(50):
        verdict = classify_item(symbol, item, company)
        assert 0.0 < verdict.confidence <= 1.0


def test_hash_is_stable_across_runs() -> None:
    # Fixed values: training and run time must agree, whatever PYTHONHASHSEED is.
    assert stable_hash("t:zzco") == stable_hash("t:zzco")
    assert stable_hash("bias:1") == 164578
    assert "t:zzco" in features("zzco jumps", "")


def test_bad_model_files_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_model({"classes": ["a", "b"], "bias": [0.0], "weights": {}})
    with pytest.raises(ValueError):
        parse_model({"classes": ["a"]})
    model = parse_model({"classes": ["a", "b"], "bias": [0.0, 1.0], "weights": {"3": [1, 2]}})
    assert isinstance(model, LinearModel)
    assert model.probabilities([])["b"] > 0.5


def test_words_scored_whole_give_what_their_pieces_give() -> None:
    # At run time a word's piece rows are summed once and kept; training sees every piece.
    model = shipped_model()
    assert model is not None
    title = "zzco shares jump after the regulator approved its weight-loss drug"
    body = "zzco rose 12% on Tuesday. Rivals such as zzoth slipped as investors rotated."
    plain, pieces = feature_groups(title, body, ["rule:company"])
    assert len(pieces) > 10
    cut = plain + [p for prefix, tok in pieces for p in word_pieces(prefix, tok)]
    assert sorted(cut) == sorted(features(title, body, ["rule:company"]))
    whole, each = model.probabilities(plain, pieces), model.probabilities(cut)
    assert whole == pytest.approx(each, abs=1e-12)
    assert model.probabilities(plain, pieces) == whole  # the second time from the kept sums
