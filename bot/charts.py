"""Draw a ChartSpec as a PNG with matplotlib (Agg, no display), cached per symbols and data time."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from handlers.chart_data import ChartSeries, ChartSpec, build_chart_spec
from handlers.groups import GroupIndex
from handlers.models import Alert
from handlers.ports import SessionPaths
from handlers.render import Message

log = logging.getLogger(__name__)

WIDTH_PX, HEIGHT_PX, DPI = 1200, 675, 100
# Readable on light and dark chat themes; none is the benchmark's orange or the market's grey,
# so every alerted symbol and peer gets a colour of its own.
SERIES_COLOURS = (
    "#d62728",
    "#1f77b4",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#843c39",
    "#7b4173",
)
SUBJECT_COLOURS = SERIES_COLOURS  # kept for callers of the old name
ROLE_STYLE = {
    "benchmark": {"color": "#ff7f0e", "linewidth": 2.0, "linestyle": "--", "alpha": 1.0},
    "market": {"color": "#555555", "linewidth": 1.8, "linestyle": ":", "alpha": 1.0},
}
SPARSE_NOTE = "few prices a session (e.g. daily closes): drawn as points, not an intraday path"


def _style(series: ChartSeries, colour_index: int) -> dict[str, object]:
    colour = SERIES_COLOURS[colour_index % len(SERIES_COLOURS)]
    if series.role == "subject":
        return {"color": colour, "linewidth": 2.6, "linestyle": "-", "alpha": 1.0}
    if series.role == "peer":
        return {"color": colour, "linewidth": 1.6, "linestyle": "-", "alpha": 0.8}
    return dict(ROLE_STYLE[series.role])


def series_styles(spec: ChartSpec) -> list[dict[str, object]]:
    """Each line's style: alerted symbols and peers each take the next colour of the palette."""
    styles = []
    coloured = 0
    for series in spec.series:
        styles.append(_style(series, coloured))
        coloured += series.role in ("subject", "peer")
    return styles


def _plot(
    ax: Any, series: ChartSeries, style: dict[str, object], tz: ZoneInfo, sparse: bool
) -> None:
    xs = [at.astimezone(tz) for at, _ in series.points]
    ys = [pct for _, pct in series.points]
    if sparse:
        # A few prices a day: points only (the 0 % line is the previous close).
        ax.plot(
            xs[1:],
            ys[1:],
            linestyle="none",
            marker="o",
            markersize=7,
            label=series.symbol,
            color=style["color"],
            alpha=style["alpha"],
        )
        return
    # The first point is the previous close at the open: the line steps from 0 %.
    ax.plot(
        xs, ys, marker="o", markersize=3, markevery=slice(1, None), label=series.symbol, **style
    )


def render_png(spec: ChartSpec) -> bytes:
    """The chart as PNG bytes (about 1200x675)."""
    # Imported here: matplotlib takes half a second to load, and most commands draw nothing.
    # A Figure made directly (not through pyplot) renders with Agg and needs no display.
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    tz = ZoneInfo(spec.tz)
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor="white")
    ax = fig.add_subplot(1, 1, 1)
    styles = series_styles(spec)
    for series, style in zip(spec.series, styles, strict=True):
        _plot(ax, series, style, tz, spec.sparse)
    label_ys = spread_labels([s.last_pct for s in spec.series])
    for series, style, y in zip(spec.series, styles, label_ys, strict=True):
        end = series.points[-1]
        ax.annotate(
            f" {series.symbol} {end[1]:+.1f} %",
            (end[0].astimezone(tz), end[1]),
            xytext=(end[0].astimezone(tz), y),
            color=str(style["color"]),
            fontsize=10,
            fontweight="bold" if series.role == "subject" else "normal",
            va="center",
        )
    _marks(ax, spec, tz)
    ax.set_title(spec.title, fontsize=14, loc="left")
    ax.set_ylabel("change vs previous close (%)")
    ax.set_xlabel(f"time ({spec.tz})")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:+.0f} %"))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d %H:%M", tz=tz))  # type: ignore[no-untyped-call]
    ax.grid(True, color="#dddddd", linewidth=0.8)
    ax.legend(loc="upper left", fontsize=9, frameon=True)
    ax.margins(x=0.12)
    data = f"data: {spec.source}" + (f" ({SPARSE_NOTE})" if spec.sparse else "")
    fig.text(0.99, 0.01, data, ha="right", fontsize=8, color="#777777")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def spread_labels(values: list[float], min_gap_share: float = 0.045) -> list[float]:
    """Label heights near VALUES but at least a share of the range apart, order kept."""
    if not values:
        return []
    span = max(max(values) - min(values), 1.0)
    gap = span * min_gap_share
    order = sorted(range(len(values)), key=lambda i: values[i])
    placed = list(values)
    for prev, cur in pairwise(order):
        placed[cur] = max(placed[cur], placed[prev] + gap)
    return placed


def _marks(ax: object, spec: ChartSpec, tz: ZoneInfo) -> None:
    """Zero line, the threshold, the alert point and the macro event."""
    ax.axhline(0, color="#999999", linewidth=1, label="previous close")  # type: ignore[attr-defined]
    ax.axhline(  # type: ignore[attr-defined]
        spec.threshold_pct,
        color="#d62728",
        linewidth=1,
        linestyle="-.",
        alpha=0.6,
        label=f"threshold {spec.threshold_pct:+.1f} %",
    )
    marker = spec.marker_at.astimezone(tz)
    ax.axvline(marker, color="#d62728", linewidth=1, alpha=0.4)  # type: ignore[attr-defined]
    if spec.event_label and spec.event_at:
        ax.figure.text(  # type: ignore[attr-defined]
            0.01, 0.01, f"context: {spec.event_label}", ha="left", fontsize=9, color="#8a5a00"
        )


class ChartCache:
    """PNG bytes per chart key, so one alert fanned out to many channels renders once."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.renders = 0

    def png(self, spec: ChartSpec) -> bytes:
        key = spec.cache_key
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        data = render_png(spec)
        with self._lock:
            self.renders += 1
            self._items[key] = data
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return data


def alert_chart(
    alert: Alert,
    paths: SessionPaths,
    groups: GroupIndex,
    threshold_pct: float,
    tz: str,
    source: str,
) -> ChartSpec | None:
    """The chart spec of an alert: its symbols, peers, benchmark and market up to its time."""
    return build_chart_spec(
        alert.symbols,
        alert.at,
        paths,
        groups,
        threshold_pct,
        tz,
        source,
        alert_chart_context(alert, tz),
        alert.peers,
    )


def alert_chart_context(alert: Alert, tz: str) -> list[str]:
    """Macro events worth a chart's footer: catalysts on the alert's day, and only when the
    move is not company news (a results day is not footed with the week's macro event)."""
    if alert.cause == "company":
        return []
    day = alert.at.astimezone(ZoneInfo(tz)).date()
    return [e.title for e in alert.context if e.kind == "catalyst" and e.start <= day <= e.end]


def message_chart_context(message: Message) -> list[str]:
    """The same rule for a /why answer's message (its context is already that day's)."""
    if message.cause == "company":
        return []
    return [c.title for c in message.context if c.kind == "catalyst"]


def chart_filename(alert: Alert | Message) -> str:
    """A stable, readable file name: time, direction and symbols of the alert (or of the
    message rendered from it, which has the same)."""
    stamp = alert.at.strftime("%Y-%m-%dT%H%M") if alert.at else "undated"
    direction = alert.direction.value if alert.direction else "move"
    names = "-".join(s.replace("^", "").replace("=", "") for s in alert.symbols[:5])
    return f"{stamp}-{direction}-{names}.png"


class ChartMaker:
    """Charts for alerts and /why answers from one price-path source, with a shared cache."""

    def __init__(
        self,
        paths: SessionPaths,
        groups: GroupIndex,
        threshold_pct: float,
        tz: str,
        source: str,
        cache: ChartCache | None = None,
    ) -> None:
        self.paths = paths
        self.groups = groups
        self.threshold_pct = threshold_pct
        self.tz = tz
        self.source = source
        self.cache = cache or ChartCache()

    def for_alert(self, alert: Alert) -> bytes | None:
        """PNG of the alert's move (blocking: call it in a worker thread), None without data."""
        spec = alert_chart(alert, self.paths, self.groups, self.threshold_pct, self.tz, self.source)
        return self.cache.png(spec) if spec is not None else None

    def for_symbol(
        self,
        symbol: str,
        at: datetime,
        context: Sequence[str] = (),
        peer_moves: Mapping[str, float] | None = None,
    ) -> bytes | None:
        """PNG of one symbol's session up to AT, as /why shows it (largest PEER_MOVES first)."""
        spec = build_chart_spec(
            [symbol],
            at,
            self.paths,
            self.groups,
            self.threshold_pct,
            self.tz,
            self.source,
            context,
            peer_moves,
        )
        return self.cache.png(spec) if spec is not None else None


async def draw_chart(
    draw: Callable[[], bytes | None],
    what: str,
    usable: Callable[[bytes], str | None] | None = None,
    logger: logging.Logger = log,
) -> bytes | None:
    """DRAW's PNG, drawn in a thread; None when there is none, drawing fails or USABLE names a
    problem, each logged on LOGGER (the adapter's): a chart never stops a message."""
    try:
        png = await asyncio.to_thread(draw)
    except Exception:
        logger.warning("chart for %s failed; sending without it", what, exc_info=True)
        return None
    if png is None:
        logger.info("no chart data for %s; sending without it", what)
        return None
    problem = usable(png) if usable is not None else None
    if problem is not None:
        logger.warning("chart for %s unusable (%s); sending without it", what, problem)
        return None
    return png
