"""Telegram as a Platform: its limits, token and serving; python-telegram-bot loads only when
it runs."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from bot.delivery.pacing import PlatformLimits, Rate

if TYPE_CHECKING:
    from bot.app import AppContext, Notifier
    from config.settings import Settings

PLATFORM = "telegram"
# Telegram's Bot FAQ ("My bot is hitting limits"): about 30 messages per second overall, no
# more than 20 messages per minute in one group (and about one per second in a private chat).
TELEGRAM_OVERALL = Rate(30, 1.0)
TELEGRAM_CHAT_MESSAGES = Rate(20, 60.0)
TELEGRAM = PlatformLimits(
    PLATFORM,
    TELEGRAM_OVERALL,
    TELEGRAM_CHAT_MESSAGES,
    "core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this",
)
TOKEN_HELP = "TELEGRAM_BOT_TOKEN (the bot's token from @BotFather)"


class TelegramPlatform:
    """Commands by long polling, alerts as HTML with inline buttons (telegram/adapter.py)."""

    name = PLATFORM

    def limits(self, settings: Settings) -> PlatformLimits:
        return TELEGRAM.with_overall(settings.telegram.messages_per_second, 1.0, least=1)

    def missing_secrets(self, settings: Settings, mode: str | None) -> list[str]:
        token = settings.telegram.bot_token
        return [] if token is not None and token.get_secret_value() else [TOKEN_HELP]

    def secret_values(self, settings: Settings) -> list[str]:
        token = settings.telegram.bot_token
        return [token.get_secret_value()] if token is not None else []

    def notifier(self, ctx: AppContext) -> Notifier:
        """Posts alerts with the bot that serve then polls with (one bot, shut down once)."""
        from bot.platforms.telegram.adapter import TelegramNotifier, make_bot

        return TelegramNotifier(make_bot(ctx.settings))

    def serve(self, ctx: AppContext, mode: str | None) -> Coroutine[Any, Any, None]:
        from bot.platforms.telegram.adapter import TelegramNotifier, serve_telegram

        current = ctx.notifiers.get(self.name)
        bot = current.bot if isinstance(current, TelegramNotifier) else None
        return serve_telegram(ctx, mode, bot=bot)
