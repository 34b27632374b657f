"""The news_dev labelled set: its fixed by-ticker split, and the scores reported on its sides.

The split was fixed before any tuning and must never be redrawn: a stable hash of the ticker
decides the side, so no ticker is on both. Tuning (rules, the training script) reads only the
"tune" side; figures that claim to generalise come from the "held" side. Headline texts are
third-party: nothing here prints them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / ".." / "shared" / "data" / "news_dev" / "headlines.jsonl"
KINDS = ("company", "sector", "macro", "other")
Side = Literal["tune", "held"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# US-listed Chinese companies in the set (the README's "China ADR" rows: 27 items).
CHINA_ADRS = frozenset(
    {"BABA", "BILI", "EDU", "GOTU", "LI", "NIO", "NTES", "PDD", "TAL", "TCOM", "XPEV", "YUMC"}
)


@dataclass(frozen=True)
class DevItem:
    """One labelled news_dev item (text kept in memory only)."""

    symbol: str
    company: str
    title: str
    lead: str
    label: str
    alt_label: str

    @property
    def region(self) -> str:
        if self.symbol.endswith(".HK") or self.symbol in CHINA_ADRS:
            return "China/HK"
        return "US" if "." not in self.symbol else "other"


def side_of(symbol: str) -> Side:
    """The fixed split: half the tickers by the first 32 bits of SHA-256 of the upper symbol."""
    digest = hashlib.sha256(symbol.strip().upper().encode("utf-8")).digest()
    return "held" if int.from_bytes(digest[:4], "big") % 2 == 1 else "tune"


def load(path: Path = DEFAULT_PATH) -> list[DevItem]:
    """Read headlines.jsonl; raises OSError when absent, ValueError on a malformed line."""
    items: list[DevItem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            items.append(
                DevItem(
                    symbol=str(raw["symbol"]).upper(),
                    company=str(raw.get("company") or ""),
                    title=str(raw["title"]),
                    lead=str(raw.get("lead") or ""),
                    label=str(raw["label"]),
                    alt_label=str(raw.get("alt_label") or ""),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a labelled item ({exc})") from exc
    return items


def split(items: Sequence[DevItem], side: Side) -> list[DevItem]:
    return [i for i in items if side_of(i.symbol) == side]


@dataclass(frozen=True)
class DevScores:
    """Company-vs-not, precision/recall/F1 of company, 4-way (strict and lenient), confusion."""

    n: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    four_way: float
    lenient: float
    confusion: dict[str, dict[str, int]]


Predict = Callable[[DevItem], str]


def score(items: Sequence[DevItem], predict: Predict) -> DevScores:
    """Score a predictor; any kind outside the four labels ("unknown", "not") is simply wrong."""
    got = [predict(i) for i in items]
    truth = [i.label == "company" for i in items]
    said = [g == "company" for g in got]
    hits = sum(t and s for t, s in zip(truth, said, strict=True))
    precision = _ratio(hits, sum(said))
    recall = _ratio(hits, sum(truth))
    confusion = {k: dict.fromkeys((*KINDS, "unknown", "not"), 0) for k in KINDS}
    for item, g in zip(items, got, strict=True):
        confusion[item.label][g if g in confusion[item.label] else "not"] += 1
    n = len(items)
    return DevScores(
        n=n,
        accuracy=_ratio(sum(t == s for t, s in zip(truth, said, strict=True)), n),
        precision=precision,
        recall=recall,
        f1=2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        four_way=_ratio(sum(g == i.label for g, i in zip(got, items, strict=True)), n),
        lenient=_ratio(
            sum(g in {i.label, i.alt_label} - {""} for g, i in zip(got, items, strict=True)), n
        ),
        confusion=confusion,
    )


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def predictors() -> dict[str, Predict]:
    """Classifier and keyword baseline, each on the title alone and on title + lead.

    The baseline says "company" or, for its 4-way figure, "macro": the most common
    non-company label of the tuning side (43 of 101).
    """
    from bench.classifier_eval import baseline_is_company
    from handlers.news import classify_headline

    def ours_title(i: DevItem) -> str:
        return classify_headline(i.symbol, i.title, i.company or None)

    def ours_lead(i: DevItem) -> str:
        return classify_headline(i.symbol, i.title, i.company or None, summary=i.lead)

    def base_title(i: DevItem) -> str:
        return "company" if baseline_is_company(i.symbol, i.title, i.company or None) else "macro"

    def base_lead(i: DevItem) -> str:
        text = f"{i.title}. {i.lead}" if i.lead else i.title
        return "company" if baseline_is_company(i.symbol, text, i.company or None) else "macro"

    return {
        "classifier title": ours_title,
        "classifier title+lead": ours_lead,
        "baseline title": base_title,
        "baseline title+lead": base_lead,
    }


def _line(name: str, s: DevScores) -> str:
    return (
        f"  {name:<22} n={s.n:<4} acc {s.accuracy:.3f}  P {s.precision:.3f}  R {s.recall:.3f}  "
        f"F1 {s.f1:.3f}  4way {s.four_way:.3f}  lenient {s.lenient:.3f}"
    )


def _confusion(s: DevScores) -> list[str]:
    cols = (*KINDS, "unknown", "not")
    lines = ["    gold \\ got " + " ".join(f"{c:>8}" for c in cols)]
    for k in KINDS:
        lines.append(f"    {k:<12} " + " ".join(f"{s.confusion[k][c]:>8}" for c in cols))
    return lines


def hedging(items: Sequence[DevItem], with_lead: bool) -> str:
    """How often verdicts are right in each band the alert words differently (render.hedge):
    stated as the cause, "Likely ...", "Unclear, perhaps ...", and "unknown" (no cause stated:
    the alert says the cause is unclear; never a label here, so never right)."""
    from handlers.models import NewsItem
    from handlers.news import classify_item
    from handlers.render import LIKELY_BELOW, UNCLEAR_BELOW

    bands = {band: [0, 0] for band in ("stated", "likely", "unclear", "said unknown")}
    for i in items:
        lead = i.lead if with_lead else ""
        item = NewsItem(title=i.title, published=EPOCH, summary=lead)
        verdict = classify_item(i.symbol, item, i.company or None)
        band = (
            "said unknown"
            if verdict.kind == "unknown"
            else "stated"
            if verdict.confidence >= LIKELY_BELOW
            else "likely"
            if verdict.confidence >= UNCLEAR_BELOW
            else "unclear"
        )
        bands[band][0] += 1
        bands[band][1] += verdict.kind == i.label
    return "    right by wording: " + ", ".join(
        f"{band} {right}/{n} ({_ratio(right, n):.3f})" for band, (n, right) in bands.items()
    )


def report(items: Sequence[DevItem], sides: Sequence[Side], name: str = "news_dev") -> str:
    lines = [f"{name}: {len(items)} items"]
    preds = predictors()
    for side in sides:
        part = split(items, side)
        lines.append(
            f"{name} side {side}: {len(part)} items, {len({i.symbol for i in part})} tickers"
        )
        for name, predict in preds.items():
            s = score(part, predict)
            lines.append(_line(name, s))
            if name.startswith("classifier"):
                lines += _confusion(s)
                lines.append(hedging(part, with_lead=name.endswith("lead")))
            for region in ("US", "China/HK"):
                sub = [i for i in part if i.region == region]
                lines.append(_line(f"  {region}", score(sub, predict)))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--side", choices=("tune", "held", "both"), default="both")
    parser.add_argument(
        "--extra",
        type=Path,
        nargs="*",
        default=[],
        help="more labelled JSONL files with news_dev's fields, scored together, same split",
    )
    args = parser.parse_args(argv)
    try:
        items = load(args.path)
        extra = [i for p in args.extra for i in load(p)]
    except (OSError, ValueError) as exc:
        print(f"cannot read the labelled items: {exc}", file=sys.stderr)
        return 2
    sides: tuple[Side, ...] = ("tune", "held") if args.side == "both" else (args.side,)
    print(report(items, sides))
    if extra:
        print(report(extra, sides, "extra"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
