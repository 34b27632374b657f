"""`make bench`: run every benchmark, print each figure next to its goal, write results.json.

`python -m bench tick latency` runs only the sections named (see SECTIONS).
"""

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

from bench import ack, classifier_speed, evidence, fanout, latency, tick, yahoo

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
    rows = [
        [r.symbols, r.entries, r.cpu_ms, r.per_symbol_us, r.peak_mb, r.alerts, r.new_news_cpu_ms]
        for r in results
    ]
    out.print(
        _table(
            "1. Detection tick (detect -> explain -> group -> dedupe); goal: linear, "
            "5,000 symbols under 20 ms",
            [
                "symbols",
                "watch entries",
                "CPU ms/tick",
                "µs/symbol",
                "peak MB",
                "alerts",
                "CPU ms, new stories",
            ],
            rows,
        )
    )
    out.print(
        "   CPU ms/tick: the movers' stories already classified once (verdicts cached); "
        "new stories: the same tick when every mover's headlines are new to the classifier"
    )
    five = next(r for r in results if r.symbols == 5_000)
    per_symbol = [r.per_symbol_us for r in results]
    verdict = {
        "5000_under_20ms": five.cpu_ms < 20,
        "5000_new_stories_under_20ms": five.new_news_cpu_ms < 20,
        "linear_within_2x": max(per_symbol) < 2 * min(per_symbol),
    }
    out.print(f"   goal met: {verdict}")
    return {"results": [asdict(r) for r in results], "goals": verdict}


def run_yahoo(out: Console) -> dict[str, Any]:
    counts, latency = yahoo.main()
    out.print(
        _table(
            "5. Yahoo requests per poll cycle (batched v7 quotes); goal: grows with unique "
            "symbols, not channels",
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


def run_yahoo_scale(out: Console) -> dict[str, Any]:
    costs, timed = yahoo.scale_main()
    out.print(
        _table(
            "5b. Yahoo per poll cycle: batched v7 quotes vs today's per-symbol 5-minute "
            "chart download (fake Yahoo, recorded answer shapes); goal: <= 1 request per 50 "
            "symbols",
            ["method", "symbols", "requests", "sym/req", "KB", "quotes", "local s", "2/s floor s"],
            [
                [
                    c.method,
                    c.symbols,
                    c.requests,
                    c.symbols_per_request,
                    round(c.kilobytes),
                    c.quotes,
                    c.seconds,
                    c.bucket_floor_s,
                ]
                for c in costs
            ],
        )
    )
    out.print(
        f"   one {timed.symbols:,}-symbol v7 cycle under the {yahoo.BUCKET_RATE:g}/s token bucket, "
        f"each request {yahoo.YAHOO_LATENCY_S:g} s: {timed.requests} requests in "
        f"{timed.seconds:.1f} s ({timed.quotes} quotes); goal: inside 60 s"
    )
    batched = [c for c in costs if c.method == "v7"]
    verdict = {
        "one_request_per_50_symbols": all(c.symbols_per_request >= 50 for c in batched),
        "5000_cycle_inside_60s": timed.seconds < 60 and timed.quotes == timed.symbols,
    }
    out.print(
        "   local s: the cycle against the fake with no request limit (parsing cost); "
        "2/s floor s: computed from the request count, one token a request"
    )
    out.print(f"   goal met: {verdict}")
    return {"costs": [asdict(c) for c in costs], "timed_cycle": asdict(timed), "goals": verdict}


def run_ack(out: Console) -> dict[str, Any]:
    results = ack.main()
    out.print(
        _table(
            "4b. /why through the real Discord adapter and the fake Discord (Yahoo 0.3 s a "
            "request); goal: ack under 1 s at p99, answer under 3 s p95 cold",
            ["case", "asks", "ack p50 s", "ack p99 s", "answer p50 s", "answer p95 s"],
            [
                [r.case, r.asks, r.ack_p50_s, r.ack_p99_s, r.answer_p50_s, r.answer_p95_s]
                for r in results
            ],
        )
    )
    verdict = {
        "ack_p99_under_1s": all(r.ack_p99_s < 1.0 for r in results),
        "cold_answer_under_3s": results[0].answer_p95_s < 3.0,
    }
    out.print(f"   goal met: {verdict}")
    return {"results": [asdict(r) for r in results], "goals": verdict}


def run_fanout(out: Console) -> dict[str, Any]:
    results, ratios = fanout.main(progress=lambda m: out.print(f"   {m}"))
    out.print(
        _table(
            "2. One alert to N channels: outbox + pacer ('paced') vs every send at once, "
            "retried on 429 ('naive'); goal: paced >= 90 % of the limit, 429s < 0.5 % of sends",
            [
                "platform",
                "mode",
                "channels",
                "s to last",
                "sends/s",
                "limit/s",
                "share",
                "429s",
                "429s %",
            ],
            [
                [
                    r.platform,
                    r.mode,
                    r.channels,
                    r.seconds,
                    r.sends_per_s,
                    r.limit_per_s,
                    f"{100 * r.share_of_limit:.0f} %",
                    r.rate_limited,
                    r.rate_limited_pct,
                ]
                for r in results
            ],
        )
    )
    out.print(
        _table(
            "   naive / paced",
            [
                "platform",
                "channels",
                "time ratio",
                "send-rate ratio",
                "naive 429s",
                "paced 429s",
                "naive requests/send",
            ],
            [
                [
                    c.platform,
                    c.channels,
                    c.seconds_ratio,
                    c.send_rate_ratio,
                    c.naive_rate_limited,
                    c.paced_rate_limited,
                    c.naive_requests_per_send,
                ]
                for c in ratios
            ],
        )
    )
    verdict = fanout.goals(results)
    out.print(f"   goal met: {verdict}")
    return {
        "results": [asdict(r) for r in results],
        "naive_vs_paced": [asdict(c) for c in ratios],
        "goals": verdict,
    }


def run_latency(out: Console) -> dict[str, Any]:
    results, stats = latency.main(progress=lambda m: out.print(f"   {m}"))
    out.print(
        _table(
            "3. Alert latency, crossing tick -> message at the fake (200 crossings); "
            "goal: streaming p95 under 0.25 s",
            ["mode", "platform", "delivered", "p50 s", "p95 s", "max s"],
            [[r.mode, r.platform, r.delivered, r.p50_s, r.p95_s, r.max_s] for r in results],
        )
    )
    for mode, setup in {r.mode: r.setup for r in results}.items():
        out.print(f"   {mode}: {setup}")
    for st in stats:
        out.print(
            f"   {st.mode}: {st.news_searches} news searches in {st.ticks} ticks "
            f"({st.searches_per_tick:.1f} per tick)"
        )
    verdict = latency.goals(results)
    out.print(f"   goal met: {verdict}")
    return {
        "results": [asdict(r) for r in results],
        "engine": [{**asdict(st), "searches_per_tick": st.searches_per_tick} for st in stats],
        "goals": verdict,
    }


def run_evidence(out: Console) -> dict[str, Any]:
    results = evidence.main()
    out.print(
        _table(
            f"6. Evidence for one alert ({evidence.ALERT[0]} and 4 peers: Yahoo news, SEC filings, "
            f"earnings, market news, economic calendar, article leads), each fake request "
            f"taking {evidence.LATENCY_S:.1f} s; goal: p95 under 1.5 s",
            ["case", "alerts", "symbols", "p50 s", "p95 s", "requests/alert", "timed out"],
            [
                [
                    r.case,
                    r.alerts,
                    r.symbols_per_alert,
                    r.p50_s,
                    r.p95_s,
                    r.requests_per_alert,
                    r.timed_out,
                ]
                for r in results
            ],
        )
    )
    for note in evidence.NOTES:
        out.print(f"   {note}")
    verdict = {r.case: r.p95_s < 1.5 for r in results if r.case != evidence.NO_WARM_UP}
    out.print(f"   goal met: {verdict}")
    return {"results": [asdict(r) for r in results], "goals": verdict}


def run_classifier(out: Console) -> dict[str, Any]:
    result = classifier_speed.main()
    out.print(
        _table(
            "7. classify_item on 1,000 items (half with a 450-character lead); goal: under 1 s",
            ["items", "with lead", "CPU s", "wall s", "µs/item (CPU)", "model loaded", "warm-up s"],
            [[r for r in asdict(result).values()]],
        )
    )
    met = result.model_loaded and result.seconds < classifier_speed.GOAL_S
    out.print(f"   goal met: {met}")
    return {"result": asdict(result), "goal_met": met}


def reference_loop(count: int = 10_000_000) -> float:
    """CPU seconds of a fixed pure-Python loop: how fast this machine is today (shared machines
    differ by 2x and more, and every CPU figure here scales with it)."""
    started = time.process_time()
    total = 0
    for n in range(count):
        total += n
    return round(time.process_time() - started, 3)


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
    chosen = sys.argv[1:] or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        out.print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
        return 2
    report["reference_loop_cpu_s"] = reference_loop()
    out.print(
        f"machine speed: 10 million additions in a Python loop took "
        f"{report['reference_loop_cpu_s']:.2f} s of CPU (the figures below scale with it)"
    )
    for name in chosen:
        report[name] = SECTIONS[name](out)
    report["seconds"] = round(time.perf_counter() - started, 1)
    if chosen != list(SECTIONS):  # a partial run keeps the other sections' last figures
        previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        report = {**previous, **report}
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    out.print(f"wrote {RESULTS} in {report['seconds']} s")
    return 0


SECTIONS = {
    "tick": run_tick,
    "yahoo": run_yahoo,
    "yahoo_scale": run_yahoo_scale,
    "ack": run_ack,
    "fanout": run_fanout,
    "latency": run_latency,
    "evidence": run_evidence,
    "classifier": run_classifier,
}


if __name__ == "__main__":
    sys.exit(main())
