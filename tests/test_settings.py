"""Settings: environment, .env, TOML, secrets kept secret, bad values named with the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts in an empty folder with no MARKETBOT_/platform variables set."""
    monkeypatch.chdir(tmp_path)
    for name in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("MARKETBOT_"):
            monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    s = load_settings()
    assert s.default_threshold_pct == 5.0
    assert s.db_url.startswith("sqlite")
    assert s.discord_token is None


def test_environment_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETBOT_DEFAULT_THRESHOLD_PCT", "3.5")
    monkeypatch.setenv("DISCORD_TOKEN", "tok-very-secret")
    s = load_settings()
    assert s.default_threshold_pct == 3.5
    assert s.discord_token is not None
    assert s.discord_token.get_secret_value() == "tok-very-secret"
    assert "tok-very-secret" not in repr(s)
    assert "tok-very-secret" not in str(s.model_dump())


def test_dotenv_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-dotenv\n")
    (tmp_path / "marketbot.toml").write_text(
        'cooldown_minutes = 30\n[company_names]\n"brk.b" = "Berkshire Hathaway"\n'
    )
    s = load_settings()
    assert s.slack_bot_token is not None
    assert s.slack_bot_token.get_secret_value() == "xoxb-from-dotenv"
    assert s.cooldown_minutes == 30
    assert s.company_names == {"BRK-B": "Berkshire Hathaway"}
    # the environment wins over the TOML file
    monkeypatch.setenv("MARKETBOT_COOLDOWN_MINUTES", "45")
    assert load_settings().cooldown_minutes == 45


def test_config_file_named_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("poll_interval_seconds = 30\n")
    monkeypatch.setenv("MARKETBOT_CONFIG", str(other))
    assert load_settings().poll_interval_seconds == 30


def test_bad_value_names_field_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETBOT_DEFAULT_THRESHOLD_PCT", "-2")
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "default_threshold_pct" in message
    assert "MARKETBOT_DEFAULT_THRESHOLD_PCT" in message


def test_broken_toml_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "marketbot.toml").write_text("cooldown_minutes = = 3\n")
    with pytest.raises(SettingsError, match="settings"):
        load_settings()


def test_bad_company_symbol(tmp_path: Path) -> None:
    (tmp_path / "marketbot.toml").write_text('[company_names]\n"$$$" = "Nothing"\n')
    with pytest.raises(SettingsError, match="company_names"):
        load_settings()
