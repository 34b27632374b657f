"""Shared fixtures: paths to bundled and shared data, and stores on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.infra.store import Store
from tests.fake_discord import FakeDiscord

ROOT = Path(__file__).resolve().parents[1]
DEMO_BARS = ROOT / "bot" / "data" / "demo" / "bars"
DEMO_NEWS = ROOT / "bot" / "data" / "demo" / "news.jsonl"
SHARED_DATA = ROOT.parent / "shared" / "data"
SHARED_DAILY = SHARED_DATA / "prices" / "daily"
PG_URL = os.environ.get("MARKETBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEMO_WATCH = "BABA,JD,TCEHY,PDD,BIDU,SPY"


def demo_replay_args(first: str, last: str) -> list[str]:
    """The `replay` arguments for the bundled demo bars and news, watching the China group."""
    return [
        "--bars",
        str(DEMO_BARS),
        "--news",
        str(DEMO_NEWS),
        "--watch",
        DEMO_WATCH,
        "--from",
        first,
        "--to",
        last,
    ]


@pytest.fixture
def shared_daily() -> Path:
    """The real daily bars in ../shared/data; skipped where that folder is absent."""
    if not SHARED_DAILY.is_dir():
        pytest.skip(f"real price data not found at {SHARED_DAILY} (shared/ is not beside the repo)")
    return SHARED_DAILY


@pytest.fixture
def shared_yahoo() -> Path:
    path = SHARED_DATA / "yahoo_api"
    if not path.is_dir():
        pytest.skip(f"recorded Yahoo responses not found at {path}")
    return path


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL to a fresh schema in the local PostgreSQL, dropped afterwards."""
    if os.environ.get("CI") and not _pg_available():
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} (CI expects it)")
    if not _pg_available():
        pytest.skip(f"PostgreSQL is not reachable at {PG_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store on a SQLite file and on the local PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = Store(url)
    yield s
    s.close()


@pytest.fixture
async def discord_fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """The fake Discord (REST and gateway) on a free port, with discord.py pointed at it."""
    server = FakeDiscord()
    await server.start()
    server.install(monkeypatch)
    yield server
    await server.stop()
