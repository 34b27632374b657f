"""Render stage: an Alert or a /why answer as neutral message parts every platform can draw."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers.freshness import fmt_time, moves_age_text, spread_note
from handlers.models import (
    Alert,
    Cause,
    Direction,
    Explanation,
    HeldAlert,
    MacroEvent,
    Move,
    QuietSummary,
)

CAUSE_LABELS: dict[Cause, str] = {
    "company": "Company news",
    "sector": "Sector move",
    "macro": "Macro",
    "unexplained": "No clear cause found",
}
ARROWS = {Direction.UP: "▲", Direction.DOWN: "▼"}
# Below these confidences a cause is said as "likely", then as "unclear, perhaps".
LIKELY_BELOW = 0.7
UNCLEAR_BELOW = 0.45
MAX_NEWS_LINKS = 5
# Platforms show about 15 move fields (Discord folds the rest); a longer summary lists the first
# ones and counts the rest.
MAX_SUMMARY_FIELDS = 15


@dataclass(frozen=True, slots=True)
class Field:
    """A named value, e.g. one symbol's move and how it compares."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Link:
    """A news link with the kind the classifier gave it."""

    title: str
    url: str | None
    kind: str
    publisher: str = ""


@dataclass(frozen=True, slots=True)
class ContextItem:
    """A macro event shown beside a move."""

    id: str
    title: str
    summary: str
    links: tuple[str, ...] = ()
    kind: str = "catalyst"
    # Where a context entry found in the day's evidence came from, and when.
    source: str = ""
    at: datetime | None = None

    @property
    def url(self) -> str | None:
        return self.links[0] if self.links else None


@dataclass(frozen=True, slots=True)
class Button:
    """An action offered under an alert: pressing it runs COMMAND with TEXT for the presser,
    permission-checked like the typed command; stateless, so it works after a restart."""

    label: str
    command: str
    text: str

    @property
    def action_id(self) -> str:
        """'why:BABA', 'mute:BABA 1h': what platforms carry in the button (custom_id etc.)."""
        return f"{self.command}:{self.text}"


def parse_action_id(action_id: str) -> Button | None:
    """The button behind an action id, or None when it is not one of ours."""
    command, sep, text = action_id.partition(":")
    if not sep or command not in BUTTON_COMMANDS or not text.strip():
        return None
    return Button(command, command, text.strip())


BUTTON_COMMANDS = frozenset({"why", "mute"})
MUTE_BUTTON_DURATION = "1h"


def alert_buttons(symbols: tuple[str, ...]) -> tuple[Button, ...]:
    """'Why?' and 'Mute 1h' for the alert's lead symbol (the largest move comes first)."""
    if not symbols:
        return ()
    lead = symbols[0]
    return (
        Button(f"Why {lead}?", "why", lead),
        Button(f"Mute {lead} {MUTE_BUTTON_DURATION}", "mute", f"{lead} {MUTE_BUTTON_DURATION}"),
    )


@dataclass(frozen=True, slots=True)
class Message:
    """What a channel should see, with no platform markup; adapters draw it natively."""

    title: str
    direction: Direction | None
    headline: str
    cause: Cause | None
    cause_line: str
    fields: tuple[Field, ...] = ()
    evidence: tuple[str, ...] = ()
    news: tuple[Link, ...] = ()
    context: tuple[ContextItem, ...] = ()
    footer: str = ""
    at: datetime | None = None
    symbols: tuple[str, ...] = field(default_factory=tuple)
    buttons: tuple[Button, ...] = ()
    # The alert's chart (PNG), attached by the delivery worker just before sending; never stored.
    chart: bytes | None = field(default=None, repr=False, compare=False)

    def plain_text(self) -> str:
        """A one-paragraph fallback for notifications and logs."""
        parts = [self.title, self.headline, self.cause_line]
        return " — ".join(p for p in parts if p)


def fmt_pct(pct: float | None) -> str:
    return "n/a" if pct is None else f"{pct:+.1f} %"


def move_field(move: Move) -> Field:
    """'BABA +9.2 %' with price, benchmark, excess and z-score."""
    bits = [f"{move.price:,.2f} (prev close {move.previous_close:,.2f})"]
    if move.benchmark.pct is not None:
        excess = move.excess
        bits.append(
            f"vs {move.benchmark.symbol} {fmt_pct(move.benchmark.pct)}"
            + (f", excess {excess:+.1f} pp" if excess is not None else "")
        )
    if move.zscore is not None:
        bits.append(f"{move.zscore:+.1f}σ vs 20-day volatility")
    return Field(f"{move.symbol} {fmt_pct(move.pct)}", " · ".join(bits))


def _reference_line(alert: Alert) -> str:
    refs: dict[str, float | None] = {}
    for move in alert.moves:
        refs.setdefault(move.benchmark.symbol, move.benchmark.pct)
        if move.market is not None:
            refs.setdefault(move.market.symbol, move.market.pct)
    shown = [f"{sym} {fmt_pct(pct)}" for sym, pct in refs.items() if sym not in alert.symbols]
    return ", ".join(shown)


def _peers_line(alert: Alert) -> str:
    peers = sorted(alert.peers.items(), key=lambda kv: -abs(kv[1]))
    return ", ".join(f"{sym} {fmt_pct(pct)}" for sym, pct in peers)


def _context_items(events: tuple[MacroEvent, ...]) -> tuple[ContextItem, ...]:
    # Stable: catalysts first, each kind in the order the explain stage ranked them.
    ordered = sorted(events, key=lambda e: e.kind != "catalyst")
    return tuple(
        ContextItem(e.id, e.title, e.summary, e.links, e.kind, e.source, e.at) for e in ordered
    )


def _evidence(explanations: dict[str, Explanation]) -> tuple[str, ...]:
    """What was checked, per symbol: the basis of every 'no news' claim."""
    return tuple(f"{sym}: {exp.searched}" for sym, exp in explanations.items() if exp.searched)


def _news_links(alert: Alert) -> tuple[Link, ...]:
    relevant = [n for n in alert.news if n.kind != "other"] or list(alert.news)
    return tuple(
        Link(n.item.title, n.item.url, n.kind, n.item.publisher) for n in relevant[:MAX_NEWS_LINKS]
    )


def _no_news(alert: Alert, n_company: int) -> str:
    """What the news says about the alert's symbols, never more than was searched."""
    if alert.verified:
        return "no company-specific news" if n_company == 0 else f"{n_company} with company news"
    if all(e.search is None for e in alert.explanations.values()):
        return "news was not searched, so company news cannot be ruled out"
    return "company news could not be ruled out: not every source answered"


def alert_confidence(alert: Alert) -> float:
    """How sure the alert's lead cause is: the mean of its symbols' confidences in that cause."""
    same = [e.confidence for e in alert.explanations.values() if e.cause == alert.cause]
    return sum(same) / len(same) if same else 0.0


def hedge(label: str, confidence: float) -> str:
    """The cause label as sure as the evidence: stated, 'Likely ...', or 'Unclear, perhaps ...'."""
    if confidence >= LIKELY_BELOW:
        return label
    if confidence >= UNCLEAR_BELOW:
        return f"Likely {label[0].lower()}{label[1:]}"
    return f"Unclear, perhaps {label[0].lower()}{label[1:]}"


def cause_sentence(alert: Alert) -> str:
    """The one-line answer to 'why is it moving?'; 'unverified' when news could not rule out."""
    confidence = alert_confidence(alert)
    label = CAUSE_LABELS[alert.cause]
    if alert.cause != "unexplained":
        label = hedge(label, confidence)
    elif confidence < UNCLEAR_BELOW:
        label = "Cause unclear"
    n_company = sum(1 for e in alert.explanations.values() if e.cause == "company")
    if alert.cause == "company":
        exp = next(iter(alert.explanations.values()))
        return f"{label}: {exp.reason}"
    if not alert.verified:
        label += " (unverified)"
    no_news = _no_news(alert, n_company)
    catalysts = [e for e in alert.context if e.kind == "catalyst"]
    if alert.cause == "macro" and catalysts:
        found = f" — {catalysts[0].source}" if catalysts[0].source else ""
        return f"{label}: {catalysts[0].title}{found} ({no_news}; moved with peers)"
    if alert.cause == "sector":
        return f"{label}: the group moved together ({no_news})"
    return f"{label}: {no_news}, and the market around it did not move the same way"


def _held_field(held: HeldAlert) -> Field:
    try:
        when = held.at.astimezone(ZoneInfo(held.zone))
    except (ValueError, ZoneInfoNotFoundError):
        when = held.at
    cause = CAUSE_LABELS[held.cause].lower()
    return Field(held.symbol, f"{fmt_pct(held.pct)} · {cause} · {fmt_time(when)}")


def render_summary(summary: QuietSummary, at: datetime) -> Message:
    """The one message listing what quiet hours held: symbol, move, cause and time of each."""
    items = summary.items
    window = f"quiet hours {summary.window}" if summary.window else "quiet hours"
    count = _held_count(items)
    shown = items[:MAX_SUMMARY_FIELDS]
    more = len(items) - len(shown)
    line = f"{count} held during {window}, sent now that they are over."
    if more:
        line += f" The first {len(shown)} moves are listed; {more} more not shown."
    return Message(
        title=f"Held during {window}: {count}",
        direction=None,
        headline="",
        cause=None,
        cause_line=line,
        fields=tuple(_held_field(h) for h in shown),
        footer=f"Quiet hours summary · {fmt_time(at)}",
        at=at,
    )


def _held_count(items: Sequence[HeldAlert]) -> str:
    """ "1 alert", or "2 alerts (7 moves)" when grouped alerts held several symbols each."""
    alerts = len({h.alert_id for h in items})
    count = f"{alerts} alert{'' if alerts == 1 else 's'}"
    return count if alerts == len(items) else f"{count} ({len(items)} moves)"


def render_alert(alert: Alert) -> Message:
    """Alert -> Message: title with the moves, cause line, per-symbol fields, news and context."""
    if alert.held_summary is not None:
        return render_summary(alert.held_summary, alert.at)
    arrow = ARROWS[alert.direction]
    movers = ", ".join(f"{m.symbol} {fmt_pct(m.pct)}" for m in alert.moves)
    name = alert.group.name if alert.group and len(alert.moves) > 1 else ""
    title = f"{arrow} {name + ': ' if name else ''}{movers}"
    refs = _reference_line(alert)
    peers = _peers_line(alert)
    headline = "; ".join(
        p for p in [f"benchmarks {refs}" if refs else "", f"peers {peers}" if peers else ""] if p
    )
    if alert.escalated:
        headline = f"move widened: {', '.join(alert.escalated)}; " + headline
    if note := spread_note(alert.moves):
        headline = f"{headline}; {note}" if headline else note
    footer = f"Data: {alert.source} · {fmt_time(alert.at)} · {moves_age_text(alert.moves)}"
    return Message(
        title=title,
        direction=alert.direction,
        headline=headline,
        cause=alert.cause,
        cause_line=cause_sentence(alert),
        fields=tuple(move_field(m) for m in alert.moves),
        evidence=_evidence(alert.explanations),
        news=_news_links(alert),
        context=_context_items(alert.context),
        footer=footer,
        at=alert.at,
        symbols=alert.symbols,
        buttons=alert_buttons(alert.symbols),
    )
