"""Discord adapter: slash commands (/why, /watch, /mute, /unmute, /help), alerts as embeds."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial

import aiohttp
import discord
from discord import app_commands
from discord.utils import MISSING

from bot.app import AppContext
from bot.charts import ChartMaker
from bot.delivery.attempts import DeliveryStarts
from bot.infra.leader import GATEWAY_LOCK_KEY, Leadership, lead_when_elected
from bot.infra.store import Store
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
from handlers.models import Alert, Destination
from handlers.render import Message
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
COMMAND_FAILED = (
    "Sorry, that command failed on the bot's side. Try again in a minute; if it keeps failing, "
    "ask the server admins to check the bot's log."
)
# The core's help shows the text syntax (Slack, CLI); Discord users fill in named options.
DISCORD_HELP = {
    commands.WATCH_HELP: (
        "Usage: /watch add symbols:BABA JD TCEHY threshold:5 · /watch remove symbols:JD · "
        "/watch list · /watch threshold symbol:BABA pct:4 (no symbol: the channel's) · "
        "/watch mutes"
    ),
    commands.MUTE_HELP: (
        "Usage: /mute symbol:BABA duration:4h (30m, 4h, 4 hours, 2d, 1 week; at most 30 days) · "
        "/watch mutes · /unmute symbol:BABA"
    ),
}
WHY_UNAVAILABLE = "Could not answer /why right now: the price or news source failed. Try again."

Clock = Callable[[], datetime]


async def draw_chart(draw: Callable[[], bytes | None], what: str) -> bytes | None:
    """DRAW's PNG, drawn in a thread; None if there is none, it fails or is unusable (logged).

    A chart problem must never stop a message: the caller then sends it without a picture.
    """
    try:
        png = await asyncio.to_thread(draw)
    except Exception:
        log.exception("chart for %s failed; sending without it", what)
        return None
    if png is None:
        log.info("no chart data for %s; sending without it", what)
        return None
    problem = chart_problem(png)
    if problem is not None:
        log.warning("chart for %s unusable (%s); sending without it", what, problem)
        return None
    return png


class DiscordSetupError(Exception):
    """The bot cannot start or sync: the message says what to fix (never contains the token)."""


class DeliveryFailed(Exception):
    """Some channels did not get the alert; the others did and are remembered as served."""


class DiscordNotifier:
    """Posts alerts as embeds; implements bot.app.Notifier. A retried alert never posts twice.

    With CHARTS the alert's chart goes along as an attached PNG shown as the embed image; it is
    drawn once per alert, and a chart that fails or is missing leaves the embed alone.
    """

    platform = PLATFORM

    def __init__(
        self, client: discord.Client, store: Store, clock: Clock, charts: ChartMaker | None = None
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock
        self.charts = charts
        self.starts = DeliveryStarts(store, PLATFORM)

    async def deliver(self, alert: Alert, message: Message, channels: Sequence[str]) -> None:
        """Send to each channel not yet served for this alert; raise if any channel failed."""
        states = await self.starts.start(alert.id, list(channels), self.clock())
        pending = [c for c, state in states.items() if state != "sent"]
        if not pending:
            log.debug("alert %s already in Discord channels %s", alert.id, list(states))
            return
        embed = with_alert_ref(message_embed(message), alert.id)
        png = await self._chart(alert)
        if png is not None:
            embed = with_chart(embed)
        failures: list[str] = []
        for channel in pending:
            try:
                await self._send_one(alert.id, embed, png, channel, states[channel] == "unknown")
            except (discord.DiscordException, ValueError, aiohttp.ClientError, OSError) as exc:
                log.warning("alert %s to Discord channel %s failed: %s", alert.id, channel, exc)
                failures.append(f"{channel}: {exc}")
        if failures:
            raise DeliveryFailed(f"alert {alert.id} not sent to " + "; ".join(failures))

    async def _chart(self, alert: Alert) -> bytes | None:
        if self.charts is None:
            return None
        return await draw_chart(partial(self.charts.for_alert, alert), f"alert {alert.id}")

    async def _send_one(
        self, alert_id: str, embed: discord.Embed, png: bytes | None, channel: str, unknown: bool
    ) -> None:
        """Post to CHANNEL; UNKNOWN: an earlier post's outcome is unknown, so look first."""
        if not channel.isdigit():
            raise ValueError(f"'{channel}' is not a Discord channel id")
        target = self.client.get_partial_messageable(int(channel))
        if unknown:
            found = await self._find_posted(target, alert_id)
            if found is not None:
                log.info(
                    "alert %s was already posted in Discord channel %s (message %s): recorded",
                    alert_id,
                    channel,
                    found,
                )
                await asyncio.to_thread(
                    self.store.mark_sent, alert_id, PLATFORM, channel, found, self.clock()
                )
                return
        # The nonce with enforce_nonce (set by discord.py) makes Discord answer a retried POST
        # with the message it already created instead of posting a second one.
        sent = await target.send(
            embed=embed,
            file=chart_file(png) if png is not None else MISSING,
            nonce=nonce_for(alert_id, channel),
            allowed_mentions=NO_MENTIONS,
        )
        await asyncio.to_thread(
            self.store.mark_sent, alert_id, PLATFORM, channel, str(sent.id), self.clock()
        )

    async def _find_posted(self, target: discord.PartialMessageable, alert_id: str) -> str | None:
        """The id of the bot's own post of ALERT_ID among the channel's recent messages.

        A post whose outcome is unknown may have gone out; Discord honours a nonce for a few
        minutes only, so after a longer outage only the history can tell. If it cannot be
        read, the post is sent again (with its nonce) rather than risk losing the alert.
        """
        me = self.client.user.id if self.client.user else None
        try:
            async for found in target.history(limit=RECONCILE_MESSAGES):
                mine = me is None or found.author.id == me
                if mine and carries_alert(found.embeds, alert_id):
                    return str(found.id)
        except (discord.DiscordException, aiohttp.ClientError, OSError) as exc:
            log.warning("could not read Discord channel %s history: %s", target.id, exc)
        return None


class CommandTree(app_commands.CommandTree["MarketBot"]):
    """The bot's command tree; any unexpected error gets an ephemeral apology, not silence."""

    async def on_error(
        self, interaction: discord.Interaction[MarketBot], error: app_commands.AppCommandError
    ) -> None:
        name = interaction.command.qualified_name if interaction.command else "?"
        log.error("/%s failed", name, exc_info=error)
        try:
            await send_text(interaction, COMMAND_FAILED, ephemeral=True)
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

    async def on_ready(self) -> None:
        guilds = len(self.guilds)
        log.info("connected to Discord as %s in %d server(s)", self.user, guilds)


def create_discord_bot(
    ctx: AppContext, *, guild_ready_timeout: float = DEFAULT_READY_TIMEOUT
) -> MarketBot:
    """The bot with its commands, registered as ctx.notifiers['discord'] for alerts."""
    bot = MarketBot(ctx, guild_ready_timeout=guild_ready_timeout)
    ctx.notifiers[PLATFORM] = DiscordNotifier(bot, ctx.store, ctx.clock, ctx.charts)
    return bot


# --- replies ---------------------------------------------------------------------------


def discord_help(text: str) -> str:
    for generic, specific in DISCORD_HELP.items():
        text = text.replace(generic, specific)
    return text


async def send_text(
    interaction: discord.Interaction[MarketBot],
    text: str,
    *,
    ephemeral: bool,
    embed: discord.Embed | None = None,
    file: discord.File | None = None,
) -> None:
    """Answer with escaped text (an embed, a file), whether or not the interaction was answered."""
    content = reply_content(discord_help(text))
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
    interaction: discord.Interaction[MarketBot], reply: commands.Reply, chart: bytes | None = None
) -> None:
    """A core Reply as a Discord answer: refusals and errors only to the asker.

    A CHART (PNG) is attached and shown as the embed's image when the reply has an embed.
    """
    embed = message_embed(reply.message) if reply.message is not None else None
    file = None
    if embed is not None and chart is not None:
        embed, file = with_chart(embed), chart_file(chart)
    ephemeral = reply.ephemeral or not reply.ok
    await send_text(interaction, reply.text, ephemeral=ephemeral, embed=embed, file=file)


def can_manage(interaction: discord.Interaction[MarketBot], admins: Sequence[str]) -> bool:
    """Manage Channels here (overwrites included, as Discord computes it) or a listed admin.

    default_permissions is only a hint server admins can change, so this runs every time.
    """
    perms = interaction.permissions
    listed = str(interaction.user.id) in admins
    return bool(perms.manage_channels or perms.administrator or listed)


def now_utc(ctx: AppContext) -> datetime:
    """The (real or simulated) time in UTC: the core prints command times labelled UTC."""
    return ctx.clock().astimezone(UTC)


def requester(ctx: AppContext, interaction: discord.Interaction[MarketBot]) -> commands.Requester:
    return ctx.requester(
        PLATFORM,
        str(interaction.channel_id),
        str(interaction.user.id),
        can_manage(interaction, ctx.settings.admins),
    )


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
    try:
        reply = await asyncio.to_thread(ctx.answer_why, symbol)
    except Exception:
        log.exception("/why %s failed", symbol)
        reply = commands.Reply(WHY_UNAVAILABLE, ok=False)
    if not reply.ok:
        # The first follow-up replaces the public "thinking" message; remove it so the error
        # can go to the asker alone.
        try:
            await interaction.delete_original_response()
        except discord.HTTPException as exc:
            log.warning("could not remove the /why placeholder: %s", exc)
    await send_reply(interaction, reply, await why_chart(ctx, symbol, reply))


async def why_chart(ctx: AppContext, symbol: str, reply: commands.Reply) -> bytes | None:
    if ctx.charts is None or not reply.ok:
        return None
    return await draw_chart(partial(ctx.why_chart, symbol, reply), f"/why {symbol}")


# --- registration --------------------------------------------------------------------------


def register_commands(tree: app_commands.CommandTree[MarketBot], ctx: AppContext) -> None:
    """Add /why, the /watch group, /mute, /unmute and /help to TREE, all bound to CTX."""
    _register_why(tree, ctx)
    tree.add_command(_watch_group(ctx))
    _register_mute(tree, ctx)
    _register_help(tree, ctx)


def _register_help(tree: app_commands.CommandTree[MarketBot], ctx: AppContext) -> None:
    @tree.command(name="help", description="The bot's commands, with an example each")
    async def help_(interaction: discord.Interaction[MarketBot]) -> None:
        default_pct = ctx.settings.default_threshold_pct
        await send_reply(interaction, commands.help_reply(True, default_pct))


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
    default_pct = ctx.settings.default_threshold_pct

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
        who = requester(ctx, interaction)
        if threshold is not None:
            try:
                threshold = commands.parse_threshold(str(threshold))
            except ValueError as exc:
                await send_text(interaction, f"{exc}\n{commands.WATCH_HELP}", ephemeral=True)
                return
        add_checked = partial(commands.watch_add, validator=ctx.symbols, default_pct=default_pct)
        reply = await asyncio.to_thread(
            add_checked, ctx.store, who, symbols, threshold, now_utc(ctx)
        )
        await send_reply(interaction, reply)

    @watch.command(name="remove", description="Stop watching symbols in this channel")
    @app_commands.describe(symbols="Tickers separated by spaces or commas")
    async def remove(interaction: discord.Interaction[MarketBot], symbols: str) -> None:
        who = requester(ctx, interaction)
        reply = await asyncio.to_thread(commands.watch_remove, ctx.store, who, symbols)
        await send_reply(interaction, reply)

    @watch.command(name="list", description="What this channel watches, with thresholds")
    async def list_(interaction: discord.Interaction[MarketBot]) -> None:
        who = requester(ctx, interaction)
        reply = await asyncio.to_thread(
            commands.watch_list, ctx.store, who, default_pct, now_utc(ctx)
        )
        await send_reply(interaction, reply)

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
        who = requester(ctx, interaction)
        if symbol is None:
            reply = await asyncio.to_thread(commands.channel_threshold, ctx.store, who, str(pct))
        else:
            reply = await asyncio.to_thread(
                commands.watch_threshold, ctx.store, who, symbol, str(pct)
            )
        await send_reply(interaction, reply)

    @watch.command(name="mutes", description="What is muted in this channel, and until when")
    async def mutes(interaction: discord.Interaction[MarketBot]) -> None:
        who = requester(ctx, interaction)
        reply = await asyncio.to_thread(commands.mute_list, ctx.store, who, now_utc(ctx))
        await send_reply(interaction, reply)

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
        who = requester(ctx, interaction)
        reply = await asyncio.to_thread(
            commands.mute, ctx.store, who, symbol, duration, now_utc(ctx)
        )
        await send_reply(interaction, reply)

    @tree.command(name="unmute", description="Resume alerts for a symbol in this channel")
    @app_commands.describe(symbol="A muted ticker")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_channels=True)
    async def unmute(interaction: discord.Interaction[MarketBot], symbol: str) -> None:
        who = requester(ctx, interaction)
        reply = await asyncio.to_thread(commands.unmute, ctx.store, who, symbol)
        await send_reply(interaction, reply)

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
    ctx.notifiers[PLATFORM] = DiscordNotifier(client, ctx.store, ctx.clock, ctx.charts)
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
