"""Logs: JSON lines when asked, and no secret ever printed."""

from __future__ import annotations

import json
import logging

import pytest

from bot.infra.logs import JsonFormatter, RedactSecrets, setup_logging
from config.settings import load_settings


def test_secrets_are_redacted_in_messages_and_tracebacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = load_settings(discord_token="tok-ABCDEF-123", slack_bot_token="xoxb-999-secret")
    setup_logging(settings, as_json=True)
    log = logging.getLogger("marketbot.test")
    log.info("connecting with %s", "tok-ABCDEF-123")
    try:
        raise RuntimeError("bad token xoxb-999-secret")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert "tok-ABCDEF-123" not in err and "xoxb-999-secret" not in err
    lines = [json.loads(line) for line in err.splitlines()]
    assert lines[0]["message"] == "connecting with [redacted]"
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "marketbot.test"
    assert "[redacted]" in lines[1]["exception"]
    setup_logging(None, level=logging.WARNING)


def test_filter_leaves_plain_records_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "price %s", (3.5,), None)
    assert RedactSecrets([]).filter(record)
    assert JsonFormatter().format(record).startswith('{"time"')
    assert json.loads(JsonFormatter().format(record))["message"] == "price 3.5"
