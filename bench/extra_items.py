"""Check and merge extra labelled news items gathered outside the repository (their text never
enters it; see bench/data/gathering_prompt.md for how they are gathered).

`python -m bench.extra_items check FILE` reports every bad line of one gathered file;
`python -m bench.extra_items merge DIR` writes DIR/all.jsonl from DIR/w*.jsonl: valid items only,
no repeat of a symbol and title, nothing whose address or title is in news_dev.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import news_dev

FIELDS = (
    "symbol",
    "company",
    "title",
    "title_from",
    "lead",
    "published",
    "source_url",
    "label",
    "alt_label",
    "note",
)
LEAD_LIMIT = 450


def address_key(url: str) -> str:
    """An address without scheme, www., query, fragment or trailing slash, lower-cased."""
    bare = url.strip().lower().split("#")[0].split("?")[0].rstrip("/")
    return re.sub(r"^(https?://)?(www\.)?", "", bare)


@dataclass
class Known:
    """What a new item must not repeat: news_dev's addresses and titles, items already kept."""

    addresses: set[str] = field(default_factory=set)
    titles: set[str] = field(default_factory=set)
    kept: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def of_news_dev(cls, path: Path) -> Known:
        rows = list(read_rows(path))
        return cls(
            addresses={address_key(str(r.get("source_url", ""))) for _, r in rows},
            titles={str(r.get("title", "")).strip().lower() for _, r in rows},
        )


def read_rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not an object gives {}."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                row = {}
            yield number, row if isinstance(row, dict) else {}


def problems(row: dict[str, Any], known: Known) -> list[str]:
    """Why ROW cannot be kept (empty when it can)."""
    if not row:
        return ["not a JSON object"]
    found = [f"missing {name}" for name in FIELDS if not isinstance(row.get(name), str)]
    if found:
        return found
    title = row["title"].strip().lower()
    checks = [
        (row["label"] not in news_dev.KINDS, f"label {row['label']!r}"),
        (row["alt_label"] not in ("", "sector", "macro"), "alt_label must be '', sector or macro"),
        (row["title_from"] not in ("page", "slug"), "title_from must be page or slug"),
        (len(row["lead"]) > LEAD_LIMIT, f"lead longer than {LEAD_LIMIT} characters"),
        (not row["symbol"].strip() or not title, "empty symbol or title"),
        (not row["source_url"].startswith(("http://", "https://")), "source_url not http(s)"),
        (address_key(row["source_url"]) in known.addresses, "address is in news_dev"),
        (title in known.titles, "title is in news_dev"),
    ]
    found = [why for bad, why in checks if bad]
    earlier = known.kept.get((row["symbol"].strip().upper(), title))
    if earlier:
        found.append(f"same symbol and title as {earlier}")
    return found


def keep(row: dict[str, Any], where: str, known: Known) -> dict[str, str]:
    item = {name: str(row[name]) for name in FIELDS}
    item["symbol"] = item["symbol"].strip().upper()
    known.kept[(item["symbol"], item["title"].strip().lower())] = where
    return item


def check(path: Path, dev: Path) -> int:
    known = Known.of_news_dev(dev)
    labels: Counter[str] = Counter()
    bad = 0
    for number, row in read_rows(path):
        found = problems(row, known)
        if found:
            bad += 1
            print(f"line {number}: " + "; ".join(found))
        else:
            labels[keep(row, f"line {number}", known)["label"]] += 1
    print(f"{sum(labels.values())} good items, {bad} bad lines; labels {dict(labels)}")
    return 1 if bad else 0


def _file_order(path: Path) -> tuple[int, str]:
    digits = re.match(r"w(\d+)", path.name)
    return (int(digits.group(1)) if digits else 0, path.name)


def merge(folder: Path, dev: Path) -> int:
    known = Known.of_news_dev(dev)
    items: list[dict[str, str]] = []
    dropped: Counter[str] = Counter()
    for path in sorted(folder.glob("w*.jsonl"), key=_file_order):
        for number, row in read_rows(path):
            found = problems(row, known)
            if found:
                dropped[found[0].split(" as ")[0]] += 1
            else:
                items.append(keep(row, f"{path.name}:{number}", known))
    text = "".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items)
    out = folder / "all.jsonl"
    out.write_text(text, encoding="utf-8")
    sides = Counter(news_dev.side_of(i["symbol"]) for i in items)
    print(
        f"{out}: {len(items)} items, {len({i['symbol'] for i in items})} tickers, "
        f"labels {dict(Counter(i['label'] for i in items))}, sides {dict(sides)}"
    )
    print(f"dropped {dict(dropped)}; sha256 {hashlib.sha256(text.encode()).hexdigest()}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("check", "merge"))
    parser.add_argument("path", type=Path, help="a gathered file (check) or its folder (merge)")
    parser.add_argument("--news-dev", type=Path, default=news_dev.DEFAULT_PATH)
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            return check(args.path, args.news_dev)
        return merge(args.path, args.news_dev)
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
