"""Wiring shared by every front end: settings, engine, store, market data, news and the clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot.calendars import ExchangeHours
from bot.charts import ChartMaker
from bot.sources.news_file import NewsFile
from bot.sources.replay import CLOSE_AT, Replay, load_replay
from bot.store import Store
from config.loader import load_company_names, load_groups, load_macro_events
from config.settings import Settings
from handlers import commands
from handlers.models import Alert
from handlers.pipeline import Engine, NewsProvider
from handlers.render import Message

HistoryProvider = Callable[[datetime], Mapping[str, Sequence[float]]]


class Notifier(Protocol):
    """A platform adapter's outgoing side: post one alert to some of its channels."""

    platform: str

    async def deliver(self, alert: Alert, message: Message, channels: Sequence[str]) -> None: ...


class SimulatedClock:
    """A clock the replay moves forward; real mode uses utc_now instead."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, at: datetime) -> None:
        self.now = max(self.now, at)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppContext:
    """Everything a command handler or the scheduler needs, built once at start."""

    settings: Settings
    engine: Engine
    store: Store
    market: commands.QuoteProvider
    news: NewsProvider | None
    clock: Callable[[], datetime] = utc_now
    history: HistoryProvider | None = None
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    # With an outbox, alerts are written as delivery rows and a worker sends them.
    use_outbox: bool = False
    wake_outbox: Callable[[], None] | None = None
    # Pictures for alerts and /why; None where the price source has no session path.
    charts: ChartMaker | None = None
    # Says whether added symbols exist (Yahoo, or the replay's symbols); None: not checked.
    symbols: commands.SymbolValidator | None = None

    def why_chart(self, symbol: str, reply: commands.Reply) -> bytes | None:
        """The chart for a /why answer (blocking), or None."""
        if self.charts is None or reply.message is None or not reply.ok:
            return None
        from bot.charts import message_chart_context

        context = message_chart_context(reply.message)
        return self.charts.for_symbol(reply.message.symbols[0], self.clock(), context)

    def answer_why(self, symbol: str) -> commands.Reply:
        """The /why answer at the current (real or simulated) time; blocking, run in a thread."""
        now = self.clock()
        history = self.history(now) if self.history else None
        return commands.why(
            self.engine,
            symbol,
            self.market,
            self.news,
            now,
            history,
            hours=ExchangeHours(self.settings.extended_hours),
            extended_hours=self.settings.extended_hours,
        )

    def requester(
        self, platform: str, channel: str, user: str, can_manage: bool
    ) -> commands.Requester:
        return commands.Requester(platform, channel, user, can_manage)


def build_engine(
    settings: Settings, groups_file: Path | None = None, events_file: Path | None = None
) -> Engine:
    """The engine with groups and macro events loaded (and validated) from the config files."""
    groups = load_groups(groups_file or settings.groups_file)
    events = load_macro_events(events_file or settings.macro_events_file)
    companies = {**load_company_names(settings.companies_file), **settings.company_names}
    return Engine(groups, events, settings.engine_params(), companies)


def replay_context(
    settings: Settings,
    store: Store,
    bars: Sequence[Path],
    news_file: Path | None = None,
    start_at: datetime | None = None,
) -> tuple[AppContext, Replay, SimulatedClock]:
    """An AppContext whose prices, news and clock come from a replay (tests, demos, try-outs)."""
    replay, _report = load_replay(bars)
    first = replay.days[0]
    clock = SimulatedClock(start_at or datetime.combine(first, CLOSE_AT, tzinfo=replay.tz))
    news = NewsFile.load(news_file) if news_file else None

    def history(now: datetime) -> Mapping[str, Sequence[float]]:
        return replay.daily_returns(now.astimezone(replay.tz).date())

    engine = build_engine(settings)
    ctx = AppContext(
        settings=settings,
        engine=engine,
        store=store,
        market=replay,
        news=news,
        clock=clock,
        history=history,
        charts=ChartMaker(
            replay, engine.groups, settings.default_threshold_pct, str(replay.tz), "replay"
        ),
    )
    return ctx, replay, clock
