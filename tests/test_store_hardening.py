"""The store under concurrent starts and with private files; the request replay table."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.infra.store import SCHEMA_VERSION, Store
from tests.conftest import ROOT

T0 = datetime(2025, 3, 5, 18, 30, tzinfo=UTC)
# Each process sleeps until the same instant, then opens the store (so creates the schema).
OPEN_AT = """
import sys, time
from bot.infra.store import Store
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))
Store(sys.argv[1]).close()
print("opened")
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would give 0644
    try:
        db = tmp_path / "bot.db"
        store = Store(f"sqlite:///{db}")
        store.report_status("i1", {"ok": True}, T0)  # writes: -wal and -shm appear
        modes = {p.name: mode(p) for p in tmp_path.iterdir() if p.name.startswith("bot.db")}
        store.close()
    finally:
        os.umask(old)
    assert set(modes) >= {"bot.db", "bot.db-wal"}
    assert modes == dict.fromkeys(modes, 0o600)


def test_seen_requests_are_refused_once_within_the_window(store: Store) -> None:
    keep = timedelta(minutes=10)
    assert store.first_sighting(["sig:a", "trigger:1"], T0, keep)
    assert not store.first_sighting(["sig:a"], T0 + timedelta(minutes=1), keep)
    assert not store.first_sighting(["sig:b", "trigger:1"], T0 + timedelta(minutes=2), keep)
    assert store.first_sighting(["sig:b"], T0 + timedelta(minutes=3), keep)  # nothing kept
    assert store.first_sighting(["sig:a"], T0 + timedelta(minutes=11), keep)  # pruned


@pytest.mark.postgres
def test_three_processes_creating_the_schema_at_once_all_come_up(
    pg_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "open_store.py"
    script.write_text(OPEN_AT)
    start = time.time() + 3.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), pg_url, str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert all("opened" in out for out in outputs)
    store = Store(pg_url)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, version FROM schema_version")).all()
    store.close()
    assert [tuple(r) for r in rows] == [(1, SCHEMA_VERSION)]
