"""Settings model: environment (MARKETBOT_*), .env, and an optional marketbot.toml."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
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


class DiscordSettings(BaseModel):
    """Discord: the bot token and the global request rate paced against."""

    model_config = ConfigDict(extra="forbid")  # only known names reach a section

    token: SecretStr | None = Field(default=None, description="Discord bot token (secret)")
    requests_per_second: int = Field(default=50, ge=1, description="Discord's global limit")


class SlackSettings(BaseModel):
    """Slack: tokens, the HTTP port, the Web API address and the workspace posting rate."""

    model_config = ConfigDict(extra="forbid")  # only known names reach a section

    bot_token: SecretStr | None = Field(
        default=None, description="Slack bot token xoxb-... (secret)"
    )
    signing_secret: SecretStr | None = Field(
        default=None, description="Slack signing secret, HTTP mode (secret)"
    )
    app_token: SecretStr | None = Field(
        default=None, description="Slack app token xapp-..., Socket Mode (secret)"
    )
    port: int = Field(default=3000, ge=1, le=65535, description="HTTP port for Slack events")
    api_url: str = Field(
        default="https://slack.com/api/",
        description="Slack Web API base (tests and proxies point it elsewhere)",
    )
    posts_per_minute: int = Field(default=600, ge=60, description="chat.postMessage per workspace")


class TelegramSettings(BaseModel):
    """Telegram: the bot token, the Bot API addresses, how updates arrive, the message rate."""

    model_config = ConfigDict(extra="forbid")  # only known names reach a section

    bot_token: SecretStr | None = Field(
        default=None, description="Telegram bot token from @BotFather (secret)"
    )
    api_url: str = Field(
        default="https://api.telegram.org/bot",
        description="Bot API base (python-telegram-bot base_url; tests point it elsewhere)",
    )
    file_url: str = Field(
        default="https://api.telegram.org/file/bot", description="Bot API file base (base_file_url)"
    )
    mode: Literal["polling"] = Field(
        default="polling", description="receive updates by long polling (the only mode so far)"
    )
    messages_per_second: int = Field(default=30, ge=1, description="Telegram's global bot limit")


# The per-platform sections: [discord] in TOML, settings.discord in code.
SECTIONS: dict[str, type[BaseModel]] = {
    "discord": DiscordSettings,
    "slack": SlackSettings,
    "telegram": TelegramSettings,
}
# Names each platform documents for its variables, read besides MARKETBOT_<SECTION>_<FIELD>.
PLATFORM_ENV = {
    "discord.token": "DISCORD_TOKEN",
    "slack.bot_token": "SLACK_BOT_TOKEN",
    "slack.signing_secret": "SLACK_SIGNING_SECRET",
    "slack.app_token": "SLACK_APP_TOKEN",
    "slack.api_url": "SLACK_API_URL",
    "telegram.bot_token": "TELEGRAM_BOT_TOKEN",
    "telegram.api_url": "TELEGRAM_API_URL",
}


def section_fields() -> dict[str, FieldInfo]:
    """Every platform setting by its dotted name ('slack.port'), in model order."""
    return {
        f"{section}.{name}": info
        for section, model in SECTIONS.items()
        for name, info in model.model_fields.items()
    }


def _flat_name(key: str) -> str | None:
    """The dotted name of an old flat one ('slack_port' -> 'slack.port'), else None."""
    section, _, rest = key.partition("_")
    dotted = f"{section}.{rest}"
    return dotted if section in SECTIONS and dotted in section_fields() else None


def _is_blank_secret(dotted: str, value: object) -> bool:
    return _is_secret(dotted) and isinstance(value, str) and not value.strip()


def lift_flat_names(data: dict[str, Any]) -> dict[str, Any]:
    """DATA with the old flat names (discord_token, slack_port, ...) moved into their sections
    (a value already in the section wins) and blank secrets dropped (blank means unset)."""
    out = dict(data)
    for key in list(out):
        dotted = _flat_name(key)
        if dotted is not None:
            section, name = dotted.split(".")
            value = out.pop(key)
            nested = out.get(section)
            if nested is None or isinstance(nested, dict):
                out[section] = {name: value, **(nested or {})}
    for section in SECTIONS:
        nested = out.get(section)
        if isinstance(nested, dict):
            out[section] = {
                k: v for k, v in nested.items() if not _is_blank_secret(f"{section}.{k}", v)
            }
    return out


class PlatformEnv(PydanticBaseSettingsSource):
    """The platform sections' variables (DISCORD_TOKEN, MARKETBOT_SLACK_PORT, ...) from the
    environment, then .env; the first of a setting's names that is set is used."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        dotenv = dotenv_values(DOTENV) if Path(DOTENV).is_file() else {}
        places = [{k.upper(): v for k, v in where.items()} for where in (os.environ, dotenv)]
        found: dict[str, Any] = {}
        for dotted in section_fields():
            value = _first_set(dotted, places)
            if value is not None:
                section, name = dotted.split(".")
                found.setdefault(section, {})[name] = value
        return found


def _first_set(dotted: str, places: list[dict[str, str | None]]) -> str | None:
    for place in places:
        for env in env_names(dotted):
            if place.get(env) is not None:
                return place[env]
    return None


class Settings(BaseSettings):
    """Every knob of the bot. Secrets are SecretStr and never printed."""

    model_config = SettingsConfigDict(
        env_prefix="MARKETBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        # Unknown names are refused by load_settings (file, environment, .env and the names
        # given in code, with the closest valid name) and by the platform sections themselves;
        # "forbid" here would also refuse .env lines meant for other tools.
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

    llm_base_url: str | None = Field(
        None, description="OpenAI-compatible Chat Completions server of the optional adjudicator"
    )
    llm_model: str | None = Field(None, description="model name the adjudicator asks for")
    llm_api_key: SecretStr | None = Field(None, description="API key of the adjudicator's server")
    llm_timeout_seconds: float = Field(8.0, gt=0, le=60, description="one adjudication, at most")
    discord: DiscordSettings = Field(default_factory=DiscordSettings, description="Discord")
    slack: SlackSettings = Field(default_factory=SlackSettings, description="Slack")
    telegram: TelegramSettings = Field(default_factory=TelegramSettings, description="Telegram")

    def __init__(self, **values: Any) -> None:
        """A name given in code that no setting reads is refused with the closest valid name,
        not dropped (extra="ignore" only lets .env lines meant for other tools pass); a typo
        inside a platform table is refused by that section (extra="forbid")."""
        named = (k for k in values if not k.startswith("_") and k not in SECTIONS)
        _refuse([p for k in named if (p := _name_problem(k, "Settings", secrets_here=True))])
        super().__init__(**values)

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: object) -> object:
        return lift_flat_names(data) if isinstance(data, dict) else data

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
        platforms = PlatformEnv(settings_cls)
        # Old flat names given in code must keep their precedence over the environment.
        init = init_settings
        if isinstance(init, InitSettingsSource):
            init = InitSettingsSource(settings_cls, lift_flat_names(init.init_kwargs))
        return init, env_settings, platforms, dotenv_settings, toml, file_secret_settings

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


def setting_fields() -> dict[str, FieldInfo]:
    """Every setting by name, platform ones dotted ('discord.token'), in model order."""
    top = {n: i for n, i in Settings.model_fields.items() if n not in SECTIONS}
    return {**top, **section_fields()}


def env_names(name: str) -> list[str]:
    """The environment variables that set setting NAME ('db_url', 'slack.port')."""
    own = ENV_PREFIX + name.replace(".", "_").upper()
    return [PLATFORM_ENV[name], own] if name in PLATFORM_ENV else [own]


def describe(name: str) -> str:
    """What setting NAME does, for the settings table."""
    return setting_fields()[name].description or ""


def _is_secret(name: str) -> bool:
    info = setting_fields().get(name)
    return info is not None and info.annotation == SecretStr | None


def _closest(key: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _unknown_env(names: list[str], where: str) -> list[str]:
    valid = sorted({e for f in setting_fields() for e in env_names(f)} | OTHER_ENV)
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


def _name_problem(key: str, where: str, secrets_here: bool) -> str | None:
    """The problem with setting name KEY given in WHERE, if any (old flat names are read into
    their sections: discord_token is discord.token); a secret belongs in the environment
    unless SECRETS_HERE."""
    name = _flat_name(key) or key
    if _is_secret(name) and not secrets_here:
        return f"{where}: {key} is a secret: set {env_names(name)[0]} in the environment"
    if name in setting_fields() or key in SECTIONS:
        return None
    return f"{where}: unknown setting {key}{_closest(key, list(setting_fields()))}"


def _unknown_names(data: Mapping[str, Any], where: str, secrets_here: bool = False) -> list[str]:
    """A problem per name in DATA (top-level settings, or a platform section's table) that no
    setting reads."""
    problems = []
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict):
            names = [f"{key}.{sub}" for sub in value]
        else:
            names = [key]
        problems += [p for n in names if (p := _name_problem(n, where, secrets_here))]
    return problems


def check_setting_names() -> None:
    """Refuse settings nobody reads: a typo must not silently run on the default."""
    named = bool(os.environ.get(TOML_ENV))
    path = toml_path()
    problems = _unknown_names(_read_toml(path, named), str(path))
    problems += _unknown_env(list(os.environ), "environment")
    if Path(DOTENV).is_file():
        problems += _unknown_env([k for k in dotenv_values(DOTENV) if k], DOTENV)
    _refuse(problems)


def _refuse(problems: list[str]) -> None:
    """Raise one SettingsError listing PROBLEMS, if there are any."""
    if problems:
        raise SettingsError("\n".join(["Invalid settings:", *(f"  - {p}" for p in problems)]))


def describe_settings_error(exc: ValidationError) -> str:
    """One line per bad setting: the field, the env var that sets it, what is wrong."""
    lines = ["Invalid settings:"]
    fields = setting_fields()
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"])
        known = [f for f in (".".join(name.split(".")[:2]), name.split(".")[0]) if f in fields]
        env = env_names(known[0])[0] if known else ENV_PREFIX + name.upper()
        lines.append(f"  - {name} (env {env} or {toml_path()}): {err['msg']}")
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Build Settings from every source, or raise SettingsError with a readable message.
    OVERRIDES (from code) are checked like the file's names: a typo is refused, not dropped."""
    check_setting_names()
    # Top-level names are checked by Settings itself; a platform table's, here, by name.
    tables = {k: v for k, v in overrides.items() if k in SECTIONS}
    _refuse(_unknown_names(tables, "load_settings", secrets_here=True))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_settings_error(exc)) from exc
    except (OSError, ValueError) as exc:
        raise SettingsError(f"Invalid settings file {toml_path()}: {exc}") from exc
