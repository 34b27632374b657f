"""Outbox payloads as versioned JSON: {"v": 1, "alert": ..., "message": ...}.

The encoder and decoder know exactly the dataclasses an alert and its message are made of
(handlers.models, handlers.render) and are guided by their type hints, so a field added there
is carried without a second list to keep in step. Rows written by earlier versions hold a
pickle; those are still read, through an unpickler that builds only those same classes.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pickle
import types
import typing
from datetime import date, datetime, tzinfo
from enum import Enum
from functools import cache
from typing import Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handlers import models, render
from handlers.models import Alert
from handlers.render import Message

VERSION = 1
# The classes a payload may hold; anything else is refused on both sides.
KNOWN: tuple[type, ...] = (
    models.Alert,
    models.Move,
    models.BenchmarkMove,
    models.Explanation,
    models.ClassifiedNews,
    models.NewsItem,
    models.NewsSearch,
    models.MacroEvent,
    models.SymbolGroup,
    models.QuietSummary,
    models.HeldAlert,
    models.Destination,
    render.Message,
    render.Field,
    render.Link,
    render.ContextItem,
    render.Button,
)
# Fields that are not part of what is stored (derived, or attached at send time).
NOT_STORED = {(models.Alert, "_id"), (render.Message, "chart")}
PICKLE_MARK = b"\x80"


class PayloadError(Exception):
    """A payload that cannot be read; the message says why (one line, fit for a log)."""


def encode(alert: Alert, message: Message) -> bytes:
    """The JSON payload of ALERT and its rendered MESSAGE."""
    doc = {"v": VERSION, "alert": _encode(alert), "message": _encode(message)}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def decode(payload: bytes) -> tuple[Alert, Message]:
    """The alert and message of a stored payload (JSON, or a legacy pickle); PayloadError."""
    if payload[:1] == PICKLE_MARK:
        return _unpickle(payload)
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise PayloadError("not a JSON object")
    if doc.get("v") != VERSION:
        raise PayloadError(f"schema version {doc.get('v')!r}, this bot reads {VERSION}")
    try:
        alert = _decode(Alert, doc.get("alert"), "alert")
        message = _decode(Message, doc.get("message"), "message")
    except (TypeError, ValueError, KeyError) as exc:
        raise PayloadError(str(exc)) from None
    return alert, message


# --- encoding --------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, KNOWN):
        cls = type(value)
        return {
            f.name: _encode(getattr(value, f.name))
            for f in dataclasses.fields(typing.cast(Any, value))
            if f.init and (cls, f.name) not in NOT_STORED
        }
    if isinstance(value, datetime):
        return _encode_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in an outbox payload")


def _encode_time(at: datetime) -> str:
    """ISO 8601 with the offset, plus the zone's name when it has one (RFC 9557 style), so
    that a time read back says "EST" where it said so before."""
    zone = at.tzinfo
    text = at.isoformat()
    if isinstance(zone, ZoneInfo) and zone.key:
        return f"{text}[{zone.key}]"
    return text


# --- decoding --------------------------------------------------------------------------


def _decode(hint: Any, data: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return _decode_union(typing.get_args(hint), data, where)
    if origin is Literal:
        if data not in typing.get_args(hint):
            raise ValueError(f"{where}: {data!r} is not one of {typing.get_args(hint)}")
        return data
    if origin is tuple:
        return _decode_tuple(typing.get_args(hint), data, where)
    if origin is dict:
        _key, value_hint = typing.get_args(hint)
        return {str(k): _decode(value_hint, v, f"{where}.{k}") for k, v in _dict(data, where)}
    if isinstance(hint, type):
        return _decode_type(hint, data, where)
    raise TypeError(f"{where}: no decoder for {hint!r}")


def _decode_union(options: tuple[Any, ...], data: Any, where: str) -> Any:
    if data is None and type(None) in options:
        return None
    real = [o for o in options if o is not type(None)]
    if len(real) != 1:
        raise TypeError(f"{where}: ambiguous type {options!r}")
    return _decode(real[0], data, where)


def _decode_tuple(args: tuple[Any, ...], data: Any, where: str) -> tuple[Any, ...]:
    if not isinstance(data, list):
        raise TypeError(f"{where}: expected a list, got {type(data).__name__}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(data))
    if len(args) != len(data):
        raise ValueError(f"{where}: expected {len(args)} items, got {len(data)}")
    return tuple(
        _decode(h, v, f"{where}[{i}]") for i, (h, v) in enumerate(zip(args, data, strict=True))
    )


def _decode_type(cls: type, data: Any, where: str) -> Any:
    if cls in KNOWN:
        return _decode_dataclass(cls, data, where)
    if cls is datetime:
        return _decode_time(_expect(str, data, where), where)
    if cls is date:
        return date.fromisoformat(_expect(str, data, where))
    if issubclass(cls, Enum):
        return cls(data)
    if cls is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise TypeError(f"{where}: expected a number, got {type(data).__name__}")
        return float(data)
    if cls in (str, int, bool, bytes):
        return _expect(cls, data, where)
    raise TypeError(f"{where}: no decoder for {cls.__name__}")


def _decode_dataclass(cls: type, data: Any, where: str) -> Any:
    fields = _dict(data, where)
    given = dict(fields)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init or (cls, f.name) in NOT_STORED:
            continue
        if f.name in given:
            kwargs[f.name] = _decode(hints[f.name], given[f.name], f"{where}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise KeyError(f"{where}: {f.name} missing")
    return cls(**kwargs)


@cache
def _hints(cls: type) -> dict[str, Any]:
    """CLS's field types, resolved once (every stored move, item and field asks again)."""
    return typing.get_type_hints(cls)


def _decode_time(text: str, where: str) -> datetime:
    stamp, _, zone = text.partition("[")
    at = datetime.fromisoformat(stamp)
    if zone:
        try:
            named: tzinfo = ZoneInfo(zone.rstrip("]"))
        except (ZoneInfoNotFoundError, ValueError):
            return at  # the offset alone still gives the right instant
        at = at.astimezone(named)
    return at


def _dict(data: Any, where: str) -> list[tuple[str, Any]]:
    if not isinstance(data, dict):
        raise TypeError(f"{where}: expected an object, got {type(data).__name__}")
    return list(data.items())


def _expect(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, cls) or (cls is int and isinstance(data, bool)):
        raise TypeError(f"{where}: expected {cls.__name__}, got {type(data).__name__}")
    return data


# --- legacy pickles --------------------------------------------------------------------

# Module-level names a pickled (Alert, Message) of earlier versions refers to.
PICKLE_ALLOWED = {
    "handlers.models": {c.__name__ for c in KNOWN if c.__module__ == "handlers.models"}
    | {"Direction"},
    "handlers.render": {c.__name__ for c in KNOWN if c.__module__ == "handlers.render"},
    "datetime": {"datetime", "date", "timezone", "timedelta"},
    "zoneinfo": {"ZoneInfo._unpickle", "ZoneInfo"},
    "zoneinfo._zoneinfo": {"ZoneInfo._unpickle", "ZoneInfo"},
    "builtins": {"getattr"},
    "copyreg": {"_reconstructor", "__newobj__"},
}


class _Unpickler(pickle.Unpickler):
    """Builds only the classes an alert payload is made of: a row is data, not code."""

    def find_class(self, module: str, name: str) -> Any:
        if name in PICKLE_ALLOWED.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of an alert payload")


def _unpickle(payload: bytes) -> tuple[Alert, Message]:
    try:
        loaded = _Unpickler(io.BytesIO(payload)).load()
    except Exception as exc:  # a corrupt or foreign pickle: any error the unpickler raises
        raise PayloadError(f"legacy pickle unreadable ({type(exc).__name__}: {exc})") from None
    match loaded:
        case (Alert() as alert, Message() as message):
            return alert, message
    raise PayloadError(f"legacy pickle holds {type(loaded).__name__}, not (Alert, Message)")
