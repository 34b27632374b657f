"""Core data model shared by every stage and every platform adapter."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

HeadlineKind = Literal["company", "sector", "macro", "other"]
# An item's kind, or "unknown" when nothing in it states a cause ("Why X stock soared today").
ItemKind = Literal["company", "sector", "macro", "other", "unknown"]
# What sort of evidence an item is: a news story, a filing, a results date, a scheduled release.
EvidenceType = Literal["news", "filing", "earnings", "economic"]
Cause = Literal["company", "sector", "macro", "unexplained"]
Session = Literal["regular", "pre", "post"]


class Direction(StrEnum):
    """Which way a move went."""

    UP = "up"
    DOWN = "down"

    @classmethod
    def of(cls, pct: float) -> Direction:
        return cls.UP if pct >= 0 else cls.DOWN


@dataclass(frozen=True, slots=True)
class Quote:
    """One observed price for a symbol, judged against its previous close."""

    symbol: str
    price: float
    previous_close: float | None
    at: datetime
    source: str
    open: float | None = None
    delayed: bool = False
    stale: bool = False
    session: Session = "regular"
    previous_close_at: datetime | None = None
    # The time was made up from a daily bar, not observed (say so wherever it is shown).
    simulated: bool = False
    # The price is a session's closing price ("as of close"), not a quote during trading.
    closing: bool = False

    @property
    def change_pct(self) -> float | None:
        if not self.previous_close:
            return None
        return (self.price / self.previous_close - 1.0) * 100.0


@dataclass(frozen=True, slots=True)
class Bar:
    """One daily OHLCV bar."""

    symbol: str
    day: date
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True, slots=True)
class BenchmarkMove:
    """The reference a move is judged against."""

    symbol: str
    pct: float | None


@dataclass(frozen=True, slots=True)
class Move:
    """A symbol's change since its previous close, with the market around it."""

    symbol: str
    pct: float
    price: float
    previous_close: float
    at: datetime
    source: str
    benchmark: BenchmarkMove
    peers: dict[str, float] = field(default_factory=dict)
    market: BenchmarkMove | None = None
    group: str | None = None
    zscore: float | None = None
    delayed: bool = False
    session: Session = "regular"
    simulated: bool = False
    closing: bool = False
    # How old the quote was when the move was detected, in seconds.
    age_s: float = 0.0

    @property
    def direction(self) -> Direction:
        return Direction.of(self.pct)

    @property
    def excess(self) -> float | None:
        if self.benchmark.pct is None:
            return None
        return self.pct - self.benchmark.pct


@dataclass(frozen=True, slots=True)
class NewsItem:
    """One piece of evidence from any source (a story, a filing, a results date, a release).

    `lead` is the article's opening paragraphs when they were fetched; `form` and
    `filing_items` describe a filing ("8-K", ("2.02", "9.01")); `source` names the evidence
    source that found it.
    """

    title: str
    published: datetime
    publisher: str = ""
    url: str | None = None
    summary: str = ""
    related: tuple[str, ...] = ()
    id: str = ""
    lead: str = ""
    evidence: EvidenceType = "news"
    form: str = ""
    filing_items: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True, slots=True)
class ClassifiedNews:
    """A news item with the kind the classifier gave it for one symbol, and how sure it is."""

    item: NewsItem
    kind: ItemKind
    confidence: float = 1.0


@dataclass(frozen=True, slots=True)
class NewsSearch:
    """What was searched for one symbol: the honest basis of 'no news'."""

    symbol: str
    since: datetime
    until: datetime
    items: tuple[NewsItem, ...]
    source: str
    ok: bool = True
    error: str = ""


@dataclass(frozen=True, slots=True)
class MacroEvent:
    """A dated macro development that can explain moves in a region, theme or group."""

    id: str
    title: str
    start: date
    end: date
    summary: str
    regions: tuple[str, ...] = ()
    themes: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    kind: Literal["catalyst", "backdrop"] = "catalyst"
    # Set when the event was found in the day's evidence (a headline, a scheduled release)
    # rather than written into the macro events file: who reported it and when.
    source: str = ""
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SymbolGroup:
    """Symbols that tend to move together, with the benchmark they are judged against."""

    id: str
    name: str
    symbols: tuple[str, ...]
    benchmark: str
    region: str = "US"
    themes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why one symbol moved, with the evidence behind the verdict."""

    symbol: str
    cause: Cause
    reason: str
    news: tuple[ClassifiedNews, ...]
    search: NewsSearch | None
    context: tuple[MacroEvent, ...]
    company: str | None = None
    searched: str = ""
    # How sure the verdict is (0..1); below the configured levels the alert says "likely" or
    # "unclear" instead of stating the cause.
    confidence: float = 1.0
    # False when company news could not be ruled out (no source, or one failed): the cause
    # is then what the prices say, unverified by the news.
    verified: bool = True


@dataclass(frozen=True, slots=True)
class Destination:
    """Where alerts go: a channel on a platform."""

    platform: str
    channel: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.channel}"


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """A channel's quiet hours: wall-clock START to END in ZONE, crossing midnight when END
    is earlier than START (22:00-07:00); local times, so daylight saving moves them in UTC."""

    start: time
    end: time
    zone: str

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.zone}"

    def contains(self, at: datetime) -> bool:
        """Whether AT falls inside the quiet hours (START included, END excluded)."""
        now = at.astimezone(ZoneInfo(self.zone)).time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end

    def period_end(self, at: datetime) -> datetime:
        """The first END at or after AT, as an aware time (when AT's quiet period is over)."""
        local = at.astimezone(ZoneInfo(self.zone))
        end = self._at_end(local.date())
        return end if end > at else self._at_end(local.date() + timedelta(days=1))

    def _at_end(self, day: date) -> datetime:
        # Built from the wall-clock END on that day, so the UTC offset is that day's (DST).
        return datetime.combine(day, self.end, tzinfo=ZoneInfo(self.zone))


@dataclass(frozen=True, slots=True)
class HeldAlert:
    """One symbol's alert held for a channel during its quiet hours, awaiting the summary."""

    id: int
    destination: Destination
    alert_id: str
    symbol: str
    pct: float
    cause: Cause
    at: datetime
    held_at: datetime
    # The quiet hours it was held in ("22:00-07:00 America/New_York"), and their zone.
    window: str = ""
    zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class QuietSummary:
    """What a channel missed during its quiet hours, sent as one message when they end."""

    items: tuple[HeldAlert, ...]

    @property
    def window(self) -> str:
        return self.items[0].window if self.items else ""


@dataclass(frozen=True, slots=True)
class LoggedAlert:
    """The last alert a channel got for a symbol and direction."""

    pct: float
    at: datetime


AlertKey = tuple[str, str, str, str]  # platform, channel, symbol, direction


@dataclass(frozen=True, slots=True)
class SymbolCheck:
    """What a price source said about symbols: those it does not know, or why it could not check
    (then nothing is refused)."""

    source: str
    unknown: tuple[str, ...] = ()
    unchecked: str | None = None


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """One symbol watched by one channel."""

    platform: str
    channel: str
    symbol: str
    threshold_pct: float | None = None
    added_by: str = ""
    added_at: datetime | None = None

    @property
    def destination(self) -> Destination:
        return Destination(self.platform, self.channel)


@dataclass(frozen=True, slots=True)
class Alert:
    """One message-worthy event: moves of one group in one direction, explained."""

    at: datetime
    direction: Direction
    moves: tuple[Move, ...]
    explanations: dict[str, Explanation]
    cause: Cause
    group: SymbolGroup | None = None
    escalated: tuple[str, ...] = ()
    # Computed once: grouping and dedupe ask for it many times a tick.
    _id: str = field(init=False, repr=False, compare=False, default="")
    # Set on the one message listing what quiet hours held (then MOVES is empty). Last, so
    # that an alert pickled before it existed unpickles its other fields in place.
    summary: QuietSummary | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_id", self._identity())

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(m.symbol for m in self.moves)

    @property
    def held_summary(self) -> QuietSummary | None:
        """The quiet-hours summary this alert carries (None also for an alert unpickled from
        before the field existed)."""
        return getattr(self, "summary", None)

    @property
    def benchmark(self) -> BenchmarkMove:
        return self.moves[0].benchmark if self.moves else BenchmarkMove("", None)

    @property
    def peers(self) -> dict[str, float]:
        """Peers' moves that are not themselves part of this alert."""
        alerted = set(self.symbols)
        merged: dict[str, float] = {}
        for move in self.moves:
            for sym, pct in move.peers.items():
                if sym not in alerted:
                    merged[sym] = pct
        return merged

    @property
    def context(self) -> tuple[MacroEvent, ...]:
        seen: dict[str, MacroEvent] = {}
        for exp in self.explanations.values():
            for event in exp.context:
                seen.setdefault(event.id, event)
        return tuple(seen.values())

    @property
    def news(self) -> tuple[ClassifiedNews, ...]:
        seen: dict[str, ClassifiedNews] = {}
        for exp in self.explanations.values():
            for cn in exp.news:
                seen.setdefault(cn.item.id or cn.item.title, cn)
        return tuple(seen.values())

    @property
    def delayed(self) -> bool:
        return any(m.delayed for m in self.moves)

    @property
    def verified(self) -> bool:
        """True when every explanation rests on news that was searched successfully."""
        return all(e.verified for e in self.explanations.values())

    @property
    def source(self) -> str:
        return ", ".join(sorted({m.source for m in self.moves}))

    @property
    def id(self) -> str:
        """Stable identity: the same moves at the same time give the same id."""
        try:
            return self._id
        except AttributeError:  # unpickled from an outbox row written before _id existed
            return self._identity()

    def _identity(self) -> str:
        key = "|".join(
            [self.at.isoformat(), self.direction.value]
            + [f"{m.symbol}:{m.pct:.4f}" for m in self.moves]
            + [f"esc:{s}" for s in self.escalated]
            + [f"held:{h.id}" for h in (self.held_summary.items if self.held_summary else ())]
        )
        return hashlib.sha1(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Delivery:
    """An alert bound for a set of destinations."""

    alert: Alert
    destinations: tuple[Destination, ...]
