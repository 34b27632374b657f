"""classify_headline on real recorded Yahoo headlines, scored against our own labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.classifier_eval import Item, predict_baseline, predict_classifier, score

LABELS = Path(__file__).parent / "data" / "headline_labels.yaml"
# Company names as the app's config/companies.yaml (or Yahoo's longName) would give them.
COMPANIES = {
    "AAPL": "Apple Inc.",
    "AMZN": "Amazon.com, Inc.",
    "BABA": "Alibaba Group Holding Limited",
    "QQQ": "Invesco QQQ Trust",
}
# Company-vs-not accuracy floor. On 224 real headlines the classifier scored 0.911 on the
# 79 held out from tuning (naive baseline: 0.810); 0.9 is that level rounded down, and on
# these 16 items it allows one miss (15/16 = 0.9375) but not two (14/16 = 0.875, the
# baseline's own score here).
FLOOR = 0.9


def _labelled_items(yahoo: Path) -> list[Item]:
    labels: dict[str, dict[str, str]] = yaml.safe_load(LABELS.read_text())["labels"]
    items: list[Item] = []
    for path in sorted(yahoo.glob("search-*.json")):
        body: dict[str, Any] = json.loads(path.read_text())["response"]["bodyJson"]
        for raw in body.get("news") or []:
            entry = labels.get(str(raw.get("uuid")))
            if entry is None:
                continue
            items.append(
                Item(
                    symbol=entry["symbol"],
                    title=raw["title"],
                    label=entry["label"],
                    company=COMPANIES[entry["symbol"]],
                    related=tuple(raw.get("relatedTickers") or ()),
                )
            )
    return items


@pytest.fixture
def real_items(shared_yahoo: Path) -> list[Item]:
    items = _labelled_items(shared_yahoo)
    labels = yaml.safe_load(LABELS.read_text())["labels"]
    assert len(items) == len(labels), "a labelled uuid is missing from the shared recordings"
    return items


def test_labels_file_holds_no_headline_text() -> None:
    for entry in yaml.safe_load(LABELS.read_text())["labels"].values():
        assert set(entry) == {"symbol", "label"}
        assert entry["label"] in {"company", "sector", "macro", "other"}


def test_classifier_beats_the_baseline_and_the_floor(real_items: list[Item]) -> None:
    ours = score(real_items, predict_classifier, four_way=True)
    naive = score(real_items, predict_baseline, four_way=False)
    print(f"n={ours.n} classifier acc {ours.accuracy:.3f}, baseline acc {naive.accuracy:.3f}")
    assert ours.accuracy >= naive.accuracy
    assert ours.accuracy >= FLOOR


def test_company_precision_and_recall_not_below_baseline(real_items: list[Item]) -> None:
    ours = score(real_items, predict_classifier, four_way=True)
    naive = score(real_items, predict_baseline, four_way=False)
    assert ours.recall >= naive.recall
    assert ours.precision >= naive.precision
