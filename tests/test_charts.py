"""Charts: the right lines rebased to 0 %, a real PNG that is not blank, rendered once per key."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from bot.charts import ChartCache, render_png, spread_labels
from bot.cli import main
from bot.sources.replay import Replay, load_bars
from config.loader import load_groups
from handlers.chart_data import build_chart_spec, chart_symbols, rebase
from tests.conftest import DEMO_BARS, DEMO_NEWS, demo_replay_args
from tests.helpers import NY, at


@pytest.fixture(scope="module")
def replay() -> Replay:
    return Replay(load_bars([DEMO_BARS])[0])


def _decode(png: bytes) -> np.ndarray:  # type: ignore[type-arg]
    return mpimg.imread(io.BytesIO(png), format="png")


def test_baba_chart_lines_on_npc_day(replay: Replay) -> None:
    groups = load_groups()
    spec = build_chart_spec(
        ["BABA"],
        at("2025-03-05", "16:00"),
        replay,
        groups,
        5.0,
        "America/New_York",
        "replay",
        ["NPC opens"],
        {"JD": 6.9, "TCEHY": 6.5, "PDD": 6.0, "BIDU": 5.4},
    )
    assert spec is not None
    lines = {s.symbol: s for s in spec.series}
    assert {"BABA", "JD", "TCEHY", "KWEB", "SPY"} <= set(lines)
    assert lines["BABA"].role == "subject"
    assert lines["KWEB"].role == "benchmark"
    assert lines["SPY"].role == "market"
    for series in spec.series:
        assert series.points[0][1] == 0.0  # rebased to the previous close
    assert lines["BABA"].last_pct == pytest.approx(8.61, abs=0.05)
    assert lines["KWEB"].last_pct == pytest.approx(7.13, abs=0.05)
    assert abs(lines["SPY"].last_pct) < 1.5  # the market flat next to the group
    assert spec.event_label == "NPC opens"


def test_png_decodes_has_size_and_coloured_lines(replay: Replay) -> None:
    spec = build_chart_spec(
        ["BABA"],
        at("2025-03-05", "16:00"),
        replay,
        load_groups(),
        5.0,
        "America/New_York",
        "replay",
    )
    assert spec is not None
    png = render_png(spec)
    assert png.startswith(b"\x89PNG")
    assert len(png) < 150_000
    pixels = _decode(png)
    assert pixels.shape[:2] == (675, 1200)
    rgb = (pixels[:, :, :3] * 255).round().astype(int)
    colours = {tuple(c) for c in rgb.reshape(-1, 3)[::7]}
    # the subject's red and the benchmark's orange are drawn
    assert (0xD6, 0x27, 0x28) in colours
    assert (0xFF, 0x7F, 0x0E) in colours
    assert len(colours) > 20


def test_cache_renders_once_per_key(replay: Replay) -> None:
    groups = load_groups()
    spec = build_chart_spec(
        ["JD"], at("2025-03-06", "11:00"), replay, groups, 5.0, "America/New_York", "replay"
    )
    assert spec is not None
    cache = ChartCache()
    first = cache.png(spec)
    assert all(cache.png(spec) is first for _ in range(50))
    assert cache.renders == 1


def test_chart_symbols_and_rebase_edges() -> None:
    groups = load_groups()
    chosen = chart_symbols(["BABA", "JD"], groups, {"PDD": 1.0, "TCEHY": 4.0})
    assert chosen[:2] == [("BABA", "subject"), ("JD", "subject")]
    assert ("TCEHY", "peer") in chosen
    assert chosen[-2:] == [("KWEB", "benchmark"), ("SPY", "market")]
    assert rebase([]) == ()
    assert rebase([(at("2025-03-05"), 0.0), (at("2025-03-05"), 1.0)]) == ()
    assert spread_labels([1.0, 1.0, 5.0]) == pytest.approx([1.0, 1.18, 5.0])


def test_no_chart_without_prices(replay: Replay) -> None:
    spec = build_chart_spec(
        ["NOPE"], at("2025-03-05"), replay, load_groups(), 5.0, "America/New_York", "replay"
    )
    assert spec is None


def test_replay_writes_alert_charts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo_day = demo_replay_args("2025-03-05", "2025-03-05")
    code = main(["replay", *demo_day, "--charts", str(tmp_path), "--json"])
    assert code == 0
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["2025-03-05T1600-up-BABA-JD-TCEHY-PDD-BIDU.png"]
    assert _decode((tmp_path / files[0]).read_bytes()).shape[:2] == (675, 1200)


def test_chart_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "baba.png"
    when = at("2025-03-05", "16:00").astimezone(NY).isoformat()
    assert main(["chart", "BABA", "--bars", str(DEMO_BARS), "--at", when, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert main(["chart", "$$$", "--bars", str(DEMO_BARS)]) == 2
    assert "$$$" in capsys.readouterr().err


def test_replay_context_makes_alert_and_why_charts() -> None:
    from bot.app import replay_context
    from bot.infra.store import Store
    from config.settings import load_settings
    from handlers import commands

    ctx, replay, clock = replay_context(
        load_settings(db_url="sqlite://"),
        Store("sqlite://"),
        [DEMO_BARS],
        DEMO_NEWS,
        start_at=at("2025-03-05", "16:00"),
    )
    assert ctx.charts is not None
    reply = commands.why(ctx.engine, "BABA", replay, ctx.news, clock())
    png = ctx.why_chart("BABA", reply)
    assert png is not None and png.startswith(b"\x89PNG")
    assert ctx.why_chart("BABA", commands.Reply("no", ok=False)) is None
    context = [c.title for c in reply.message.context] if reply.message else []
    assert ctx.charts.for_symbol("BABA", clock(), context) is png  # cached: same data, same key
