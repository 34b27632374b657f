"""The chat platforms the bot can run on, listed here once (each loads its library lazily)."""

from __future__ import annotations

from collections.abc import Iterable

from bot.platforms.base import Platform
from bot.platforms.discord.platform import DiscordPlatform
from bot.platforms.slack.platform import SlackPlatform
from bot.platforms.telegram.platform import TelegramPlatform

# A new platform is one more entry (the console is not one: it only prints replays).
PLATFORMS: tuple[Platform, ...] = (DiscordPlatform(), SlackPlatform(), TelegramPlatform())


def names() -> tuple[str, ...]:
    return tuple(p.name for p in PLATFORMS)


def platform(name: str) -> Platform:
    """The platform called NAME; KeyError when there is none."""
    for p in PLATFORMS:
        if p.name == name:
            return p
    raise KeyError(name)


def chosen(wanted: Iterable[str]) -> list[Platform]:
    """The platforms named in WANTED, in its order."""
    return [platform(name) for name in wanted]
