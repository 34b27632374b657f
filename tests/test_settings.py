"""Settings: environment, .env, TOML, secrets kept secret, bad values named with the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import PLATFORM_ENV, Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts in an empty folder with no MARKETBOT_/platform variables set."""
    monkeypatch.chdir(tmp_path)
    for name in PLATFORM_ENV.values():
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("MARKETBOT_"):
            monkeypatch.delenv(name, raising=False)


def test_defaults() -> None:
    s = load_settings()
    assert s.default_threshold_pct == 5.0
    assert s.db_url.startswith("sqlite")
    assert s.discord.token is None


def test_environment_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETBOT_DEFAULT_THRESHOLD_PCT", "3.5")
    monkeypatch.setenv("DISCORD_TOKEN", "tok-very-secret")
    s = load_settings()
    assert s.default_threshold_pct == 3.5
    assert s.discord.token is not None
    assert s.discord.token.get_secret_value() == "tok-very-secret"
    assert "tok-very-secret" not in repr(s)
    assert "tok-very-secret" not in str(s.model_dump())


def test_dotenv_and_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-from-dotenv\n")
    (tmp_path / "marketbot.toml").write_text(
        'cooldown_minutes = 30\n[company_names]\n"brk.b" = "Berkshire Hathaway"\n'
    )
    s = load_settings()
    assert s.slack.bot_token is not None
    assert s.slack.bot_token.get_secret_value() == "xoxb-from-dotenv"
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


# --- per-platform sections ------------------------------------------------------------------


def test_platform_sections_from_every_old_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-env")
    monkeypatch.setenv("MARKETBOT_SLACK_SIGNING_SECRET", "sign-env")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:1/api/")
    monkeypatch.setenv("MARKETBOT_DISCORD_REQUESTS_PER_SECOND", "40")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:tg-secret")
    (tmp_path / "marketbot.toml").write_text("slack_port = 3100\nslack_posts_per_minute = 300\n")
    s = load_settings()
    assert s.slack.bot_token is not None and s.slack.bot_token.get_secret_value() == "xoxb-env"
    assert s.slack.signing_secret is not None
    assert s.slack.signing_secret.get_secret_value() == "sign-env"
    assert s.slack.api_url == "http://127.0.0.1:1/api/"
    assert (s.slack.port, s.slack.posts_per_minute) == (3100, 300)
    assert s.discord.requests_per_second == 40
    assert s.telegram.bot_token is not None
    assert s.telegram.bot_token.get_secret_value() == "123:tg-secret"
    assert "tg-secret" not in repr(s) and "tg-secret" not in str(s.model_dump())
    assert load_settings(slack_port=3200).slack.port == 3200, "code may still use flat names"


def test_platform_tables_in_toml_and_their_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "marketbot.toml").write_text(
        "[slack]\nport = 3100\n[telegram]\nmessages_per_second = 20\n"
    )
    (tmp_path / ".env").write_text("MARKETBOT_SLACK_PORT=3300\nTELEGRAM_API_URL=http://x/bot\n")
    s = load_settings()
    assert s.slack.port == 3300, ".env wins over the file"
    assert (s.telegram.mode, s.telegram.messages_per_second) == ("polling", 20)
    assert s.telegram.api_url == "http://x/bot"
    assert s.telegram.file_url == "https://api.telegram.org/file/bot"
    monkeypatch.setenv("MARKETBOT_SLACK_PORT", "3400")
    assert load_settings().slack.port == 3400, "the environment wins over .env"


def test_blank_platform_secrets_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISCORD_TOKEN", "SLACK_APP_TOKEN", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.setenv(name, "  ")
    s = load_settings()
    assert s.discord.token is None and s.slack.app_token is None and s.telegram.bot_token is None


def test_a_typo_in_a_setting_given_in_code_is_refused_not_dropped() -> None:
    hint = r" \(did you mean slack\.port\?\)"
    with pytest.raises(SettingsError, match=r"unknown setting slak_port" + hint):
        load_settings(slak_port=3100)
    with pytest.raises(SettingsError, match=r"unknown setting slack\.prot" + hint):
        load_settings(slack={"prot": 3100})
    with pytest.raises(ValidationError, match=r"slack\.prot"):  # the model itself, too
        Settings(slack={"prot": 3100})  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match=r"Settings: unknown setting slak_port" + hint):
        Settings(slak_port=3100)  # type: ignore[call-arg]
    secret_in_code = load_settings(slack_bot_token="xoxb-1", slack={"port": 3100})
    assert secret_in_code.slack.port == 3100  # code may pass secrets; a file may not


def test_typos_and_secrets_inside_platform_tables_are_named(tmp_path: Path) -> None:
    (tmp_path / "marketbot.toml").write_text(
        '[slack]\nprot = 3000\nbot_token = "xoxb-1"\n[telegram]\nmod = "polling"\n'
    )
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert "unknown setting slack.prot (did you mean slack.port?)" in message
    assert "slack.bot_token is a secret: set SLACK_BOT_TOKEN in the environment" in message
    assert "unknown setting telegram.mod (did you mean telegram.mode?)" in message


def test_bad_platform_value_names_the_setting_and_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for mode in ("carrier-pigeon", "webhook"):  # a webhook mode is not written yet
        monkeypatch.setenv("MARKETBOT_TELEGRAM_MODE", mode)
        with pytest.raises(SettingsError) as info:
            load_settings()
        assert "telegram.mode (env MARKETBOT_TELEGRAM_MODE" in str(info.value)
    monkeypatch.delenv("MARKETBOT_TELEGRAM_MODE")
    monkeypatch.setenv("MARKETBOT_SLACK_PROT", "1")
    with pytest.raises(SettingsError, match="did you mean MARKETBOT_SLACK_PORT"):
        load_settings()
