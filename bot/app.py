"""Wiring shared by every front end: settings, engine, store, market data, evidence, the clock."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from bot.charts import ChartMaker
from bot.evidence import Gatherer
from bot.infra.calendars import ExchangeHours
from bot.infra.store import Store
from bot.sources.news_file import NewsFile
from bot.sources.recorded import load_recorded
from bot.sources.replay import CLOSE_AT, Replay, load_replay
from config.loader import load_company_names, load_groups, load_macro_events
from config.settings import Settings
from handlers import commands
from handlers.evidence import SourceScope
from handlers.models import NewsSearch
from handlers.pipeline import Engine, NewsProvider
from handlers.ports import EvidenceSource, NewsSearcher, QuoteProvider, SymbolValidator
from handlers.render import Message

HistoryProvider = Callable[[datetime], Mapping[str, Sequence[float]]]


class Notifier(Protocol):
    """A platform adapter's outgoing side: it only sends (the delivery worker decides what,
    where and whether; see bot.delivery.outbox).

    `send` posts MESSAGE (with its chart, when it has one) to CHANNEL under KEY, the
    delivery's idempotency key, and returns the platform's message id; it raises when the
    post failed.
    """

    platform: str

    async def send(self, message: Message, channel: str, key: str) -> str: ...


@runtime_checkable
class MultiPart(Protocol):
    """A notifier whose send may post more than one platform message (Telegram's chart after
    a text too long for a caption): the pacer charges the send for each of them."""

    def messages_in(self, message: Message) -> int: ...


@runtime_checkable
class Finder(Protocol):
    """A notifier whose platform lets it look back: `find` returns the id of our own post
    under KEY among CHANNEL's recent messages, or None (also when history cannot be read)."""

    async def find(self, channel: str, key: str) -> str | None: ...


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
    market: QuoteProvider
    # The evidence gatherer (every configured source at once), or one plain news provider.
    news: NewsProvider | None
    clock: Callable[[], datetime] = utc_now
    history: HistoryProvider | None = None
    notifiers: dict[str, Notifier] = field(default_factory=dict)
    # Alerts are written as outbox rows; a running worker is woken with this, and without
    # one (a replay, a test) the rows are sent at once by a worker of the moment.
    wake_outbox: Callable[[], None] | None = None
    # Pictures for alerts and /why; None where the price source has no session path.
    charts: ChartMaker | None = None
    # Says whether added symbols exist (Yahoo, or the replay's symbols); None: not checked.
    symbols: SymbolValidator | None = None

    @property
    def default_pct(self) -> float:
        return self.settings.default_threshold_pct

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


def build_engine(
    settings: Settings, groups_file: Path | None = None, events_file: Path | None = None
) -> Engine:
    """The engine with groups and macro events loaded (and validated) from the config files."""
    groups = load_groups(groups_file or settings.groups_file)
    events = load_macro_events(events_file or settings.macro_events_file)
    companies = {**load_company_names(settings.companies_file), **settings.company_names}
    adjudicate = None
    if settings.llm_base_url:  # the openai client is loaded only when an adjudicator is set
        from bot.llm import adjudicator_from

        adjudicator = adjudicator_from(settings)
        adjudicate = adjudicator.adjudicate if adjudicator else None
    return Engine(groups, events, settings.engine_params(), companies, adjudicate=adjudicate)


class Named:
    """A plain news provider (a news file, a test feed) given a name and scope as a source."""

    def __init__(self, news: NewsSearcher, name: str, scope: SourceScope = "company") -> None:
        self.news = news
        self.name = name
        self.scope: SourceScope = scope

    def search(self, symbol: str, since: datetime, until: datetime) -> NewsSearch:
        return self.news.search(symbol, since, until)


def live_sources(settings: Settings, engine: Engine, session: object = None) -> Gatherer:
    """The gatherer over the live sources named in settings.evidence_sources."""
    from bot.sources.article import ArticleLeads
    from bot.sources.earnings import EarningsCalendar
    from bot.sources.econ_calendar import EconomicCalendar
    from bot.sources.edgar import EdgarFilings
    from bot.sources.market_news import MarketNews, TopicNews
    from bot.sources.yahoo.news import YahooNews

    wanted = set(settings.evidence_sources)
    groups = engine.groups
    yahoo = YahooNews(session)

    def market_symbols(symbol: str) -> list[str]:
        return [
            groups.benchmark_of(symbol),
            groups.default_benchmark,
            *settings.market_news_symbols,
        ]

    sources: list[EvidenceSource] = []
    if "yahoo_news" in wanted:
        sources.append(yahoo)
    if "sec_filings" in wanted:
        sources.append(
            EdgarFilings(settings.sec_user_agent, settings.sec_www_url, settings.sec_data_url)
        )
    if "earnings" in wanted:
        sources.append(EarningsCalendar(session))
    if "market_news" in wanted:
        topics = settings.market_news_topics

        def topics_for(symbol: str) -> list[str]:
            return topics.get(groups.region_of(symbol), [])

        market = MarketNews(
            YahooNews(session), market_symbols, topics=TopicNews(session), topics_for=topics_for
        )
        sources.append(market)
    if "economic_calendar" in wanted:
        sources.append(EconomicCalendar(groups.region_of, session))
    leads = None
    if "article_leads" in wanted:
        leads = ArticleLeads(
            engine.companies,
            timeout_s=settings.article_timeout_seconds,
            max_bytes=settings.article_max_bytes,
            allow_private=settings.article_allow_private,
        )
    return Gatherer(sources, settings.evidence_deadline_seconds, leads)


def recorded_sources(
    settings: Settings, news_file: Path | None, evidence_files: Sequence[Path] = ()
) -> NewsProvider | None:
    """What a replay knows: the news file and/or recorded evidence files; None without any."""
    news = NewsFile.load(news_file) if news_file else None
    if not evidence_files:
        return news  # one plain provider needs no threads
    sources: list[EvidenceSource] = list(load_recorded(list(evidence_files)))
    if news is not None:
        sources.insert(0, Named(news, news.source))
    return Gatherer(sources, settings.evidence_deadline_seconds)


def replay_context(
    settings: Settings,
    store: Store,
    bars: Sequence[Path],
    news_file: Path | None = None,
    start_at: datetime | None = None,
    evidence_files: Sequence[Path] = (),
) -> tuple[AppContext, Replay, SimulatedClock]:
    """An AppContext whose prices, news and clock come from a replay (tests, demos, try-outs)."""
    replay, _report = load_replay(bars)
    first = replay.days[0]
    clock = SimulatedClock(start_at or datetime.combine(first, CLOSE_AT, tzinfo=replay.tz))
    news = recorded_sources(settings, news_file, evidence_files)

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
