"""The core's ports: every protocol the core asks of the edges (store, quotes, news, hours)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from handlers.models import (
    AlertKey,
    Delivery,
    Destination,
    HeldAlert,
    LoggedAlert,
    NewsSearch,
    QuietWindow,
    Quote,
    SymbolCheck,
    WatchEntry,
)

if TYPE_CHECKING:  # evidence.py defines the data these carry, and uses NewsSearcher itself
    from handlers.evidence import Evidence, EvidenceQuery, SourceScope

PricePoint = tuple[datetime, float]


class QuoteProvider(Protocol):
    """The one quote interface: current quotes for a set of symbols (blocking: use a thread)."""

    def quotes(self, symbols: Sequence[str], now: datetime) -> Mapping[str, Quote]: ...


class SymbolValidator(Protocol):
    """A price source that can say whether symbols exist (blocking: may ask over the network)."""

    def check_symbols(self, symbols: Sequence[str]) -> SymbolCheck: ...


class MarketHours(Protocol):
    """Exchange hours, known at the edge: the session a symbol is in, and its time zone."""

    def session(self, symbol: str, at: datetime) -> str: ...

    def zone(self, symbol: str) -> tzinfo: ...


class SessionPaths(Protocol):
    """Prices of a symbol's session up to a time, starting with the previous close."""

    def session_path(self, symbol: str, until: datetime) -> list[PricePoint]: ...


class NewsSearcher(Protocol):
    """Anything that can say which items exist for a symbol in a time window."""

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch: ...


class EvidenceSource(NewsSearcher, Protocol):
    """One named evidence source (Yahoo news, SEC filings, earnings calendar, ...)."""

    @property
    def name(self) -> str: ...

    @property
    def scope(self) -> SourceScope: ...


@runtime_checkable
class EvidenceGatherer(Protocol):
    """Asks every configured source about several symbols at once, under one deadline."""

    def gather(self, queries: Sequence[EvidenceQuery]) -> Mapping[str, Evidence]: ...


class AlertLog(Protocol):
    """The persisted memory of what was sent; lives in the store, survives restarts."""

    def recent_alerts(self, since: datetime) -> Mapping[AlertKey, LoggedAlert]: ...

    def muted(self, now: datetime) -> set[tuple[str, str, str]]: ...

    def record(self, deliveries: Iterable[Delivery]) -> None: ...


class HeldAlerts(Protocol):
    """Quiet hours per channel and the alerts held in them, persisted (a restart loses none)."""

    def quiet_hours(self, dest: Destination | None = None) -> dict[Destination, QuietWindow]: ...

    def hold(self, deliveries: Sequence[Delivery], items: Sequence[HeldAlert]) -> int:
        """Keep ITEMS (the store gives them ids) for the summary and note DELIVERIES in the
        alert log as told (so the next tick does not hold them again); one transaction.
        Returns how many items were kept."""
        ...

    def held_alerts(
        self, dest: Destination | None = None
    ) -> dict[Destination, list[HeldAlert]]: ...

    def take_held(self, ids: Sequence[int]) -> list[HeldAlert]:
        """Remove the held alerts with IDS and return those this call removed (a concurrent
        caller gets the others), so each is summarised once."""
        ...


class WatchStore(Protocol):
    """The part of the store commands need: watchlists, thresholds, mutes, quiet hours."""

    def add_watch(self, entries: Iterable[WatchEntry]) -> list[WatchEntry]: ...

    def remove_watch(self, dest: Destination, symbols: Iterable[str]) -> list[str]: ...

    def set_threshold(self, dest: Destination, symbol: str, pct: float) -> bool: ...

    def set_channel_threshold(self, dest: Destination, pct: float | None) -> None: ...

    def channel_thresholds(self) -> dict[Destination, float]: ...

    def watch_entries(self, dest: Destination | None = None) -> list[WatchEntry]: ...

    def mute(self, dest: Destination, symbol: str, until: datetime, by: str) -> None: ...

    def unmute(self, dest: Destination, symbol: str) -> bool: ...

    def mutes(self, dest: Destination, now: datetime) -> dict[str, datetime]: ...

    def set_quiet_hours(self, dest: Destination, window: QuietWindow, by: str) -> None: ...

    def clear_quiet_hours(self, dest: Destination) -> bool: ...

    def quiet_hours(self, dest: Destination | None = None) -> dict[Destination, QuietWindow]: ...
