"""SQLAlchemy store: watch entries, channel settings, alert log and mutes (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    DateTime,
    Float,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from handlers.models import (
    AlertKey,
    Cause,
    Delivery,
    Destination,
    HeldAlert,
    LoggedAlert,
    QuietWindow,
    WatchEntry,
)

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# Advisory lock keys (any fixed 64-bit numbers, the same in every instance of the bot).
SCHEMA_LOCK_KEY = 0x6D6B74626F74_0001
LOG_KEYS_PER_QUERY = 500
CAUSES = frozenset(get_args(Cause))


class StoreError(Exception):
    """The store could not be opened or written; the message says what to check."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    __tablename__ = "schema_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class WatchRow(Base):
    __tablename__ = "watch_entries"
    __table_args__ = (UniqueConstraint("platform", "channel", "symbol"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(64), index=True)
    symbol: Mapped[str] = mapped_column(String(32), index=True)
    threshold_pct: Mapped[float | None] = mapped_column(Float, nullable=True)
    added_by: Mapped[str] = mapped_column(String(64), default="")
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChannelRow(Base):
    __tablename__ = "channel_settings"
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    threshold_pct: Mapped[float | None] = mapped_column(Float, nullable=True)


class AlertLogRow(Base):
    __tablename__ = "alert_log"
    __table_args__ = (UniqueConstraint("platform", "channel", "symbol", "direction"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(4))
    pct: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    alert_id: Mapped[str] = mapped_column(String(32))


class MuteRow(Base):
    __tablename__ = "mutes"
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    muted_by: Mapped[str] = mapped_column(String(64), default="")


class SeenRequestRow(Base):
    """A platform request already taken (a Slack signature, a trigger id), shared by every
    instance, so that a replay or a redelivery is answered once."""

    __tablename__ = "seen_requests"
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class RuntimeStatusRow(Base):
    """What a running instance last reported about itself, for `marketbot status`."""

    __tablename__ = "runtime_status"
    instance: Mapped[str] = mapped_column(String(80), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QuietHoursRow(Base):
    """A channel's quiet hours: wall-clock times (HH:MM) in an IANA time zone."""

    __tablename__ = "quiet_hours"
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    start: Mapped[str] = mapped_column(String(5))
    end: Mapped[str] = mapped_column(String(5))
    zone: Mapped[str] = mapped_column(String(64))
    set_by: Mapped[str] = mapped_column(String(64), default="")
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())


class HeldAlertRow(Base):
    """One symbol's alert held for a channel during its quiet hours, until the summary."""

    __tablename__ = "held_alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(64), index=True)
    alert_id: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    pct: Mapped[float] = mapped_column(Float)
    cause: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    held_at: Mapped[datetime] = mapped_column(UTCDateTime())
    window: Mapped[str] = mapped_column(String(96), default="")
    zone: Mapped[str] = mapped_column(String(64), default="UTC")


def make_engine(url: str) -> Engine:
    """An engine for URL; in-memory SQLite is shared across threads with one connection."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        engine = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
    elif url.startswith("sqlite"):
        _create_private(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _create_private(url: str) -> None:
    """Create a new SQLite file readable by its owner only (0600) before SQLite opens it;
    SQLite gives its -wal and -shm files the database file's permissions."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.exists():
        return
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass  # another process created it meanwhile
    except OSError as exc:
        raise StoreError(f"cannot open the store at {path}: {exc.strerror}") from exc


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cursor = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL never corrupts and survives a process crash (a power cut
    # may lose the last commits, which delivery reconciliation covers), without an fsync on
    # every commit: each alert post now notes its attempt first.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """All persistence behind plain methods; implements the core's AlertLog protocol."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = make_engine(url)
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
            sqlite = self.engine.dialect.name == "sqlite"
            self._local_lock: threading.RLock | None = threading.RLock() if sqlite else None
            self.migrate()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the store at {_safe_url(url)}: {exc}") from exc

    def migrate(self) -> None:
        """Create missing tables and stamp the schema version (new steps go here).

        On PostgreSQL this runs under an advisory lock: instances started together take turns
        (the second waits, then finds the tables made) instead of racing create_all.
        """
        with self.engine.connect() as conn:
            locked = conn.dialect.name == "postgresql"
            if locked:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
                conn.commit()
            try:
                # The delivery tables live with the delivery code but in this schema.
                import bot.delivery.tables  # noqa: F401

                Base.metadata.create_all(conn)
                with Session(bind=conn) as s:
                    self._stamp(s)
                    s.commit()
                conn.commit()
            finally:
                if locked:
                    conn.rollback()
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SCHEMA_LOCK_KEY})
                    conn.commit()

    @staticmethod
    def _stamp(s: Session) -> None:
        row = s.get(SchemaVersion, 1)
        if row is None:
            s.add(SchemaVersion(id=1, version=SCHEMA_VERSION))
        elif row.version > SCHEMA_VERSION:
            raise StoreError(
                f"the store has schema {row.version}, newer than this bot ({SCHEMA_VERSION})"
            )
        else:
            row.version = SCHEMA_VERSION

    @contextmanager
    def session(self) -> Iterator[Session]:
        # SQLite takes one writer at a time and makes the others sleep and retry (its busy
        # handler, in growing steps): threads of this process queue on a lock instead.
        with self._local_lock or nullcontext(), self._sessions.begin() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

    # --- watch entries -------------------------------------------------------------
    def add_watch(self, entries: Iterable[WatchEntry]) -> list[WatchEntry]:
        """Add or update entries (same channel and symbol: threshold updated). Returns them."""
        saved: list[WatchEntry] = []
        with self.session() as s:
            for e in entries:
                row = s.scalar(
                    select(WatchRow).where(
                        WatchRow.platform == e.platform,
                        WatchRow.channel == e.channel,
                        WatchRow.symbol == e.symbol,
                    )
                )
                if row is None:
                    row = WatchRow(
                        platform=e.platform,
                        channel=e.channel,
                        symbol=e.symbol,
                        threshold_pct=e.threshold_pct,
                        added_by=e.added_by,
                        added_at=e.added_at or datetime.now(UTC),
                    )
                    s.add(row)
                elif e.threshold_pct is not None:
                    row.threshold_pct = e.threshold_pct
                saved.append(_entry(row))
        return saved

    def remove_watch(self, dest: Destination, symbols: Iterable[str]) -> list[str]:
        """Remove symbols from a channel; returns those that were there."""
        wanted = list(symbols)
        with self.session() as s:
            rows = s.scalars(
                select(WatchRow).where(
                    WatchRow.platform == dest.platform,
                    WatchRow.channel == dest.channel,
                    WatchRow.symbol.in_(wanted),
                )
            ).all()
            removed = [r.symbol for r in rows]
            for r in rows:
                s.delete(r)
        return removed

    def set_threshold(self, dest: Destination, symbol: str, pct: float) -> bool:
        """Set one symbol's threshold in a channel; False when the channel does not watch it."""
        with self.session() as s:
            row = s.scalar(
                select(WatchRow).where(
                    WatchRow.platform == dest.platform,
                    WatchRow.channel == dest.channel,
                    WatchRow.symbol == symbol,
                )
            )
            if row is None:
                return False
            row.threshold_pct = pct
            return True

    def set_channel_threshold(self, dest: Destination, pct: float | None) -> None:
        with self.session() as s:
            row = s.get(ChannelRow, (dest.platform, dest.channel))
            if row is None:
                s.add(ChannelRow(platform=dest.platform, channel=dest.channel, threshold_pct=pct))
            else:
                row.threshold_pct = pct

    def channel_thresholds(self) -> dict[Destination, float]:
        with self.session() as s:
            rows = s.scalars(select(ChannelRow).where(ChannelRow.threshold_pct.is_not(None)))
            return {Destination(r.platform, r.channel): float(r.threshold_pct or 0) for r in rows}

    def watch_entries(self, dest: Destination | None = None) -> list[WatchEntry]:
        query = select(WatchRow).order_by(WatchRow.platform, WatchRow.channel, WatchRow.symbol)
        if dest is not None:
            query = query.where(
                WatchRow.platform == dest.platform, WatchRow.channel == dest.channel
            )
        with self.session() as s:
            return [_entry(r) for r in s.scalars(query)]

    # --- alert log (handlers.dedupe.AlertLog) ---------------------------------------
    def recent_alerts(self, since: datetime) -> Mapping[AlertKey, LoggedAlert]:
        with self.session() as s:
            rows = s.scalars(select(AlertLogRow).where(AlertLogRow.at >= since))
            return {
                (r.platform, r.channel, r.symbol, r.direction): LoggedAlert(r.pct, r.at)
                for r in rows
            }

    def record(self, deliveries: Iterable[Delivery]) -> None:
        """Remember, per channel and symbol, the latest alerted move."""
        with self.session() as s:
            self.record_in(s, deliveries)

    def record_in(self, s: Session, deliveries: Iterable[Delivery]) -> None:
        """record() inside the caller's transaction (the outbox writes its rows alongside)."""
        latest: dict[AlertKey, tuple[float, datetime, str]] = {}
        for delivery in deliveries:
            alert = delivery.alert
            for dest in delivery.destinations:
                for move in alert.moves:
                    key = (dest.platform, dest.channel, move.symbol, alert.direction.value)
                    latest[key] = (move.pct, alert.at, alert.id)
        existing = self._log_rows(s, list(latest))
        for key, (pct, at, alert_id) in latest.items():
            row = existing.get(key)
            if row is None:
                platform, channel, symbol, direction = key
                s.add(
                    AlertLogRow(
                        platform=platform,
                        channel=channel,
                        symbol=symbol,
                        direction=direction,
                        pct=pct,
                        at=at,
                        alert_id=alert_id,
                    )
                )
            else:
                row.pct, row.at, row.alert_id = pct, at, alert_id

    def _log_rows(self, s: Session, keys: list[AlertKey]) -> dict[AlertKey, AlertLogRow]:
        """The alert-log rows for KEYS, a few queries however many channels (not one each)."""
        row_key = tuple_(
            AlertLogRow.platform, AlertLogRow.channel, AlertLogRow.symbol, AlertLogRow.direction
        )
        found: dict[AlertKey, AlertLogRow] = {}
        for i in range(0, len(keys), LOG_KEYS_PER_QUERY):
            chunk = keys[i : i + LOG_KEYS_PER_QUERY]
            for row in s.scalars(select(AlertLogRow).where(row_key.in_(chunk))):
                found[(row.platform, row.channel, row.symbol, row.direction)] = row
        return found

    def prune_alert_log(self, before: datetime) -> int:
        with self.session() as s:
            result = s.execute(delete(AlertLogRow).where(AlertLogRow.at < before))
            return int(getattr(result, "rowcount", 0) or 0)

    # --- mutes -----------------------------------------------------------------------
    def mute(self, dest: Destination, symbol: str, until: datetime, by: str) -> None:
        with self.session() as s:
            row = s.get(MuteRow, (dest.platform, dest.channel, symbol))
            if row is None:
                s.add(
                    MuteRow(
                        platform=dest.platform,
                        channel=dest.channel,
                        symbol=symbol,
                        until=until,
                        muted_by=by,
                    )
                )
            else:
                row.until, row.muted_by = until, by

    def unmute(self, dest: Destination, symbol: str) -> bool:
        with self.session() as s:
            row = s.get(MuteRow, (dest.platform, dest.channel, symbol))
            if row is None:
                return False
            s.delete(row)
            return True

    def muted(self, now: datetime) -> set[tuple[str, str, str]]:
        with self.session() as s:
            rows = s.scalars(select(MuteRow).where(MuteRow.until > now))
            return {(r.platform, r.channel, r.symbol) for r in rows}

    def mutes(self, dest: Destination, now: datetime) -> dict[str, datetime]:
        with self.session() as s:
            rows = s.scalars(
                select(MuteRow).where(
                    MuteRow.platform == dest.platform,
                    MuteRow.channel == dest.channel,
                    MuteRow.until > now,
                )
            )
            return {r.symbol: r.until for r in rows}

    # --- quiet hours and the alerts held in them ---------------------------------------
    def set_quiet_hours(self, dest: Destination, window: QuietWindow, by: str) -> None:
        with self.session() as s:
            row = s.get(QuietHoursRow, (dest.platform, dest.channel))
            if row is None:
                row = QuietHoursRow(platform=dest.platform, channel=dest.channel)
                s.add(row)
            row.start, row.end = f"{window.start:%H:%M}", f"{window.end:%H:%M}"
            row.zone, row.set_by, row.set_at = window.zone, by, datetime.now(UTC)

    def clear_quiet_hours(self, dest: Destination) -> bool:
        with self.session() as s:
            row = s.get(QuietHoursRow, (dest.platform, dest.channel))
            if row is None:
                return False
            s.delete(row)
            return True

    def quiet_hours(self, dest: Destination | None = None) -> dict[Destination, QuietWindow]:
        """Every channel's quiet hours (or DEST's); a row naming an unknown zone is skipped."""
        query = select(QuietHoursRow)
        if dest is not None:
            query = query.where(
                QuietHoursRow.platform == dest.platform, QuietHoursRow.channel == dest.channel
            )
        with self.session() as s:
            rows = list(s.scalars(query))
        out: dict[Destination, QuietWindow] = {}
        for row in rows:
            try:
                window = QuietWindow(
                    time.fromisoformat(row.start), time.fromisoformat(row.end), row.zone
                )
                ZoneInfo(row.zone)
            except (ValueError, ZoneInfoNotFoundError):
                log.warning("quiet hours of %s:%s unreadable; ignored", row.platform, row.channel)
                continue
            out[Destination(row.platform, row.channel)] = window
        return out

    def hold(self, deliveries: Sequence[Delivery], items: Sequence[HeldAlert]) -> int:
        """Keep ITEMS for the summary (numbered here) and note DELIVERIES in the alert log as
        told (the next tick does not hold them again), in one transaction. Returns rows added."""
        with self.session() as s:
            self.record_in(s, deliveries)
            s.add_all(
                HeldAlertRow(
                    platform=h.destination.platform,
                    channel=h.destination.channel,
                    alert_id=h.alert_id,
                    symbol=h.symbol,
                    pct=h.pct,
                    cause=h.cause,
                    at=h.at,
                    held_at=h.held_at,
                    window=h.window,
                    zone=h.zone,
                )
                for h in items
            )
        return len(items)

    def held_alerts(self, dest: Destination | None = None) -> dict[Destination, list[HeldAlert]]:
        """Held alerts per channel, oldest first."""
        query = select(HeldAlertRow).order_by(HeldAlertRow.id)
        if dest is not None:
            query = query.where(
                HeldAlertRow.platform == dest.platform, HeldAlertRow.channel == dest.channel
            )
        out: dict[Destination, list[HeldAlert]] = {}
        with self.session() as s:
            for row in s.scalars(query):
                held = _held(row)
                out.setdefault(held.destination, []).append(held)
        return out

    def take_held(self, ids: Sequence[int]) -> list[HeldAlert]:
        """Delete the held alerts IDS and return those this call deleted (DELETE ... RETURNING:
        a concurrent caller gets none of them), oldest first."""
        if not ids:
            return []
        with self.session() as s:
            rows = s.scalars(
                delete(HeldAlertRow)
                .where(HeldAlertRow.id.in_(sorted(set(ids))))
                .returning(HeldAlertRow)
            )
            return sorted((_held(r) for r in rows), key=lambda h: h.id)

    # --- requests already seen ------------------------------------------------------

    def first_sighting(self, keys: Iterable[str], now: datetime, keep: timedelta) -> bool:
        """Record KEYS as seen at NOW; False when any was seen within KEEP (a replay).

        Atomic across instances: the primary key makes a second insert of a key fail.
        """
        wanted = [k[:160] for k in dict.fromkeys(keys) if k]
        if not wanted:
            return True
        try:
            with self.session() as s:
                s.execute(delete(SeenRequestRow).where(SeenRequestRow.seen_at < now - keep))
                for key in wanted:
                    s.add(SeenRequestRow(key=key, seen_at=now))
                    s.flush()
        except IntegrityError:
            return False
        return True

    # --- runtime status -----------------------------------------------------------

    def report_status(self, instance: str, payload: dict[str, object], at: datetime) -> None:
        with self.session() as s:
            row = s.get(RuntimeStatusRow, instance)
            text = json.dumps(payload, default=str)
            if row is None:
                s.add(RuntimeStatusRow(instance=instance, payload=text, updated_at=at))
            else:
                row.payload, row.updated_at = text, at

    def statuses(self) -> list[tuple[str, dict[str, object], datetime]]:
        with self.session() as s:
            rows = s.scalars(select(RuntimeStatusRow).order_by(RuntimeStatusRow.updated_at.desc()))
            return [(r.instance, json.loads(r.payload), r.updated_at) for r in rows]


def _entry(row: WatchRow) -> WatchEntry:
    return WatchEntry(
        platform=row.platform,
        channel=row.channel,
        symbol=row.symbol,
        threshold_pct=row.threshold_pct,
        added_by=row.added_by,
        added_at=row.added_at,
    )


def _held(row: HeldAlertRow) -> HeldAlert:
    cause = row.cause if row.cause in CAUSES else "unexplained"
    return HeldAlert(
        id=row.id,
        destination=Destination(row.platform, row.channel),
        alert_id=row.alert_id,
        symbol=row.symbol,
        pct=row.pct,
        cause=cast(Cause, cause),
        at=row.at,
        held_at=row.held_at,
        window=row.window,
        zone=row.zone,
    )


def _safe_url(url: str) -> str:
    """The URL with any password masked, fit for logs and error messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is shown by scheme only
        return url.split(":", 1)[0] + "://…"
