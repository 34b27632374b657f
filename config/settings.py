"""Settings model: environment (MARKETBOT_*), .env, and an optional marketbot.toml."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

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


class SettingsError(Exception):
    """A setting that cannot be used, with a message naming the field and the fix."""


class Settings(BaseSettings):
    """Every knob of the bot. Secrets are SecretStr and never printed."""

    model_config = SettingsConfigDict(
        env_prefix="MARKETBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        toml_file=DEFAULT_TOML,
    )

    db_url: str = Field("sqlite:///marketbot.db", description="SQLAlchemy URL of the store")
    default_threshold_pct: float = Field(5.0, gt=0, le=100)
    cooldown_minutes: float = Field(120, ge=0)
    escalation_step_pct: float = Field(2.0, gt=0)
    once_per_session: bool = Field(True, description="repeat a symbol once a session at most")
    group_window_minutes: float = Field(30, ge=0)
    stale_after_minutes: float = Field(15, gt=0)
    split_jump_pct: float = Field(40.0, gt=0)
    co_move_ratio: float = Field(0.5, gt=0, le=1)
    news_fallback_hours: float = Field(24, gt=0)
    groups_file: Path = DEFAULT_GROUPS
    macro_events_file: Path = DEFAULT_MACRO_EVENTS
    companies_file: Path = DEFAULT_COMPANIES
    company_names: dict[str, str] = Field(default_factory=dict)
    admins: list[str] = Field(default_factory=list, description="user ids allowed to edit")
    poll_interval_seconds: float = Field(60, ge=5)
    yahoo_requests_per_second: float = Field(2.0, gt=0)
    discord_requests_per_second: int = Field(50, ge=1, description="Discord's global limit")
    slack_posts_per_minute: int = Field(600, ge=60, description="chat.postMessage per workspace")
    pacing_margin: float = Field(0.05, ge=0, lt=0.5, description="stay this share under limits")
    stream_quotes: bool = Field(False, description="stream quotes; polling becomes the fallback")
    stream_url: str = "wss://streamer.finance.yahoo.com/?version=2"
    stream_silence_seconds: float = Field(90, gt=0, description="poll when the stream is quiet")
    extended_hours: bool = Field(False, description="alert on pre- and post-market quotes")
    log_json: bool = False

    discord_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DISCORD_TOKEN", "MARKETBOT_DISCORD_TOKEN")
    )
    slack_bot_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "MARKETBOT_SLACK_BOT_TOKEN")
    )
    slack_signing_secret: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "MARKETBOT_SLACK_SIGNING_SECRET"),
    )
    slack_app_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "MARKETBOT_SLACK_APP_TOKEN")
    )
    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible Chat Completions server of the optional adjudicator"
    )
    llm_model: str | None = Field(None, description="model name the adjudicator asks for")
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(8.0, gt=0, le=60)
    slack_port: int = Field(3000, ge=1, le=65535)
    slack_api_url: str = Field(
        "https://slack.com/api/",
        validation_alias=AliasChoices("SLACK_API_URL", "MARKETBOT_SLACK_API_URL"),
        description="Slack Web API base (tests and proxies point it elsewhere)",
    )

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
        toml_path = os.environ.get(TOML_ENV, DEFAULT_TOML)
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
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


def describe_settings_error(exc: ValidationError) -> str:
    """One line per bad setting: the field, the env var that sets it, what is wrong."""
    lines = ["Invalid settings:"]
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"])
        env = "MARKETBOT_" + name.upper()
        lines.append(f"  - {name} (env {env} or {DEFAULT_TOML}): {err['msg']}")
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Build Settings from every source, or raise SettingsError with a readable message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from exc
    except (OSError, ValueError) as exc:
        raise SettingsError(f"Invalid settings file: {exc}") from exc
