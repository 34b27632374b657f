"""Command logic behind /watch, /why, /mute and /unmute, shared by every platform adapter."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from handlers.detect import detect_moves
from handlers.group import build_alert
from handlers.models import Destination, Quote, WatchEntry
from handlers.pipeline import Engine, NewsProvider
from handlers.render import Message, fmt_pct, render_alert
from handlers.symbols import SymbolError, normalize_symbol, parse_symbols

WATCH_HELP = (
    "Usage: /watch add SYMBOL [SYMBOL ...] [THRESHOLD%] · /watch remove SYMBOL [...] · "
    "/watch list · /watch threshold SYMBOL PCT. Example: /watch add BABA JD TCEHY 5"
)
MUTE_HELP = "Usage: /mute SYMBOL DURATION (e.g. 30m, 4h, 2d, at most 30d) · /unmute SYMBOL"
MAX_MUTE = timedelta(days=30)
MAX_SYMBOLS_PER_COMMAND = 25
MANAGE_REFUSAL = (
    "Only members who can manage this channel can change its watchlist "
    "(Discord: Manage Channels; Slack: a workspace admin or a listed bot admin)."
)


class WatchStore(Protocol):
    """The part of the store commands need."""

    def add_watch(self, entries: Iterable[WatchEntry]) -> list[WatchEntry]: ...

    def remove_watch(self, dest: Destination, symbols: Iterable[str]) -> list[str]: ...

    def set_threshold(self, dest: Destination, symbol: str, pct: float) -> bool: ...

    def watch_entries(self, dest: Destination | None = None) -> list[WatchEntry]: ...

    def mute(self, dest: Destination, symbol: str, until: datetime, by: str) -> None: ...

    def unmute(self, dest: Destination, symbol: str) -> bool: ...

    def mutes(self, dest: Destination, now: datetime) -> dict[str, datetime]: ...


class QuoteProvider(Protocol):
    """Anything that can give current quotes for a set of symbols."""

    def quotes(self, symbols: Sequence[str], now: datetime) -> Mapping[str, Quote]: ...


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked, where, and whether they may change the channel's settings."""

    platform: str
    channel: str
    user: str
    can_manage: bool

    @property
    def destination(self) -> Destination:
        return Destination(self.platform, self.channel)


@dataclass(frozen=True, slots=True)
class Reply:
    """What the adapter should answer: text, optionally a rich message, and who sees it."""

    text: str
    ok: bool = True
    ephemeral: bool = True
    message: Message | None = None


WHY_PEERS = 6


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def parse_threshold(text: str) -> float:
    """'5', '5%', '2.5 %' -> 5.0; raises ValueError with a message for anything else."""
    cleaned = text.strip().rstrip("%").strip()
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"'{text}' is not a percentage: give a number such as 5 or 2.5") from None
    if not 0 < value <= 100:
        raise ValueError(f"threshold {value:g} % is out of range: use more than 0 and at most 100")
    return value


def parse_duration(text: str) -> timedelta:
    """'30m', '4h', '2d', '1w' -> timedelta; raises ValueError with a message otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(m|min|h|hr|d|w)?\s*", text.lower())
    if not match:
        raise ValueError(f"'{text}' is not a duration: use e.g. 30m, 4h, 2d")
    value = float(match.group(1))
    unit = match.group(2) or "m"
    minutes = {"m": 1, "min": 1, "h": 60, "hr": 60, "d": 1440, "w": 10080}[unit] * value
    duration = timedelta(minutes=minutes)
    if duration <= timedelta(0) or duration > MAX_MUTE:
        raise ValueError("a mute lasts more than 0 minutes and at most 30 days")
    return duration


def watch_add(
    store: WatchStore, who: Requester, symbols_text: str, threshold: float | None, now: datetime
) -> Reply:
    """Validate every symbol, then store the valid ones; say what was refused and why."""
    if not who.can_manage:
        return Reply(MANAGE_REFUSAL, ok=False)
    symbols, errors = parse_symbols(symbols_text)
    if len(symbols) > MAX_SYMBOLS_PER_COMMAND:
        return Reply(f"At most {MAX_SYMBOLS_PER_COMMAND} symbols per command.", ok=False)
    if not symbols:
        return Reply("\n".join([*errors, WATCH_HELP]), ok=False)
    entries = [WatchEntry(who.platform, who.channel, s, threshold, who.user, now) for s in symbols]
    store.add_watch(entries)
    at = f" at ±{threshold:g} %" if threshold is not None else " at the channel's threshold"
    lines = [f"Watching {', '.join(symbols)}{at}."]
    if errors:
        lines.append("Not added: " + " ".join(errors))
    return Reply("\n".join(lines), ok=not errors, ephemeral=False)


def watch_remove(store: WatchStore, who: Requester, symbols_text: str) -> Reply:
    if not who.can_manage:
        return Reply(MANAGE_REFUSAL, ok=False)
    symbols, errors = parse_symbols(symbols_text)
    if not symbols:
        return Reply("\n".join([*errors, WATCH_HELP]), ok=False)
    removed = store.remove_watch(who.destination, symbols)
    missing = [s for s in symbols if s not in removed]
    lines = [f"Removed {', '.join(removed)}."] if removed else []
    if missing:
        lines.append(f"Not on this channel's watchlist: {', '.join(missing)}.")
    return Reply("\n".join(lines + errors), ok=bool(removed), ephemeral=not removed)


def watch_threshold(store: WatchStore, who: Requester, symbol: str, pct_text: str) -> Reply:
    if not who.can_manage:
        return Reply(MANAGE_REFUSAL, ok=False)
    try:
        sym = normalize_symbol(symbol)
        pct = parse_threshold(pct_text)
    except (SymbolError, ValueError) as exc:
        return Reply(f"{exc}\n{WATCH_HELP}", ok=False)
    if not store.set_threshold(who.destination, sym, pct):
        return Reply(f"{sym} is not on this channel's watchlist: /watch add {sym} first.", ok=False)
    return Reply(f"{sym} now alerts at ±{pct:g} %.", ephemeral=False)


def watch_list(store: WatchStore, who: Requester, default_pct: float, now: datetime) -> Reply:
    entries = store.watch_entries(who.destination)
    if not entries:
        return Reply("This channel watches nothing yet. " + WATCH_HELP)
    mutes = store.mutes(who.destination, now)
    lines = []
    for e in entries:
        pct = e.threshold_pct if e.threshold_pct is not None else default_pct
        muted = f" (muted until {_utc(mutes[e.symbol])})" if e.symbol in mutes else ""
        lines.append(f"{e.symbol} ±{pct:g} %{muted}")
    return Reply("Watchlist: " + ", ".join(lines))


def run_watch_text(
    store: WatchStore, who: Requester, text: str, default_pct: float, now: datetime
) -> Reply:
    """Dispatch '/watch add BABA JD 5' style text (Slack and the CLI) to the actions above."""
    words = text.split()
    if not words:
        return Reply(WATCH_HELP, ok=False)
    action, rest = words[0].lower(), words[1:]
    if action == "list":
        return watch_list(store, who, default_pct, now)
    if action == "add":
        threshold = None
        if len(rest) >= 2 and re.fullmatch(r"\d+(\.\d+)?%?", rest[-1]):
            try:
                threshold = parse_threshold(rest[-1])
            except ValueError as exc:
                return Reply(f"{exc}\n{WATCH_HELP}", ok=False)
            rest = rest[:-1]
        return watch_add(store, who, " ".join(rest), threshold, now)
    if action in ("remove", "rm", "del"):
        return watch_remove(store, who, " ".join(rest))
    if action == "threshold" and len(rest) == 2:
        return watch_threshold(store, who, rest[0], rest[1])
    return Reply(WATCH_HELP, ok=False)


def mute(
    store: WatchStore, who: Requester, symbol: str, duration_text: str, now: datetime
) -> Reply:
    if not who.can_manage:
        return Reply(MANAGE_REFUSAL, ok=False)
    try:
        sym = normalize_symbol(symbol)
        duration = parse_duration(duration_text)
    except (SymbolError, ValueError) as exc:
        return Reply(f"{exc}\n{MUTE_HELP}", ok=False)
    until = now + duration
    store.mute(who.destination, sym, until, who.user)
    return Reply(f"{sym} muted here until {_utc(until)}.", ephemeral=False)


def unmute(store: WatchStore, who: Requester, symbol: str) -> Reply:
    if not who.can_manage:
        return Reply(MANAGE_REFUSAL, ok=False)
    try:
        sym = normalize_symbol(symbol)
    except SymbolError as exc:
        return Reply(f"{exc}\n{MUTE_HELP}", ok=False)
    if not store.unmute(who.destination, sym):
        return Reply(f"{sym} was not muted here.", ok=False)
    return Reply(f"{sym} unmuted.", ephemeral=False)


def why(
    engine: Engine,
    symbol: str,
    market: QuoteProvider,
    news: NewsProvider | None,
    now: datetime,
    history: Mapping[str, Sequence[float]] | None = None,
) -> Reply:
    """The /why answer: the move, its market, the news looked at, and the macro context."""
    try:
        sym = normalize_symbol(symbol)
    except SymbolError as exc:
        return Reply(str(exc), ok=False)
    groups = engine.groups
    # A few peers are enough to say "its peers moved too", and each one costs a request.
    peers = groups.peers_of(sym)[:WHY_PEERS]
    wanted = sorted({sym, groups.benchmark_of(sym), groups.default_benchmark, *peers})
    quotes = market.quotes(wanted, now)
    moves, skips = detect_moves(
        quotes, [sym], engine.groups, now, engine.params.stale_after, history
    )
    move = moves.get(sym)
    if move is None:
        reason = skips[0].reason if skips else "no quote"
        return Reply(f"No usable price for {sym} right now ({reason}).", ok=False)
    explanations, _ = engine.explain([move], quotes, news)
    if sym not in explanations:
        return Reply(f"{sym} {fmt_pct(move.pct)}: the data looks wrong, so no answer is given.")
    alert = build_alert([move], explanations, engine.groups)
    message = render_alert(alert)
    small = abs(move.pct) < engine.params.default_threshold_pct
    note = " (below the alert threshold)" if small else ""
    text = f"Why {sym}? {sym} {fmt_pct(move.pct)}{note}. {message.cause_line}"
    return Reply(text, ephemeral=False, message=message)
