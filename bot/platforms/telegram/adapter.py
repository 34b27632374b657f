"""Telegram adapter: python-telegram-bot long polling for commands and buttons, HTML alerts."""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    Chat,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import BadRequest, InvalidToken, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    filters,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.app import AppContext
from bot.platforms.base import UNKNOWN_BUTTON, Permission, refusal, run_command, why_chart
from bot.platforms.telegram.platform import PLATFORM, TOKEN_HELP
from bot.platforms.telegram.render import (
    MAX_CAPTION,
    MAX_TEXT,
    fits,
    join_lines,
    keyboard,
    message_lines,
    reply_lines,
)
from config.settings import Settings
from handlers import commands
from handlers.render import Message, parse_action_id

log = logging.getLogger(__name__)

COMMANDS = {
    "why": "Why is a symbol moving: /why BABA",
    "watch": "This chat's watchlist: /watch add BABA JD 5 · /watch list",
    "mute": "Mute a symbol here: /mute BABA 4h",
    "unmute": "Unmute a symbol: /unmute BABA",
    "quiet": "Quiet hours here: /quiet 22:00-07:00 Europe/London · /quiet off",
    "help": "The bot's commands",
}
COMMAND_ALIASES = {"start": "help"}
REFUSAL = refusal("On Telegram: the chat's creator or a chat administrator, or a listed bot admin.")
NO_CHAT = "This button works only on a message in a chat."
# Long polling: how long one getUpdates may wait for an update.
POLL_TIMEOUT = timedelta(seconds=30)
SEND_POOL = 256  # what ApplicationBuilder gives the bot it makes itself
# A 429 asks to wait retry_after seconds; longer waits than this are the caller's to retry.
MAX_RETRY_WAIT = 60.0
RETRIES = 3
CHAT_ID = re.compile(r"-?[0-9]{1,20}")
CHANNEL_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
TOKEN_IN_URL = re.compile(r"/bot[0-9]+:[A-Za-z0-9_-]+")

T = TypeVar("T")


class TelegramSetupError(Exception):
    """The bot cannot start: the message says what to fix (never contains the token)."""


class _RedactToken(logging.Filter):
    """httpx logs each request's URL, and a Bot API URL carries the token: cut it out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if TOKEN_IN_URL.search(message):
            record.msg, record.args = TOKEN_IN_URL.sub("/bot<token>", message), None
        return True


# Loggers that write Bot API URLs: httpx (every request, at INFO) and PTB's bots (at DEBUG).
TOKEN_LOGGERS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot", "telegram.ext.Updater")
for _name in TOKEN_LOGGERS:
    logging.getLogger(_name).addFilter(_RedactToken())
# python-telegram-bot's docs advise this: httpx would log each long poll.
logging.getLogger("httpx").setLevel(logging.WARNING)


def bot_token(settings: Settings) -> str:
    token = settings.telegram.bot_token
    text = token.get_secret_value() if token is not None else ""
    if not text:
        raise TelegramSetupError(f"{TOKEN_HELP} is not set (see the README's Telegram setup)")
    return text


def chat_target(channel: str) -> int | str:
    """A destination as Bot API chat_id: a numeric chat id, or @username of a public channel."""
    text = channel.strip()
    if CHAT_ID.fullmatch(text):
        return int(text)
    if CHANNEL_USERNAME.fullmatch(text):
        return text
    raise ValueError(f"'{channel}' is not a Telegram chat id (e.g. -1001234567890 or @channel)")


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that retry_after becomes a timedelta
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def honouring_429(
    call: Callable[[], Awaitable[T]], sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> T:
    """CALL, again after the wait a 429 asks for (nothing was sent then); a few times at most."""
    for attempt in range(RETRIES):
        try:
            return await call()
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            if wait > MAX_RETRY_WAIT or attempt == RETRIES - 1:
                raise
            log.warning("Telegram answered 429: waiting %.0f s as asked", wait)
            await sleep(wait)
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Post:
    """One thing to post in a chat: lines of HTML, buttons, a chart, what it answers."""

    lines: Sequence[str]
    markup: InlineKeyboardMarkup | None = None
    png: bytes | None = None
    reply_to: int | None = None


async def post(bot: Bot, chat: int | str, item: Post) -> int:
    """Post ITEM; returns the id of the message carrying the text and buttons.

    With a chart, the text is the photo's caption when it fits in 1024 characters; else the
    text goes first (4096 at most) and the chart follows as a reply to it, so nothing is cut
    for the caption. A chart Telegram refuses never stops the text: it is logged and dropped.
    """
    text = join_lines(item.lines, MAX_TEXT)
    replying = None
    if item.reply_to:
        replying = ReplyParameters(item.reply_to, allow_sending_without_reply=True)
    if item.png is not None and not chart_follows(text):
        try:
            return await send_photo(bot, chat, item.png, text, item.markup, replying)
        except BadRequest as exc:
            log.warning("chart refused in Telegram chat %s (%s); sending the text alone", chat, exc)
            item = replace(item, png=None)
    sent = await honouring_429(
        partial(
            bot.send_message,
            chat,
            text,
            parse_mode=ParseMode.HTML,
            reply_markup=item.markup,
            link_preview_options=NO_PREVIEW,
            reply_parameters=replying,
        )
    )
    if item.png is not None:
        try:
            await send_photo(bot, chat, item.png, None, None, ReplyParameters(sent.message_id))
        except TelegramError as exc:
            log.warning("chart not sent to Telegram chat %s: %s", chat, exc)
    return sent.message_id


def chart_follows(text: str) -> bool:
    """Whether a chart goes as a second message: TEXT is too long to be its caption."""
    return not fits(text, MAX_CAPTION)


async def send_photo(
    bot: Bot,
    chat: int | str,
    png: bytes,
    caption: str | None,
    markup: InlineKeyboardMarkup | None,
    reply: ReplyParameters | None,
) -> int:
    call = partial(
        bot.send_photo,
        chat,
        png,
        caption=caption,
        parse_mode=ParseMode.HTML if caption else None,
        reply_markup=markup,
        reply_parameters=reply,
    )
    return (await honouring_429(call)).message_id


class TelegramNotifier:
    """Posts alerts as HTML messages with "Why?" and "Mute" buttons, the chart as a photo."""

    platform = PLATFORM

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, message: Message, channel: str, key: str) -> str:
        """Post MESSAGE (and its chart, when the worker attached one) to chat CHANNEL; returns
        the Telegram message id.

        KEY names the delivery, but Telegram has no idempotency key and a bot cannot read a
        chat's history, so there is no `find`: a post whose outcome is unknown (a timeout) can
        only be sent again.
        """
        await self.bot.initialize()
        item = Post(message_lines(message), keyboard(message.buttons), message.chart)
        return str(await post(self.bot, chat_target(channel), item))

    def messages_in(self, message: Message) -> int:
        """2 when the chart follows the text as its own message, else 1 (for the pacer)."""
        text = join_lines(message_lines(message), MAX_TEXT)
        return 2 if message.chart is not None and chart_follows(text) else 1


# --- commands and buttons --------------------------------------------------------------


async def chat_permission(
    ctx: AppContext, bot: Bot, chat: Chat, user_id: int, as_chat: Chat | None = None
) -> Permission:
    """Listed admins; anyone in their own private chat; the chat's creator and administrators
    (getChatMember); an anonymous administrator posting as the group itself."""
    if str(user_id) in ctx.settings.admins or chat.type == ChatType.PRIVATE:
        return Permission(True)
    if as_chat is not None and as_chat.id == chat.id:
        return Permission(True)
    try:
        member = await bot.get_chat_member(chat.id, user_id)
    except TelegramError as exc:
        log.warning("getChatMember for %s in %s failed: %s", user_id, chat.id, exc)
        return Permission(False, f"Could not check your Telegram rights ({exc}); try again.")
    admin = member.status in (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)
    return Permission(admin, REFUSAL)


async def answer_query(query: CallbackQuery, text: str, *, alert: bool = False) -> None:
    """Answer a button press (at most 200 characters); a press too old to answer is logged."""
    try:
        await query.answer(text[:200] or None, show_alert=alert)
    except TelegramError as exc:
        log.info("button press not answered: %s", exc)


def command_of(text: str) -> str:
    """'/Why@market_bot BABA' -> 'why' (start is an alias of help)."""
    word = text.split(maxsplit=1)[0] if text.strip() else ""
    name = word.lstrip("/").split("@", 1)[0].lower()
    return COMMAND_ALIASES.get(name, name)


class TelegramCommands:
    """Turns updates into core requests and posts the replies; one instance per Application."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def answer_with(
        self,
        bot: Bot,
        chat: Chat,
        request: commands.CommandRequest,
        permit: Callable[[], Awaitable[Permission]],
        reply_to: int | None,
    ) -> tuple[commands.Reply, int]:
        reply = await run_command(self.ctx, request, permit)
        return reply, await post(bot, chat.id, await self.reply_post(request, reply, reply_to))

    async def reply_post(
        self, request: commands.CommandRequest, reply: commands.Reply, reply_to: int | None
    ) -> Post:
        if reply.message is None:
            return Post(reply_lines(reply.text), reply_to=reply_to)
        png = await why_chart(self.ctx, reply, logger=log) if request.command == "why" else None
        return Post(message_lines(reply.message), png=png, reply_to=reply_to)

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or not message.text:
            return
        # A channel post has no user: only the channel's administrators can post there.
        author = update.effective_user or message.sender_chat
        if author is None:
            return
        request = commands.CommandRequest(
            PLATFORM,
            str(chat.id),
            str(author.id),
            command_of(message.text),
            " ".join(context.args or []),
        )
        permit = partial(
            chat_permission, self.ctx, context.bot, chat, author.id, message.sender_chat
        )
        await self.answer_with(context.bot, chat, request, permit, message.message_id)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        button = parse_action_id(query.data or "")
        pressed = query.message
        if button is None or pressed is None:
            log.info("button press with unusable data %r", (query.data or "")[:64])
            await answer_query(
                query, UNKNOWN_BUTTON if pressed is not None else NO_CHAT, alert=True
            )
            return
        chat = pressed.chat
        request = commands.CommandRequest(
            PLATFORM, str(chat.id), str(query.from_user.id), button.command, button.text
        )
        # A press that changes nothing is acknowledged at once (the answer takes seconds);
        # one that does waits for the permission check, whose refusal is the press's pop-up.
        quick = not commands.needs_manage(request.command, request.text)
        if quick:
            await answer_query(query, f"Looking into {button.text}…")
        permit = partial(chat_permission, self.ctx, context.bot, chat, query.from_user.id)
        reply = await run_command(self.ctx, request, permit)
        if not quick:
            # Telegram has no message only the presser sees: a refusal stays in the pop-up.
            await answer_query(query, "" if reply.ok else reply.text, alert=not reply.ok)
            if not reply.ok:
                return
        item = await self.reply_post(request, reply, pressed.message_id)
        await post(context.bot, chat.id, item)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("Telegram update failed", exc_info=context.error)


def make_bot(settings: Settings) -> ExtBot[None]:
    """The bot for alerts and commands alike, with the pool an Application gives its own bot
    (a bare Bot has one connection, and concurrent answers would wait on it)."""
    telegram = settings.telegram
    return ExtBot(
        bot_token(settings),
        telegram.api_url,
        telegram.file_url,
        request=HTTPXRequest(connection_pool_size=SEND_POOL),
    )


def build_application(
    ctx: AppContext, bot: Bot | None = None
) -> Application[Any, Any, Any, Any, Any, Any]:
    """The Application with the commands and the button handler; nothing connects yet.

    With BOT (the notifier's), the Application polls and answers with it, and its shutdown
    closes that bot's connections too; without, it makes its own."""
    builder = Application.builder().bot(bot or make_bot(ctx.settings))
    app = builder.concurrent_updates(True).build()
    handlers = TelegramCommands(ctx)
    names = [*COMMANDS, *COMMAND_ALIASES]
    posts = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST
    app.add_handler(CommandHandler(names, handlers.on_command, filters=posts))
    app.add_handler(CallbackQueryHandler(handlers.on_button))
    app.add_error_handler(handlers.on_error)
    return app


async def start(app: Application[Any, Any, Any, Any, Any, Any], poll_timeout: timedelta) -> None:
    try:
        await app.initialize()
    except InvalidToken:
        # PTB's own message quotes the token: replace it, and drop the chained exception.
        raise TelegramSetupError(
            "Telegram rejected TELEGRAM_BOT_TOKEN (401): check it with @BotFather"
        ) from None
    await honouring_429(
        partial(app.bot.set_my_commands, [BotCommand(n, d) for n, d in COMMANDS.items()])
    )
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(
        timeout=poll_timeout,
        allowed_updates=[Update.MESSAGE, Update.CHANNEL_POST, Update.CALLBACK_QUERY],
        drop_pending_updates=False,
    )
    log.info("Telegram long polling as @%s", app.bot.username)


async def stop(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()


async def serve_telegram(
    ctx: AppContext,
    mode: str | None = None,
    *,
    app: Application[Any, Any, Any, Any, Any, Any] | None = None,
    bot: Bot | None = None,
    poll_timeout: timedelta = POLL_TIMEOUT,
) -> None:
    """Answer commands and button presses by long polling until cancelled, then stop cleanly
    (the settings admit no other MODE)."""
    application = app or build_application(ctx, bot)
    try:
        await start(application, poll_timeout)
        await asyncio.Event().wait()
    finally:
        await stop(application)
