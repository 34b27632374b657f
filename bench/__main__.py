"""`make bench`: run every benchmark, print each figure next to its goal, write results.json."""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
import warnings
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import tick, yahoo

RESULTS = Path(__file__).resolve().parent / "results.json"


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row))
    return table


def run_tick(out: Console) -> dict[str, Any]:
    results = tick.main()
    rows = [[r.symbols, r.entries, r.cpu_ms, r.per_symbol_us, r.peak_mb, r.alerts] for r in results]
    out.print(
        _table(
            "1. Detection tick (detect -> explain -> group -> dedupe); goal: linear, "
            "5,000 symbols under 50 ms",
            ["symbols", "watch entries", "CPU ms/tick", "µs/symbol", "peak MB", "alerts"],
            rows,
        )
    )
    five = next(r for r in results if r.symbols == 5_000)
    per_symbol = [r.per_symbol_us for r in results]
    verdict = {
        "5000_under_50ms": five.cpu_ms < 50,
        "linear_within_2x": max(per_symbol) < 2 * min(per_symbol),
    }
    out.print(f"   goal met: {verdict}")
    return {"results": [asdict(r) for r in results], "goals": verdict}


def run_yahoo(out: Console) -> dict[str, Any]:
    counts, latency = yahoo.main()
    out.print(
        _table(
            "5. Yahoo requests per poll cycle; goal: grows with unique symbols, not channels",
            ["watched symbols", "channels", "HTTP requests", "chart requests"],
            [[c.symbols, c.channels, c.requests, c.chart_requests] for c in counts],
        )
    )
    by_symbols: dict[int, set[int]] = {}
    for c in counts:
        by_symbols.setdefault(c.symbols, set()).add(c.requests)
    flat = all(len(v) == 1 for v in by_symbols.values())
    out.print(f"   goal met (same count whatever the channels): {flat}")
    out.print(
        _table(
            f"4. /why full answer, each Yahoo request taking {yahoo.YAHOO_LATENCY_S:.1f} s; "
            "goal: p95 under 3 s cold",
            ["case", "runs", "p50 s", "p95 s"],
            [[w.case, w.runs, w.p50_s, w.p95_s] for w in latency],
        )
    )
    cold = latency[0]
    out.print(f"   goal met: {cold.p95_s < 3.0}")
    return {
        "requests_per_cycle": [asdict(c) for c in counts],
        "requests_flat_in_channels": flat,
        "why_latency": [asdict(w) for w in latency],
        "why_cold_p95_under_3s": cold.p95_s < 3.0,
    }


def main() -> int:
    warnings.simplefilter("ignore")  # third-party deprecation noise would bury the tables
    logging.basicConfig(level=logging.ERROR)
    out = Console()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}",
    }
    report["tick"] = run_tick(out)
    report["yahoo"] = run_yahoo(out)
    report["seconds"] = round(time.perf_counter() - started, 1)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    out.print(f"wrote {RESULTS} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
