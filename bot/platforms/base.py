"""What every chat platform provides, and the command path and /why chart they share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from bot.charts import draw_chart
from handlers import commands

if TYPE_CHECKING:
    from bot.app import AppContext, Notifier
    from bot.delivery.pacing import PlatformLimits
    from config.settings import Settings

log = logging.getLogger(__name__)

APOLOGY = "Sorry, that could not be answered just now; please try again in a minute."
# A press of a button this version does not know (an older alert, another app's id).
# Our buttons' ids where a platform shares them with other apps (Discord custom_id, Slack
# action_id): this prefix + Button.action_id.
BUTTON_PREFIX = "mb:"
UNKNOWN_BUTTON = "That button is not one this bot understands (it may be from an older version)."


@dataclass(frozen=True, slots=True)
class Permission:
    """Whether a user may change a channel's settings, and what to tell them if not (the
    platform's refusal says who counts as a manager there)."""

    allowed: bool
    refusal: str = commands.MANAGE_REFUSAL


def refusal(managers: str) -> str:
    """The core's refusal, then who counts as a manager on the platform (MANAGERS)."""
    return f"{commands.MANAGE_REFUSAL} {managers}"


PermissionCheck = Callable[[], Awaitable[Permission]]


class Platform(Protocol):
    """One chat platform: its name, limits, secrets, outgoing side and serving loop.

    The platforms are listed in bot.platforms.registry; an implementation imports its chat
    library only inside notifier and serve, so that replays and the CLI never load it.
    """

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
        """The outgoing side: sends messages to this platform's channels. `marketbot run` calls
        it once before serve and keeps it in ctx.notifiers[name], where serve may find the
        client it made."""
        ...

    def serve(self, ctx: AppContext, mode: str | None) -> Coroutine[Any, Any, None]:
        """Receive commands (and button presses) until cancelled."""
        ...


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


async def why_chart(
    ctx: AppContext,
    reply: commands.Reply,
    usable: Callable[[bytes], str | None] | None = None,
    logger: logging.Logger = log,
) -> bytes | None:
    """The chart of a /why answer (ctx.why_chart), or None when charts are off, the answer is
    a refusal or the chart cannot be had (see draw_chart)."""
    if ctx.charts is None or not reply.ok or reply.message is None or not reply.message.symbols:
        return None
    symbol = reply.message.symbols[0]
    draw = partial(ctx.why_chart, symbol, reply)
    return await draw_chart(draw, f"/why {symbol}", usable, logger)
