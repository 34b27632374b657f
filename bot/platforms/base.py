"""What every chat platform provides, the registry of them, and the command path they share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from handlers import commands

if TYPE_CHECKING:
    from bot.app import AppContext, Notifier
    from bot.delivery.pacing import PlatformLimits
    from config.settings import Settings

log = logging.getLogger(__name__)

APOLOGY = "Sorry, that could not be answered just now; please try again in a minute."


@dataclass(frozen=True, slots=True)
class Permission:
    """Whether a user may change a channel's settings, and what to tell them if not."""

    allowed: bool
    refusal: str = commands.MANAGE_REFUSAL


PermissionCheck = Callable[[], Awaitable[Permission]]


class Platform(Protocol):
    """One chat platform: its name, limits, secrets, outgoing side and serving loop."""

    @property
    def name(self) -> str: ...

    def limits(self, settings: Settings) -> PlatformLimits:
        """Its documented send limits, with any the operator overrode in settings."""
        ...

    def missing_secrets(self, settings: Settings, mode: str | None) -> list[str]:
        """Each credential this platform needs in MODE that is not set, as 'ENV_NAME (what)'."""
        ...

    def secret_values(self, settings: Settings) -> list[str]:
        """Its secrets' values, for the log redactor."""
        ...

    def notifier(self, ctx: AppContext) -> Notifier:
        """The outgoing side: sends messages to this platform's channels."""
        ...

    def serve(self, ctx: AppContext, mode: str | None) -> Coroutine[Any, Any, None]:
        """Receive commands (and button presses) until cancelled."""
        ...


REGISTRY: dict[str, Platform] = {}


def register(platform: Platform) -> Platform:
    """Add PLATFORM to the registry under its name (called by bot.platforms.registry)."""
    REGISTRY[platform.name] = platform
    return platform


def registered() -> Mapping[str, Platform]:
    return REGISTRY


async def run_command(
    ctx: AppContext, request: commands.CommandRequest, permission: PermissionCheck
) -> commands.Reply:
    """The road every adapter takes: permission only when needed, core off the loop, apology
    on error. PERMISSION is awaited only for commands that change the channel's settings."""
    if commands.needs_manage(request.command, request.text):
        try:
            allowed = await permission()
        except Exception:
            log.exception("permission check for /%s failed", request.command)
            allowed = Permission(False)
        if not allowed.allowed:
            return commands.Reply(allowed.refusal, ok=False)
        request = replace(request, can_manage=True)
    try:
        return await asyncio.to_thread(commands.dispatch, request, ctx, ctx.clock())
    except Exception:
        log.exception("/%s %s failed", request.command, request.text)
        return commands.Reply(APOLOGY, ok=False)
