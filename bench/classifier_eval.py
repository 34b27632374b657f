"""Measure classify_headline against hand-labelled real headlines, next to a naive baseline."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from handlers.news import classify_headline

DEFAULT_PATH = Path("/tmp/classifier_eval/headlines.jsonl")
KINDS = ("company", "sector", "macro", "other")

# The baseline's catalyst words are frozen here on purpose: tuning handlers/news.py must not
# move the yardstick it is compared with.
_BASELINE_CATALYST = re.compile(
    r"\b(earnings|results|revenue|sales|profit|eps|beats?|miss(es|ed)?|guidance|outlook|"
    r"upgrades?|downgrades?|rating|price target|acquir\w*|merger|deal|launch\w*|unveil\w*|"
    r"product|approval|recall|probe|lawsuit|sues?|settle\w*|ceo|cfo|resign\w*|buyback|"
    r"dividend|offering|contract|deliveries|stake)\b",
    re.IGNORECASE,
)
_LEGAL_SUFFIX = re.compile(
    r"[,.]?\s+(group|holding|holdings|limited|ltd|inc|corp|corporation|co|company|plc)\.?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Item:
    """One labelled headline and the symbol it was retrieved for."""

    symbol: str
    title: str
    label: str
    company: str | None = None
    related: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class Scores:
    """Company-vs-not figures, and 4-way accuracy when the predictor gives kinds."""

    n: int
    accuracy: float
    precision: float
    recall: float
    four_way: float | None


Predict = Callable[[Item], str]


def load_items(path: Path) -> list[Item]:
    """Read a JSONL file of {symbol, title, label, company?, related?, source?} objects."""
    items: list[Item] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            item = Item(
                symbol=str(raw["symbol"]).upper(),
                title=str(raw["title"]),
                label=str(raw["label"]),
                company=raw.get("company") or None,
                related=tuple(str(r) for r in raw.get("related") or ()),
                source=str(raw.get("source") or ""),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a labelled headline ({exc})") from exc
        if item.label not in KINDS:
            raise ValueError(f"{path}:{number}: label {item.label!r} is not one of {KINDS}")
        items.append(item)
    return items


def is_held_out(item: Item) -> bool:
    """The fixed split (chosen before any tuning): a third of items, by a hash of symbol+title."""
    digest = hashlib.sha1(f"{item.symbol}|{item.title}".encode()).hexdigest()
    return int(digest, 16) % 3 == 0


def baseline_is_company(symbol: str, title: str, company: str | None) -> bool:
    """The naive rule: ticker or company name mentioned + a catalyst keyword => company."""
    names = [symbol]
    if company:
        name = company.strip()
        while (shorter := _LEGAL_SUFFIX.sub("", name).strip()) != name:
            name = shorter
        names += [name, name.split()[0]]
    mentioned = any(
        re.search(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])", title, re.IGNORECASE)
        for n in names
        if n
    )
    return mentioned and _BASELINE_CATALYST.search(title) is not None


def predict_classifier(item: Item) -> str:
    return classify_headline(item.symbol, item.title, item.company, related=item.related)


def predict_baseline(item: Item) -> str:
    return "company" if baseline_is_company(item.symbol, item.title, item.company) else "not"


def score(items: Sequence[Item], predict: Predict, four_way: bool) -> Scores:
    """Accuracy on company-vs-not, precision/recall of 'company', and optional 4-way accuracy."""
    predictions = [predict(item) for item in items]
    truth = [item.label == "company" for item in items]
    said = [p == "company" for p in predictions]
    hits = sum(t and s for t, s in zip(truth, said, strict=True))
    n = len(items)
    return Scores(
        n=n,
        accuracy=_ratio(sum(t == s for t, s in zip(truth, said, strict=True)), n),
        precision=_ratio(hits, sum(said)),
        recall=_ratio(hits, sum(truth)),
        four_way=(
            _ratio(sum(p == i.label for p, i in zip(predictions, items, strict=True)), n)
            if four_way
            else None
        ),
    )


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def mistakes(items: Iterable[Item], predict: Predict, four_way: bool) -> list[tuple[Item, str]]:
    """Items the predictor gets wrong (4-way, or company-vs-not for a binary predictor)."""
    wrong: list[tuple[Item, str]] = []
    for item in items:
        got = predict(item)
        truth = item.label if four_way else ("company" if item.label == "company" else "not")
        if got != truth:
            wrong.append((item, got))
    return wrong


def _row(name: str, groups: Sequence[Sequence[Item]], predict: Predict, four_way: bool) -> str:
    cells = []
    for group in groups:
        s = score(group, predict, four_way)
        cell = f"acc {s.accuracy:.3f} P {s.precision:.3f} R {s.recall:.3f}"
        cell += f" 4way {s.four_way:.3f}" if s.four_way is not None else " 4way   -  "
        cells.append(cell)
    return f"{name:<11}" + " | ".join(cells)


def report(items: Sequence[Item], show_baseline_mistakes: bool = False) -> str:
    """The printed report: figures overall, on the tuning part and on the held-out part."""
    tune = [i for i in items if not is_held_out(i)]
    held = [i for i in items if is_held_out(i)]
    groups = (items, tune, held)
    counts = {k: sum(i.label == k for i in items) for k in KINDS}
    lines = [
        f"n={len(items)} (tuning {len(tune)}, held-out {len(held)}); labels {counts}",
        "company-vs-not accuracy (acc), precision (P) and recall (R) of 'company':",
        f"{'':<11}{'all':<36} | {'tuning':<36} | held-out",
        _row("classifier", groups, predict_classifier, four_way=True),
        _row("baseline", groups, predict_baseline, four_way=False),
        "",
        "classifier mistakes (4-way; * = also wrong on company-vs-not; H = held-out):",
    ]
    for item, got in mistakes(items, predict_classifier, four_way=True):
        binary = (got == "company") != (item.label == "company")
        flag = ("*" if binary else " ") + ("H" if is_held_out(item) else " ")
        lines.append(f" {flag} {item.symbol:<6} want {item.label:<7} got {got:<7} {item.title}")
    if show_baseline_mistakes:
        lines.append("")
        lines.append("baseline mistakes (company-vs-not):")
        for item, got in mistakes(items, predict_baseline, four_way=False):
            lines.append(f"    {item.symbol:<6} want {item.label:<7} got {got:<7} {item.title}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--baseline-mistakes", action="store_true")
    args = parser.parse_args(argv)
    try:
        items = load_items(args.path)
    except OSError as exc:
        print(f"cannot read {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if not items:
        print(f"{args.path}: no labelled headlines", file=sys.stderr)
        return 2
    print(report(items, show_baseline_mistakes=args.baseline_mistakes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
