"""Command logic behind /watch, /why, /mute and /unmute, shared by every platform adapter."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from handlers.detect import detect_moves
from handlers.freshness import age_text, exchange_time, move_age_text
from handlers.group import build_alert
from handlers.models import Alert, Destination, Move, Quote, WatchEntry
from handlers.pipeline import Engine, NewsProvider
from handlers.ports import MarketHours, QuoteProvider, SymbolValidator, WatchStore
from handlers.render import Field, Message, fmt_pct, render_alert
from handlers.stages.split_guard import split_reason
from handlers.symbols import SymbolError, normalize_symbol, parse_symbols

T = TypeVar("T")
WATCH_HELP = (
    "Usage: /watch add SYMBOL [SYMBOL ...] [THRESHOLD%] · /watch remove SYMBOL [...] · "
    "/watch list · /watch threshold [SYMBOL] PCT · /watch mutes. "
    "Example: /watch add BABA JD TCEHY 5"
)
MUTE_HELP = (
    "Usage: /mute SYMBOL DURATION (e.g. 30m, 4h, 4 hours, 2d, 1 week; at most 30 days) · "
    "/mute list · /unmute SYMBOL"
)
# The same usage for platforms whose command UI takes named options (symbol:BABA).
WATCH_HELP_OPTIONS = (
    "Usage: /watch add symbols:BABA JD TCEHY threshold:5 · /watch remove symbols:JD · "
    "/watch list · /watch threshold symbol:BABA pct:4 (no symbol: the channel's) · "
    "/watch mutes"
)
MUTE_HELP_OPTIONS = (
    "Usage: /mute symbol:BABA duration:4h (30m, 4h, 4 hours, 2d, 1 week; at most 30 days) · "
    "/watch mutes · /unmute symbol:BABA"
)
MAX_MUTE = timedelta(days=30)
MAX_SYMBOLS_PER_COMMAND = 25
# Each platform adds who counts as a manager there (see bot.platforms.base.Permission).
MANAGE_REFUSAL = (
    "Only members who can manage this channel can change its watchlist, mutes or quiet hours."
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
    HelpEntry(
        "/quiet [START-END ZONE | off]",
        "quiet hours here: alerts held, then one summary when they end; alone, shows them",
        "/quiet 22:00-07:00 America/New_York",
        "/quiet hours:22:00-07:00 zone:America/New_York",
    ),
    HelpEntry("/help", "this list", "/help", "/help"),
)


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked, where, and whether they may change the channel's settings."""

    platform: str
    channel: str
    user: str
    can_manage: bool
    # Usage lines in the named-option style (symbol:BABA) of the platform's command UI.
    named_options: bool = False

    @property
    def destination(self) -> Destination:
        return Destination(self.platform, self.channel)

    @property
    def watch_help(self) -> str:
        return WATCH_HELP_OPTIONS if self.named_options else WATCH_HELP

    @property
    def mute_help(self) -> str:
        return MUTE_HELP_OPTIONS if self.named_options else MUTE_HELP


@dataclass(frozen=True, slots=True)
class Reply:
    """What the adapter should answer: text, optionally a rich message, and who sees it."""

    text: str
    ok: bool = True
    ephemeral: bool = True
    message: Message | None = None
    # The answer as plain data (for `why --json`); None where a command has none.
    data: Mapping[str, Any] | None = None


WHY_PEERS = 6
# The longest gap between two closes a market keeps (a long weekend); an older close means
# whole sessions are missing from the data, not only the one under way.
LONGEST_CLOSED_GAP = timedelta(days=4)


def _utc(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def help_text(named_options: bool = False, default_pct: float | None = None) -> str:
    """The /help answer: every command with one example (named-option style when asked)."""
    lines = [
        "Commands (changing a watchlist, a mute or quiet hours needs the right to manage the "
        "channel):"
    ]
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
        return Reply("\n".join(["Nothing added.", *errors, who.watch_help]), ok=False)
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
        return Reply("\n".join([*errors, who.watch_help]), ok=False)
    removed = store.remove_watch(who.destination, symbols)
    missing = [s for s in symbols if s not in removed]
    lines = [f"Removed {', '.join(removed)}."] if removed else []
    if missing:
        lines.append(f"Not on this channel's watchlist: {', '.join(missing)}.")
    return Reply("\n".join(lines + errors), ok=bool(removed), ephemeral=not removed)


def _manager_input(who: Requester, help_text: str, parse: Callable[[], T]) -> T | Reply:
    """PARSE's result for a manager of the channel, else the Reply that refuses or explains."""
    if not who.can_manage:
        return Reply(MANAGE_REFUSAL, ok=False)
    try:
        return parse()
    except ValueError as exc:  # SymbolError is one
        return Reply(f"{exc}\n{help_text}", ok=False)


def watch_threshold(store: WatchStore, who: Requester, symbol: str, pct_text: str) -> Reply:
    parsed = _manager_input(
        who, who.watch_help, lambda: (normalize_symbol(symbol), parse_threshold(pct_text))
    )
    if isinstance(parsed, Reply):
        return parsed
    sym, pct = parsed
    if not store.set_threshold(who.destination, sym, pct):
        return Reply(f"{sym} is not on this channel's watchlist: /watch add {sym} first.", ok=False)
    return Reply(f"{sym} now alerts at ±{pct:g} %.", ephemeral=False)


def channel_threshold(store: WatchStore, who: Requester, pct_text: str) -> Reply:
    """The threshold of every symbol here that has none of its own."""
    pct = _manager_input(who, who.watch_help, lambda: parse_threshold(pct_text))
    if isinstance(pct, Reply):
        return pct
    store.set_channel_threshold(who.destination, pct)
    return Reply(
        f"This channel now alerts at ±{pct:g} % (symbols with a threshold of their own keep it).",
        ephemeral=False,
    )


def watch_list(store: WatchStore, who: Requester, default_pct: float, now: datetime) -> Reply:
    """The channel's symbols, each with its threshold (its own or the channel's) and mute."""
    entries = store.watch_entries(who.destination)
    if not entries:
        return Reply("This channel watches nothing yet. " + who.watch_help)
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
        return Reply(who.watch_help, ok=False)
    action, rest = words[0].lower(), words[1:]
    if action in WATCH_CHANGES and not watch_change_well_formed(words):
        return Reply(who.watch_help, ok=False)
    if action == "list":
        return watch_list(store, who, default_pct, now)
    if action == "mutes":
        return mute_list(store, who, now)
    if action == "help":
        return help_reply(who.named_options, default_pct)
    if action == "add":
        symbols, threshold, error = _split_threshold(rest)
        if error:
            return Reply(f"{error}\n{who.watch_help}", ok=False)
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
    return Reply(who.watch_help, ok=False)


def run_mute_text(store: WatchStore, who: Requester, text: str, now: datetime) -> Reply:
    """Dispatch '/mute BABA 4 hours' and '/mute list' style text."""
    words = text.split()
    if len(words) == 1 and words[0].lower() == "list":
        return mute_list(store, who, now)
    if len(words) < 2:
        return Reply(who.mute_help, ok=False)
    return mute(store, who, words[0], " ".join(words[1:]), now)


def mute(
    store: WatchStore, who: Requester, symbol: str, duration_text: str, now: datetime
) -> Reply:
    parsed = _manager_input(
        who, who.mute_help, lambda: (normalize_symbol(symbol), parse_duration(duration_text))
    )
    if isinstance(parsed, Reply):
        return parsed
    sym, duration = parsed
    until = now + duration
    store.mute(who.destination, sym, until, who.user)
    return Reply(f"{sym} muted here until {_utc(until)}.", ephemeral=False)


def unmute(store: WatchStore, who: Requester, symbol: str) -> Reply:
    sym = _manager_input(who, who.mute_help, lambda: normalize_symbol(symbol))
    if isinstance(sym, Reply):
        return sym
    if not store.unmute(who.destination, sym):
        return Reply(f"{sym} was not muted here.", ok=False)
    return Reply(f"{sym} unmuted.", ephemeral=False)


def _refusal(sym: str, text: str) -> Reply:
    return Reply(text, ok=False, data={"symbol": sym, "ok": False, "text": text})


def _for_answer(quote: Quote, now: datetime, hours: MarketHours | None) -> Quote:
    """A quote an answer may use: the stale rule guards alerts only; a closed market's last
    regular price is its session's close."""
    # A lunch break is not a close: the session's last price is not its closing price yet.
    closed = hours is not None and hours.session(quote.symbol, now) not in ("regular", "break")
    closing = quote.closing or (quote.session == "regular" and closed)
    return replace(quote, stale=False, closing=closing)


def _same_moment(quotes: Mapping[str, Quote], sym: str, window: timedelta) -> dict[str, Quote]:
    """The benchmark and peer quotes taken within WINDOW of SYM's: an answer never compares
    a price with one from another moment (yesterday's close with this morning's price)."""
    main = quotes.get(sym)
    if main is None:
        return dict(quotes)
    return {s: q for s, q in quotes.items() if s == sym or abs(q.at - main.at) <= window}


def _local(at: datetime, sym: str, hours: MarketHours | None) -> datetime:
    return at.astimezone(hours.zone(sym)) if hours is not None else at


def as_of_text(
    quote: Quote, now: datetime, hours: MarketHours | None, stale_after: timedelta
) -> str:
    """'as of Fri 2025-03-07 16:00 EST close', 'live', '20 min delayed (as of ...)'."""
    local = exchange_time(_local(quote.at, quote.symbol, hours))
    age = now - quote.at
    if quote.simulated:
        return f"as of {local} (daily bar, time simulated)"
    now_session = hours.session(quote.symbol, now) if hours is not None else None
    if quote.closing:
        trading = now_session in ("regular", "break")
        during = "; no price yet from the session under way" if trading else ""
        if age > LONGEST_CLOSED_GAP:
            during = "; no newer price found"  # sessions are missing, not just today's
        return f"as of {local} close{during}"
    session = f"{quote.session}-market " if quote.session != "regular" else ""
    text = age_text(age, delayed=quote.delayed)
    if now_session == "break":
        return f"{session}as of {local} (market on its midday break; {text})"
    if age > stale_after:
        return f"{session}as of {local} ({text})"
    return f"{session}{text} (as of {local})" if text != "live" else f"{session}live"


@dataclass(frozen=True, slots=True)
class ExtendedPrice:
    """A pre- or post-market price, judged against the regular close it follows."""

    session: str
    price: float
    at: datetime
    reference: float
    reference_at: datetime | None

    @property
    def pct(self) -> float:
        return (self.price / self.reference - 1.0) * 100.0


def _extended(market: QuoteProvider, sym: str, now: datetime) -> ExtendedPrice | None:
    lookup = getattr(market, "extended_quote", None)
    quote = lookup(sym, now) if callable(lookup) else None
    if not isinstance(quote, Quote) or quote.session == "regular" or not quote.previous_close:
        return None
    return ExtendedPrice(
        quote.session, quote.price, quote.at, quote.previous_close, quote.previous_close_at
    )


def _extended_text(ext: ExtendedPrice, sym: str, hours: MarketHours | None) -> str:
    ref = "the regular close" if ext.session == "post" else "the previous regular close"
    ref_at = f" ({exchange_time(_local(ext.reference_at, sym, hours))})" if ext.reference_at else ""
    return (
        f"{ext.session.capitalize()}-market {ext.price:,.2f} at "
        f"{exchange_time(_local(ext.at, sym, hours))}: {fmt_pct(ext.pct)} vs {ref} "
        f"{ext.reference:,.2f}{ref_at}"
    )


def _round(pct: float | None) -> float | None:
    return None if pct is None else round(pct, 2)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def why_data(
    alert: Alert, move: Move, quote: Quote, as_of: str, ext: ExtendedPrice | None, threshold: float
) -> dict[str, Any]:
    """The /why answer as plain data (what `marketbot why --json` prints)."""
    exp = alert.explanations[move.symbol]
    return {
        "symbol": move.symbol,
        "ok": True,
        "pct": round(move.pct, 2),
        "price": move.price,
        "previous_close": move.previous_close,
        "quote_at": _iso(quote.at),
        "previous_close_at": _iso(quote.previous_close_at),
        "as_of": as_of,
        "data_age": move_age_text(move),
        "closing": quote.closing,
        "simulated": quote.simulated,
        "session": quote.session,
        "source": quote.source,
        "delayed": quote.delayed,
        "threshold": threshold,
        "below_threshold": abs(move.pct) < threshold,
        "benchmark": {"symbol": move.benchmark.symbol, "pct": _round(move.benchmark.pct)},
        "market": (
            {"symbol": move.market.symbol, "pct": _round(move.market.pct)} if move.market else None
        ),
        "peers": {s: _round(p) for s, p in move.peers.items()},
        "cause": exp.cause,
        "reason": exp.reason,
        "searched": exp.searched,
        "news": [{"title": n.item.title, "kind": n.kind, "url": n.item.url} for n in exp.news],
        "context": [{"id": e.id, "title": e.title, "kind": e.kind} for e in exp.context],
        "extended": (
            {
                "session": ext.session,
                "price": ext.price,
                "at": ext.at.isoformat(),
                "reference_close": ext.reference,
                "reference_close_at": _iso(ext.reference_at),
                "pct": round(ext.pct, 2),
            }
            if ext
            else None
        ),
    }


def why(
    engine: Engine,
    symbol: str,
    market: QuoteProvider,
    news: NewsProvider | None,
    now: datetime,
    history: Mapping[str, Sequence[float]] | None = None,
    *,
    hours: MarketHours | None = None,
    extended_hours: bool = False,
) -> Reply:
    """The /why answer at any hour: the move of the latest session (live, or as of its close),
    its market, the news looked at, the macro context, and pre/post-market apart."""
    try:
        sym = normalize_symbol(symbol)
    except SymbolError as exc:
        return Reply(str(exc), ok=False)
    groups = engine.groups
    params = engine.params
    # A few peers are enough to say "its peers moved too", and each one costs a request.
    peers = groups.peers_of(sym)[:WHY_PEERS]
    wanted = sorted({sym, groups.benchmark_of(sym), groups.default_benchmark, *peers})
    quotes = {s: _for_answer(q, now, hours) for s, q in market.quotes(wanted, now).items()}
    quotes = _same_moment(quotes, sym, params.stale_after)
    moves, skips = detect_moves(quotes, [sym], groups, now, timedelta.max, history)
    move = moves.get(sym)
    if sym not in quotes:
        return _refusal(
            sym, f"No usable price for {sym}: the price source has none (is the symbol right?)."
        )
    if move is None:
        reason = skips[0].reason if skips else "no quote"
        return _refusal(sym, f"No usable price for {sym} ({reason}).")
    explanations = engine.explain([move], quotes, news)
    if split_reason(move, explanations[sym], params.split_jump_pct) is not None:
        return _refusal(
            sym, f"{sym} {fmt_pct(move.pct)}: the data looks wrong, so no answer is given."
        )
    if engine.adjudicate is not None:
        explanations[sym] = engine.adjudicate(move, explanations[sym])
    quote = quotes[sym]
    as_of = as_of_text(quote, now, hours, params.stale_after)
    ext = _extended(market, sym, now) if extended_hours else None
    alert = build_alert([move], explanations, groups)
    return _answer(alert, move, quote, as_of, ext, hours, params.default_threshold_pct)


def _answer(
    alert: Alert,
    move: Move,
    quote: Quote,
    as_of: str,
    ext: ExtendedPrice | None,
    hours: MarketHours | None,
    threshold: float,
) -> Reply:
    """The answer's sentence, its message (with the data's age in the footer) and its data."""
    sym = move.symbol
    message = render_alert(alert)
    note = " (below the alert threshold)" if abs(move.pct) < threshold else ""
    figures = f"{move.price:,.2f} vs previous close {move.previous_close:,.2f}"
    lines = [
        f"Why {sym}? {sym} {fmt_pct(move.pct)}{note} {as_of} ({figures}). {message.cause_line}"
    ]
    fields = message.fields
    if ext is not None:
        extended = _extended_text(ext, sym, hours)
        lines.append(extended + ".")
        fields = (*fields, Field(f"{ext.session.capitalize()}-market", extended))
    # An answer to /why needs no "Why?" button under it.
    message = replace(message, fields=fields, footer=f"Data: {quote.source} · {as_of}", buttons=())
    text = " ".join(lines)
    data = {**why_data(alert, move, quote, as_of, ext, threshold), "text": text}
    return Reply(text, ephemeral=False, message=message, data=data)


# --- one entry point for every platform ----------------------------------------------------

COMMANDS = ("why", "watch", "mute", "unmute", "quiet", "help")
WATCH_READS = frozenset({"list", "mutes", "help"})
WATCH_CHANGES = frozenset({"add", "remove", "rm", "del", "threshold"})
WHY_USAGE = "Usage: /why SYMBOL (e.g. /why BABA)"


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """A chat command as plain data: who asked where, which command, and the rest of the line.

    `can_manage` is what the platform found for this user in this channel; adapters ask the
    platform only when `needs_manage` says the command changes something.
    """

    platform: str
    channel: str
    user: str
    command: str
    text: str = ""
    can_manage: bool = False
    # The platform shows named options (symbol:BABA) in its command UI: /help shows that style.
    named_options: bool = False

    @property
    def requester(self) -> Requester:
        return Requester(
            self.platform, self.channel, self.user, self.can_manage, self.named_options
        )


class CommandServices(Protocol):
    """What dispatch needs from the running bot (the app context implements it)."""

    @property
    def store(self) -> WatchStore: ...

    @property
    def default_pct(self) -> float: ...

    @property
    def symbols(self) -> SymbolValidator | None: ...

    def answer_why(self, symbol: str) -> Reply: ...


def command_name(raw: str) -> str:
    """'/Watch' -> 'watch'."""
    return raw.strip().lstrip("/").lower()


def watch_change_well_formed(words: Sequence[str]) -> bool:
    """'add BABA', 'remove JD', 'threshold BABA 4', 'threshold 4': a change with its arguments
    (anything else is answered with the usage, without asking the platform for rights)."""
    action = words[0].lower() if words else ""
    if action == "threshold":
        return len(words) == 3 or (len(words) == 2 and bool(NUMBER.fullmatch(words[1])))
    return action in WATCH_CHANGES and len(words) >= 2


def needs_manage(command: str, text: str) -> bool:
    """Whether this command line changes the channel's settings (the platform must check)."""
    words = text.split()
    name = command_name(command)
    if name == "watch":
        return watch_change_well_formed(words)
    if name == "mute":
        return [w.lower() for w in words] != ["list"] and len(words) >= 2
    if name == "quiet":
        return bool(words) and [w.lower() for w in words] != ["show"]
    return name == "unmute" and len(words) == 1


def dispatch(request: CommandRequest, services: CommandServices, now: datetime) -> Reply:
    """Answer one command line from any platform (blocking: run it off the event loop)."""
    name = command_name(request.command)
    words = request.text.split()
    who = request.requester
    store = services.store
    if name == "why":
        if len(words) != 1:
            return Reply(WHY_USAGE, ok=False)
        return services.answer_why(words[0])
    if name == "watch":
        return run_watch_text(store, who, request.text, services.default_pct, now, services.symbols)
    if name == "mute":
        return run_mute_text(store, who, request.text, now)
    if name == "unmute":
        if len(words) != 1:
            return Reply(who.mute_help, ok=False)
        return unmute(store, who, words[0])
    if name == "quiet":
        from handlers.quiet import run_quiet_text  # quiet.py builds on this module

        return run_quiet_text(store, who, request.text, now)
    if name == "help":
        return help_reply(request.named_options, services.default_pct)
    return Reply(f"Unknown command /{name}. {help_text(request.named_options)}", ok=False)
