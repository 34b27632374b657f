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
    "/watch list · /watch threshold [SYMBOL] PCT · /watch mutes. "
    "Example: /watch add BABA JD TCEHY 5"
)
MUTE_HELP = (
    "Usage: /mute SYMBOL DURATION (e.g. 30m, 4h, 4 hours, 2d, 1 week; at most 30 days) · "
    "/mute list · /unmute SYMBOL"
)
MAX_MUTE = timedelta(days=30)
MAX_SYMBOLS_PER_COMMAND = 25
MANAGE_REFUSAL = (
    "Only members who can manage this channel can change its watchlist "
    "(Discord: Manage Channels; Slack: a workspace admin or a listed bot admin)."
)
DURATION_UNITS = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 1),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 60),
    **dict.fromkeys(("d", "day", "days"), 1440),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), 10080),
}
NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)\s*%?")


@dataclass(frozen=True, slots=True)
class HelpEntry:
    """One command in /help: its syntax, what it does, and an example in each input style."""

    usage: str
    what: str
    example: str
    example_options: str


HELP_ENTRIES = (
    HelpEntry(
        "/why SYMBOL",
        "why a symbol is moving: benchmark, peers, news, macro context",
        "/why BABA",
        "/why symbol:BABA",
    ),
    HelpEntry(
        "/watch add SYMBOL ... [PCT]",
        "watch symbols here (at PCT %, else the channel's threshold)",
        "/watch add BABA JD 5",
        "/watch add symbols:BABA JD threshold:5",
    ),
    HelpEntry(
        "/watch remove SYMBOL ...",
        "stop watching symbols here",
        "/watch remove JD",
        "/watch remove symbols:JD",
    ),
    HelpEntry(
        "/watch list",
        "what this channel watches, with thresholds and mutes",
        "/watch list",
        "/watch list",
    ),
    HelpEntry(
        "/watch threshold [SYMBOL] PCT",
        "one symbol's threshold, or the whole channel's without a symbol",
        "/watch threshold BABA 4 · /watch threshold 3",
        "/watch threshold symbol:BABA pct:4 · /watch threshold pct:3",
    ),
    HelpEntry(
        "/watch mutes",
        "what is muted here, and until when",
        "/watch mutes",
        "/watch mutes",
    ),
    HelpEntry(
        "/mute SYMBOL DURATION",
        "pause a symbol's alerts here (30m, 4 hours, 2d, 1 week; at most 30 days)",
        "/mute BABA 4h",
        "/mute symbol:BABA duration:4 hours",
    ),
    HelpEntry(
        "/unmute SYMBOL", "resume a symbol's alerts here", "/unmute BABA", "/unmute symbol:BABA"
    ),
    HelpEntry("/help", "this list", "/help", "/help"),
)


@dataclass(frozen=True, slots=True)
class SymbolCheck:
    """What a price source said about symbols: those it does not know, or why it could not check
    (then nothing is refused)."""

    source: str
    unknown: tuple[str, ...] = ()
    unchecked: str | None = None


class SymbolValidator(Protocol):
    """A price source that can say whether symbols exist (blocking: may ask over the network)."""

    def check_symbols(self, symbols: Sequence[str]) -> SymbolCheck: ...


class WatchStore(Protocol):
    """The part of the store commands need."""

    def add_watch(self, entries: Iterable[WatchEntry]) -> list[WatchEntry]: ...

    def remove_watch(self, dest: Destination, symbols: Iterable[str]) -> list[str]: ...

    def set_threshold(self, dest: Destination, symbol: str, pct: float) -> bool: ...

    def set_channel_threshold(self, dest: Destination, pct: float | None) -> None: ...

    def channel_thresholds(self) -> dict[Destination, float]: ...

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


def help_text(named_options: bool = False, default_pct: float | None = None) -> str:
    """The /help answer: every command with one example (named-option style when asked)."""
    lines = ["Commands (changing a watchlist or a mute needs the right to manage the channel):"]
    for e in HELP_ENTRIES:
        example = e.example_options if named_options else e.example
        lines.append(f"• {e.usage}: {e.what}. Example: {example}")
    if default_pct is not None:
        lines.append(f"Default threshold: ±{default_pct:g} % from the previous close.")
    return "\n".join(lines)


def help_reply(named_options: bool = False, default_pct: float | None = None) -> Reply:
    return Reply(help_text(named_options, default_pct))


def parse_threshold(text: str) -> float:
    """'5', '5%', '2.5 %' -> 5.0; raises ValueError with a message for anything else."""
    cleaned = text.strip().rstrip("%").strip()
    try:
        value = float(cleaned)
    except ValueError:
        raise ValueError(f"'{text}' is not a percentage: give a number such as 5 or 2.5") from None
    if not 0 < value <= 100:
        raise ValueError(
            f"threshold {value:g} % is out of range: give the size of the move, more than 0 and "
            "at most 100 (a move either way alerts)"
        )
    return value


def parse_duration(text: str) -> timedelta:
    """'30m', '4h', '4 hours', '2d', '1 week' -> timedelta; ValueError with a message otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", text.lower())
    if not match or match.group(2) not in ("", *DURATION_UNITS):
        raise ValueError(f"'{text}' is not a duration: use e.g. 30m, 4h, 4 hours, 2d or 1 week")
    number, unit = match.group(1), match.group(2)
    if not unit:
        raise ValueError(
            f"'{text}' needs a unit: {number}m (minutes), {number}h (hours) or {number}d (days)"
        )
    # Compared as a number first: a huge count must not overflow timedelta.
    minutes = float(number) * DURATION_UNITS[unit]
    if not 0 < minutes <= MAX_MUTE.total_seconds() / 60:
        raise ValueError("a mute lasts more than 0 minutes and at most 30 days")
    return timedelta(minutes=minutes)


def _channel_pct(store: WatchStore, dest: Destination, default_pct: float) -> float:
    return store.channel_thresholds().get(dest, default_pct)


def watch_add(
    store: WatchStore,
    who: Requester,
    symbols_text: str,
    threshold: float | None,
    now: datetime,
    *,
    validator: SymbolValidator | None = None,
    default_pct: float | None = None,
) -> Reply:
    """Check every symbol (with VALIDATOR, whether it exists), store the good ones, and say
    which were refused and why."""
    if not who.can_manage:
        return Reply(MANAGE_REFUSAL, ok=False)
    symbols, errors = parse_symbols(symbols_text)
    if len(symbols) > MAX_SYMBOLS_PER_COMMAND:
        return Reply(f"At most {MAX_SYMBOLS_PER_COMMAND} symbols per command.", ok=False)
    check = validator.check_symbols(symbols) if validator is not None and symbols else None
    if check is not None and check.unknown:
        errors.append(
            f"{check.source} knows no symbol {', '.join(check.unknown)}: check the spelling "
            "(tickers as Yahoo writes them, e.g. BABA, 0700.HK, BRK-B)."
        )
        symbols = [s for s in symbols if s not in check.unknown]
    if not symbols:
        return Reply("\n".join(["Nothing added.", *errors, WATCH_HELP]), ok=False)
    entries = [WatchEntry(who.platform, who.channel, s, threshold, who.user, now) for s in symbols]
    store.add_watch(entries)
    if threshold is not None:
        at = f" at ±{threshold:g} %"
    elif default_pct is not None:
        pct = _channel_pct(store, who.destination, default_pct)
        at = f" at this channel's threshold (±{pct:g} %)"
    else:
        at = " at the channel's threshold"
    lines = [f"Watching {', '.join(symbols)}{at}."]
    if errors:
        lines.append("Not added: " + " ".join(errors))
    if check is not None and check.unchecked:
        lines.append(
            f"Could not check the symbols against {check.source} ({check.unchecked}): "
            "added as typed."
        )
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


def channel_threshold(store: WatchStore, who: Requester, pct_text: str) -> Reply:
    """The threshold of every symbol here that has none of its own."""
    if not who.can_manage:
        return Reply(MANAGE_REFUSAL, ok=False)
    try:
        pct = parse_threshold(pct_text)
    except ValueError as exc:
        return Reply(f"{exc}\n{WATCH_HELP}", ok=False)
    store.set_channel_threshold(who.destination, pct)
    return Reply(
        f"This channel now alerts at ±{pct:g} % (symbols with a threshold of their own keep it).",
        ephemeral=False,
    )


def watch_list(store: WatchStore, who: Requester, default_pct: float, now: datetime) -> Reply:
    """The channel's symbols, each with its threshold (its own or the channel's) and mute."""
    entries = store.watch_entries(who.destination)
    if not entries:
        return Reply("This channel watches nothing yet. " + WATCH_HELP)
    channel = store.channel_thresholds().get(who.destination)
    channel_pct = channel if channel is not None else default_pct
    mutes = store.mutes(who.destination, now)
    lines = []
    for e in entries:
        pct = e.threshold_pct if e.threshold_pct is not None else channel_pct
        muted = f" (muted until {_utc(mutes[e.symbol])})" if e.symbol in mutes else ""
        lines.append(f"{e.symbol} ±{pct:g} %{muted}")
    head = "Watchlist" if channel is None else f"Watchlist (channel threshold ±{channel:g} %)"
    return Reply(f"{head}: " + ", ".join(lines))


def mute_list(store: WatchStore, who: Requester, now: datetime) -> Reply:
    """What is muted in this channel, and until when."""
    mutes = store.mutes(who.destination, now)
    if not mutes:
        return Reply("Nothing is muted here.")
    items = ", ".join(f"{sym} until {_utc(until)}" for sym, until in sorted(mutes.items()))
    return Reply(f"Muted here: {items}.")


def _split_threshold(words: list[str]) -> tuple[list[str], float | None, str | None]:
    """The symbols and trailing threshold of '/watch add' words, or an error line."""
    if len(words) >= 2 and words[-1] == "%":
        words = [*words[:-2], words[-2] + "%"]
    if len(words) < 2:
        return words, None, None
    last = words[-1]
    if NUMBER.fullmatch(last):
        try:
            return words[:-1], parse_threshold(last), None
        except ValueError as exc:
            return words, None, f"Nothing added: {exc}"
    typed_upper = any(c.isupper() for w in words[:-1] for c in w)
    if last.isalpha() and last.islower() and typed_upper:
        # 'BABA abc': a mistyped threshold is likelier than a ticker typed in another case.
        return (
            words,
            None,
            f"Nothing added: '{last}' is not a threshold (give a number such as 5). "
            f"If you meant the ticker, write it as {last.upper()}.",
        )
    return words, None, None


def run_watch_text(
    store: WatchStore,
    who: Requester,
    text: str,
    default_pct: float,
    now: datetime,
    validator: SymbolValidator | None = None,
) -> Reply:
    """Dispatch '/watch add BABA JD 5' style text (Slack and the CLI) to the actions above."""
    words = text.split()
    if not words:
        return Reply(WATCH_HELP, ok=False)
    action, rest = words[0].lower(), words[1:]
    if action == "list":
        return watch_list(store, who, default_pct, now)
    if action == "mutes":
        return mute_list(store, who, now)
    if action == "help":
        return help_reply(default_pct=default_pct)
    if action == "add":
        symbols, threshold, error = _split_threshold(rest)
        if error:
            return Reply(f"{error}\n{WATCH_HELP}", ok=False)
        text = " ".join(symbols)
        return watch_add(
            store, who, text, threshold, now, validator=validator, default_pct=default_pct
        )
    if action in ("remove", "rm", "del"):
        return watch_remove(store, who, " ".join(rest))
    if action == "threshold" and len(rest) == 2:
        return watch_threshold(store, who, rest[0], rest[1])
    if action == "threshold" and len(rest) == 1:
        return channel_threshold(store, who, rest[0])
    return Reply(WATCH_HELP, ok=False)


def run_mute_text(store: WatchStore, who: Requester, text: str, now: datetime) -> Reply:
    """Dispatch '/mute BABA 4 hours' and '/mute list' style text."""
    words = text.split()
    if len(words) == 1 and words[0].lower() == "list":
        return mute_list(store, who, now)
    if len(words) < 2:
        return Reply(MUTE_HELP, ok=False)
    return mute(store, who, words[0], " ".join(words[1:]), now)


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
