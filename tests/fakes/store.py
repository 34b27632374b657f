"""In-memory fakes of the core's store ports (AlertLog, HeldAlerts, WatchStore) for core tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from handlers.models import (
    AlertKey,
    Delivery,
    Destination,
    HeldAlert,
    LoggedAlert,
    QuietWindow,
    WatchEntry,
)


@dataclass
class MemoryStore:
    """Every store port the core uses, held in dicts; behaves like bot.infra.store.Store."""

    log: dict[AlertKey, LoggedAlert] = field(default_factory=dict)
    mute_until: dict[tuple[str, str, str], datetime] = field(default_factory=dict)
    watches: dict[tuple[Destination, str], WatchEntry] = field(default_factory=dict)
    channel_pct: dict[Destination, float] = field(default_factory=dict)
    windows: dict[Destination, QuietWindow] = field(default_factory=dict)
    held: dict[int, HeldAlert] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # --- AlertLog ---------------------------------------------------------------------
    def recent_alerts(self, since: datetime) -> Mapping[AlertKey, LoggedAlert]:
        return {k: v for k, v in self.log.items() if v.at >= since}

    def muted(self, now: datetime) -> set[tuple[str, str, str]]:
        return {k for k, until in self.mute_until.items() if until > now}

    def record(self, deliveries: Iterable[Delivery]) -> None:
        for delivery in deliveries:
            alert = delivery.alert
            for dest in delivery.destinations:
                for move in alert.moves:
                    key = (dest.platform, dest.channel, move.symbol, alert.direction.value)
                    self.log[key] = LoggedAlert(move.pct, alert.at)

    # --- HeldAlerts -------------------------------------------------------------------
    def quiet_hours(self, dest: Destination | None = None) -> dict[Destination, QuietWindow]:
        if dest is None:
            return dict(self.windows)
        return {dest: self.windows[dest]} if dest in self.windows else {}

    def hold(self, deliveries: Sequence[Delivery], items: Sequence[HeldAlert]) -> int:
        self.record(deliveries)
        for item in items:
            held = replace(item, id=next(self._ids))
            self.held[held.id] = held
        return len(items)

    def held_alerts(self, dest: Destination | None = None) -> dict[Destination, list[HeldAlert]]:
        out: dict[Destination, list[HeldAlert]] = {}
        for held in sorted(self.held.values(), key=lambda h: h.id):
            if dest is None or held.destination == dest:
                out.setdefault(held.destination, []).append(held)
        return out

    def take_held(self, ids: Sequence[int]) -> list[HeldAlert]:
        taken = [self.held.pop(i) for i in sorted(set(ids)) if i in self.held]
        return taken

    # --- WatchStore -------------------------------------------------------------------
    def add_watch(self, entries: Iterable[WatchEntry]) -> list[WatchEntry]:
        added = list(entries)
        for entry in added:
            self.watches[(entry.destination, entry.symbol)] = entry
        return added

    def remove_watch(self, dest: Destination, symbols: Iterable[str]) -> list[str]:
        return [s for s in symbols if self.watches.pop((dest, s), None) is not None]

    def set_threshold(self, dest: Destination, symbol: str, pct: float) -> bool:
        entry = self.watches.get((dest, symbol))
        if entry is None:
            return False
        self.watches[(dest, symbol)] = replace(entry, threshold_pct=pct)
        return True

    def set_channel_threshold(self, dest: Destination, pct: float | None) -> None:
        if pct is None:
            self.channel_pct.pop(dest, None)
        else:
            self.channel_pct[dest] = pct

    def channel_thresholds(self) -> dict[Destination, float]:
        return dict(self.channel_pct)

    def watch_entries(self, dest: Destination | None = None) -> list[WatchEntry]:
        return [e for (d, _), e in self.watches.items() if dest is None or d == dest]

    def mute(self, dest: Destination, symbol: str, until: datetime, by: str) -> None:
        self.mute_until[(dest.platform, dest.channel, symbol)] = until

    def unmute(self, dest: Destination, symbol: str) -> bool:
        return self.mute_until.pop((dest.platform, dest.channel, symbol), None) is not None

    def mutes(self, dest: Destination, now: datetime) -> dict[str, datetime]:
        return {
            s: until
            for (p, c, s), until in self.mute_until.items()
            if (p, c) == (dest.platform, dest.channel) and until > now
        }

    def set_quiet_hours(self, dest: Destination, window: QuietWindow, by: str) -> None:
        self.windows[dest] = window

    def clear_quiet_hours(self, dest: Destination) -> bool:
        return self.windows.pop(dest, None) is not None
