"""Slack as a Platform: its limits, tokens and serving; slack_bolt loads only when it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.delivery.pacing import SLACK, PlatformLimits

if TYPE_CHECKING:
    from bot.app import AppContext, Notifier
    from config.settings import Settings

HTTP, SOCKET = "http", "socket"


class SlackPlatform:
    """Slash commands over HTTP or Socket Mode, alerts as Block Kit (bot.platforms.slack)."""

    name = "slack"

    def limits(self, settings: Settings) -> PlatformLimits:
        return SLACK.with_overall(settings.slack.posts_per_minute, 60.0, least=60)

    def missing_secrets(self, settings: Settings, mode: str | None) -> list[str]:
        slack = settings.slack
        missing = ["SLACK_BOT_TOKEN (xoxb-...)"] if slack.bot_token is None else []
        if (mode or HTTP) == HTTP and slack.signing_secret is None:
            missing.append("SLACK_SIGNING_SECRET (needed in HTTP mode)")
        if mode == SOCKET and slack.app_token is None:
            missing.append("SLACK_APP_TOKEN (xapp-..., needed in Socket Mode)")
        return missing

    def secret_values(self, settings: Settings) -> list[str]:
        slack = settings.slack
        secrets = (slack.bot_token, slack.signing_secret, slack.app_token)
        return [s.get_secret_value() for s in secrets if s is not None]

    def notifier(self, ctx: AppContext) -> Notifier:
        """Posts alerts with the bot token; the alert's chart goes into the post's thread."""
        from bot.platforms.slack.adapter import SlackNotifier, slack_client

        return SlackNotifier(slack_client(ctx.settings))

    async def serve(self, ctx: AppContext, mode: str | None) -> None:
        """HTTP mode (the default) on settings.slack.port, or Socket Mode."""
        from bot.platforms.slack.adapter import (
            SlackNotifier,
            create_slack_app,
            serve_slack_http,
            serve_slack_socket,
        )

        current = ctx.notifiers.get(self.name)
        client = current.client if isinstance(current, SlackNotifier) else None
        socket = mode == SOCKET
        app = create_slack_app(ctx, client, socket_mode=socket)
        if socket:
            token = ctx.settings.slack.app_token
            await serve_slack_socket(ctx, token.get_secret_value() if token else "", app=app)
        else:
            await serve_slack_http(ctx, ctx.settings.slack.port, app=app)
