"""Outbox payloads: versioned JSON that carries a real alert whole, legacy pickles, bad rows."""

from __future__ import annotations

import copyreg
import dataclasses
import io
import json
import logging
import os
import pickle
from datetime import UTC, date, datetime
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.app import replay_context
from bot.delivery import payload as codec
from bot.delivery.outbox import OutboxWorker, enqueue, load_payload, outbox_counts, stored_alert
from bot.delivery.tables import OutboxAlertRow, OutboxRow
from bot.infra.store import Store
from bot.platforms.console.adapter import ConsoleNotifier
from config.settings import load_settings
from handlers import models
from handlers.models import Alert, Delivery, Destination, WatchEntry
from handlers.render import Message, render_alert
from handlers.stages.quiet_hours import summary_delivery
from tests.conftest import DEMO_BARS, DEMO_NEWS
from tests.helpers import at
from tests.test_outbox import Recorder

CHINA = ["BABA", "JD", "TCEHY", "PDD", "BIDU"]


@pytest.fixture(scope="module")
def npc() -> tuple[Alert, Message]:
    """The real NPC-day alert of the demo replay, with its news, context, group and buttons."""
    settings = load_settings(db_url="sqlite://")
    ctx, replay, _ = replay_context(settings, Store("sqlite://"), [DEMO_BARS], DEMO_NEWS)
    entries = [WatchEntry("test", "c1", s, 5.0) for s in CHINA]
    now = at("2025-03-05", "16:00")
    quotes = replay.quotes([*CHINA, "KWEB", "SPY"], now)
    [delivery] = ctx.engine.process_tick(quotes, entries, {}, ctx.store, now, ctx.news).deliveries
    return delivery.alert, render_alert(delivery.alert)


def same(a: Any, b: Any, path: str, seen: set[type]) -> None:
    """Field by field: equal values of the same type, times in the same named zone."""
    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        seen.add(type(a))
        for f in dataclasses.fields(a):
            if (type(a), f.name) not in codec.NOT_STORED:
                same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}", seen)
    elif isinstance(a, tuple | list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]", seen)
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            same(a[k], b[k], f"{path}.{k}", seen)
    elif isinstance(a, datetime):
        assert a == b and a.utcoffset() == b.utcoffset(), path
        assert str(a.tzinfo) == str(b.tzinfo) and a.tzname() == b.tzname(), path
    else:
        assert a == b or (a != a and b != b), f"{path}: {a!r} != {b!r}"  # NaN equals NaN


def test_every_field_of_a_real_alert_survives_json(npc: tuple[Alert, Message]) -> None:
    alert, message = npc
    data = codec.encode(alert, message)
    doc = json.loads(data)
    assert doc["v"] == 1 and set(doc) == {"v", "alert", "message"}
    back_alert, back_message = codec.decode(data)
    seen: set[type] = set()
    same(alert, back_alert, "alert", seen)
    same(message, back_message, "message", seen)
    assert back_alert == alert and back_message == message and back_alert.id == alert.id
    assert isinstance(back_alert.at.tzinfo, ZoneInfo)  # "EST", not "UTC-05:00"
    # The real alert exercised the nested classes, so the comparison above meant something
    # (a quiet-hours summary's classes are checked by the next test).
    assert seen == set(codec.KNOWN) - SUMMARY_CLASSES
    assert render_alert(back_alert) == message  # what a channel sees is unchanged


SUMMARY_CLASSES = {models.QuietSummary, models.HeldAlert, models.Destination}


def test_a_quiet_hours_summary_survives_json() -> None:
    now = at("2025-03-05", "12:00")
    held = [
        models.HeldAlert(
            n, Destination("test", "c1"), f"a{n}", sym, pct, cause, now, now, "22:00-07:00 UTC"
        )
        for n, (sym, pct, cause) in enumerate([("BABA", 8.6, "macro"), ("JD", -5.1, "company")])
    ]
    delivery = summary_delivery(Destination("test", "c1"), held, now)
    message = render_alert(delivery.alert)
    back_alert, back_message = codec.decode(codec.encode(delivery.alert, message))
    seen: set[type] = set()
    same(delivery.alert, back_alert, "alert", seen)
    same(message, back_message, "message", seen)
    assert seen >= SUMMARY_CLASSES and render_alert(back_alert) == message


async def test_a_summary_prints_as_a_json_line_through_the_outbox() -> None:
    now = at("2025-03-05", "12:00")
    where = Destination("console", "stdout")
    held = [models.HeldAlert(1, where, "a1", "BABA", 8.6, "macro", now, now, "22:00-07:00 UTC")]
    store = Store("sqlite://")
    out = io.StringIO()
    printer = ConsoleNotifier(out, as_json=True, alerts=partial(stored_alert, store))
    enqueue(store, [summary_delivery(where, held, now)], now)
    assert await OutboxWorker(store, {"console": printer}).drain() == 1
    line = json.loads(out.getvalue())
    assert (line["kind"], line["window"]) == ("quiet_hours_summary", "22:00-07:00 UTC")
    assert line["held"] == [{"symbol": "BABA", "pct": 8.6, "cause": "macro", "at": now.isoformat()}]
    assert line["destinations"] == ["console:stdout"]


def test_the_chart_is_attached_at_send_time_never_stored(npc: tuple[Alert, Message]) -> None:
    alert, message = npc
    data = codec.encode(alert, dataclasses.replace(message, chart=b"\x89PNG fake"))
    assert b"chart" not in data
    assert codec.decode(data)[1].chart is None


def test_types_out_of_place_are_refused(npc: tuple[Alert, Message]) -> None:
    alert, message = npc
    doc = json.loads(codec.encode(alert, message))
    doc["alert"]["moves"][0]["pct"] = "9.9"
    with pytest.raises(codec.PayloadError, match=r"alert.moves\[0\].pct: expected a number"):
        codec.decode(json.dumps(doc).encode())
    doc = json.loads(codec.encode(alert, message))
    doc["alert"]["cause"] = "aliens"
    with pytest.raises(codec.PayloadError, match=r"alert\.cause: 'aliens' is not one of"):
        codec.decode(json.dumps(doc).encode())
    doc = json.loads(codec.encode(alert, message))
    del doc["message"]["title"]
    with pytest.raises(codec.PayloadError, match="message: title missing"):
        codec.decode(json.dumps(doc).encode())


def _rows(store: Store, alert_id: str, payload: bytes, channel: str = "c1") -> None:
    """An outbox alert and one pending delivery, written as a given version of the bot would."""
    now = datetime.now(UTC)
    with store.session() as s:
        s.add(OutboxAlertRow(alert_id=alert_id, created_at=now, payload=payload))
        s.flush()
        s.add(OutboxRow(alert_id=alert_id, platform="test", channel=channel, next_attempt_at=now))


async def test_a_row_pickled_by_the_previous_version_is_still_delivered(
    npc: tuple[Alert, Message],
) -> None:
    alert, message = npc
    store = Store("sqlite://")
    _rows(store, alert.id, pickle.dumps((alert, message), protocol=5))  # as 6acc09f wrote it
    notifier = Recorder()
    assert await OutboxWorker(store, {"test": notifier}).run_once() == 1
    assert notifier.sent == [(alert.id, "c1")] and notifier.messages == [message]
    assert outbox_counts(store) == {"sent": 1}


class Boom:
    """A pickle that would run a command when loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\x00\xff not a payload", "not JSON"),
        (b'{"v": 2, "alert": {}, "message": {}}', "schema version 2, this bot reads 1"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"v": 1, "alert": {"at": "yesterday"}, "message": {}}', "Invalid isoformat"),
        (pickle.dumps(("a", "b")), "legacy pickle holds tuple"),
        (pickle.dumps(date(2025, 1, 1)), "legacy pickle holds date"),
        (pickle.dumps(Colour.RED), "is not part of an alert payload"),
        (b"\x80\x05garbage", "legacy pickle unreadable"),
    ],
)
async def test_a_row_that_cannot_be_read_fails_alone_with_its_reason(
    npc: tuple[Alert, Message],
    payload: bytes,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alert, _ = npc
    store = Store("sqlite://")
    _rows(store, "0badbadbadbadbad", payload)
    enqueue(store, [Delivery(alert, (Destination("test", "c2"),))], datetime.now(UTC))
    notifier = Recorder()
    worker = OutboxWorker(store, {"test": notifier})
    with caplog.at_level(logging.ERROR):
        assert await worker.run_once() == 2
    assert notifier.sent == [(alert.id, "c2")]  # the good row went out
    assert outbox_counts(store) == {"sent": 1, "failed": 1}  # the bad one failed at once
    assert "outbox alert 0badbadbadbadbad cannot be read" in caplog.text and reason in caplog.text
    assert worker.last_error is not None and reason in worker.last_error
    assert await worker.run_once() == 0  # and is not retried


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    store = Store("sqlite://")
    _rows(store, "0evil0evil0evil0", pickle.dumps(Boom(marker)))
    problem = load_payload(store, "0evil0evil0evil0")
    assert isinstance(problem, str) and "posix.system is not part of an alert payload" in problem
    assert not marker.exists()


def test_a_payload_that_holds_another_alert_is_refused(npc: tuple[Alert, Message]) -> None:
    alert, message = npc
    store = Store("sqlite://")
    _rows(store, "0000000000000000", codec.encode(alert, message))
    problem = load_payload(store, "0000000000000000")
    assert problem == f"alert payload unreadable: it holds alert {alert.id}"


class _BeforeTheCachedId(pickle.Pickler):
    """Pickles alerts as the version before 6acc09f did: their state has no cached id."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is Alert:
            return copyreg.__newobj__, (Alert,), obj.__getstate__()[:-1]  # type: ignore[attr-defined]
        return NotImplemented


async def test_a_pickle_from_before_the_cached_id_is_delivered_under_its_id(
    npc: tuple[Alert, Message],
) -> None:
    alert, message = npc
    buffer = io.BytesIO()
    _BeforeTheCachedId(buffer, protocol=5).dump((alert, message))
    store = Store("sqlite://")
    _rows(store, alert.id, buffer.getvalue())
    notifier = Recorder()
    assert await OutboxWorker(store, {"test": notifier}).run_once() == 1
    assert notifier.sent == [(alert.id, "c1")] and notifier.messages == [message]
