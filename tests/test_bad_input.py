"""Bad files and bad arguments end in one clear message or a logged skip, never a traceback."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bot.cli import main
from bot.infra.store import Store
from handlers.models import Destination, WatchEntry
from tests.conftest import DEMO_BARS

HEADER = "symbol,date,open,high,low,close,volume\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_csv_missing_a_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,date,open,high,low,volume\nBABA,2025-03-05,1,2,1,100\n")
    code, _, err = run(capsys, "replay", "--bars", str(bad))
    assert code == 2
    assert "missing column(s) close" in err and "Traceback" not in err


def test_negative_price_row_is_skipped_and_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    bars = tmp_path / "x.csv"
    bars.write_text(
        HEADER
        + "BABA,2025-03-03,100,101,99,100,10\n"
        + "BABA,2025-03-04,100,101,-99,100,10\n"
        + "BABA,2025-03-05,100,111,99,110,10\n"
    )
    with caplog.at_level(logging.WARNING):
        code, out, _ = run(capsys, "replay", "--bars", str(bars), "--json", "--threshold", "5")
    assert code == 0
    assert any(
        "x.csv:3" in r.getMessage() and "not a positive price" in r.getMessage()
        for r in caplog.records
    )
    alerts = [json.loads(line) for line in out.splitlines()]
    assert alerts and alerts[0]["symbols"] == ["BABA"]


def test_bad_symbol_in_a_csv_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    bars = tmp_path / "x.csv"
    bars.write_text(HEADER + "$$$,2025-03-03,1,1,1,1,1\nBABA,2025-03-03,100,101,99,100,10\n")
    with caplog.at_level(logging.WARNING):
        code, _, _ = run(capsys, "replay", "--bars", str(bars), "--json")
    assert code == 0
    assert any("$$$" in r.getMessage() for r in caplog.records)


def test_bad_watch_symbol(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "replay", "--bars", str(DEMO_BARS), "--watch", "BABA,$$$")
    assert code == 2 and "'$$$' is not a valid ticker" in err


def test_macro_events_typo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.yaml"
    events.write_text(
        "events:\n  - id: npc\n    title: NPC opens\n    start: 2025-03-05\n    end: 2025-03-07\n"
        "    regoins: [CN]\n"
    )
    code, _, err = run(capsys, "replay", "--bars", str(DEMO_BARS), "--macro-events", str(events))
    assert code == 2
    assert "events.0.regoins: unknown field (a typo?)" in err and "Traceback" not in err


def test_macro_events_bad_yaml_and_dates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.yaml"
    events.write_text("events: [\n")
    code, _, err = run(capsys, "replay", "--bars", str(DEMO_BARS), "--macro-events", str(events))
    assert code == 2 and "not valid YAML" in err
    events.write_text(
        "events:\n  - {id: x, title: xyz, start: 2025-03-07, end: 2025-03-05, regions: [CN]}\n"
    )
    code, _, err = run(capsys, "replay", "--bars", str(DEMO_BARS), "--macro-events", str(events))
    assert code == 2 and "before start" in err


def test_groups_file_with_bad_symbol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    groups = tmp_path / "groups.yaml"
    groups.write_text("groups:\n  g:\n    benchmark: KWEB\n    symbols: [BABA, '$$$']\n")
    code, _, err = run(capsys, "replay", "--bars", str(DEMO_BARS), "--groups", str(groups))
    assert code == 2 and "groups.g.symbols" in err


def test_bad_setting_names_the_field(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MARKETBOT_DEFAULT_THRESHOLD_PCT", "-3")
    code, _, err = run(capsys, "replay", "--bars", str(DEMO_BARS))
    assert code == 2
    assert "default_threshold_pct" in err and "MARKETBOT_DEFAULT_THRESHOLD_PCT" in err


def test_missing_bars_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "replay", "--bars", "/nonexistent/dir")
    assert code == 2 and "no such file or folder" in err


def test_bad_input_loses_nothing_from_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'keep.db'}"
    Store(url).add_watch([WatchEntry("discord", "42", "BABA", 4.0)])
    where = ("--platform", "discord", "--channel", "42")
    code, _, _err = run(capsys, "--db", url, "watch", "add", "$$$", *where)
    assert code == 1
    code, out, _ = run(capsys, "--db", url, "watch", "list", *where)
    assert "BABA ±4 %" in out
    assert Store(url).watch_entries(Destination("discord", "42"))[0].symbol == "BABA"
