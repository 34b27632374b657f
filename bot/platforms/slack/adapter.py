"""Slack adapter: Bolt slash commands and alert buttons, Block Kit alerts."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import AppContext, utc_now
from bot.charts import chart_filename
from bot.infra.store import Store
from bot.platforms.base import (
    BUTTON_PREFIX,
    UNKNOWN_BUTTON,
    Permission,
    PermissionCheck,
    refusal,
    run_command,
    why_chart,
)
from bot.platforms.slack.blocks import (
    command_note,
    fallback_text,
    message_blocks,
    reply_text,
    with_block,
)
from config.settings import Settings
from handlers import commands
from handlers.render import Message, parse_action_id

log = logging.getLogger(__name__)

PLATFORM = "slack"
EVENTS_PATH = "/slack/events"
SLACK_API_URL = "https://slack.com/api/"
ADMIN_CACHE_SECONDS = 300.0
# users.info must answer quickly: a hung lookup refuses (fails closed) instead of holding the
# answer for the client's 30 s timeout.
ADMIN_LOOKUP_SECONDS = 2.0
RATE_LIMIT_RETRIES = 3
ALERT_EVENT = "marketbot_alert"
# How far back a post of unknown outcome is looked for (messages, newest first).
RECONCILE_MESSAGES = 100
COMMANDS = ("/why", "/watch", "/mute", "/unmute", "/quiet", "/help")  # must match manifest.yaml
MANAGE_REFUSAL = refusal("On Slack: a workspace admin or owner, or a listed bot admin.")

Handler = Callable[[AsyncAck, dict[str, Any], AsyncRespond], Awaitable[None]]
Lookup = tuple[Permission, bool]  # a users.info answer, and whether it may be cached
ReplySender = Callable[["SlashCommand", commands.Reply, AsyncRespond], Awaitable[None]]


class SlackConfigError(Exception):
    """A Slack setting is missing or unusable; the message names the variable to set."""


class SlackDeliveryError(Exception):
    """Slack refused to post an alert in a channel (the message says which and why)."""


class _BoltLogFilter(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN is unused when a client is given: that is intended.
    A refused signature is logged without the request body, whose response_url would let
    anyone reading the log post to the channel for a while."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Invalid request signature detected"):
            record.msg, record.args = "refused a Slack request with an invalid signature", ()
        return not message.startswith("As you gave `client` as well")


BOLT_LOG = logging.getLogger("bot.slack.bolt")
BOLT_LOG.addFilter(_BoltLogFilter())


# --- clients and tokens ------------------------------------------------------------


def _secret(settings: Settings, name: str, env: str) -> str:
    value = getattr(settings.slack, name)
    text = value.get_secret_value() if value is not None else ""
    if not text:
        raise SlackConfigError(f"{env} is not set: the Slack adapter needs it (see README, Slack)")
    return text


def slack_client(settings: Settings, base_url: str | None = None) -> AsyncWebClient:
    """The Web API client with the bot token; base_url points it at another API host."""
    url = base_url or settings.slack.api_url or SLACK_API_URL
    return AsyncWebClient(token=_secret(settings, "bot_token", "SLACK_BOT_TOKEN"), base_url=url)


def add_rate_limit_retries(client: AsyncWebClient, retries: int = RATE_LIMIT_RETRIES) -> None:
    """Honour 429 Retry-After (slack_sdk raises on 429 unless this handler is present)."""
    if not any(isinstance(h, AsyncRateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=retries))


def single_attempt_client(client: AsyncWebClient) -> AsyncWebClient:
    """A copy of CLIENT for posting alerts: 429s are waited out (nothing was posted), but a
    dropped connection is not retried blindly, since the post may have gone out; the outbox
    retries it after looking in the channel's history."""
    poster = AsyncWebClient(
        token=client.token, base_url=client.base_url, timeout=client.timeout, retry_handlers=[]
    )
    add_rate_limit_retries(poster)
    return poster


# --- who may change a channel ------------------------------------------------------


class AdminCheck:
    """Listed admins, or admins/owners of the command's workspace per users.info (cached for a
    few minutes, asked with a short timeout); guests and other workspaces' members refused."""

    def __init__(
        self,
        client: AsyncWebClient,
        admins: Sequence[str],
        ttl_seconds: float = ADMIN_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        lookup_seconds: float = ADMIN_LOOKUP_SECONDS,
    ) -> None:
        self.client = client
        self.lookup_seconds = lookup_seconds
        self.admins = frozenset(admins)
        self.ttl = ttl_seconds
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, Permission]] = {}

    def of(self, team_id: str, user_id: str) -> PermissionCheck:
        """The check for one command's user, asked only when the command needs it."""
        return partial(self.check, team_id, user_id)

    async def check(self, team_id: str, user_id: str) -> Permission:
        if user_id in self.admins:
            return Permission(True)
        key = (team_id, user_id)
        cached = self._cache.get(key)
        if cached and cached[0] > self.clock():
            return cached[1]
        permission, cacheable = await self._lookup(team_id, user_id)
        if cacheable:
            self._cache[key] = (self.clock() + self.ttl, permission)
        return permission

    async def _lookup(self, team_id: str, user_id: str) -> Lookup:
        try:
            response = await asyncio.wait_for(
                self.client.users_info(user=user_id), self.lookup_seconds
            )
        except SlackApiError as exc:
            error = exc.response.get("error", "unknown error") if exc.response else "no answer"
            return self._unchecked(user_id, str(error))
        except TimeoutError:
            return self._unchecked(user_id, f"no answer within {self.lookup_seconds:g} s")
        except Exception as exc:  # network trouble: refuse, never allow by default
            return self._unchecked(user_id, type(exc).__name__)
        return user_permission(team_id, response.get("user") or {}), True

    @staticmethod
    def _unchecked(user_id: str, error: str) -> Lookup:
        log.warning("users.info for %s failed: %s", user_id, error)
        text = f"Could not check your Slack permissions ({error}); please try again."
        return Permission(False, text), False


OTHER_WORKSPACE = (
    "Only admins of this workspace can change this channel's watchlist, mutes or quiet hours "
    "(Slack Connect and guest accounts cannot)."
)


def user_permission(team_id: str, user: dict[str, Any]) -> Permission:
    """A users.info user's rights in the command's workspace: an admin or owner of TEAM_ID,
    not a guest, not an external (Slack Connect) member, not a bot or deactivated account."""
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        return Permission(
            False, "Guests cannot change this channel's watchlist, mutes or quiet hours."
        )
    if not team_id or str(user.get("team_id") or "") != team_id or user.get("is_stranger"):
        return Permission(False, OTHER_WORKSPACE)
    if user.get("deleted") or user.get("is_bot"):
        return Permission(False, MANAGE_REFUSAL)
    return Permission(bool(user.get("is_admin") or user.get("is_owner")), MANAGE_REFUSAL)


# --- replays and malformed requests ---------------------------------------------------

# Slack refuses timestamps over 5 minutes old; a seen request is remembered twice as long so
# that clock skew either way cannot let a captured request through again.
REPLAY_KEEP = timedelta(seconds=600)
TIMESTAMP = re.compile(r"[0-9]{1,12}")
BoltNext = Callable[[], Awaitable[BoltResponse]]


def request_keys(req: AsyncBoltRequest, body: dict[str, Any]) -> list[str]:
    """What makes a request unique: its signature (HTTP mode) and the command's trigger id
    (both modes: a Socket Mode envelope redelivered to another instance carries the same)."""
    signature = (req.headers.get("x-slack-signature") or [""])[0]
    trigger = str(body.get("trigger_id") or "")
    keys = [f"sig:{signature}"] if signature else []
    return [*keys, f"trigger:{trigger}"] if trigger else keys


def replay_guard(store: Store, clock: Callable[[], datetime] = utc_now) -> Callable[..., Any]:
    """Bolt middleware, after Bolt's signature check: a request already taken by this or any
    other instance is not run again (HTTP: 401; Socket Mode: acked, nothing else)."""

    async def guard(
        req: AsyncBoltRequest, body: dict[str, Any], next: BoltNext
    ) -> BoltResponse | None:
        keys = request_keys(req, body)
        if await asyncio.to_thread(store.first_sighting, keys, clock(), REPLAY_KEEP):
            return await next()
        log.warning("Slack request seen before (a replay or a redelivery); not run again")
        socket_mode = req.mode == "socket_mode"
        return BoltResponse(status=200 if socket_mode else 401, body="")

    return guard


@web.middleware
async def refuse_malformed(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """A missing or non-numeric X-Slack-Request-Timestamp gets 401 before Bolt parses it."""
    if request.method == "POST":
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not TIMESTAMP.fullmatch(stamp):
            log.warning("Slack request refused: malformed X-Slack-Request-Timestamp")
            return web.Response(status=401, text="invalid request")
    return await handler(request)


# --- chart uploads -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChartUpload:
    """One PNG to share in a channel, in a message's thread when thread_ts is set."""

    channel: str
    thread_ts: str | None
    png: bytes
    filename: str
    title: str
    alt_txt: str


UPLOAD_HINTS = {
    "not_in_channel": " (invite the app to the channel)",
    "channel_not_found": " (invite the app to the channel)",
    "missing_scope": " (add the files:write scope and reinstall the app)",
}


def api_error(exc: SlackApiError) -> str:
    """The error code of a refused Web API call, e.g. 'not_in_channel'."""
    return str(exc.response.get("error", "")) if exc.response else str(exc)


async def upload_chart(client: AsyncWebClient, upload: ChartUpload, what: str) -> bool:
    """Upload a chart with files_upload_v2; failures are logged (never raised), False then."""
    try:
        await client.files_upload_v2(
            channel=upload.channel,
            thread_ts=upload.thread_ts,
            file=upload.png,
            filename=upload.filename,
            title=upload.title,
            alt_txt=upload.alt_txt,
        )
    except SlackApiError as exc:
        error = api_error(exc)
        hint = UPLOAD_HINTS.get(error, "")
        log.warning("chart for %s not uploaded to %s: %s%s", what, upload.channel, error, hint)
        return False
    except Exception:
        log.warning("chart for %s not uploaded to %s", what, upload.channel, exc_info=True)
        return False
    return True


# --- alert delivery ------------------------------------------------------------------


class SlackNotifier:
    """Posts alert messages as Block Kit messages; implements bot.app.Notifier and Finder.

    The key goes in the message metadata (so `find` can tell our post). A message's chart is
    uploaded into the new message's thread; a chart that fails is logged and never fails or
    repeats the alert itself.
    """

    platform = PLATFORM

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        add_rate_limit_retries(client)
        self.poster = single_attempt_client(client)

    async def send(self, message: Message, channel: str, key: str) -> str:
        try:
            response = await self.poster.chat_postMessage(
                channel=channel,
                text=fallback_text(message),
                blocks=message_blocks(message),
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": ALERT_EVENT, "event_payload": {"alert_id": key}},
            )
        except SlackApiError as exc:
            error = api_error(exc)
            hint = " (invite the app to the channel)" if error == "not_in_channel" else ""
            log.error("Slack post of alert %s to %s failed: %s%s", key, channel, error, hint)
            raise SlackDeliveryError(f"{channel}: {error}") from None
        ts = str(response.get("ts", ""))
        if ts and message.chart is not None:
            await self._upload_chart(message, message.chart, channel, ts, key)
        return ts

    async def find(self, channel: str, key: str) -> str | None:
        """The ts of this app's post under KEY among the channel's recent messages, found by
        its metadata; None when it is not there or the history cannot be read (then the post
        is sent again: at least once beats never)."""
        try:
            response = await self.client.conversations_history(
                channel=channel, limit=RECONCILE_MESSAGES, include_all_metadata=True
            )
        except Exception as exc:
            error = api_error(exc) if isinstance(exc, SlackApiError) else type(exc).__name__
            log.warning("could not read the history of %s: %s", channel, error)
            return None
        for found in response.get("messages") or []:
            metadata = found.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if metadata.get("event_type") == ALERT_EVENT and payload.get("alert_id") == key:
                return str(found.get("ts") or "") or None
        return None

    async def _upload_chart(
        self, message: Message, png: bytes, channel: str, ts: str, key: str
    ) -> None:
        await upload_chart(
            self.client,
            ChartUpload(
                channel=channel,
                thread_ts=ts,
                png=png,
                filename=chart_filename(message),
                title=f"{', '.join(message.symbols[:5])} vs benchmark and peers",
                alt_txt="Intraday chart of the alerted symbols against their benchmark and peers",
            ),
            f"alert {key}",
        )


# --- slash commands ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """The parts of a slash-command payload the handlers use."""

    team: str
    channel: str
    user: str
    text: str

    @classmethod
    def of(cls, payload: dict[str, Any]) -> SlashCommand:
        return cls(
            team=str(payload.get("team_id", "")),
            channel=str(payload.get("channel_id", "")),
            user=str(payload.get("user_id", "")),
            text=str(payload.get("text", "") or "").strip(),
        )


async def send_reply(
    respond: AsyncRespond, reply: commands.Reply, *, ephemeral: bool = False
) -> None:
    """Answer through the response_url: public unless the core (or EPHEMERAL) says ephemeral;
    never in place of the message a button was pressed on."""
    response_type = "ephemeral" if reply.ephemeral or ephemeral else "in_channel"
    text = reply_text(reply.text)
    if reply.message is not None:
        blocks = message_blocks(reply.message)
        answer = await respond(
            text=text, blocks=blocks, response_type=response_type, replace_original=False
        )
        if answer.status_code == 200:
            return
        log.warning(
            "Block Kit reply refused (%s %s); sending text", answer.status_code, answer.body
        )
    answer = await respond(text=text, response_type=response_type, replace_original=False)
    if answer.status_code != 200:
        log.warning("reply refused by Slack: %s %s", answer.status_code, answer.body)


async def reply_via_response_url(
    cmd: SlashCommand, reply: commands.Reply, respond: AsyncRespond
) -> None:
    """The default way to answer: the command's response_url (see send_reply)."""
    await send_reply(respond, reply)


class WhyPoster:
    """Answers /why so its chart can follow: posted, then the chart uploaded into its thread.

    A public answer with a chart to come goes out with chat.postMessage, whose ts the chart is
    threaded under; other answers, or a post Slack refuses (e.g. the app is not in the
    channel), use the response_url, and the chart then goes into the channel itself. The
    chart is drawn after the answer is out, and a chart problem is only logged.
    """

    def __init__(self, client: AsyncWebClient, ctx: AppContext) -> None:
        self.client = client
        self.ctx = ctx

    async def send(self, cmd: SlashCommand, reply: commands.Reply, respond: AsyncRespond) -> None:
        charted = self._has_chart(reply)
        ts = await self._post(cmd, reply) if charted else None
        if ts is None:
            await send_reply(respond, reply)
        if charted:
            await self._upload_chart(cmd, reply, ts)

    def _has_chart(self, reply: commands.Reply) -> bool:
        public = reply.ok and not reply.ephemeral
        return self.ctx.charts is not None and public and reply.message is not None

    async def _post(self, cmd: SlashCommand, reply: commands.Reply) -> str | None:
        """The answer as a channel message; its ts, or None when Slack would not take it."""
        assert reply.message is not None
        try:
            response = await self.client.chat_postMessage(
                channel=cmd.channel,
                text=reply_text(reply.text),
                blocks=with_block(message_blocks(reply.message), self._note(cmd, reply)),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            error = api_error(exc)
            log.warning(
                "/why answer not posted in %s (%s); using the response_url", cmd.channel, error
            )
            return None
        except Exception:  # the outcome is unknown; an answer twice beats no answer
            log.warning(
                "/why answer not posted in %s; using the response_url", cmd.channel, exc_info=True
            )
            return None
        return str(response.get("ts") or "") or None

    @staticmethod
    def _note(cmd: SlashCommand, reply: commands.Reply) -> dict[str, Any]:
        # A response_url answer shows "used /why"; a posted one must say so itself.
        return command_note(f"/why {_symbol(cmd, reply)}", cmd.user)

    async def _upload_chart(self, cmd: SlashCommand, reply: commands.Reply, ts: str | None) -> None:
        assert reply.message is not None
        png = await why_chart(self.ctx, reply, logger=log)
        if png is None:
            return
        symbol = _symbol(cmd, reply)
        upload = ChartUpload(
            channel=cmd.channel,
            thread_ts=ts,
            png=png,
            filename=why_chart_filename(symbol, reply.message.at),
            title=f"{symbol} vs benchmark and peers",
            alt_txt=f"Intraday chart of {symbol} against its benchmark and peers",
        )
        await upload_chart(self.client, upload, f"/why {symbol}")


def _symbol(cmd: SlashCommand, reply: commands.Reply) -> str:
    """The symbol a /why answer is about (normalised by the core), else as typed."""
    symbols = reply.message.symbols if reply.message else ()
    return symbols[0] if symbols else cmd.text


def why_chart_filename(symbol: str, at: datetime | None) -> str:
    """E.g. 2025-03-05T1600-why-BABA.png (no time when the answer has none)."""
    name = symbol.replace("^", "").replace("=", "").replace("/", "-")
    return f"{at:%Y-%m-%dT%H%M}-why-{name}.png" if at else f"why-{name}.png"


def _listener(
    ctx: AppContext, name: str, admin: AdminCheck, send: ReplySender = reply_via_response_url
) -> Handler:
    async def handle(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()  # at once: Slack gives up after 3 s, the answer follows
        cmd = SlashCommand.of(command)
        request = commands.CommandRequest(PLATFORM, cmd.channel, cmd.user, name, cmd.text)
        reply = await run_command(ctx, request, admin.of(cmd.team, cmd.user))
        try:
            await send(cmd, reply, respond)
        except Exception:  # an expired or unreachable response_url: nothing else to tell
            log.exception("/%s answer could not be sent to %s", name, cmd.channel)

    handle.__name__ = f"slack_{name}"
    return handle


def _button_listener(ctx: AppContext, admin: AdminCheck) -> Callable[..., Awaitable[None]]:
    """A press of an alert button runs its command for the presser, permission-checked like
    the typed command; a "Why?" answer goes to the presser alone, so presses do not flood
    the channel."""

    async def handle(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        button = parse_action_id(str(action.get("value") or ""))
        team = str((body.get("team") or {}).get("id", ""))
        channel = str((body.get("channel") or {}).get("id", ""))
        user = str((body.get("user") or {}).get("id", ""))
        if button is None or not channel:
            log.info("button press with unusable value %r", str(action.get("value"))[:64])
            await respond(text=UNKNOWN_BUTTON, response_type="ephemeral", replace_original=False)
            return
        request = commands.CommandRequest(PLATFORM, channel, user, button.command, button.text)
        reply = await run_command(ctx, request, admin.of(team, user))
        try:
            await send_reply(respond, reply, ephemeral=button.command == "why")
        except Exception:  # an expired or unreachable response_url: nothing else to tell
            log.exception("%s button answer could not be sent to %s", button.command, channel)

    handle.__name__ = "slack_button"
    return handle


def create_slack_app(
    ctx: AppContext,
    client: AsyncWebClient | None = None,
    *,
    socket_mode: bool = False,
) -> AsyncApp:
    """The Bolt app with the slash commands and buttons, and ctx.notifiers['slack'] set to
    post alerts (their charts are attached by the delivery worker; /why charts come from
    ctx.why_chart whenever ctx.charts is set, see WhyPoster).

    HTTP mode needs SLACK_SIGNING_SECRET (every request's signature is checked); Socket Mode
    requests are not signed, so the secret is optional there.
    """
    settings = ctx.settings
    web_client = client or slack_client(settings)
    if socket_mode:
        secret = settings.slack.signing_secret
        signing_secret = secret.get_secret_value() if secret else ""
    else:
        signing_secret = _secret(settings, "signing_secret", "SLACK_SIGNING_SECRET")
    add_rate_limit_retries(web_client)
    app = AsyncApp(
        client=web_client,
        signing_secret=signing_secret,
        process_before_response=False,
        request_verification_enabled=not socket_mode,
        logger=BOLT_LOG,
        name="marketbot",
    )
    app.middleware(replay_guard(ctx.store))
    admin = AdminCheck(web_client, settings.admins)
    why = WhyPoster(web_client, ctx)
    for command in COMMANDS:
        name = command.removeprefix("/")
        send = why.send if name == "why" else reply_via_response_url
        app.command(command)(_listener(ctx, name, admin, send))
    app.action(re.compile("^" + re.escape(BUTTON_PREFIX)))(_button_listener(ctx, admin))
    ctx.notifiers[PLATFORM] = SlackNotifier(web_client)
    return app


# --- serving -------------------------------------------------------------------------


async def start_slack_http(app: AsyncApp, host: str, port: int) -> web.AppRunner:
    """Serve APP's /slack/events on HOST:PORT (0 = any free port); the caller cleans up."""
    web_app = app.web_app(path=EVENTS_PATH, port=port)
    web_app.middlewares.append(refuse_malformed)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port a started runner listens on (useful when it was started on port 0)."""
    return int(runner.addresses[0][1])


async def serve_slack_http(
    ctx: AppContext,
    port: int,
    host: str = "0.0.0.0",
    *,
    app: AsyncApp | None = None,
    client: AsyncWebClient | None = None,
) -> None:
    """HTTP mode: Bolt's aiohttp handler on /slack/events, until cancelled.

    APP is one made earlier by create_slack_app(ctx) (so ctx.notifiers is set before this
    coroutine first runs); without it one is made here from CLIENT.
    """
    bolt = app or create_slack_app(ctx, client)
    runner = await start_slack_http(bolt, host, port)
    log.info("Slack HTTP mode listening on %s:%d%s", host, bound_port(runner), EVENTS_PATH)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def socket_mode_handler(
    ctx: AppContext,
    app_token: str,
    *,
    app: AsyncApp | None = None,
    client: AsyncWebClient | None = None,
) -> AsyncSocketModeHandler:
    """The Socket Mode handler (xapp- token); nothing connects until it is started.

    APP, when given, must come from create_slack_app(ctx, socket_mode=True).
    """
    if not app_token.startswith("xapp-"):
        raise SlackConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
    bolt = app or create_slack_app(ctx, client, socket_mode=True)
    return AsyncSocketModeHandler(bolt, app_token)


async def serve_slack_socket(
    ctx: AppContext,
    app_token: str,
    *,
    app: AsyncApp | None = None,
    client: AsyncWebClient | None = None,
) -> None:
    """Socket Mode: a WebSocket to Slack (no public URL needed), until cancelled."""
    handler = socket_mode_handler(ctx, app_token, app=app, client=client)
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("Slack Socket Mode connected")
        await asyncio.Event().wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
