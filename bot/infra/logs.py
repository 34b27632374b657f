"""Logging setup: plain or JSON lines on stderr, with every configured secret redacted."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from config.settings import Settings

REDACTED = "[redacted]"
HANDLER_NAME = "marketbot"


class RedactSecrets(logging.Filter):
    """Replace any secret value that reaches a log record (message, args or exception text)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in self.secrets:
            message = message.replace(secret, REDACTED)
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, REDACTED)
        record.msg, record.args = message, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False)


def secret_values(settings: Settings) -> list[str]:
    """Every platform's secrets (see bot.platforms.registry), and the adjudicator's key."""
    from bot.platforms.registry import PLATFORMS

    values = [v for p in PLATFORMS for v in p.secret_values(settings)]
    key = settings.llm_api_key
    return [*values, key.get_secret_value()] if key is not None else values


def setup_logging(
    settings: Settings | None,
    verbose: bool = False,
    as_json: bool = False,
    level: int = logging.INFO,
) -> None:
    """Configure the root logger for the CLI and the bot (replacing our earlier handler)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secret_values(settings) if settings else []))
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else level)
    for noisy in ("discord", "apscheduler", "yfinance", "urllib3", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)
