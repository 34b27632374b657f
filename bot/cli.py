"""The `marketbot` command line: replay, why, chart, watch, run, status, config, discord."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Console

from bot.app import build_engine, live_sources, recorded_sources
from bot.charts import ChartMaker, message_chart_context
from bot.delivery.outbox import ChartDrawer, last_delivery_error, outbox_counts, stored_alert
from bot.infra.calendars import ExchangeHours, exchange_zone
from bot.infra.logs import setup_logging
from bot.infra.store import Store, StoreError
from bot.platforms import registry
from bot.platforms.console.adapter import ConsoleNotifier, message_renderable
from bot.replay_run import REPLAY_DESTINATION, replay_entries, run_replay
from bot.sources.news_file import NewsFileError
from bot.sources.recorded import RecordedEvidenceError
from bot.sources.replay import BarsError, Replay, load_replay
from config.loader import ConfigFileError
from config.settings import Settings, SettingsError, load_settings
from handlers import commands
from handlers.evidence import evidence_json
from handlers.pipeline import Engine, NewsProvider
from handlers.ports import SymbolValidator
from handlers.symbols import SymbolError, parse_symbols

log = logging.getLogger("marketbot")

EXIT_USAGE = 2
SOURCES = ["replay", "yfinance"]
SOURCE_HELP = "replay: answer from --bars CSV files; yfinance: live Yahoo prices and news"
AT_HELP = (
    "time on the replay clock, ISO 8601; without a zone, the exchange's local time "
    "(default: the end of the last replayed day)"
)
WATCH_ACTIONS = ["add", "remove", "list", "threshold", "mutes"]
# Commands that run for long and log what they do at INFO; the rest only warn.
LOG_LEVELS = {"run": logging.INFO}


class CliError(Exception):
    """A problem the user can fix; printed as one message, no traceback."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def _time(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a time (e.g. 2025-03-05T14:00-05:00)"
        ) from None
    return parsed  # a time without a zone is read in the symbol's exchange zone later


def _zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a time zone (e.g. America/New_York)"
        ) from None


def in_exchange_zone(at: datetime, symbol: str) -> datetime:
    """AT as given, or, when it has no zone, read in SYMBOL's exchange time zone."""
    return at if at.tzinfo else at.replace(tzinfo=exchange_zone(symbol))


def _pct(text: str) -> float:
    try:
        return commands.parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written, and each option's default shown where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: {default})"


TOP_EXAMPLES = """\
examples:
  marketbot replay --bars bot/data/demo/bars --news bot/data/demo/news.jsonl
  marketbot why BABA --bars bot/data/demo/bars --at 2025-03-05T16:00-05:00
  marketbot watch add BABA JD 5 --platform discord --channel 123456789012345678
  marketbot run --platform slack
  marketbot config --list

`marketbot COMMAND --help` shows each command's options and examples."""


if TYPE_CHECKING:  # argparse's class is generic only for type checkers
    SubParsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _sub(sub: SubParsers, name: str, text: str, examples: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=text,
        description=text,
        epilog="examples:\n" + examples,
        formatter_class=HelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketbot",
        description="A market-alert bot for Discord, Slack and Telegram.",
        epilog=TOP_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--db", help="store URL (default: the db_url setting)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-json", action="store_true", help="logs as JSON lines on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _replay_parser(sub)
    _chart_parser(sub)
    _why_parser(sub)
    _record_parser(sub)
    _evidence_parser(sub)
    _status_parser(sub)
    _run_parser(sub)
    _discord_parser(sub)
    _watch_parser(sub)
    _config_parser(sub)
    return parser


def _replay_parser(sub: SubParsers) -> None:
    rp = _sub(
        sub,
        "replay",
        "run the alert pipeline over daily closes or intraday bars, offline",
        "  marketbot replay --bars bot/data/demo/bars --news bot/data/demo/news.jsonl\n"
        "  marketbot replay --bars bot/data/demo/bars --watch BABA,JD --from 2025-03-05 --json",
    )
    _add_data_args(rp)
    rp.add_argument("--watch", help="comma-separated symbols (default: every symbol in the bars)")
    rp.add_argument(
        "--threshold", type=_pct, help="alert threshold in percent (default: the setting, 5)"
    )
    rp.add_argument("--from", dest="start", type=_date, help="first day, YYYY-MM-DD")
    rp.add_argument("--to", dest="end", type=_date, help="last day, YYYY-MM-DD")
    rp.add_argument("--json", action="store_true", help="one JSON object per alert")
    rp.add_argument("--charts", type=Path, metavar="DIR", help="write each alert's chart here")
    _add_bars_zone(rp)


def _chart_parser(sub: SubParsers) -> None:
    cp = _sub(
        sub,
        "chart",
        "draw a symbol's move against its benchmark and peers, as a PNG",
        "  marketbot chart BABA --bars bot/data/demo/bars --at 2025-03-05T16:00-05:00 -o baba.png\n"
        "  marketbot chart BABA --source yfinance",
    )
    _add_symbol_at_args(cp)
    cp.add_argument("--threshold", type=_pct, help="threshold line in percent (default: setting)")
    cp.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="PNG file to write; missing folders are created (default: SYMBOL-TIME.png here)",
    )


def _why_parser(sub: SubParsers) -> None:
    wp = _sub(
        sub,
        "why",
        "explain a symbol's move, as /why does",
        "  marketbot why BABA --bars bot/data/demo/bars --news bot/data/demo/news.jsonl "
        "--at 2025-03-05T16:00-05:00\n"
        "  marketbot why BABA --source yfinance",
    )
    _add_symbol_at_args(wp)
    wp.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    _add_bars_zone(wp)


def _record_parser(sub: SubParsers) -> None:
    rec = _sub(
        sub,
        "record",
        "record live quotes as 1-minute bars, to replay the day later",
        "  marketbot record --symbols BABA,JD,KWEB --out recorded/ --minutes 390\n"
        "  marketbot replay --bars recorded/ bot/data/demo/bars",
    )
    rec.add_argument("--symbols", required=True, help="comma-separated symbols")
    rec.add_argument("--out", type=Path, required=True, help="folder for the CSV files")
    rec.add_argument(
        "--source", choices=["stream", "poll"], default="stream", help="Yahoo stream or polls"
    )
    rec.add_argument("--minutes", type=float, help="stop after this long (default: Ctrl-C)")
    rec.add_argument("--every", type=float, default=60.0, help="poll: seconds between polls")


def _evidence_parser(sub: SubParsers) -> None:
    ep = _sub(
        sub,
        "evidence",
        "what each evidence source found for a symbol, and what failed",
        "  marketbot evidence BABA --json\n"
        "  marketbot evidence BABA --at 2025-03-05T16:00 --news bot/data/demo/news.jsonl",
    )
    _add_symbol_arg(ep)
    ep.add_argument(
        "--at", type=_time, help="end of the window; without a zone, exchange time (default: now)"
    )
    ep.add_argument("--json", action="store_true", help="one JSON object")
    ep.add_argument("--news", type=Path, help="news JSONL file instead of the live sources")
    ep.add_argument(
        "--evidence", nargs="+", type=Path, default=[], help="recorded evidence JSONL files"
    )
    ep.add_argument("--macro-events", type=Path, help=argparse.SUPPRESS)
    ep.add_argument("--groups", type=Path, help="symbol groups YAML (default: setting groups_file)")


def _status_parser(sub: SubParsers) -> None:
    sp = _sub(
        sub,
        "status",
        "what each instance last reported (running or stopped), its next poll, and deliveries; "
        "exits 1 when none is running",
        "  marketbot status\n"
        "  marketbot --db postgresql+psycopg://bot@db/marketbot status\n"
        '  marketbot status --host "$(hostname)"   # a health check for this host only',
    )
    sp.add_argument("--host", help="only instances on this host (default: every instance)")


def _run_parser(sub: SubParsers) -> None:
    run = _sub(
        sub,
        "run",
        "run the bot on Discord, Slack and/or Telegram until stopped (SIGTERM or Ctrl-C)",
        "  DISCORD_TOKEN=... marketbot run --platform discord\n"
        "  marketbot run --platform discord,slack\n"
        "  marketbot run --platform slack --source replay --bars bot/data/demo/bars --speed 3600",
    )
    run.add_argument(
        "--platform",
        default="discord",
        help=f"one of {', '.join(registry.names())}, or several comma-separated",
    )
    run.add_argument(
        "--source",
        choices=["yfinance", "replay"],
        default="yfinance",
        help="yfinance: live Yahoo prices; replay: CSV bars on a simulated clock",
    )
    run.add_argument("--bars", nargs="+", type=Path, default=[], help="replay: CSV files/folders")
    run.add_argument("--news", type=Path, help="replay: news JSONL file")
    run.add_argument(
        "--evidence", nargs="+", type=Path, default=[], help="replay: recorded evidence files"
    )
    run.add_argument(
        "--speed", type=float, default=3600.0, help="replay: simulated seconds per real second"
    )
    run.add_argument("--from", dest="start", type=_date, help="replay: first day, YYYY-MM-DD")
    run.add_argument("--to", dest="end", type=_date, help="replay: last day, YYYY-MM-DD")
    run.add_argument(
        "--slack-mode",
        choices=["http", "socket"],
        default="http",
        help="http: Slack calls the bot's URL; socket: Socket Mode, outbound only",
    )


def _discord_parser(sub: SubParsers) -> None:
    dp = _sub(
        sub,
        "discord",
        "Discord administration",
        "  marketbot discord sync --guild 123456789012345678\n  marketbot discord sync",
    )
    dsub = dp.add_subparsers(dest="discord_command", required=True, metavar="ACTION")
    sync = dsub.add_parser(
        "sync",
        help="publish the slash commands (global or to one server)",
        formatter_class=HelpFormatter,
    )
    sync.add_argument("--guild", type=int, help="server id: instant sync to that server only")


def _watch_parser(sub: SubParsers) -> None:
    watch = _sub(
        sub,
        "watch",
        "edit a channel's watchlist in the store (the one the running bot uses)",
        "  marketbot watch add BABA JD 5 --platform discord --channel 123456789012345678\n"
        "  marketbot watch list --platform slack --channel C0123456789\n"
        "  marketbot watch threshold BABA 4 --platform discord --channel 1234\n"
        "  marketbot watch threshold 3 --platform discord --channel 1234   # the whole channel\n"
        "  marketbot watch mutes --platform discord --channel 1234",
    )
    watch.add_argument("action", choices=WATCH_ACTIONS, help="what to do")
    watch.add_argument(
        "args",
        nargs="*",
        help="add/remove: symbols, then an optional threshold; threshold: [SYMBOL] PCT",
    )
    watch.add_argument(
        "--platform", choices=registry.names(), help="the channel's platform (required)"
    )
    watch.add_argument(
        "--channel", help="the channel id (Discord: Copy Channel ID; Slack: C0123...) (required)"
    )
    watch.add_argument(
        "--bars",
        nargs="+",
        type=Path,
        help="check added symbols against these CSV bars instead of Yahoo",
    )
    watch.add_argument("--no-check", action="store_true", help="add symbols without checking")


def _config_parser(sub: SubParsers) -> None:
    cfg = _sub(
        sub,
        "config",
        "the settings: every name, its environment variable and default; or check them",
        "  marketbot config --list\n  marketbot config --markdown\n  marketbot config --check",
    )
    what = cfg.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="every setting (the default action)")
    what.add_argument("--markdown", action="store_true", help="the table as in the README")
    what.add_argument("--check", action="store_true", help="load the settings and say if fine")


def _add_data_args(p: argparse.ArgumentParser, bars_required: bool = True) -> None:
    need = "" if bars_required else " (needed with --source replay)"
    p.add_argument(
        "--bars", nargs="+", type=Path, required=bars_required, help="CSV files/folders" + need
    )
    p.add_argument("--news", type=Path, help="news JSONL file (default: no news)")
    p.add_argument(
        "--macro-events",
        type=Path,
        help="macro events YAML replacing the shipped one (default: setting macro_events_file)",
    )
    p.add_argument("--groups", type=Path, help="symbol groups YAML (default: setting groups_file)")
    p.add_argument(
        "--evidence", nargs="+", type=Path, default=[], help="recorded evidence JSONL files"
    )


def _add_symbol_arg(p: argparse.ArgumentParser) -> None:
    """The one symbol a command is about."""
    p.add_argument("symbol", help="ticker as Yahoo writes it, e.g. BABA, 0700.HK, BRK-B")


def _add_symbol_at_args(p: argparse.ArgumentParser) -> None:
    """A symbol, where its prices come from, and the time to look at it."""
    _add_symbol_arg(p)
    p.add_argument("--source", choices=SOURCES, default="replay", help=SOURCE_HELP)
    _add_data_args(p, bars_required=False)
    p.add_argument("--at", type=_time, help=AT_HELP)


def _add_bars_zone(p: argparse.ArgumentParser) -> None:
    """The zone for intraday bar times written without a UTC offset."""
    p.add_argument(
        "--bars-zone", type=_zone, help="zone of intraday bar times that carry no UTC offset"
    )


def engine_from_args(settings: Settings, args: argparse.Namespace) -> Engine:
    return build_engine(
        settings, getattr(args, "groups", None), getattr(args, "macro_events", None)
    )


def _news(args: argparse.Namespace, settings: Settings | None = None) -> NewsProvider | None:
    """The replay's evidence: its news file and recorded evidence files, or None."""
    return recorded_sources(
        settings or load_settings(), getattr(args, "news", None), getattr(args, "evidence", [])
    )


def cmd_replay(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    engine = engine_from_args(settings, args)
    replay, report = load_replay(args.bars, args.bars_zone)
    if args.watch:
        symbols, errors = parse_symbols(args.watch)
        if errors:
            raise CliError("--watch: " + " ".join(errors))
        unknown = [s for s in symbols if s not in replay.symbols]
        if unknown:
            log.warning("no bars for %s: they cannot alert", ", ".join(unknown))
    else:
        symbols = replay.symbols
    store = Store(args.db or "sqlite://")
    threshold = args.threshold or settings.default_threshold_pct
    err = Console(stderr=True)
    notifier = ConsoleNotifier(
        sys.stdout,
        as_json=args.json,
        threshold=threshold,
        alerts=partial(stored_alert, store),
        charts_dir=_charts_dir(args),
        notes=err,
    )
    stats = run_replay(
        engine,
        replay,
        replay_entries(symbols, args.threshold),
        store,
        notifier,
        _news(args, settings),
        args.start,
        args.end,
        progress_to=None if args.json else err,
        charts=_replay_charts(args, engine, replay, threshold),
    )
    if stats.ticks == 0:
        if args.start or args.end:
            raise CliError(_no_ticks(replay, args.start, args.end))
        # Bars, but none after a first day: each day is measured against the one before.
        err.print(_no_ticks(replay, None, None), markup=False, highlight=False)
    elif not args.json:
        skipped = f", {len(report.skipped)} bad rows skipped" if report.skipped else ""
        err.print(
            f"[dim]replayed {_plural(stats.ticks, 'tick')} over {_plural(len(symbols), 'symbol')} "
            f"from {_plural(report.files, 'file')} ({_plural(report.rows, 'row')}{skipped}): "
            f"{_plural(stats.alerts, 'alert')}[/dim]"
        )
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _no_ticks(replay: Replay, start: date | None, end: date | None) -> str:
    """Why a replay had nothing to play: the asked range against the days the bars cover."""
    days = replay.bar_days
    if not days:
        return "nothing replayed: the bars hold no usable day"
    first, last = days[0], days[-1]
    if start and end and start > end:
        asked = f"--from {start} is after --to {end}"
    elif start or end:
        asked = f"no bars from {start or 'the start'} to {end or 'the end'}"
    else:
        asked = "no day has a previous close to measure against"
    cover = f"{first} to {last}" if first != last else f"{first} only"
    return f"nothing replayed: {asked}; the bars cover {cover} ({_plural(len(days), 'day')})"


def _charts_dir(args: argparse.Namespace) -> Path | None:
    """--charts DIR, created if needed."""
    folder: Path | None = args.charts
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"--charts {folder}: cannot create the folder ({exc.strerror})") from None
    return folder


def _replay_charts(
    args: argparse.Namespace, engine: Engine, replay: Replay, threshold: float
) -> ChartDrawer | None:
    """What draws each alert's chart when --charts asks for them."""
    if args.charts is None:
        return None
    return ChartMaker(replay, engine.groups, threshold, str(replay.tz), "replay").for_alert


def cmd_chart(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    engine = engine_from_args(settings, args)
    symbol = _one_symbol(args.symbol)
    if args.source == "yfinance":
        return _chart_live(args, engine, settings, symbol, out)
    if not args.bars:
        raise CliError("chart --source replay needs --bars PATH")
    replay = load_replay(args.bars)[0]
    at = in_exchange_zone(args.at, symbol) if args.at else None
    now = at or datetime.combine(replay.days[-1], datetime.max.time(), tzinfo=replay.tz)
    threshold = args.threshold or settings.default_threshold_pct
    quotes = replay.quotes([symbol], now)
    if symbol not in quotes:
        raise CliError(f"no replayed prices for {symbol} at or before {now.isoformat()}")
    peers = replay.quotes(list(engine.groups.peers_of(symbol)), now)
    peer_moves = {s: q.change_pct for s, q in peers.items() if q.change_pct is not None}
    reply = commands.why(engine, symbol, replay, _news(args, settings), now)
    context = message_chart_context(reply.message) if reply.message else []
    charts = ChartMaker(replay, engine.groups, threshold, str(replay.tz), "replay")
    png = charts.for_symbol(symbol, now, context, peer_moves)
    if png is None:
        raise CliError(f"not enough prices to chart {symbol}")
    output = args.output or Path(f"{symbol}-{quotes[symbol].at:%Y-%m-%dT%H%M}.png")
    _write_png(output, png, out)
    return 0


def _write_png(output: Path, png: bytes, out: Console) -> None:
    """Write the chart, creating missing folders (and saying so), or fail in one line."""
    folder = output.parent
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        output.write_bytes(png)
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    note = f" (created {folder}/)" if created else ""
    out.print(f"wrote {output}{note}", markup=False, highlight=False)


def _chart_live(
    args: argparse.Namespace, engine: Engine, settings: Settings, symbol: str, out: Console
) -> int:
    from bot.run import LIVE_CHART_TZ
    from bot.sources.yahoo.quotes import YahooPrices

    _yahoo_answers(symbol)
    prices = YahooPrices(requests_per_second=settings.yahoo_requests_per_second)
    now = in_exchange_zone(args.at, symbol) if args.at else datetime.now(UTC)
    reply = commands.why(engine, symbol, prices, live_sources(settings, engine), now)
    if not reply.ok or reply.message is None:
        raise CliError(reply.text)
    threshold = args.threshold or settings.default_threshold_pct
    context = message_chart_context(reply.message)
    maker = ChartMaker(prices, engine.groups, threshold, LIVE_CHART_TZ, "yfinance")
    png = maker.for_symbol(symbol, now, context)
    if png is None:
        raise CliError(f"Yahoo gave no intraday prices to chart {symbol}")
    output = args.output or Path(f"{symbol}-{now:%Y-%m-%dT%H%M}.png")
    _write_png(output, png, out)
    return 0


def _yahoo_answers(symbol: str) -> None:
    """One request first: offline, say so once instead of a warning per symbol asked."""
    from bot.symbol_check import YahooSymbolCheck

    check = YahooSymbolCheck().check_symbols([symbol])
    if check.unchecked:
        raise CliError(
            f"{check.unchecked}; no live answer for {symbol}. "
            "Offline, answer from bars: --source replay --bars DIR"
        )
    if check.unknown:
        raise CliError(f"Yahoo knows no symbol {symbol}: check the spelling (e.g. 0700.HK, BRK-B)")


def _one_symbol(text: str) -> str:
    symbols, errors = parse_symbols(text)
    if errors or len(symbols) != 1:
        raise CliError(" ".join(errors) or f"give one symbol, not '{text}'")
    return symbols[0]


def cmd_why(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    engine = engine_from_args(settings, args)
    symbol = _one_symbol(args.symbol)
    at = in_exchange_zone(args.at, symbol) if args.at else None
    hours = ExchangeHours(settings.extended_hours)
    if args.source == "yfinance":
        from bot.sources.yahoo.extended import YahooWithExtendedHours
        from bot.sources.yahoo.quotes import YahooPrices

        _yahoo_answers(symbol)
        prices = YahooPrices(requests_per_second=settings.yahoo_requests_per_second)
        now = at or datetime.now(UTC)
        reply = commands.why(
            engine,
            symbol,
            YahooWithExtendedHours(prices),
            live_sources(settings, engine),
            now,
            hours=hours,
            extended_hours=settings.extended_hours,
        )
        return _print_reply(reply, args.json, out)
    if not args.bars:
        raise CliError("why --source replay needs --bars PATH")
    replay, _ = load_replay(args.bars, args.bars_zone)
    if not replay.days:
        raise CliError("the bars give no day with a previous close to answer from")
    last_day = replay.days[-1]
    now = at or datetime.combine(last_day, datetime.max.time(), tzinfo=replay.tz)
    history = replay.daily_returns(now.astimezone(replay.tz).date())
    reply = commands.why(
        engine,
        symbol,
        replay,
        _news(args, settings),
        now,
        history,
        hours=hours,
        extended_hours=settings.extended_hours,
    )
    return _print_reply(reply, args.json, out)


def _print_reply(reply: commands.Reply, as_json: bool, out: Console) -> int:
    if as_json:
        data = dict(reply.data or {"ok": reply.ok, "text": reply.text})
        print(json.dumps(data))
    elif reply.message is not None:
        out.print(reply.text, markup=False, highlight=False)
        out.print(message_renderable(reply.message))
    else:
        out.print(reply.text, markup=False, highlight=False)
    return 0 if reply.ok else 1


def cmd_record(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    import asyncio

    from bot.recorder import BarRecorder, record_poll, record_stream

    symbols, errors = parse_symbols(args.symbols)
    if errors or not symbols:
        raise CliError("--symbols: " + (" ".join(errors) or "give at least one symbol"))
    if args.minutes is not None and args.minutes <= 0:
        raise CliError("--minutes must be above 0")
    if args.every <= 0:
        raise CliError("--every must be above 0")
    try:
        recorder = BarRecorder(args.out)
    except OSError as exc:
        raise CliError(f"--out {args.out}: {exc.strerror}") from None
    duration = args.minutes * 60 if args.minutes is not None else None
    if args.source == "poll":
        from bot.sources.yahoo.quotes import YahooPrices

        # 1-minute bars: the finest Yahoo gives, so each poll records that minute's price.
        prices = YahooPrices(requests_per_second=settings.yahoo_requests_per_second, interval="1m")
        job = record_poll(prices, symbols, recorder, args.every, duration)
    else:
        job = record_stream(symbols, recorder, duration)
    try:
        asyncio.run(job)
    except KeyboardInterrupt:
        recorder.flush()
    out.print(
        f"recorded {recorder.quotes} quotes as {recorder.written} 1-minute bars in "
        f"{len(recorder.files)} files under {args.out}",
        markup=False,
        highlight=False,
    )
    return 0


def cmd_evidence(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    from bot.evidence_view import evidence_table, gather_one

    engine = engine_from_args(settings, args)
    symbol = _one_symbol(args.symbol)
    until = in_exchange_zone(args.at, symbol) if args.at else datetime.now(UTC)
    recorded = _news(args, settings) if (args.news or args.evidence) else None
    provider = recorded or live_sources(settings, engine)
    evidence, verdict = gather_one(engine, provider, symbol, until)
    if args.json:
        print(json.dumps(evidence_json(evidence, verdict)))
    else:
        out.print(evidence_table(evidence, verdict))
    return 0


def cmd_watch(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    if not args.platform or not args.channel:
        raise CliError(
            f"watch needs --platform ({', '.join(registry.names())}) and --channel ID: the "
            "channel whose watchlist to change, e.g. --platform discord --channel "
            "123456789012345678"
        )
    store = Store(args.db or settings.db_url)
    who = commands.Requester(args.platform, args.channel, "cli", can_manage=True)
    text = " ".join([args.action, *args.args])
    reply = commands.run_watch_text(
        store,
        who,
        text,
        settings.default_threshold_pct,
        datetime.now(UTC),
        validator=_watch_validator(args),
    )
    out.print(
        f"{args.platform} channel {args.channel}: {reply.text}", markup=False, highlight=False
    )
    return 0 if reply.ok else 1


def _watch_validator(args: argparse.Namespace) -> SymbolValidator | None:
    """Added symbols are checked against --bars, else Yahoo, unless --no-check."""
    from bot.symbol_check import KnownSymbols, YahooSymbolCheck

    if args.action != "add" or args.no_check:
        return None
    if args.bars:
        return KnownSymbols(load_replay(args.bars)[0].symbols)
    return YahooSymbolCheck()


def cmd_status(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    store = Store(args.db or settings.db_url)
    now = datetime.now(UTC)
    statuses = [
        row for row in store.statuses() if not args.host or row[0].startswith(f"{args.host}:")
    ]
    if not statuses:
        out.print("No instance has reported to this store yet (is `marketbot run` running?).")
    running = 0
    for instance, info, at in statuses:
        state, lines = describe_instance(info, at, now)
        running += state == "running"
        out.print(f"{instance}: {state}", markup=False, highlight=False)
        for line in lines:
            out.print(f"  {line}", markup=False, highlight=False)
    counts = outbox_counts(store)
    line = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
    out.print(f"deliveries: {line}", markup=False, highlight=False)
    if error := last_delivery_error(store):
        out.print(f"last delivery error: {error}", markup=False, highlight=False)
    # For health checks: 0 only when some instance is running.
    return 0 if running else 1


STATUS_SKIP = {"report_every_s", "state", "next_poll"}


def _ago(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def describe_instance(
    info: dict[str, object], at: datetime, now: datetime
) -> tuple[str, list[str]]:
    """'running' or 'stopped' (said so, or silent for 3 report intervals), and detail lines."""
    age = (now - at).total_seconds()
    every = float(str(info.get("report_every_s") or 10))
    if info.get("state") == "stopped":
        state = "stopped"
        lines = [f"stopped {_ago(age)}"]
    elif age > 3 * every:
        state = "stopped"
        lines = [f"last report {_ago(age)} (reports every {every:g} s): not running"]
    else:
        state = "running"
        lines = [f"reported {_ago(age)}"]
    if state == "running":
        lines.append(_next_poll(info, now))
    for key, value in info.items():
        if key not in STATUS_SKIP:
            lines.append(f"{key}: {value}")
    return state, lines


def _next_poll(info: dict[str, object], now: datetime) -> str:
    text = info.get("next_poll")
    if not text:
        feed = info.get("feed", "?")
        return f"next poll: none scheduled (feed: {feed})"
    at = datetime.fromisoformat(str(text))
    wait = (at - now).total_seconds()
    when = f"in {int(wait)} s" if wait >= 0 else "due now"
    return f"next poll: {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({when})"


def cmd_run(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    from bot.run import RunError, RunOptions, parse_platforms, run

    if args.speed <= 0:
        raise CliError("--speed must be above 0")
    try:
        options = RunOptions(
            platforms=parse_platforms(args.platform),
            source=args.source,
            bars=args.bars,
            news=args.news,
            evidence=args.evidence,
            speed=args.speed,
            start=args.start,
            end=args.end,
            slack_mode=args.slack_mode,
        )
        if args.db:
            settings = settings.model_copy(update={"db_url": args.db})
        return run(settings, options)
    except RunError as exc:
        raise CliError(str(exc)) from None


def cmd_discord(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    import asyncio

    from bot.app import AppContext
    from bot.platforms.discord.adapter import DiscordSetupError, sync_discord_commands

    token = settings.discord.token
    if token is None:
        raise CliError("DISCORD_TOKEN is not set (environment or .env)")
    store = Store(args.db or settings.db_url)
    ctx = AppContext(settings, build_engine(settings), store, Replay({}), None)
    try:
        names = asyncio.run(sync_discord_commands(ctx, token.get_secret_value(), args.guild))
    except DiscordSetupError as exc:
        raise CliError(str(exc)) from None
    where = f"guild {args.guild}" if args.guild else "all servers (may take up to an hour)"
    out.print(f"synced {len(names)} commands to {where}: {', '.join(names)}")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    from config.settings_doc import settings_markdown, settings_text

    if args.check:
        out.print("settings are valid", markup=False, highlight=False)
    elif args.markdown:
        print(settings_markdown())
    else:
        print(settings_text())
    return 0


COMMANDS = {
    "config": cmd_config,
    "run": cmd_run,
    "discord": cmd_discord,
    "replay": cmd_replay,
    "why": cmd_why,
    "watch": cmd_watch,
    "chart": cmd_chart,
    "evidence": cmd_evidence,
    "status": cmd_status,
    "record": cmd_record,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(None, args.verbose, args.log_json, LOG_LEVELS.get(args.command, logging.WARNING))
    out = Console()
    try:
        if args.command == "config" and not args.check:
            # The list must help fix a broken setting, so it does not need valid ones.
            return cmd_config(args, Settings.model_construct(), out)
        settings = load_settings()
        long_running = args.command in LOG_LEVELS
        setup_logging(
            settings,
            args.verbose,
            args.log_json or (settings.log_json and long_running),
            LOG_LEVELS.get(args.command, logging.WARNING),
        )
        return COMMANDS[args.command](args, settings, out)
    except (
        CliError,
        SettingsError,
        ConfigFileError,
        BarsError,
        NewsFileError,
        RecordedEvidenceError,
        StoreError,
        SymbolError,
    ) as exc:
        print(f"marketbot: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["REPLAY_DESTINATION", "main"]
