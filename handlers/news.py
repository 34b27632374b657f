"""Headline classification: what a news item is for one symbol (company, sector, macro, other)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import yaml

from handlers.classifier import (
    NOT_AFTER_ABBREVIATION,
    Piece,
    feature_groups,
    features,
    normalise,
    shipped_model,
)
from handlers.models import HeadlineKind, ItemKind, NewsItem
from handlers.patterns import by_first_letter, faster

log = logging.getLogger(__name__)

# Company-specific catalysts: what moves one stock on its own.


@lru_cache(maxsize=8192)
def _rx(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """Compiled patterns, kept: per-company patterns overflow the re module's small cache."""
    return re.compile(pattern, flags)


def _search(pattern: str, text: str, flags: int = 0) -> re.Match[str] | None:
    return _rx(pattern, flags).search(text)


@lru_cache(maxsize=8192)
def _hit(rx: re.Pattern[str], text: str) -> bool:
    """Whether RX matches in TEXT: one item's rules ask the same of the same text often."""
    return rx.search(text) is not None


_CATALYST_AS_WRITTEN = re.compile(
    r"\b("
    r"earnings|results|quarter(ly)?|q[1-4]|fy\d{2,4}|revenue|sales|profit|loss(es)?|eps|"
    r"beats?|miss(es|ed)?|tops|guidance|outlook|forecasts?|withdraw\w*|reaffirm\w*|"
    r"(up|down)grade(s|d)|(up|down)grade to|rating|overweight|underweight|outperform|"
    r"underperform|price target|target price|fair value|initiat\w+ coverage|"
    r"acqui\w+|merger|merge|takeover|buyout|deal|stake|spin-?off|divest\w*|"
    r"launch\w*|unveil\w*|releas\w*|rolls? out|debut\w*|introduc\w+|new model|ai model|"
    r"products?|announc\w+|"
    r"approv\w+|clearance|fda|recall\w*|"
    r"probe|investigat\w+|antitrust|fine[ds]?|penalt\w+|sanction\w*|ban(s|ned)?|"
    r"lawsuit|sues?d?|suing|settle\w*|court|verdict|"
    r"ceo|cfo|chairman|founder|executive|steps down|resign\w*|appoint\w*|hires?|layoffs?|"
    r"lays off|job cuts|leadership changes?|"
    r"buyback|repurchase|dividend|offering|senior notes|notes due|bond sale|pricing of|"
    r"ipo|listing|delist\w*|convertible|"
    # Index inclusion is the stock's own news (news_dev's rule), not a market move.
    r"(join\w*|added to|addition to|inclusion in|included in|enters?|to enter|dropped from|"
    r"removed from|deleted from) (the )?(s&p (500|400|600)|nasdaq[- ]100|ftse (100|250)|"
    r"russell (1000|2000|3000)|dow jones industrial average|dow|hang seng index|nifty( 50)?)|"
    r"contract|partner\w*|agreement|orders?|deliveries|delivered|shipments?|"
    r"factory|plants?|production|halt\w*|shuts? down|suspend\w*|"
    r"investment plan|invest\w* \$|plans? to|strike|outage|hack\w*|breach"
    r")\b",
    re.IGNORECASE,
)
_CATALYST = faster(_CATALYST_AS_WRITTEN)

# Economy, policy and commodities: a cause outside any one company or industry.
_MACRO_AS_WRITTEN = re.compile(
    r"\b("
    r"fed|federal reserve|fomc|powell|rate (cut|hike)s?|interest rates?|"
    r"(bond|treasury) yields?|yields (rise|rose|fall|fell|jump\w*|climb\w*|drop\w*|surge\w*)|"
    r"treasur(y|ies)|inflation|cpi|ppi|pce|jobs report|payrolls|unemployment|gdp|recession|"
    r"economy|economic|growth target|stimulus|fiscal|central bank|pboc|ecb|boj|"
    r"tariffs?|trade war|trade talks|trade tensions?|export controls?|sanctions on china|"
    r"national people'?s congress|npc|two sessions|politburo|state council|premier|"
    r"white house|congress|government shutdown|election|geopolitic\w*|"
    r"oil prices?|crude( oil)?|natural gas|gas (prices|supply|supplies|deliveries)|"
    r"fuel (costs|prices)|energy (crisis|prices)|commodit(y|ies)|opec|gold|"
    r"dollar index|the dollar|the yuan|currenc(y|ies)"
    r")\b",
    re.IGNORECASE,
)
_MACRO = faster(_MACRO_AS_WRITTEN)

# Whole-market words: enough to call a story macro, too weak to outrank a company catalyst.
_MARKET = re.compile(
    r"(^(\w+ )?(stocks|equities)\b|\b("
    r"equities|stock market|wall street|s&p 500|nasdaq|dow|futures|pre-bell|midday|markets?|"
    r"(hong kong|china|chinese|mainland|u\.?s\.?|asian?|asia-pacific|european?|global|world|"
    r"japanese)( and [\w-]+)? (stocks|shares|equities)"
    r")\b)",
    re.IGNORECASE,
)

_INDUSTRY_AS_WRITTEN = (
    r"tech|technology|internet|chip|chipmakers?|semiconductor|ev|electric vehicle|auto|"
    r"automakers?|bank|banking|regional bank|financial|oil|energy|airline|travel|retail|"
    r"e-commerce|ai|crypto|biotech|pharma|drug|healthcare|health care|medical|software|cloud|"
    r"solar|mining|gaming|media|streaming|cannabis|restaurant|consumer|industrial|utility|"
    r"utilities|real estate|reit|homebuilder|insurance|steel|defense|shipping|luxury|growth|"
    r"value|megacap|mega-cap|large-cap|small-cap|meme"
)


# Several companies or an industry moving together.
def _sector_pattern(industry: str) -> re.Pattern[str]:
    return re.compile(
        rf"\b("
        rf"({industry})\s+([\w-]+\s+){{0,2}}?(stocks|shares|names|sector|industry|makers|giants|"
        rf"peers|adrs|companies|firms|etfs)|"
        rf"({industry})\s+([\w-]+\s+)?(rally|selloff|sell-off|rout|slump)|"
        rf"shares of several|several [\w-]+( [\w-]+)? (companies|stocks|names)|[\w-]+ space|"
        rf"other [\w-]+ stocks|adrs|sector|industry|peers|rival stocks|across the board"
        rf")\b",
        re.IGNORECASE,
    )


_SECTOR_AS_WRITTEN = _sector_pattern(_INDUSTRY_AS_WRITTEN)
_SECTOR = faster(_sector_pattern(by_first_letter(_INDUSTRY_AS_WRITTEN)))

# Never a catalyst whatever words they contain: lists, screens, previews, recaps, technical
# ratings, fund and insider filings, conference transcripts, "buy or sell?" pieces.
_NOT_NEWS_AS_WRITTEN = re.compile(
    r"\b("
    r"\d+ ([\w-]+ ){0,2}stocks|stocks? to (buy|watch|own|consider|avoid|sell)|top \d+|"
    r"best [\w-]+ stocks|stocks that hit|biggest movers|stocks moving|earnings scheduled|"
    r"top upgrades|price target changes|analyst blog|"
    r"should you (buy|sell)|is it time to (buy|sell)|buy and hold|buy,? sell,? or hold|"
    r"a buy or (a )?sell|better buy|attractively priced|intrinsic value|"
    r"what you should know|trending stock|heavily search\w*|"
    r"gears up for|what'?s in the cards|earnings preview|what to expect|"
    r"since (its )?last earnings report|set to report|"
    r"relative strength|technical strength|chart breakdown|"
    r"13[fdg]|form 4|insider (buying|selling|buys|sells)|"
    r"(buys|sells|bought|sold|trims|adds to|exits|boosts|raises|cuts) (its )?"
    r"(stake|position|holdings?) in|acquires? (a )?(new )?position in|"
    r"shares (bought|sold|acquired) by|(sold|bought) \$?[\d.,]+ ?(million|billion|[mk])? of shares|"
    r"(management|capital|partners|fund|advisors|llc|l\.p\.)[^.?!]*\b(buys|sells|adds to|exits)\b|"
    r"presents? at|transcript|annual meeting|"
    r"not seeing any news|no (company-specific )?news"
    r")",
    re.IGNORECASE,
)
_NOT_NEWS = faster(_NOT_NEWS_AS_WRITTEN)

# About the company but no catalyst: opinion and explainer phrasings that may sit beside one.
_NO_CATALYST = re.compile(
    r"\b("
    r"to buy|to watch|what you need to know|facts to know|exploration|here'?s why|"
    r"here is why|long-term|hedge funds?|holdings? in|position in|among .* picks"
    r")\b",
    re.IGNORECASE,
)

_MOVE = (
    r"(surg\w*|soar\w*|jump\w*|rises?|rising|rose|rall\w*|gains?|gained|climb\w*|leap\w*|"
    r"rocket\w*|spik\w*|pops?|popped|boosted|rebound\w*|recover\w*|falls?|falling|fell|drops?|"
    r"dropped|slid\w*|slip\w*|sinks?|sank|plung\w*|plummet\w*|tumbl\w*|slump\w*|dips?|dipped|"
    r"skid\w*|retreat\w*|declin\w*|(trading|trade|trades|traded) (higher|lower)|"
    r"(up|down) \d[\d.]*%)"
)
_CAUSE = r"(as|after(?![ -]hours)|on|amid|following|by|despite)"

_TICKER_IN_TEXT = re.compile(r"(?:\(|\$|NYSE:\s*|NASDAQ:\s*)([A-Z][A-Z0-9.\-]{0,9})\)?")

_NAME_SUFFIXES = re.compile(
    r"[,.]?\s+(group|holding|holdings|limited|ltd|inc|incorporated|corp|corporation|co|company|"
    r"plc|sa|ag|nv|se|adr|class [a-c]|com)\.?$",
    re.IGNORECASE,
)

# First words of names that are too common to stand for the company on their own.
_GENERIC_FIRST_WORDS = frozenset(
    {
        "the",
        "china",
        "first",
        "american",
        "general",
        "united",
        "national",
        "international",
        "global",
        "new",
        "royal",
        "great",
    }
)


def company_aliases(symbol: str, company: str | None, extra: Iterable[str] = ()) -> list[str]:
    """Names a headline may use for a company: its name without legal suffixes, and extras."""
    names: list[str] = [a for a in extra if a]
    if company:
        name = company.strip()
        names.append(name)
        previous = None
        while previous != name:
            previous = name
            name = _NAME_SUFFIXES.sub("", name).strip()
        if name:
            names.append(name)
            first = name.split()[0].rstrip(".,")
            if len(first) >= 4 and first.lower() not in _GENERIC_FIRST_WORDS:
                names.append(first)
        if name.lower().endswith(".com"):
            names.append(name[:-4])
    base = symbol.split(".")[0].split("-")[0]
    out: list[str] = []
    for n in names:
        if n and n.lower() not in {o.lower() for o in out} and n.upper() != base:
            out.append(n)
    return out


def _mentions_symbol(symbol: str, text: str) -> bool:
    base = re.escape(symbol.split("-")[0])
    if len(symbol) == 1:
        # "A" is also an article: a one-letter ticker counts only in ticker dress, "(A)" or "$A".
        return _search(rf"\({base}\)|\${base}\b|(NYSE|NASDAQ):\s*{base}\b", text) is not None
    return _search(rf"(?<![A-Za-z0-9]){base}(?![A-Za-z0-9])", text) is not None


@lru_cache(maxsize=4096)
def _alias_pattern(alias: str) -> str:
    return rf"(?<![a-z0-9]){re.escape(alias.lower())}(?![a-z0-9])"


def _mentions_alias(aliases: Sequence[str], text: str) -> bool:
    lowered = text.lower()
    return any(_search(_alias_pattern(alias), lowered) for alias in aliases)


def _name_patterns(aliases: Sequence[str], symbol: str) -> list[str]:
    names = [rf"(?<![A-Za-z0-9]){re.escape(a)}(?![A-Za-z0-9])" for a in aliases]
    if len(symbol) > 1:
        names.append(rf"(?<![A-Za-z0-9]){re.escape(symbol)}(?![A-Za-z0-9])")
    return names


def _other_title_tickers(symbol: str, title: str) -> set[str]:
    found = {t.upper() for t in _TICKER_IN_TEXT.findall(title)}
    return {t for t in found if t and t != symbol}


def _other_related(symbol: str, related: Sequence[str]) -> set[str]:
    """Related companies; index, future and currency symbols ("^GSPC", "CL=F") are markets."""
    return {r.upper() for r in related if r and r.upper() != symbol and not set("^=") & set(r)}


def _names_several(title: str) -> bool:
    """'Alibaba, JD, and Other ...', 'NIO and Li Auto deliveries', 'Baidu, Alibaba lead'."""
    name = r"[A-Z][\w.&'-]*"
    long_name = rf"{name}(\s+{name})?"
    return bool(
        _search(rf"\b{long_name}(,\s+{long_name})+,?\s+(and|&)\s+[A-Z]", title)
        or _search(
            rf"\b{name}\s+(and|&)\s+{name}(\s+{name})?\s+(stocks|shares|adrs|deliveries|sales)\b",
            title,
            re.IGNORECASE,
        )
        or _search(rf"\b{name},\s+{name}\s+(lead|drive|drag|power)\b", title)
        or _search(rf"\b{name}\s+vs\.?\s+{name}", title, re.IGNORECASE)
    )


def _stake_in_this(aliases: Sequence[str], symbol: str, title: str) -> bool:
    """An investor's stake or position in this company is a filing, not its own news."""
    return any(
        _search(rf"\b(stake|position|holdings?)\s+in\s+{name}", title, re.IGNORECASE)
        for name in _name_patterns(aliases, symbol)
    )


def _owns_catalyst(aliases: Sequence[str], symbol: str, title: str) -> bool:
    """The catalyst is this company's own: 'Alibaba's results', 'Alibaba reports', 'BABA beats'.

    The words between the name and the verb may not join another name ('NIO and Li Auto ...').
    """
    verbs = (
        r"(q[1-4]|quarter\w*|earnings|results|revenue|sales|profit|deliveries|guidance|"
        r"reports?|reported|posts?|posted|announc\w+|beats?|miss\w*|"
        r"tops (estimates|expectations|forecasts|views)|launch\w*|unveil\w*|debut\w*|"
        r"introduc\w+|raises?|cuts?|lowers?|withdraws?|reaffirms?|sues?|agrees?|settles?|"
        r"to (buy|acquire)|acquires?|wins?|receives?|halts?|to halt|ceo|cfo)"
    )
    for name in _name_patterns(aliases, symbol):
        if _search(
            rf"{name}(['’]s)?(\s+\([A-Z.]+\))?\s+((?!and\b|&)[\w-]+\s+){{0,2}}?([\w]+-)?{verbs}\b",
            title,
            re.IGNORECASE,
        ):
            return True
    return False


def _move_cause(aliases: Sequence[str], symbol: str, title: str) -> str | None:
    """In 'Baidu shares jump as users test its bot', the cause this company moved on."""
    for name in _name_patterns(aliases, symbol):
        match = _search(
            rf"{name}(['’]s)?(\s+\([A-Z.]+\))?\s+([\w%.-]+\s+){{0,4}}?{_MOVE}\b.*?\b{_CAUSE}\b"
            rf"(?P<cause>.+)",
            title,
            re.IGNORECASE,
        )
        if match:
            return match.group("cause")
    return None


def _kind_of_cause(cause: str) -> HeadlineKind:
    if _hit(_MACRO, cause):
        return "macro"
    if _hit(_CATALYST, cause):
        return "company"
    if _hit(_MARKET, cause):
        return "macro"
    if _hit(_SECTOR, cause):
        return "sector"
    return "company"


def rule_kind(
    symbol: str,
    title: str,
    company: str | None = None,
    summary: str = "",
    related: Sequence[str] = (),
    extra_aliases: Sequence[str] = (),
) -> HeadlineKind:
    """The hand-written rules' kind for a headline: a model feature, and the fallback."""
    title = (title or "").strip()
    if not title:
        return "other"
    sym = symbol.upper()
    aliases = company_aliases(sym, company, extra_aliases)
    if _hit(_NOT_NEWS, title) or _stake_in_this(aliases, sym, title):
        return "other"
    if _mentions_symbol(sym, title) or _mentions_alias(aliases, title):
        return _about_this_company(sym, aliases, title, summary)
    return _about_something_else(sym, title, related)


def _about_this_company(
    symbol: str, aliases: Sequence[str], title: str, summary: str
) -> HeadlineKind:
    """A headline naming this company: its own catalyst, a group it moves with, or a cause."""
    owns = _owns_catalyst(aliases, symbol, title)
    several = _names_several(title) or len(_other_title_tickers(symbol, title)) >= 2
    if (several or _hit(_SECTOR, title)) and not owns:
        return "sector"
    if owns:
        return "company"
    if _hit(_CATALYST, title):
        return "macro" if _hit(_MACRO, title) else "company"
    if _hit(_NO_CATALYST, title):
        return "other"
    cause = _move_cause(aliases, symbol, title)
    if cause is not None:
        return _kind_of_cause(cause)
    if _hit(_MACRO, title):
        return "macro"
    if summary and _hit(_CATALYST, summary):
        return "company"
    return "other"


def _about_something_else(symbol: str, title: str, related: Sequence[str]) -> HeadlineKind:
    """A headline that does not name this company: its industry, the market, or noise."""
    if _hit(_NO_CATALYST, title):
        return "other"
    if _hit(_SECTOR, title):
        return "sector"
    if _hit(_MACRO, title):
        return "macro"
    if _names_several(title):
        return "sector"
    if _hit(_MARKET, title):
        return "macro"
    if len(_other_related(symbol, related)) >= 2 and not _hit(_CATALYST, title):
        return "sector"
    return "other"


# --- The item classifier: precise rules for strong signals, the shipped model for the rest ---

COMPANIES_FILE = Path(__file__).resolve().parent.parent / "config" / "companies.yaml"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Filing items that are the company's own news: results (2.02), agreements (1.01, 2.01),
# executive changes (5.02), other events (8.01), Regulation FD (7.01).
_RESULTS_ITEMS = frozenset({"2.02"})
# Other 8-K items that are the company's own news (deals, officers, delisting, other events).
_OWN_ITEMS = frozenset(
    {"1.01", "1.02", "1.03", "2.01", "2.05", "2.06", "3.01", "4.02", "5.01", "5.02", "7.01"}
    | {"8.01"}
)

# A headline that says a stock moved and nothing about why ("Why X Stock Soared Today").
_MOVE_ONLY = re.compile(
    rf"^(here'?s |here is )?(why|what'?s (going on|happening) with|why is)\b[^:;]*\b{_MOVE}\b"
    rf"(?![^:;]*\b({_CAUSE}|because|thanks to|due to|while)\b)[^:;]*[.!?]?$"
    rf"|^[^:;]*\b{_MOVE}\b[^:;]*(:|—|-)\s*(here'?s why|what'?s going on|what you need to know)"
    rf"[.!?]?$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class ItemVerdict:
    """What one evidence item says about SYMBOL, and how sure the classifier is (0..1)."""

    kind: ItemKind
    confidence: float


@lru_cache(maxsize=1)
def shipped_aliases() -> dict[str, tuple[str, ...]]:
    """Brand names and other spellings per symbol from config/companies.yaml (may be empty)."""
    try:
        raw = yaml.safe_load(COMPANIES_FILE.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        log.warning("company aliases not loaded from %s: %s", COMPANIES_FILE, exc)
        return {}
    out: dict[str, tuple[str, ...]] = {}
    if not isinstance(raw, dict):
        log.warning("company aliases not loaded from %s: not a mapping", COMPANIES_FILE)
        return out
    aliases, names = raw.get("aliases"), raw.get("companies")
    for sym, listed in (aliases if isinstance(aliases, dict) else {}).items():
        if isinstance(listed, list):
            out[str(sym).upper()] = tuple(str(n) for n in listed if n and str(n).strip())
    for sym, name in (names if isinstance(names, dict) else {}).items():
        if name:
            key = str(sym).upper()
            out[key] = (*out.get(key, ()), str(name))
    return out


def aliases_for(symbol: str, company: str | None) -> list[str]:
    """Every name a story may use for SYMBOL: Yahoo's name, its short forms, shipped brands."""
    return company_aliases(symbol.upper(), company, shipped_aliases().get(symbol.upper(), ()))


def _flags(
    symbol: str, title: str, body: str, aliases: Sequence[str], related: Sequence[str]
) -> list[str]:
    """Rule signals given to the model as features (the rules' knowledge, the model's weights)."""
    flags = [f"rule:{rule_kind(symbol, title, None, body, related, aliases)}"]
    named = _mentions_symbol(symbol, title) or _mentions_alias(aliases, title)
    flags.append(f"named:{named}")
    if body:
        flags.append(
            f"body_named:{_mentions_symbol(symbol, body) or _mentions_alias(aliases, body)}"
        )
    for name, rx in (("cat", _CATALYST), ("mac", _MACRO), ("mkt", _MARKET), ("sec", _SECTOR)):
        if _hit(rx, title):
            flags.append(f"t_{name}")
        if body and _hit(rx, body):
            flags.append(f"b_{name}")
    if _hit(_NOT_NEWS, title) or _hit(_NO_CATALYST, title):
        flags.append("t_notnews")
    if named and _owns_catalyst(aliases, symbol, title):
        flags.append("t_owns")
    if _names_several(title):
        flags.append("t_several")
    if _hit(_MOVE_ONLY, title):
        flags.append("t_move_only")
    others = len(_other_related(symbol, related))
    flags.append(f"related:{min(others, 3)}")
    if body:
        flags += _lead_flags(symbol, body, aliases)
    return flags


_SENTENCE = re.compile(rf"(?<=[.!?;]){NOT_AFTER_ABBREVIATION}\s+|\s+[—–]\s+")
# Words that tie a company's move to another firm's news (a peer's results read across).
_PEER_CUE = re.compile(
    r"\b(rivals?|peers?|competitors?|sympathy|along with|alongside|read[- ]across|"
    r"other [\w-]+ (stocks|names|makers|shares|companies)|the (group|sector|industry))\b",
    re.IGNORECASE,
)


def _lead_flags(symbol: str, body: str, aliases: Sequence[str]) -> list[str]:
    """What the lead's sentences naming the company say: in a round-up its own cause is there."""
    out: list[str] = []
    named = [
        s
        for s in _SENTENCE.split(body[:600])
        if _mentions_symbol(symbol, s) or _mentions_alias(aliases, s)
    ][:2]
    for sentence in named:
        out.append(f"lead_rule:{_about_this_company(symbol, aliases, sentence, '')}")
        cause = _move_cause(aliases, symbol, sentence)
        if cause is not None:
            out.append(f"lead_cause:{_kind_of_cause(cause)}")
        if _hit(_PEER_CUE, sentence):
            out.append("lead_peer")
    if not named:
        out.append("lead_unnamed")
    return out


def item_features(
    symbol: str, title: str, body: str, company: str | None, related: Sequence[str] = ()
) -> list[str]:
    """The model's features for one item: the training script calls this very function."""
    return features(*_normalised(symbol, title, body, company, related))


def _item_feature_groups(
    symbol: str, title: str, body: str, company: str | None, related: Sequence[str] = ()
) -> tuple[list[str], list[Piece]]:
    """item_features, with the words whose character pieces are features left uncut."""
    return feature_groups(*_normalised(symbol, title, body, company, related))


def _normalised(
    symbol: str, title: str, body: str, company: str | None, related: Sequence[str]
) -> tuple[str, str, list[str]]:
    sym = symbol.upper()
    aliases = aliases_for(sym, company)
    flags = _flags(sym, title, body, aliases, related)
    return normalise(title, sym, aliases), normalise(body, sym, aliases), flags


def _strong_signal(symbol: str, item: NewsItem) -> ItemVerdict | None:
    """Evidence whose type alone says what it is: a results filing, a results date, a release."""
    if item.evidence == "filing":
        form = item.form.upper().strip()
        found = set(item.filing_items)
        if (form.startswith("8-K") and found & _RESULTS_ITEMS) or form.startswith("6-K"):
            return ItemVerdict("company", 0.9)
        if form.startswith("8-K") and found & _OWN_ITEMS:
            return ItemVerdict("company", 0.75)
        if form.startswith("8-K") and found:
            return ItemVerdict("other", 0.6)  # exhibits or a vote: nothing that moves a stock
        return None
    if item.evidence == "earnings":
        # A results date is this company's news; a peer's results date reads across to it.
        if item.related and symbol not in item.related:
            return ItemVerdict("sector", 0.5)
        return ItemVerdict("company", 0.85)
    if item.evidence == "economic":
        return ItemVerdict("macro", 0.85)
    return None


def _states_no_cause(title: str) -> bool:
    """A move with no cause and no group ("Why X Stock Soared"; not "Why X and Other ... ")."""
    return bool(_hit(_MOVE_ONLY, title)) and not (_names_several(title) or _hit(_SECTOR, title))


def classify_item(symbol: str, item: NewsItem, company: str | None = None) -> ItemVerdict:
    """Classify one evidence item for SYMBOL from all it carries (title, summary, lead, filing)."""
    return _classify_cached(symbol.upper(), item, company)


@lru_cache(maxsize=16384)
def _classify_cached(symbol: str, item: NewsItem, company: str | None) -> ItemVerdict:
    """Every tick sees the same items again: each is scored once per symbol (pure function)."""
    strong = _strong_signal(symbol, item)
    if strong is not None:
        return strong
    title = " ".join((item.title or "").split())
    body = " ".join(" ".join(p for p in (item.summary, item.lead) if p).split())
    if not title and not body:
        return ItemVerdict("other", 1.0)
    if not body and _states_no_cause(title):
        return ItemVerdict("unknown", 0.8)
    model = shipped_model()
    if model is None:
        sym = symbol.upper()
        return ItemVerdict(
            rule_kind(sym, title, company, body, item.related, aliases_for(sym, company)), 0.5
        )
    probs = model.probabilities(*_item_feature_groups(symbol, title, body, company, item.related))
    kind = max(probs, key=lambda k: probs[k])
    return ItemVerdict(kind, round(probs[kind], 3))  # type: ignore[arg-type]


def classify_headline(
    symbol: str,
    title: str,
    company: str | None = None,
    summary: str | None = "",
    related: Sequence[str] = (),
) -> ItemKind:
    """What a headline (and its summary or lead) is for SYMBOL; "unknown" when nothing says why."""
    item = NewsItem(
        title=title or "", published=_EPOCH, summary=summary or "", related=tuple(related)
    )
    return classify_item(symbol, item, company).kind
