"""Discord as a Platform: its limits, token and serving; discord.py loads only when it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.delivery.pacing import DISCORD, PlatformLimits

if TYPE_CHECKING:
    from bot.app import AppContext, Notifier
    from config.settings import Settings


class DiscordPlatform:
    """Slash commands over the gateway, alerts as embeds (bot.platforms.discord.adapter)."""

    name = "discord"

    def limits(self, settings: Settings) -> PlatformLimits:
        return DISCORD.with_overall(settings.discord.requests_per_second, 1.0, least=1)

    def missing_secrets(self, settings: Settings, mode: str | None) -> list[str]:
        return ["DISCORD_TOKEN (Discord bot token)"] if settings.discord.token is None else []

    def secret_values(self, settings: Settings) -> list[str]:
        token = settings.discord.token
        return [token.get_secret_value()] if token else []

    def notifier(self, ctx: AppContext) -> Notifier:
        """The bot's client (made here, served later by serve) posting alerts."""
        from bot.platforms.discord.adapter import create_discord_bot

        create_discord_bot(ctx)
        return ctx.notifiers[self.name]

    async def serve(self, ctx: AppContext, mode: str | None) -> None:
        from bot.platforms.discord.adapter import DiscordNotifier, MarketBot, serve_discord

        token = ctx.settings.discord.token
        current = ctx.notifiers.get(self.name)
        made = current.client if isinstance(current, DiscordNotifier) else None
        bot = made if isinstance(made, MarketBot) else None
        await serve_discord(ctx, token.get_secret_value() if token else "", bot=bot)
