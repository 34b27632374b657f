"""Settings model: environment (MARKETBOT_*), .env, and an optional marketbot.toml."""

from __future__ import annotations

import difflib
import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from config.loader import DEFAULT_COMPANIES, DEFAULT_GROUPS, DEFAULT_MACRO_EVENTS
from handlers.explain import ExplainParams
from handlers.pipeline import EngineParams
from handlers.symbols import SymbolError, normalize_symbol

TOML_ENV = "MARKETBOT_CONFIG"
DEFAULT_TOML = "marketbot.toml"
ENV_PREFIX = "MARKETBOT_"
DOTENV = ".env"
# MARKETBOT_* variables that are not settings but are read elsewhere: the config path, the
# tests' PostgreSQL, the container entrypoint's command (deploy/entrypoint.sh).
OTHER_ENV = frozenset({TOML_ENV, "MARKETBOT_TEST_PG", "MARKETBOT_BIN"})


EVIDENCE_SOURCES = (
    "yahoo_news",
    "sec_filings",
    "earnings",
    "market_news",
    "economic_calendar",
    "article_leads",
)


class SettingsError(Exception):
    """A setting that cannot be used, with a message naming the field and the fix."""


class Settings(BaseSettings):
    """Every knob of the bot. Secrets are SecretStr and never printed."""

    model_config = SettingsConfigDict(
        env_prefix="MARKETBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        # Unknown names are refused by check_setting_names (file, environment and .env, with the
        # closest valid name); "forbid" here would also refuse .env lines meant for other tools.
        extra="ignore",
        toml_file=DEFAULT_TOML,
    )

    db_url: str = Field(
        "sqlite:///marketbot.db", description="SQLAlchemy URL of the store (SQLite or PostgreSQL)"
    )
    default_threshold_pct: float = Field(
        5.0, gt=0, le=100, description="alert when a symbol moves this % from the previous close"
    )
    cooldown_minutes: float = Field(
        120, ge=0, description="minutes before the same symbol and direction alert again"
    )
    escalation_step_pct: float = Field(
        2.0, gt=0, description="a further move of this % alerts again within the cooldown"
    )
    once_per_session: bool = Field(True, description="repeat a symbol once a session at most")
    group_window_minutes: float = Field(
        30, ge=0, description="moves of one group within this window make one alert"
    )
    stale_after_minutes: float = Field(
        15, gt=0, description="a quote older than this does not alert"
    )
    split_jump_pct: float = Field(
        40.0, gt=0, description="a jump this large is checked as a possible split or bad data"
    )
    co_move_ratio: float = Field(
        0.5, gt=0, le=1, description="share of a move its benchmark must match to be sector-wide"
    )
    news_fallback_hours: float = Field(
        24, gt=0, description="how far back news is searched when the session start is unknown"
    )
    groups_file: Path = Field(DEFAULT_GROUPS, description="symbol groups, benchmarks and peers")
    macro_events_file: Path = Field(
        DEFAULT_MACRO_EVENTS, description="dated macro events (replace with your own file)"
    )
    companies_file: Path = Field(
        DEFAULT_COMPANIES, description="company names the news classifier recognises"
    )
    company_names: dict[str, str] = Field(
        default_factory=dict, description="extra symbol -> company name pairs (TOML table)"
    )
    admins: list[str] = Field(
        default_factory=list,
        description='user ids allowed to change watchlists and mutes (env: a JSON list, ["U0123"])',
    )
    poll_interval_seconds: float = Field(
        60, ge=5, description="seconds between price polls while markets are open"
    )
    yahoo_requests_per_second: float = Field(2.0, gt=0, description="cap on requests to Yahoo")
    discord_requests_per_second: int = Field(50, ge=1, description="Discord's global limit")
    slack_posts_per_minute: int = Field(600, ge=60, description="chat.postMessage per workspace")
    pacing_margin: float = Field(0.05, ge=0, lt=0.5, description="stay this share under limits")
    stream_quotes: bool = Field(False, description="legacy: price_feed=stream does this now")
    price_feed: Literal["stream", "poll"] = Field(
        "stream", description="stream quotes with batched polling as fallback, or only poll"
    )
    yahoo_batch_size: int = Field(150, ge=1, le=500, description="symbols per v7 quote request")
    stream_url: str = Field(
        "wss://streamer.finance.yahoo.com/?version=2", description="Yahoo quote stream address"
    )
    stream_silence_seconds: float = Field(90, gt=0, description="poll when the stream is quiet")
    extended_hours: bool = Field(False, description="alert on pre- and post-market quotes")
    log_json: bool = Field(False, description="logs of `marketbot run` as JSON lines")
    # Evidence behind every "why" (bot/evidence.py): which sources, and one deadline for all.
    evidence_sources: list[str] = Field(
        default_factory=lambda: list(EVIDENCE_SOURCES),
        description="evidence sources to ask, concurrently",
    )
    evidence_deadline_seconds: float = Field(6.0, gt=0, description="one deadline, all sources")
    sec_user_agent: str | None = Field(
        None, description="'Your Name you@example.com': the SEC requires it; unset disables EDGAR"
    )
    sec_www_url: str = Field("https://www.sec.gov", description="SEC site (ticker map)")
    sec_data_url: str = Field("https://data.sec.gov", description="SEC data API (filings)")
    market_news_symbols: list[str] = Field(
        default_factory=list, description="extra market symbols whose news is macro evidence"
    )
    market_news_topics: dict[str, list[str]] = Field(
        default_factory=dict,
        description='region -> Yahoo news searches, e.g. {"CN": ["China economy"]}',
    )
    article_timeout_seconds: float = Field(4.0, gt=0, description="one article fetch, at most")
    article_max_bytes: int = Field(1_000_000, ge=10_000, description="article size cap, bytes")
    article_allow_private: bool = Field(False, description="tests only: fetch local addresses")

    discord_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("DISCORD_TOKEN", "MARKETBOT_DISCORD_TOKEN"),
        description="Discord bot token (secret)",
    )
    slack_bot_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SLACK_BOT_TOKEN", "MARKETBOT_SLACK_BOT_TOKEN"),
        description="Slack bot token xoxb-... (secret)",
    )
    slack_signing_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "MARKETBOT_SLACK_SIGNING_SECRET"),
        description="Slack signing secret, HTTP mode (secret)",
    )
    slack_app_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SLACK_APP_TOKEN", "MARKETBOT_SLACK_APP_TOKEN"),
        description="Slack app token xapp-..., Socket Mode (secret)",
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible Chat Completions server of the optional adjudicator"
    )
    llm_model: str | None = Field(None, description="model name the adjudicator asks for")
    llm_api_key: SecretStr | None = Field(None, description="API key of the adjudicator's server")
    llm_timeout_seconds: float = Field(8.0, gt=0, le=60, description="one adjudication, at most")
    slack_port: int = Field(3000, ge=1, le=65535, description="HTTP port for Slack events")
    slack_api_url: str = Field(
        "https://slack.com/api/",
        validation_alias=AliasChoices("SLACK_API_URL", "MARKETBOT_SLACK_API_URL"),
        description="Slack Web API base (tests and proxies point it elsewhere)",
    )

    @field_validator(
        "discord_token", "slack_bot_token", "slack_signing_secret", "slack_app_token", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `DISCORD_TOKEN=` copied from .env.example means "not set", not an empty token.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("evidence_sources")
    @classmethod
    def _known_sources(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in EVIDENCE_SOURCES]
        if unknown:
            raise ValueError(
                f"unknown {', '.join(unknown)}; choose from {', '.join(EVIDENCE_SOURCES)}"
            )
        return value

    @field_validator("company_names")
    @classmethod
    def _company_keys(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for sym, name in value.items():
            try:
                out[normalize_symbol(sym)] = name
            except SymbolError as exc:
                raise ValueError(f"company_names key: {exc}") from exc
        return out

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path())
        return init_settings, env_settings, dotenv_settings, toml, file_secret_settings

    def engine_params(self) -> EngineParams:
        return EngineParams(
            default_threshold_pct=self.default_threshold_pct,
            cooldown=timedelta(minutes=self.cooldown_minutes),
            escalation_step_pct=self.escalation_step_pct,
            once_per_session=self.once_per_session,
            group_window=timedelta(minutes=self.group_window_minutes),
            stale_after=timedelta(minutes=self.stale_after_minutes),
            split_jump_pct=self.split_jump_pct,
            news_fallback_hours=self.news_fallback_hours,
            explain=ExplainParams(co_move_ratio=self.co_move_ratio),
        )


def toml_path() -> Path:
    """The settings file: $MARKETBOT_CONFIG, else marketbot.toml in the current folder."""
    return Path(os.environ.get(TOML_ENV) or DEFAULT_TOML)


def env_names(name: str) -> list[str]:
    """The environment variables that set field NAME."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(c) for c in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [ENV_PREFIX + name.upper()]


def _is_secret(name: str) -> bool:
    return Settings.model_fields[name].annotation == SecretStr | None


def _closest(key: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _unknown_env(names: list[str], where: str) -> list[str]:
    valid = sorted({e for f in Settings.model_fields for e in env_names(f)} | OTHER_ENV)
    upper = {e.upper() for e in valid}
    return [
        f"{where}: unknown setting {name}{_closest(name.upper(), valid)}"
        for name in names
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in upper
    ]


def _read_toml(path: Path, named: bool) -> dict[str, Any]:
    if not path.exists():
        if named:
            raise SettingsError(f"{TOML_ENV}={path}: no such file")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"Invalid settings file {path}: cannot read ({exc.strerror})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"Invalid settings file {path}: not valid TOML: {exc}") from exc


def _unknown_toml(data: dict[str, Any], path: Path) -> list[str]:
    fields = sorted(Settings.model_fields)
    problems = []
    for key in data:
        if key in fields and _is_secret(key):
            problems.append(
                f"{path}: {key} is a secret: set {env_names(key)[0]} in the environment"
            )
        elif key not in fields:
            problems.append(f"{path}: unknown setting {key}{_closest(key, fields)}")
    return problems


def check_setting_names() -> None:
    """Refuse settings nobody reads: a typo must not silently run on the default."""
    named = bool(os.environ.get(TOML_ENV))
    path = toml_path()
    problems = _unknown_toml(_read_toml(path, named), path)
    problems += _unknown_env(list(os.environ), "environment")
    if Path(DOTENV).is_file():
        problems += _unknown_env([k for k in dotenv_values(DOTENV) if k], DOTENV)
    if problems:
        raise SettingsError("\n".join(["Invalid settings:", *(f"  - {p}" for p in problems)]))


def describe_settings_error(exc: ValidationError) -> str:
    """One line per bad setting: the field, the env var that sets it, what is wrong."""
    lines = ["Invalid settings:"]
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"])
        field = name.split(".")[0]
        env = env_names(field)[0] if field in Settings.model_fields else ENV_PREFIX + name.upper()
        lines.append(f"  - {name} (env {env} or {toml_path()}): {err['msg']}")
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Build Settings from every source, or raise SettingsError with a readable message."""
    check_setting_names()
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from exc
    except (OSError, ValueError) as exc:
        raise SettingsError(f"Invalid settings file {toml_path()}: {exc}") from exc
