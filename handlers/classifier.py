"""Hashed n-gram features and the shipped linear model that scores a news item's kind."""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise, starmap
from pathlib import Path

WEIGHTS = Path(__file__).with_name("classifier_weights.json")
# Feature buckets; the training script (bench/train_classifier.py) hashes with the same code.
BUCKETS = 1 << 18
CO = "zzco"  # the company the item is scored for
OTHER = "zzoth"  # another listed company, by its ticker
FLAG_REPEAT = 1  # more than 1 (rules outweigh n-grams) scored lower in grouped CV
# A word whose character pieces are features: (prefix, word); its pieces are word_pieces(...).
Piece = tuple[str, str]

_WORD = re.compile(r"[a-z0-9]+(?:['’&.\-][a-z0-9]+)*|[%$&]")
_DIGITS = re.compile(r"[0-9]+")  # a word holds only these digits
_TICKER_DRESS = re.compile(
    r"\((?:(?:NYSE|NASDAQ|Nasdaq|NYSEARCA|OTC|HKEX|HKG|LSE|TSX)\s*:\s*)?([A-Z0-9][A-Z0-9.\-]{0,9})\)"
    r"|\$([A-Z][A-Z0-9.\-]{0,9})\b|(?:NYSE|NASDAQ|Nasdaq|HKEX)\s*:\s*([A-Z0-9][A-Z0-9.\-]{0,9})"
)


def stable_hash(feature: str) -> int:
    """CRC-32 of the UTF-8 feature string: identical in training and at run time."""
    return zlib.crc32(feature.encode("utf-8")) & (BUCKETS - 1)


@lru_cache(maxsize=4096)
def _alias_rx(aliases: tuple[str, ...], symbol: str) -> re.Pattern[str] | None:
    parts = [re.escape(a) for a in sorted(aliases, key=len, reverse=True) if a]
    if not parts:
        return None
    # "price target" is not Target Corp.
    names = r"(?<![A-Za-z0-9])(?<![Pp]rice )(?i:" + "|".join(parts) + r")(?:['’]s?)?(?![A-Za-z0-9])"
    base = re.escape(symbol.split(".")[0])
    if len(symbol.split(".")[0]) > 1:
        # The bare ticker counts only in capitals: "LI" is a ticker, "li" is not.
        names += rf"|(?<![A-Za-z0-9]){re.escape(symbol)}(?![A-Za-z0-9])"
        names += rf"|(?<![A-Za-z0-9]){base}(?![A-Za-z0-9.])"
    return re.compile(names)


def normalise(text: str, symbol: str, aliases: Sequence[str]) -> str:
    """The text with this company's names as `zzco` and other tickers in ticker dress as `zzoth`."""
    if not text:
        return ""
    base = symbol.split(".")[0].upper()

    def dress(match: re.Match[str]) -> str:
        ticker = next(g for g in match.groups() if g).upper()
        core = ticker.split(".")[0]
        return f" {CO} " if ticker == symbol or core == base else f" {OTHER} "

    text = _TICKER_DRESS.sub(dress, text)
    rx = _alias_rx(tuple(aliases), symbol)
    if rx is not None:
        text = rx.sub(f" {CO} ", text)
    return text


def words(text: str) -> list[str]:
    """Lower-case words, every run of digits written 0 (one pass over the text)."""
    return _WORD.findall(_DIGITS.sub("0", text.lower()))


def _ngrams(prefix: str, tokens: Sequence[str]) -> list[str]:
    """Each word, and each word with the next."""
    out = [f"{prefix}{tok}" for tok in tokens]
    out += [f"{prefix}{a} {b}" for a, b in pairwise(tokens)]
    return out


def _pieces(prefix: str, tokens: Sequence[str]) -> list[Piece]:
    """Each word of 4 letters or more whose 4- and 5-character pieces are features."""
    return [(prefix, tok) for tok in tokens if len(tok) >= 4 and tok not in (CO, OTHER)]


def word_pieces(prefix: str, tok: str) -> tuple[str, ...]:
    """The 4- and 5-character pieces of one word, marked at its ends."""
    padded = f"<{tok}>"
    fours = (prefix + padded[i : i + 4] for i in range(len(padded) - 3))
    fives = (prefix + padded[i : i + 5] for i in range(len(padded) - 4))
    return (*fours, *fives)


_CAUSE_CLAUSE = re.compile(
    r"\b(after|as|on|amid|following|despite|thanks to|due to|because|with|while|over)\b"
    r"(?P<cause>[^.;:!?]{3,160})",
    re.IGNORECASE,
)


def cause_words(text: str) -> list[str]:
    """Words of the first clause that gives a cause ("... fell after the FDA rejected ...")."""
    match = _CAUSE_CLAUSE.search(text)
    return words(match.group("cause"))[:20] if match else []


# A full stop after these ends no sentence ("Acme Inc. fell", "U.S. regulators").
_ABBREVIATIONS = ("Inc", "Corp", "Co", "Ltd", "Plc", "U.S", "St", "No", "Mr", "Ms", "Jr", "vs")
NOT_AFTER_ABBREVIATION = "".join(rf"(?<!\b{re.escape(a)}\.)" for a in _ABBREVIATIONS)
_SENTENCE_END = re.compile(rf"(?<=[.!?;]){NOT_AFTER_ABBREVIATION}\s+")


def own_sentences(body: str) -> list[str]:
    """The body's sentences that name the company: in a round-up, its own cause is there."""
    parts = _SENTENCE_END.split(body)
    return [
        f"{s} {parts[i + 1]}" if i + 1 < len(parts) and not _CAUSE_CLAUSE.search(s) else s
        for i, s in enumerate(parts)
        if CO in s
    ][:2]


def features(title: str, body: str, flags: Iterable[str] = ()) -> list[str]:
    """Feature strings of one normalised item: title words, bigrams, char n-grams; body words."""
    plain, pieces = feature_groups(title, body, flags)
    return plain + [p for prefix, tok in pieces for p in word_pieces(prefix, tok)]


def feature_groups(
    title: str, body: str, flags: Iterable[str] = ()
) -> tuple[list[str], list[Piece]]:
    """features(), with the words whose character pieces are features left uncut."""
    title_words = words(title)
    body_words = words(body)
    out = ["bias:1", *(f"flag:{f}" for f in flags for _ in range(FLAG_REPEAT))]
    out += (f"c:{w}" for w in cause_words(title))
    out += (f"c:{w}" for w in cause_words(body[:300]))
    out += _ngrams("t:", title_words)
    out += _ngrams("b:", body_words)
    own = own_sentences(body)
    for sentence in own:
        out += _ngrams("s:", words(sentence))
        out += (f"sc:{w}" for w in cause_words(sentence))
    if body and not own:
        out.append("s:none")
    if CO in title_words:
        out.append(f"t:co_at_{min(title_words.index(CO), 3)}")
    out.append("b:none" if not body_words else f"b:co_{CO in body_words}")
    return out, _pieces("tc:", title_words) + _pieces("bc:", body_words[:80])


def hashed(feats: Iterable[str]) -> dict[int, float]:
    """Bucket counts of the features (stable_hash inlined: this is the hot loop)."""
    counts: dict[int, float] = {}
    crc, mask, get = zlib.crc32, BUCKETS - 1, counts.get
    for f in feats:
        h = crc(f.encode("utf-8")) & mask
        counts[h] = get(h, 0.0) + 1.0
    return counts


@dataclass(frozen=True, slots=True)
class LinearModel:
    """Multinomial logistic regression over hashed features."""

    classes: tuple[str, ...]
    bias: tuple[float, ...]
    weights: dict[int, tuple[float, ...]]
    temperature: float = 1.0
    _piece_rows: Callable[[str, str], tuple[float, ...] | None] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Words recur from item to item: the sum of a word's piece rows is worked out once.
        object.__setattr__(self, "_piece_rows", lru_cache(maxsize=16384)(self._sum_of_pieces))

    def _sum_of_pieces(self, prefix: str, tok: str) -> tuple[float, ...] | None:
        rows = list(filter(None, map(self.weights.get, _buckets(word_pieces(prefix, tok)))))
        return tuple(math.fsum(col) for col in zip(*rows, strict=True)) if rows else None

    def probabilities(self, feats: Iterable[str], pieces: Iterable[Piece] = ()) -> dict[str, float]:
        """Class probabilities of feature strings and of words whose pieces are features."""
        # Summing each occurrence's row equals weighting a bucket by its count (see hashed);
        # done this way the loops run in C, and this is most of the classifier's run time.
        rows = list(filter(None, map(self.weights.get, _buckets(feats))))
        rows += filter(None, starmap(self._piece_rows, pieces))
        totals = [math.fsum(col) for col in zip(*rows, strict=True)] or [0.0] * len(self.bias)
        scores = [b + s for b, s in zip(self.bias, totals, strict=True)]
        top = max(scores)
        exps = [math.exp((s - top) / self.temperature) for s in scores]
        total = sum(exps)
        return {c: e / total for c, e in zip(self.classes, exps, strict=True)}


def _buckets(feats: Iterable[str]) -> Iterable[int]:
    """stable_hash of each feature, in C."""
    return map((BUCKETS - 1).__and__, map(zlib.crc32, map(str.encode, feats)))


def parse_model(raw: dict[str, object]) -> LinearModel:
    """A model from its JSON form; raises ValueError when the shape is wrong."""
    try:
        classes = tuple(str(c) for c in raw["classes"])  # type: ignore[attr-defined]
        bias = tuple(float(b) for b in raw["bias"])  # type: ignore[attr-defined]
        weights = {
            int(k): tuple(float(w) for w in v)
            for k, v in raw["weights"].items()  # type: ignore[attr-defined]
        }
        temperature = float(raw.get("temperature", 1.0))  # type: ignore[arg-type]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a classifier model: {exc}") from exc
    if len(bias) != len(classes) or any(len(r) != len(classes) for r in weights.values()):
        raise ValueError("classifier model rows do not match its classes")
    return LinearModel(classes, bias, weights, temperature)


@lru_cache(maxsize=1)
def shipped_model() -> LinearModel | None:
    """The model shipped in the package, or None when its file is missing or unreadable."""
    try:
        return parse_model(json.loads(WEIGHTS.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
