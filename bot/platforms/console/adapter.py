"""Console notifier: a rich panel per alert, or one JSON object per alert with --json."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.charts import chart_filename
from handlers.freshness import fmt_time, move_age_text, spread_note
from handlers.models import Alert, Destination, Direction, MacroEvent
from handlers.render import Message, alert_confidence


def _round(pct: float | None) -> float | None:
    return None if pct is None else round(pct, 2)


def summary_json(alert: Alert, destinations: tuple[Destination, ...] = ()) -> dict[str, Any]:
    """The JSON form of a quiet-hours summary: the alerts it lists, one per held symbol."""
    summary = alert.held_summary
    held = summary.items if summary is not None else ()
    return {
        "id": alert.id,
        "at": alert.at.isoformat(),
        "kind": "quiet_hours_summary",
        "window": summary.window if summary is not None else "",
        "held": [
            {"symbol": h.symbol, "pct": _round(h.pct), "cause": h.cause, "at": h.at.isoformat()}
            for h in held
        ],
        "destinations": [str(d) for d in destinations],
    }


def alert_json(
    alert: Alert,
    destinations: tuple[Destination, ...] = (),
    thresholds: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """The public JSON form of an alert (see DESIGN.md: at, symbols, moves, benchmark, ...).

    Per symbol: `price`, `previous_close`, `quote_at` (when that price was real), `threshold`
    (None when not known here), `sources`, `simulated` (time made up from a daily bar),
    `closing` (the price is a session close) and `data_age` ("live", "as of close", ...).
    """
    if alert.held_summary is not None:
        return summary_json(alert, destinations)
    thresholds = thresholds or {}
    return {
        "id": alert.id,
        "at": alert.at.isoformat(),
        "direction": alert.direction.value,
        "group": alert.group.id if alert.group else None,
        "symbols": list(alert.symbols),
        "moves": {m.symbol: _round(m.pct) for m in alert.moves},
        "benchmark": {"symbol": alert.benchmark.symbol, "pct": _round(alert.benchmark.pct)},
        "market": (
            {"symbol": alert.moves[0].market.symbol, "pct": _round(alert.moves[0].market.pct)}
            if alert.moves[0].market
            else None
        ),
        "peers": {s: _round(p) for s, p in alert.peers.items()},
        "excess": {m.symbol: _round(m.excess) for m in alert.moves},
        "zscore": {m.symbol: _round(m.zscore) for m in alert.moves},
        "cause": alert.cause,
        "causes": {s: e.cause for s, e in alert.explanations.items()},
        "evidence": {s: e.reason for s, e in alert.explanations.items()},
        "news": [
            {
                "title": n.item.title,
                "kind": n.kind,
                "confidence": round(n.confidence, 3),
                "url": n.item.url,
                "symbol_checked": s,
                "evidence": n.item.evidence,
                "source": n.item.source or None,
            }
            for s, e in alert.explanations.items()
            for n in e.news
        ],
        "verified": alert.verified,
        "confidence": round(alert_confidence(alert), 3),
        "context": [context_json(e) for e in alert.context],
        "escalated": list(alert.escalated),
        "source": alert.source,
        "delayed": alert.delayed,
        "destinations": [str(d) for d in destinations],
        "price": {m.symbol: m.price for m in alert.moves},
        "previous_close": {m.symbol: m.previous_close for m in alert.moves},
        "quote_at": {m.symbol: m.at.isoformat() for m in alert.moves},
        "threshold": {m.symbol: thresholds.get(m.symbol) for m in alert.moves},
        "sources": {m.symbol: m.source for m in alert.moves},
        "simulated": {m.symbol: m.simulated for m in alert.moves},
        "closing": {m.symbol: m.closing for m in alert.moves},
        "data_age": {m.symbol: move_age_text(m) for m in alert.moves},
        "timing_note": spread_note(alert.moves) or None,
    }


def context_json(event: MacroEvent) -> dict[str, Any]:
    """A context entry as DESIGN.md has it: {id, title, summary?, source?, url?} (+ kind, at)."""
    out: dict[str, Any] = {"id": event.id, "title": event.title, "kind": event.kind}
    if event.summary:
        out["summary"] = event.summary
    if event.source:
        out["source"] = event.source
    if event.links:
        out["url"] = event.links[0]
    if event.at is not None:
        out["at"] = event.at.isoformat()
    return out


def message_renderable(message: Message) -> Panel:
    """A rich Panel drawn from the neutral message parts."""
    colour = "green" if message.direction == Direction.UP else "red"
    body: list[Any] = [Text(message.cause_line, style="bold")]
    if message.headline:
        body.append(Text(message.headline))
    table = Table.grid(padding=(0, 2))
    for field in message.fields:
        table.add_row(Text(field.name, style=colour), Text(field.value))
    body.append(table)
    for link in message.news:
        body.append(Text(f"[{link.kind}] {link.title}" + (f" <{link.url}>" if link.url else "")))
    for ctx in message.context:
        label = "Context" if ctx.kind == "catalyst" else "Background"
        found = " · ".join(
            p for p in (ctx.source, fmt_time(ctx.at) if ctx.at else "", ctx.url or "") if p
        )
        body.append(Text(f"{label}: {ctx.title}" + (f" ({found})" if found else ""), style="cyan"))
        if ctx.summary:
            body.append(Text(ctx.summary, style="dim"))
    for line in message.evidence:
        body.append(Text(line, style="dim"))
    return Panel(Group(*body), title=message.title, subtitle=message.footer, border_style=colour)


class ConsoleNotifier:
    """Prints deliveries: panels for people, JSON lines for programs (implements
    bot.app.Notifier; a console has no history to look back in, so no `find`).

    JSON lines describe the whole alert, looked up by its key with ALERTS; with CHARTS_DIR
    each message's chart is written there first and its path noted on NOTES.
    """

    platform = "console"

    def __init__(
        self,
        stream: TextIO,
        as_json: bool = False,
        threshold: float | None = None,
        thresholds: Mapping[str, float] | None = None,
        *,
        alerts: Callable[[str], Alert | None] | None = None,
        charts_dir: Path | None = None,
        notes: Console | None = None,
    ) -> None:
        if as_json and alerts is None:
            raise ValueError("JSON output needs a way to look up the alert behind a key")
        # The threshold each symbol alerts at: its own, else the one for every symbol.
        self.threshold = threshold
        self.thresholds = dict(thresholds or {})
        self.as_json = as_json
        self.alerts = alerts
        self.charts_dir = charts_dir
        self.notes = notes
        self.stream = stream
        self.console = Console(file=stream, width=110, soft_wrap=False)
        self.printed = 0

    def thresholds_of(self, alert: Alert) -> dict[str, float | None]:
        return {s: self.thresholds.get(s, self.threshold) for s in alert.symbols}

    async def send(self, message: Message, channel: str, key: str) -> str:
        self._save_chart(message)
        if self.as_json:
            alert = self.alerts(key) if self.alerts else None
            if alert is None:
                raise LookupError(f"alert {key} is not in the outbox")
            destination = (Destination(self.platform, channel),)
            line = json.dumps(alert_json(alert, destination, self.thresholds_of(alert)))
            self.stream.write(line + "\n")
            self.stream.flush()
        else:
            self.console.print(message_renderable(message))
        self.printed += 1
        return f"{channel}:{self.printed}"

    def _save_chart(self, message: Message) -> None:
        if self.charts_dir is None or message.chart is None:
            return
        path = self.charts_dir / chart_filename(message)
        path.write_bytes(message.chart)
        if self.notes is not None:
            self.notes.print(f"[dim]chart: {path}[/dim]")
