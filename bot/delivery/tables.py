"""Delivery tables (outbox, sent-log, attempts), created with the rest of the store's schema."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.infra.store import Base, UTCDateTime


class SentRow(Base):
    """One platform message posted for an alert in a channel; a retry checks it first."""

    __tablename__ = "sent_messages"
    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class DeliveryAttemptRow(Base):
    """A post of an alert to a channel was started: if no SentRow follows, its outcome is
    unknown (a crash, a dropped connection) and the channel's history is checked first."""

    __tablename__ = "delivery_attempts"
    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class OutboxAlertRow(Base):
    """An alert waiting to be (or already) delivered, with its rendered message.

    The payload is UTF-8 JSON (bot.delivery.payload); rows of earlier versions hold a pickle,
    still read, which is why the column stays binary.
    """

    __tablename__ = "outbox_alerts"
    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class OutboxRow(Base):
    """One alert to one channel: pending until sent, retried with backoff, or given up."""

    __tablename__ = "outbox_deliveries"
    __table_args__ = (UniqueConstraint("alert_id", "platform", "channel"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("outbox_alerts.alert_id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claimed_by: Mapped[str] = mapped_column(String(64), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str] = mapped_column(String(500), default="")
