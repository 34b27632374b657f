"""Discord adapter: slash commands, alerts as embeds with "Why?" and "Mute 1h" buttons."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.utils import MISSING

from bot.app import AppContext
from bot.infra.leader import GATEWAY_LOCK_KEY, Leadership, lead_when_elected
from bot.platforms.base import (
    APOLOGY,
    BUTTON_PREFIX,
    UNKNOWN_BUTTON,
    Permission,
    PermissionCheck,
    refusal,
    run_command,
    why_chart,
)
from bot.platforms.discord.render import (
    NO_MENTIONS,
    carries_alert,
    chart_file,
    chart_problem,
    message_embed,
    nonce_for,
    reply_content,
    with_alert_ref,
    with_chart,
)
from handlers import commands
from handlers.models import Destination
from handlers.render import Button, Message, parse_action_id
from handlers.symbols import SymbolError, normalize_symbol

log = logging.getLogger(__name__)

PLATFORM = "discord"
MANAGE = discord.Permissions(manage_channels=True)
MAX_CHOICES = 25
DEFAULT_READY_TIMEOUT = 2.0
# How far back a post of unknown outcome is looked for (messages, newest first).
RECONCILE_MESSAGES = 100
# How often a waiting instance tries for the gateway, and the holder checks it still holds it.
GATEWAY_CHECK_SECONDS = 2.0
MANAGE_REFUSAL = refusal("On Discord: Manage Channels, or a listed bot admin.")
MAX_CUSTOM_ID = 100  # characters in a button's custom_id (BUTTON_PREFIX included)
MAX_BUTTON_LABEL = 80


class DiscordSetupError(Exception):
    """The bot cannot start or sync: the message says what to fix (never contains the token)."""


class DiscordNotifier:
    """Posts alert messages as embeds; implements bot.app.Notifier and Finder.

    The key goes in the embed footer (so `find` can tell our post) and seeds the nonce; a
    message's chart goes along as an attached PNG shown as the embed image, and a chart
    Discord would refuse leaves the embed alone.
    """

    platform = PLATFORM

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def send(self, message: Message, channel: str, key: str) -> str:
        target = self._channel(channel)
        embed = with_alert_ref(message_embed(message), key)
        png = self._usable_chart(message.chart, key)
        if png is not None:
            embed = with_chart(embed)
        # The nonce with enforce_nonce (set by discord.py) makes Discord answer a retried POST
        # with the message it already created instead of posting a second one.
        sent = await target.send(
            embed=embed,
            file=chart_file(png) if png is not None else MISSING,
            view=button_row(message.buttons) or MISSING,
            nonce=nonce_for(key, channel),
            allowed_mentions=NO_MENTIONS,
        )
        return str(sent.id)

    async def find(self, channel: str, key: str) -> str | None:
        """The id of the bot's own post under KEY among the channel's recent messages.

        A post whose outcome is unknown may have gone out; Discord honours a nonce for a few
        minutes only, so after a longer outage only the history can tell. If it cannot be
        read, None: the post is sent again (with its nonce) rather than risk losing the alert.
        """
        target = self._channel(channel)
        me = self.client.user.id if self.client.user else None
        try:
            async for found in target.history(limit=RECONCILE_MESSAGES):
                mine = me is None or found.author.id == me
                if mine and carries_alert(found.embeds, key):
                    return str(found.id)
        except (discord.DiscordException, aiohttp.ClientError, OSError) as exc:
            log.warning("could not read Discord channel %s history: %s", channel, exc)
        return None

    def _channel(self, channel: str) -> discord.PartialMessageable:
        if not channel.isdigit():
            raise ValueError(f"'{channel}' is not a Discord channel id")
        return self.client.get_partial_messageable(int(channel))

    @staticmethod
    def _usable_chart(png: bytes | None, key: str) -> bytes | None:
        if png is None:
            return None
        problem = chart_problem(png)
        if problem is not None:
            log.warning("chart for alert %s unusable (%s); sending without it", key, problem)
            return None
        return png


class CommandTree(app_commands.CommandTree["MarketBot"]):
    """The bot's command tree; any unexpected error gets an ephemeral apology, not silence."""

    async def on_error(
        self, interaction: discord.Interaction[MarketBot], error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.qualified_name if interaction.command else "?"
        log.error("/%s failed", name, exc_info=error)
        try:
            await send_text(interaction, APOLOGY, ephemeral=True)
        except discord.HTTPException as exc:  # e.g. the interaction expired meanwhile
            log.warning("could not tell the user /%s failed: %s", name, exc)


class MarketBot(discord.Client):
    """A discord.Client with the market commands; default intents, no message content."""

    def __init__(self, ctx: AppContext, *, guild_ready_timeout: float = DEFAULT_READY_TIMEOUT):
        # The bot never joins voice: skip discord.py's start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=discord.Intents.default(),
            allowed_mentions=NO_MENTIONS,
            guild_ready_timeout=guild_ready_timeout,
        )
        self.ctx = ctx
        self.tree = CommandTree(self)
        register_commands(self.tree, ctx)
        self.add_dynamic_items(AlertButton)

    async def on_ready(self) -> None:
        guilds = len(self.guilds)
        log.info("connected to Discord as %s in %d server(s)", self.user, guilds)


def create_discord_bot(
    ctx: AppContext, *, guild_ready_timeout: float = DEFAULT_READY_TIMEOUT
) -> MarketBot:
    """The bot with its commands, registered as ctx.notifiers['discord'] for alerts."""
    bot = MarketBot(ctx, guild_ready_timeout=guild_ready_timeout)
    ctx.notifiers[PLATFORM] = DiscordNotifier(bot)
    return bot


# --- replies ---------------------------------------------------------------------------


async def send_text(
    interaction: discord.Interaction[MarketBot],
    text: str,
    *,
    ephemeral: bool,
    embed: discord.Embed | None = None,
    file: discord.File | None = None,
) -> None:
    """Answer with escaped text (an embed, a file), whether or not the interaction was answered."""
    content = reply_content(text)
    embeds = [embed] if embed is not None else []
    upload = file if file is not None else MISSING
    if interaction.response.is_done():
        await interaction.followup.send(
            content, embeds=embeds, file=upload, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS
        )
    else:
        await interaction.response.send_message(
            content, embeds=embeds, file=upload, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS
        )


async def send_reply(
    interaction: discord.Interaction[MarketBot],
    reply: commands.Reply,
    chart: bytes | None = None,
    *,
    ephemeral: bool = False,
) -> None:
    """A core Reply as a Discord answer: refusals and errors (or all, when EPHEMERAL) only to
    the asker.

    A CHART (PNG) is attached and shown as the embed's image when the reply has an embed.
    """
    embed = message_embed(reply.message) if reply.message is not None else None
    file = None
    if embed is not None and chart is not None:
        embed, file = with_chart(embed), chart_file(chart)
    private = ephemeral or reply.ephemeral or not reply.ok
    await send_text(interaction, reply.text, ephemeral=private, embed=embed, file=file)


def can_manage(interaction: discord.Interaction[MarketBot], admins: Sequence[str]) -> bool:
    """Manage Channels here (overwrites included, as Discord computes it) or a listed admin.

    default_permissions is only a hint server admins can change, so this runs every time.
    """
    perms = interaction.permissions
    listed = str(interaction.user.id) in admins
    return bool(perms.manage_channels or perms.administrator or listed)


def permission(
    interaction: discord.Interaction[MarketBot], admins: Sequence[str]
) -> PermissionCheck:
    """The user's right to change this channel, with Discord's refusal."""

    async def check() -> Permission:
        return Permission(can_manage(interaction, admins), MANAGE_REFUSAL)

    return check


def request(
    interaction: discord.Interaction[MarketBot], command: str, text: str = ""
) -> commands.CommandRequest:
    """The interaction as a core request; Discord's command UI takes named options."""
    return commands.CommandRequest(
        PLATFORM,
        str(interaction.channel_id),
        str(interaction.user.id),
        command,
        text,
        named_options=True,
    )


async def answer(
    ctx: AppContext, interaction: discord.Interaction[MarketBot], command: str, *words: object
) -> None:
    """Answer a command whose typed options, in order, make the text line of the core."""
    text = " ".join(str(w) for w in words if w is not None)
    reply = await run_command(
        ctx, request(interaction, command, text), permission(interaction, ctx.settings.admins)
    )
    await send_reply(interaction, reply)


async def watched_choices(
    ctx: AppContext, interaction: discord.Interaction[MarketBot], current: str
) -> list[app_commands.Choice[str]]:
    """Autocomplete: the channel's watched symbols starting with what was typed."""
    dest = Destination(PLATFORM, str(interaction.channel_id))
    entries = await asyncio.to_thread(ctx.store.watch_entries, dest)
    typed = current.strip().upper().lstrip("$")
    symbols = [e.symbol for e in entries if e.symbol.startswith(typed)]
    return [app_commands.Choice(name=s, value=s) for s in symbols[:MAX_CHOICES]]


# --- /why --------------------------------------------------------------------------------


async def answer_why(
    ctx: AppContext, interaction: discord.Interaction[MarketBot], raw: str
) -> None:
    """Defer at once (Discord allows 3 s), compute in a thread, then follow up."""
    try:
        symbol = normalize_symbol(raw)
    except SymbolError as exc:
        await send_text(interaction, str(exc), ephemeral=True)
        return
    await interaction.response.defer(thinking=True)
    reply = await run_command(
        ctx, request(interaction, "why", symbol), permission(interaction, ctx.settings.admins)
    )
    if not reply.ok:
        # The first follow-up replaces the public "thinking" message; remove it so the error
        # can go to the asker alone.
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.warning("could not remove the /why placeholder: %s", exc)
    await send_reply(interaction, reply, await why_chart(ctx, reply, chart_problem, log))


# --- alert buttons -----------------------------------------------------------------------


class AlertButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=re.escape(BUTTON_PREFIX) + r"(?P<action>.+)",
):
    """An alert's "Why?" or "Mute 1h". The command is in the custom_id, so a press works after
    a restart; it runs for the presser with the typed command's permission check."""

    def __init__(self, button: Button | None, custom_id: str = "") -> None:
        super().__init__(
            discord.ui.Button(
                label=button.label[:MAX_BUTTON_LABEL] if button else "?",
                style=discord.ButtonStyle.secondary,
                custom_id=BUTTON_PREFIX + button.action_id if button else custom_id,
            )
        )
        self.button = button

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
    ) -> AlertButton:
        return cls(parse_action_id(match["action"]), match.string)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        pressed: discord.Interaction[MarketBot] = interaction
        await press(pressed.client.ctx, pressed, self.button)


def button_row(buttons: Sequence[Button]) -> discord.ui.View | None:
    """The alert's buttons as one row; one whose custom_id would be too long is left out."""
    fitting = [b for b in buttons if len(BUTTON_PREFIX + b.action_id) <= MAX_CUSTOM_ID]
    if not fitting:
        return None
    view = discord.ui.View(timeout=None)
    for button in fitting[:5]:
        view.add_item(AlertButton(button))
    return view


async def press(
    ctx: AppContext, interaction: discord.Interaction[MarketBot], button: Button | None
) -> None:
    """Run a pressed button's command; "Why?" is answered to the presser alone (so presses do
    not flood the channel), a refusal too, a mute publicly like the typed command."""
    if button is None:
        log.info("button press with an unknown custom_id")
        await send_text(interaction, UNKNOWN_BUTTON, ephemeral=True)
        return
    why = button.command == "why"
    if why:
        await interaction.response.defer(thinking=True, ephemeral=True)
    asked = commands.CommandRequest(
        PLATFORM, str(interaction.channel_id), str(interaction.user.id), button.command, button.text
    )
    reply = await run_command(ctx, asked, permission(interaction, ctx.settings.admins))
    chart = await why_chart(ctx, reply, chart_problem, log) if why else None
    await send_reply(interaction, reply, chart, ephemeral=why)


# --- registration --------------------------------------------------------------------------


def _pct(value: float | None) -> str | None:
    """A typed percentage as the core's text reads it (5.0 -> '5')."""
    return None if value is None else f"{value:g}"


def register_commands(tree: app_commands.CommandTree[MarketBot], ctx: AppContext) -> None:
    """Add /why, the /watch group, /mute, /unmute, /quiet and /help to TREE, bound to CTX."""
    _register_why(tree, ctx)
    tree.add_command(_watch_group(ctx))
    _register_mute(tree, ctx)
    _register_quiet(tree, ctx)
    _register_help(tree, ctx)


def _register_quiet(tree: app_commands.CommandTree[MarketBot], ctx: AppContext) -> None:
    # No default_permissions: anyone may see the quiet hours; setting them is checked by the core.
    @tree.command(name="quiet", description="Quiet hours here: alerts held, one summary after")
    @app_commands.describe(
        hours="e.g. 22:00-07:00, or off (leave out to see this channel's quiet hours)",
        zone="The channel's time zone, needed with hours: e.g. America/New_York, Europe/London",
    )
    @app_commands.guild_only()
    async def quiet(
        interaction: discord.Interaction[MarketBot],
        hours: str | None = None,
        zone: str | None = None,
    ) -> None:
        await answer(ctx, interaction, "quiet", hours, zone)


def _register_help(tree: app_commands.CommandTree[MarketBot], ctx: AppContext) -> None:
    @tree.command(name="help", description="The bot's commands, with an example each")
    async def help_(interaction: discord.Interaction[MarketBot]) -> None:
        await answer(ctx, interaction, "help")


def _register_why(tree: app_commands.CommandTree[MarketBot], ctx: AppContext) -> None:
    @tree.command(name="why", description="Why is a symbol moving: benchmark, peers, news, context")
    @app_commands.describe(symbol="Ticker as Yahoo writes it, e.g. BABA, 0700.HK, BRK-B")
    async def why(interaction: discord.Interaction[MarketBot], symbol: str) -> None:
        await answer_why(ctx, interaction, symbol)

    @why.autocomplete("symbol")
    async def why_symbols(
        interaction: discord.Interaction[MarketBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await watched_choices(ctx, interaction, current)


def _watch_group(ctx: AppContext) -> app_commands.Group:
    watch = app_commands.Group(
        name="watch",
        description="This channel's watchlist (changing it needs Manage Channels)",
        guild_only=True,
        default_permissions=MANAGE,
    )

    @watch.command(name="add", description="Watch symbols in this channel")
    @app_commands.describe(
        symbols="Tickers separated by spaces or commas, e.g. BABA JD TCEHY",
        threshold="Alert when a symbol moves at least this many percent (default: channel's)",
    )
    async def add(
        interaction: discord.Interaction[MarketBot],
        symbols: str,
        threshold: app_commands.Range[float, 0.1, 100.0] | None = None,
    ) -> None:
        await answer(ctx, interaction, "watch", "add", symbols, _pct(threshold))

    @watch.command(name="remove", description="Stop watching symbols in this channel")
    @app_commands.describe(symbols="Tickers separated by spaces or commas")
    async def remove(interaction: discord.Interaction[MarketBot], symbols: str) -> None:
        await answer(ctx, interaction, "watch", "remove", symbols)

    @watch.command(name="list", description="What this channel watches, with thresholds")
    async def list_(interaction: discord.Interaction[MarketBot]) -> None:
        await answer(ctx, interaction, "watch", "list")

    @watch.command(name="threshold", description="Set a symbol's alert threshold, or the channel's")
    @app_commands.describe(
        pct="Percent move that triggers an alert",
        symbol="A watched ticker (leave out to set the whole channel's threshold)",
    )
    async def threshold(
        interaction: discord.Interaction[MarketBot],
        pct: app_commands.Range[float, 0.1, 100.0],
        symbol: str | None = None,
    ) -> None:
        await answer(ctx, interaction, "watch", "threshold", symbol, _pct(pct))

    @watch.command(name="mutes", description="What is muted in this channel, and until when")
    async def mutes(interaction: discord.Interaction[MarketBot]) -> None:
        await answer(ctx, interaction, "watch", "mutes")

    async def symbols_here(
        interaction: discord.Interaction[MarketBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await watched_choices(ctx, interaction, current)

    threshold.autocomplete("symbol")(symbols_here)
    return watch


def _register_mute(tree: app_commands.CommandTree[MarketBot], ctx: AppContext) -> None:
    @tree.command(name="mute", description="Pause alerts for a symbol in this channel")
    @app_commands.describe(
        symbol="A watched ticker", duration="How long, e.g. 30m, 4h, 4 hours, 2d, 1 week"
    )
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_channels=True)
    async def mute(interaction: discord.Interaction[MarketBot], symbol: str, duration: str) -> None:
        await answer(ctx, interaction, "mute", symbol, duration)

    @tree.command(name="unmute", description="Resume alerts for a symbol in this channel")
    @app_commands.describe(symbol="A muted ticker")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_channels=True)
    async def unmute(interaction: discord.Interaction[MarketBot], symbol: str) -> None:
        await answer(ctx, interaction, "unmute", symbol)

    async def symbols_here(
        interaction: discord.Interaction[MarketBot], current: str
    ) -> list[app_commands.Choice[str]]:
        return await watched_choices(ctx, interaction, current)

    mute.autocomplete("symbol")(symbols_here)
    unmute.autocomplete("symbol")(symbols_here)


# --- running -------------------------------------------------------------------------------


def _clean_token(token: str) -> str:
    cleaned = (token or "").strip()
    if cleaned.lower().startswith("bot "):
        cleaned = cleaned[4:].strip()
    if not cleaned:
        raise DiscordSetupError(
            "DISCORD_TOKEN is empty: copy the bot token from the Discord Developer Portal "
            "(your application → Bot → Reset Token) into the DISCORD_TOKEN environment variable."
        )
    return cleaned


async def login(bot: discord.Client, token: str) -> None:
    """Log in (REST only), turning a rejected token or an unreachable API into a clear error."""
    try:
        await bot.login(_clean_token(token))
    except discord.LoginFailure:
        raise DiscordSetupError(
            "Discord rejected the bot token (401). Reset it in the Developer Portal "
            "(your application → Bot → Reset Token) and set DISCORD_TOKEN again."
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise DiscordSetupError(
            f"Cannot reach the Discord API at {discord.http.Route.BASE}: {exc}"
        ) from None


async def serve_discord(ctx: AppContext, token: str, *, bot: MarketBot | None = None) -> None:
    """Run the bot on the current event loop until cancelled; commands are never synced here.

    BOT is one made earlier by create_discord_bot (a new one is made and registered if not).
    This is `async with bot: await bot.start(token)`, with start's login made to fail clearly.
    """
    client = bot if bot is not None else create_discord_bot(ctx)
    ctx.notifiers[PLATFORM] = DiscordNotifier(client)
    async with client:
        await login(client, token)  # REST: every instance can post alerts
        # One gateway connection for all instances: the one holding the lock answers
        # commands; another takes over when its process dies.
        gateway = Leadership(ctx.settings.db_url, GATEWAY_LOCK_KEY)
        await lead_when_elected(
            gateway,
            lambda: client.connect(reconnect=True),
            check_seconds=GATEWAY_CHECK_SECONDS,
            what="the Discord gateway connection",
        )


async def sync_discord_commands(ctx: AppContext, token: str, guild_id: int | None) -> list[str]:
    """Publish the slash commands globally, or to one server (instant, for trying out).

    Logs in over REST only (no gateway), syncs, closes; returns the command names.
    """
    bot = MarketBot(ctx)
    async with bot:
        await login(bot, token)
        if guild_id is None:
            synced = await bot.tree.sync()
        else:
            guild = discord.Object(id=guild_id)
            bot.tree.copy_global_to(guild=guild)
            synced = await bot.tree.sync(guild=guild)
    names = sorted(command.name for command in synced)
    where = "globally" if guild_id is None else f"to server {guild_id}"
    log.info("synced %d Discord commands %s: %s", len(names), where, ", ".join(names))
    return names
