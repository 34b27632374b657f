"""A chat platform in memory (after errbot's test backend): push a line, read the reply."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.app import AppContext
from bot.delivery.outbox import stored_alert
from bot.delivery.pacing import PlatformLimits, Rate
from bot.infra.store import Store
from bot.platforms.base import Permission, refusal, run_command
from config.settings import Settings
from handlers import commands
from handlers.models import Alert
from handlers.render import Message

NAME = "test"
MANAGE_REFUSAL = refusal("On the test platform: a manager of the channel.")


@dataclass(frozen=True, slots=True)
class Sent:
    """One message a notifier put in a channel, under its key (the alert's id)."""

    channel: str
    key: str
    message: Message


@dataclass
class MemoryNotifier:
    """Records every message instead of sending it; implements bot.app.Notifier."""

    platform: str = NAME
    sent: list[Sent] = field(default_factory=list)

    async def deliver(self, alert: Alert, message: Message, channels: Sequence[str]) -> None:
        for channel in channels:
            await self.send(message, channel, alert.id)

    async def send(self, message: Message, channel: str, key: str) -> str:
        """Post MESSAGE to CHANNEL under KEY; returns the new message's id."""
        self.sent.append(Sent(channel, key, message))
        return f"{channel}-{len(self.sent)}"

    def in_channel(self, channel: str) -> list[Message]:
        return [s.message for s in self.sent if s.channel == channel]


class AlertRecorder:
    """A notifier that keeps the alert the outbox stored behind each key it is asked to send."""

    def __init__(self, store: Store, platform: str = NAME) -> None:
        self.platform = platform
        self.store = store
        self.alerts: list[Alert] = []

    async def send(self, message: Message, channel: str, key: str) -> str:
        """Record the alert behind KEY; returns a new message id."""
        alert = stored_alert(self.store, key)
        assert alert is not None
        self.alerts.append(alert)
        return f"m{len(self.alerts)}"

    def symbols(self) -> list[str]:
        """Every symbol of every recorded alert, sorted."""
        return sorted(s for a in self.alerts for s in a.symbols)


@dataclass(frozen=True, slots=True)
class Asked:
    """One permission lookup the platform was asked for."""

    user: str
    channel: str


class TestPlatform:
    """A Platform whose users type lines: `await bot.push("/why BABA")` returns the core's Reply.

    Commands take the same road as Discord's and Slack's (bot.platforms.base.run_command):
    the permission is asked only when the command changes something, and every lookup is
    recorded in `asked`. CAN_MANAGE per push says what the lookup answers (an exception:
    the lookup fails).
    """

    __test__ = False  # a helper, not a pytest class
    name = NAME

    def __init__(
        self, ctx: AppContext, *, channel: str = "C1", named_options: bool = False
    ) -> None:
        self.ctx = ctx
        self.channel = channel
        self.named_options = named_options
        self.asked: list[Asked] = []
        self.replies: list[commands.Reply] = []

    async def push(
        self,
        line: str,
        *,
        user: str = "U1",
        channel: str | None = None,
        can_manage: bool | Exception = False,
    ) -> commands.Reply:
        """Answer one typed command line ('/watch add BABA 5') as a user in a channel."""
        command, _, text = line.strip().partition(" ")
        where = channel or self.channel
        request = commands.CommandRequest(
            NAME, where, user, command, text.strip(), named_options=self.named_options
        )

        async def permission() -> Permission:
            self.asked.append(Asked(user, where))
            if isinstance(can_manage, Exception):
                raise can_manage
            return Permission(can_manage, MANAGE_REFUSAL)

        reply = await run_command(self.ctx, request, permission)
        self.replies.append(reply)
        return reply

    # --- the rest of bot.platforms.base.Platform -----------------------------------------

    def limits(self, settings: Settings) -> PlatformLimits:
        return PlatformLimits(NAME, Rate(1000, 1.0), Rate(1000, 1.0), "in memory")

    def missing_secrets(self, settings: Settings, mode: str | None) -> list[str]:
        return []

    def secret_values(self, settings: Settings) -> list[str]:
        return []

    def notifier(self, ctx: AppContext) -> MemoryNotifier:
        return MemoryNotifier()

    async def serve(self, ctx: AppContext, mode: str | None) -> None:
        await asyncio.Event().wait()
