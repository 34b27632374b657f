"""The `marketbot` command line: replay, why, watch (and the live commands as they land)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console

from bot.app import build_engine, live_sources, recorded_sources
from bot.charts import ChartMaker, chart_filename
from bot.console import ConsoleNotifier, message_renderable
from bot.logs import setup_logging
from bot.replay_run import REPLAY_DESTINATION, Deliver, replay_entries, run_replay
from bot.sources.news_file import NewsFileError
from bot.sources.recorded import RecordedEvidenceError
from bot.sources.replay import BarsError, Replay, load_bars
from bot.store import Store, StoreError
from config.loader import ConfigFileError
from config.settings import Settings, SettingsError, load_settings
from handlers import commands
from handlers.evidence import evidence_json
from handlers.models import Alert, Destination
from handlers.pipeline import Engine, NewsProvider
from handlers.symbols import SymbolError, parse_symbols

log = logging.getLogger("marketbot")

EXIT_USAGE = 2
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
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _pct(text: str) -> float:
    try:
        return commands.parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketbot", description=__doc__)
    parser.add_argument("--db", help="store URL (default: setting db_url)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-json", action="store_true", help="logs as JSON lines on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    rp = sub.add_parser("replay", help="run the alert pipeline over daily bars, offline")
    _add_data_args(rp)
    rp.add_argument("--watch", help="comma-separated symbols (default: every symbol in the bars)")
    rp.add_argument("--threshold", type=_pct, help="alert threshold in percent")
    rp.add_argument("--from", dest="start", type=_date, help="first day (YYYY-MM-DD)")
    rp.add_argument("--to", dest="end", type=_date, help="last day (YYYY-MM-DD)")
    rp.add_argument("--json", action="store_true", help="one JSON object per alert")
    rp.add_argument("--charts", type=Path, metavar="DIR", help="write each alert's chart here")

    cp = sub.add_parser("chart", help="draw a symbol's move against its benchmark and peers")
    cp.add_argument("symbol")
    cp.add_argument("--source", choices=["replay", "yfinance"], default="replay")
    _add_data_args(cp, bars_required=False)
    cp.add_argument("--at", type=_time, help="time on the replay clock (ISO 8601)")
    cp.add_argument("--threshold", type=_pct, help="threshold line in percent")
    cp.add_argument("-o", "--output", type=Path, default=None, help="PNG file to write")

    wp = sub.add_parser("why", help="explain a symbol's move, as /why does")
    wp.add_argument("symbol")
    wp.add_argument("--source", choices=["replay", "yfinance"], default="replay")
    _add_data_args(wp, bars_required=False)
    wp.add_argument("--at", type=_time, help="time on the replay clock (ISO 8601)")

    ep = sub.add_parser("evidence", help="what each evidence source found for a symbol")
    ep.add_argument("symbol")
    ep.add_argument("--at", type=_time, help="end of the window (default: now)")
    ep.add_argument("--json", action="store_true", help="one JSON object")
    ep.add_argument("--news", type=Path, help="news JSONL file instead of the live sources")
    ep.add_argument("--evidence", nargs="+", type=Path, default=[], help="recorded evidence")
    ep.add_argument("--macro-events", type=Path, help=argparse.SUPPRESS)
    ep.add_argument("--groups", type=Path, help="symbol groups YAML")

    sub.add_parser("status", help="what the running bot last reported, and pending deliveries")

    run = sub.add_parser("run", help="run the bot on Discord and/or Slack")
    run.add_argument("--platform", default="discord", help="discord, slack or discord,slack")
    run.add_argument("--source", choices=["yfinance", "replay"], default="yfinance")
    run.add_argument("--bars", nargs="+", type=Path, default=[], help="replay: CSV files/folders")
    run.add_argument("--news", type=Path, help="replay: news JSONL file")
    run.add_argument(
        "--evidence", nargs="+", type=Path, default=[], help="replay: recorded evidence files"
    )
    run.add_argument(
        "--speed", type=float, default=3600.0, help="replay: simulated seconds per real second"
    )
    run.add_argument("--from", dest="start", type=_date, help="replay: first day")
    run.add_argument("--to", dest="end", type=_date, help="replay: last day")
    run.add_argument("--slack-mode", choices=["http", "socket"], default="http")

    dp = sub.add_parser("discord", help="Discord administration")
    dsub = dp.add_subparsers(dest="discord_command", required=True)
    sync = dsub.add_parser("sync", help="publish the slash commands (global or to one guild)")
    sync.add_argument("--guild", type=int, help="guild id: instant sync to one server")

    watch = sub.add_parser("watch", help="edit a channel's watchlist in the local store")
    watch.add_argument("action", choices=["add", "remove", "list", "threshold"])
    watch.add_argument("args", nargs="*", help="symbols, then an optional threshold")
    watch.add_argument("--platform", default="console")
    watch.add_argument("--channel", default="default")
    return parser


def _add_data_args(p: argparse.ArgumentParser, bars_required: bool = True) -> None:
    p.add_argument("--bars", nargs="+", type=Path, required=bars_required, help="CSV files/folders")
    p.add_argument("--news", type=Path, help="news JSONL file")
    p.add_argument(
        "--evidence", nargs="+", type=Path, default=[], help="recorded evidence JSONL files"
    )
    p.add_argument("--macro-events", type=Path, help="macro events YAML")
    p.add_argument("--groups", type=Path, help="symbol groups YAML")


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
    bars, report = load_bars(args.bars)
    replay = Replay(bars)
    if args.watch:
        symbols, errors = parse_symbols(args.watch)
        if errors:
            raise CliError("--watch: " + " ".join(errors))
        unknown = [s for s in symbols if s not in bars]
        if unknown:
            log.warning("no bars for %s: they cannot alert", ", ".join(unknown))
    else:
        symbols = replay.symbols
    store = Store(args.db or "sqlite://")
    notifier = ConsoleNotifier(sys.stdout, as_json=args.json)
    err = Console(stderr=True)
    threshold = args.threshold or settings.default_threshold_pct
    stats = run_replay(
        engine,
        replay,
        replay_entries(symbols, args.threshold),
        store,
        _with_charts(notifier.send, args, engine, replay, threshold, err),
        _news(args, settings),
        args.start,
        args.end,
        progress_to=None if args.json else err,
    )
    if not args.json:
        skipped = f", {len(report.skipped)} bad rows skipped" if report.skipped else ""
        err.print(
            f"[dim]replayed {stats.ticks} ticks over {len(symbols)} symbols from "
            f"{report.files} files ({report.rows} rows{skipped}): {stats.alerts} alerts[/dim]"
        )
    return 0


def _with_charts(
    send: Deliver,
    args: argparse.Namespace,
    engine: Engine,
    replay: Replay,
    threshold: float,
    err: Console,
) -> Deliver:
    """SEND, writing each alert's chart to --charts DIR first when asked."""
    folder: Path | None = args.charts
    if folder is None:
        return send
    folder.mkdir(parents=True, exist_ok=True)
    charts = ChartMaker(replay, engine.groups, threshold, str(replay.tz), "replay")

    def send_with_chart(alert: Alert, destinations: tuple[Destination, ...]) -> None:
        png = charts.for_alert(alert)
        if png is not None:
            path = folder / chart_filename(alert)
            path.write_bytes(png)
            err.print(f"[dim]chart: {path}[/dim]")
        send(alert, destinations)

    return send_with_chart


def cmd_chart(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    engine = engine_from_args(settings, args)
    symbol = _one_symbol(args.symbol)
    if args.source == "yfinance":
        return _chart_live(args, engine, settings, symbol, out)
    if not args.bars:
        raise CliError("chart --source replay needs --bars PATH")
    replay = Replay(load_bars(args.bars)[0])
    now = args.at or datetime.combine(replay.days[-1], datetime.max.time(), tzinfo=replay.tz)
    threshold = args.threshold or settings.default_threshold_pct
    quotes = replay.quotes([symbol], now)
    if symbol not in quotes:
        raise CliError(f"no replayed prices for {symbol} at or before {now.isoformat()}")
    peers = replay.quotes(list(engine.groups.peers_of(symbol)), now)
    peer_moves = {s: q.change_pct for s, q in peers.items() if q.change_pct is not None}
    reply = commands.why(engine, symbol, replay, _news(args, settings), now)
    context = [c.title for c in reply.message.context] if reply.message else []
    charts = ChartMaker(replay, engine.groups, threshold, str(replay.tz), "replay")
    png = charts.for_symbol(symbol, now, context, peer_moves)
    if png is None:
        raise CliError(f"not enough prices to chart {symbol}")
    output = args.output or Path(f"{symbol}-{quotes[symbol].at:%Y-%m-%dT%H%M}.png")
    output.write_bytes(png)
    out.print(f"wrote {output}")
    return 0


def _chart_live(
    args: argparse.Namespace, engine: Engine, settings: Settings, symbol: str, out: Console
) -> int:
    from bot.run import LIVE_CHART_TZ
    from bot.sources.yahoo import YahooPrices

    prices = YahooPrices(requests_per_second=settings.yahoo_requests_per_second)
    now = args.at or datetime.now(UTC)
    reply = commands.why(engine, symbol, prices, live_sources(settings, engine), now)
    if not reply.ok or reply.message is None:
        raise CliError(reply.text)
    threshold = args.threshold or settings.default_threshold_pct
    context = [c.title for c in reply.message.context]
    maker = ChartMaker(prices, engine.groups, threshold, LIVE_CHART_TZ, "yfinance")
    png = maker.for_symbol(symbol, now, context)
    if png is None:
        raise CliError(f"Yahoo gave no intraday prices to chart {symbol}")
    output = args.output or Path(f"{symbol}-{now:%Y-%m-%dT%H%M}.png")
    output.write_bytes(png)
    out.print(f"wrote {output}")
    return 0


def _one_symbol(text: str) -> str:
    symbols, errors = parse_symbols(text)
    if errors or len(symbols) != 1:
        raise CliError(" ".join(errors) or f"give one symbol, not '{text}'")
    return symbols[0]


def cmd_why(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    engine = engine_from_args(settings, args)
    if args.source == "yfinance":
        return _why_live(args, engine, settings, out)
    if not args.bars:
        raise CliError("why --source replay needs --bars PATH")
    bars, _ = load_bars(args.bars)
    replay = Replay(bars)
    last_day = replay.days[-1]
    now = args.at or datetime.combine(last_day, datetime.max.time(), tzinfo=replay.tz)
    history = replay.daily_returns(now.astimezone(replay.tz).date())
    reply = commands.why(engine, args.symbol, replay, _news(args, settings), now, history)
    if reply.message is not None:
        out.print(message_renderable(reply.message))
    else:
        out.print(reply.text)
    return 0 if reply.ok else 1


def _why_live(args: argparse.Namespace, engine: Engine, settings: Settings, out: Console) -> int:
    from bot.sources.yahoo import YahooPrices

    prices = YahooPrices(requests_per_second=settings.yahoo_requests_per_second)
    now = args.at or datetime.now(UTC)
    reply = commands.why(engine, args.symbol, prices, live_sources(settings, engine), now)
    out.print(message_renderable(reply.message) if reply.message else reply.text)
    return 0 if reply.ok else 1


def cmd_evidence(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    from bot.evidence_view import evidence_table, gather_one

    engine = engine_from_args(settings, args)
    symbol = _one_symbol(args.symbol)
    until = args.at or datetime.now(UTC)
    recorded = _news(args, settings) if (args.news or args.evidence) else None
    provider = recorded or live_sources(settings, engine)
    evidence, verdict = gather_one(engine, provider, symbol, until)
    if args.json:
        print(json.dumps(evidence_json(evidence, verdict)))
    else:
        out.print(evidence_table(evidence, verdict))
    return 0


def cmd_watch(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    store = Store(args.db or settings.db_url)
    who = commands.Requester(args.platform, args.channel, "cli", can_manage=True)
    text = " ".join([args.action, *args.args])
    reply = commands.run_watch_text(
        store, who, text, settings.default_threshold_pct, datetime.now(UTC)
    )
    out.print(reply.text, markup=False, highlight=False)
    return 0 if reply.ok else 1


def cmd_status(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    store = Store(args.db or settings.db_url)
    now = datetime.now(UTC)
    statuses = store.statuses()
    if not statuses:
        out.print("No running instance has reported to this store yet.")
    for instance, info, at in statuses:
        age = int((now - at).total_seconds())
        out.print(f"[bold]{instance}[/bold] (reported {age} s ago)")
        for key, value in info.items():
            out.print(f"  {key}: {value}", markup=False, highlight=False)
    counts = store.outbox_counts()
    line = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
    out.print(f"deliveries: {line}", markup=False, highlight=False)
    if error := store.last_delivery_error():
        out.print(f"last delivery error: {error}", markup=False, highlight=False)
    return 0


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
    from bot.discord_bot import DiscordSetupError, sync_discord_commands

    if settings.discord_token is None:
        raise CliError("DISCORD_TOKEN is not set (environment or .env)")
    store = Store(args.db or settings.db_url)
    ctx = AppContext(settings, build_engine(settings), store, Replay({}), None)
    try:
        names = asyncio.run(
            sync_discord_commands(ctx, settings.discord_token.get_secret_value(), args.guild)
        )
    except DiscordSetupError as exc:
        raise CliError(str(exc)) from None
    where = f"guild {args.guild}" if args.guild else "all servers (may take up to an hour)"
    out.print(f"synced {len(names)} commands to {where}: {', '.join(names)}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "discord": cmd_discord,
    "replay": cmd_replay,
    "why": cmd_why,
    "watch": cmd_watch,
    "chart": cmd_chart,
    "evidence": cmd_evidence,
    "status": cmd_status,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(None, args.verbose, args.log_json, LOG_LEVELS.get(args.command, logging.WARNING))
    out = Console()
    try:
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
