"""The platform registry: one list, adapters loaded only when a platform runs, and run.py,
logs and pacing taking their per-platform parts from it."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.delivery.pacing import DISCORD, SLACK, Rate, limits_for
from bot.infra.logs import secret_values
from bot.platforms import registry
from bot.platforms.base import Platform
from bot.run import PLATFORMS, RunOptions, missing_secrets
from config.settings import PLATFORM_ENV, Settings
from tests.conftest import ROOT
from tests.fakes import TestPlatform

HEAVY = ("discord", "slack_bolt", "slack_sdk", "telegram", "aiohttp")
PROTOCOL = ("limits", "missing_secrets", "secret_values", "notifier", "serve")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No settings from the machine: an empty folder, no platform or MARKETBOT_ variables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name in PLATFORM_ENV.values() or name.startswith("MARKETBOT_"):
            monkeypatch.delenv(name)


def test_replay_and_the_registry_load_no_platform_library() -> None:
    code = (
        "import sys, bot.cli, bot.run, bot.platforms.registry as r, bot.infra.logs as l\n"
        "from config.settings import Settings\n"
        "l.secret_values(Settings(discord_token='abcd'))\n"
        "r.names()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert proc.stdout.strip() == ""


def test_every_listed_platform_has_the_whole_protocol() -> None:
    assert PLATFORMS == registry.names() == ("discord", "slack", "telegram")
    for platform in (*registry.PLATFORMS, TestPlatform.__new__(TestPlatform)):
        for method in PROTOCOL:
            ours = inspect.signature(getattr(platform, method))
            theirs = inspect.signature(getattr(Platform, method))
            assert list(ours.parameters) == list(theirs.parameters)[1:], (platform, method)
    assert registry.platform("slack").name == "slack"


def test_missing_secrets_follow_the_chosen_platforms_and_modes() -> None:
    bare = Settings(discord={}, slack={})
    both = RunOptions(platforms=["discord", "slack"])
    assert missing_secrets(bare, both) == [
        "DISCORD_TOKEN (Discord bot token)",
        "SLACK_BOT_TOKEN (xoxb-...)",
        "SLACK_SIGNING_SECRET (needed in HTTP mode)",
    ]
    socket = RunOptions(platforms=["slack"], slack_mode="socket")
    assert missing_secrets(bare, socket)[-1] == "SLACK_APP_TOKEN (xapp-..., needed in Socket Mode)"
    ready = Settings(discord_token="d-tok", slack={"bot_token": "xoxb-1", "app_token": "xapp-1"})
    assert missing_secrets(ready, socket) == []


def test_secrets_and_limits_come_from_each_platform() -> None:
    settings = Settings(
        discord={"token": "d-token", "requests_per_second": 20},
        slack={"bot_token": "xoxb-1", "signing_secret": "s-1", "app_token": "xapp-1"},
        llm_api_key="k-llm",
    )
    assert sorted(secret_values(settings)) == ["d-token", "k-llm", "s-1", "xapp-1", "xoxb-1"]
    limits = limits_for(settings)
    assert limits["discord"].overall == Rate(20, 1.0) and limits["slack"] == SLACK
    assert limits["discord"].per_channel == DISCORD.per_channel
