"""Word-list patterns rewritten for speed match exactly what the written lists match."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from handlers import news
from handlers.patterns import by_first_letter, faster, top_level_branches

SYNTHETIC = Path(__file__).resolve().parent.parent / "bench" / "data" / "synthetic_news.yaml"
PAIRS = [
    (news._CATALYST_AS_WRITTEN, news._CATALYST),
    (news._MACRO_AS_WRITTEN, news._MACRO),
    (news._SECTOR_AS_WRITTEN, news._SECTOR),
    (news._NOT_NEWS_AS_WRITTEN, news._NOT_NEWS),
]


def _our_texts() -> list[str]:
    rows = yaml.safe_load(SYNTHETIC.read_text(encoding="utf-8"))["items"]
    texts = [t for _label, _s, _c, title, lead in rows for t in (title, lead) if t]
    # Every branch of every list on its own and inside a sentence, upper and lower case.
    for slow, _fast in PAIRS:
        body = slow.pattern[3:].removesuffix(r")\b").removesuffix(")")
        for branch in top_level_branches(body):
            word = re.sub(r"[\\()?*+{}\[\]|^$]", "", branch)
            texts += [word, f"Shares fell after the {word} news", word.upper()]
    return texts


def test_split_keeps_groups_classes_and_escapes_whole() -> None:
    assert top_level_branches(r"a(b|c)|[|]x|\|y|z") == ["a(b|c)", "[|]x", r"\|y", "z"]


def test_branches_are_grouped_by_their_first_letter() -> None:
    assert by_first_letter("fed|fomc|(up|down)grade|f?x|tariffs?") == (
        "f(?:ed|omc)|tariffs?|(up|down)grade|f?x"
    )
    with pytest.raises(ValueError, match="not a word-list pattern"):
        faster(re.compile("no list here"))


@pytest.mark.parametrize(("slow", "fast"), PAIRS, ids=["catalyst", "macro", "sector", "not_news"])
def test_the_faster_pattern_matches_the_same_texts(
    slow: re.Pattern[str], fast: re.Pattern[str]
) -> None:
    texts = _our_texts()
    assert len(texts) > 700
    differ = [t for t in texts if bool(slow.search(t)) != bool(fast.search(t))]
    assert differ == []
    assert fast.pattern != slow.pattern and fast.flags == slow.flags
