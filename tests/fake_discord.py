"""A local Discord for tests: REST API and gateway on 127.0.0.1, speaking what discord.py expects.

The real discord.py is pointed at it (``install``): it logs in, connects to the gateway, receives
INTERACTION_CREATE events injected by a test and answers over REST, which is recorded and checked
against Discord's rules (embed limits, one response per interaction, nonces, allowed mentions).
File uploads are read as Discord reads them: a multipart body with a payload_json part and
files[n] parts, the upload's name taken from payload_json's attachments[n] when given.
Faults can be injected: 429 with retry_after and a Via header, a 5xx or a dropped connection,
before or after the effect. Discord's rate limits (50 requests/s per bot, 5 messages per 5 s
per channel) are enforced only when a test or benchmark calls ``enforce_limits``: responses
then carry the X-RateLimit-* headers discord.py paces itself from, and a request over a limit
gets the 429 Discord sends (JSON retry_after and global flag, Retry-After, Via, X-RateLimit-Scope).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord
import pytest
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

from bot.delivery.pacing import DISCORD_CHANNEL_MESSAGES, DISCORD_GLOBAL, FixedWindow, Rate
from tests.helpers import wait_until

TOKEN = "fake-token.for-tests.only"
APP_ID = 910000000000000001
GUILD_ID = 820000000000000001
CHINA_TECH = 730000000000000001
MARKETS = 730000000000000002
CHANNEL_NAMES = {CHINA_TECH: "china-tech", MARKETS: "markets"}
ALICE = 640000000000000001
BOB = 640000000000000002

EPHEMERAL = 1 << 6
# How long the fake, like Discord ("a few minutes"), answers a repeated nonce with the first post.
NONCE_SECONDS = 300.0
MAX_HISTORY = 100
ATTACHMENT_SIZE_LIMIT = 8 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FILE_PART = re.compile(r"files\[(\d+)\]")
CDN = "https://cdn.discordapp.com/attachments"
VIEW_SEND_USE = (1 << 10) | (1 << 11) | (1 << 31)
MANAGE_CHANNELS = 1 << 4
MEMBER_PERMS = VIEW_SEND_USE
MANAGER_PERMS = VIEW_SEND_USE | MANAGE_CHANNELS

# The X-RateLimit-Bucket Discord names for POST /channels/{id}/messages (any opaque string).
MESSAGES_BUCKET = "80c17d2f203122d936070c88c8d10f33"
RATE_LIMITED = "You are being rate limited."

# Option types of Discord's application command payloads.
STRING, INTEGER, BOOLEAN, NUMBER = 3, 4, 5, 10

BOT_USER = {
    "id": str(APP_ID),
    "username": "marketbot",
    "discriminator": "0",
    "global_name": "Market Bot",
    "avatar": None,
    "bot": True,
    "public_flags": 0,
    "flags": 0,
}

Json = dict[str, Any]
Handler = Callable[[web.Request, re.Match[str], Any], Awaitable[web.Response]]


def user(user_id: int, name: str) -> Json:
    return {
        "id": str(user_id),
        "username": name,
        "discriminator": "0",
        "global_name": name.title(),
        "avatar": None,
        "public_flags": 0,
    }


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # discord.py only parses JSON when Content-Type is exactly application/json (no charset).
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error(status: int, code: int, message: str, errors: Json | None = None) -> web.Response:
    body: Json = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    return json_response(body, status)


def opt(name: str, value: Any, *, focused: bool = False) -> Json:
    """One command option as Discord sends it."""
    kind = (
        BOOLEAN
        if isinstance(value, bool)
        else INTEGER
        if isinstance(value, int)
        else NUMBER
        if isinstance(value, float)
        else STRING
    )
    option: Json = {"type": kind, "name": name, "value": value}
    if focused:
        option["focused"] = True
    return option


def embed_problems(embeds: list[Json]) -> list[str]:
    """What Discord would reject in these embeds (its documented limits)."""
    problems: list[str] = []
    total = 0
    for embed in embeds:
        title = embed.get("title") or ""
        description = embed.get("description") or ""
        footer = (embed.get("footer") or {}).get("text") or ""
        author = (embed.get("author") or {}).get("name") or ""
        fields = embed.get("fields") or []
        checks = [
            ("title", title, 256),
            ("description", description, 4096),
            ("footer.text", footer, 2048),
            ("author.name", author, 256),
        ]
        for name, text, limit in checks:
            if len(text) > limit:
                problems.append(f"{name} longer than {limit}")
        if len(fields) > 25:
            problems.append("more than 25 fields")
        for i, f in enumerate(fields):
            name, value = f.get("name") or "", f.get("value") or ""
            if not 1 <= len(name) <= 256:
                problems.append(f"fields[{i}].name must be 1..256 long")
            if not 1 <= len(value) <= 1024:
                problems.append(f"fields[{i}].value must be 1..1024 long")
            total += len(name) + len(value)
        total += len(title) + len(description) + len(footer) + len(author)
    if total > 6000:
        problems.append(f"embeds total {total} > 6000")
    return problems


def component_problems(rows: list[Json]) -> list[str]:
    """What Discord would reject in a message's components: at most 5 action rows (type 1) of
    at most 5 buttons (type 2), labels up to 80, custom_ids 1..100 and unique."""
    problems = [f"{len(rows)} action rows > 5"] if len(rows) > 5 else []
    ids: list[str] = []
    for row in rows:
        buttons = row.get("components") or []
        if row.get("type") != 1 or not 1 <= len(buttons) <= 5:
            problems.append(f"not an action row of 1..5 components: {row}")
        for button in buttons:
            custom_id = str(button.get("custom_id") or "")
            if button.get("type") != 2 or not 1 <= len(custom_id) <= 100:
                problems.append(f"not a button with a 1..100 custom_id: {button}")
            if len(button.get("label") or "") > 80:
                problems.append("button label longer than 80")
            ids.append(custom_id)
    if len(set(ids)) != len(ids):
        problems.append("duplicate custom_id")
    return problems


@dataclass
class Upload:
    """One file part of a multipart request, as received."""

    part: str
    filename: str
    content_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def index(self) -> int:
        match = FILE_PART.fullmatch(self.part)
        return int(match.group(1)) if match else 0


class BadUpload(Exception):
    """A multipart body Discord would refuse (the message says why)."""


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG's IHDR chunk, or None if DATA is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def sniffed_type(data: bytes) -> str:
    """The content type Discord reports for an upload: from the bytes, not the part header."""
    return "image/png" if png_size(data) else "application/octet-stream"


UPLOADS = web.RequestKey("uploads", list[Upload])


@dataclass
class Call:
    """One REST request the bot made, with the status it got and any files it uploaded."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    status: int = 0
    uploads: list[Upload] = field(default_factory=list)


@dataclass
class Fault:
    """Answer the next matching request(s) with STATUS (429s carry retry_after and Via).

    STATUS 0 drops the connection without an answer (with after_effect: the answer was lost).
    """

    method: str
    pattern: re.Pattern[str]
    status: int
    retry_after: float = 0.0
    via: bool = True
    after_effect: bool = False
    times: int = 1


@dataclass
class Limits:
    """Discord's rate limits as the fake enforces them, and the 429s it answered."""

    global_rate: Rate = DISCORD_GLOBAL
    channel_messages: Rate = DISCORD_CHANNEL_MESSAGES
    global_window: FixedWindow = field(init=False)
    channels: dict[int, FixedWindow] = field(default_factory=dict)
    limited_route: int = 0
    limited_global: int = 0

    def __post_init__(self) -> None:
        self.global_window = FixedWindow(self.global_rate)

    @property
    def limited(self) -> int:
        return self.limited_route + self.limited_global

    def channel(self, channel_id: int) -> FixedWindow:
        window = self.channels.get(channel_id)
        if window is None:
            window = self.channels[channel_id] = FixedWindow(self.channel_messages)
        return window


def bucket_headers(window: FixedWindow, now: float) -> dict[str, str]:
    """The X-RateLimit-* headers of a per-route bucket, as Discord sends them."""
    reset_after = window.reset_after(now)
    return {
        "X-RateLimit-Limit": str(window.rate.count),
        "X-RateLimit-Remaining": str(window.remaining(now)),
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Bucket": MESSAGES_BUCKET,
    }


def rate_limited(retry_after: float, *, is_global: bool, headers: dict[str, str]) -> web.Response:
    """Discord's 429: JSON with retry_after (seconds, float) and global; Via as its proxy adds."""
    extra = {
        "Retry-After": str(max(1, math.ceil(retry_after))),
        "X-RateLimit-Scope": "global" if is_global else "user",
        "Via": "1.1 google",
        **headers,
    }
    if is_global:
        extra["X-RateLimit-Global"] = "true"
    body = {"message": RATE_LIMITED, "retry_after": round(retry_after, 3), "global": is_global}
    return json_response(body, 429, extra)


@dataclass
class InteractionRecord:
    """An interaction the fake sent, and what the bot answered."""

    id: int
    token: str
    channel_id: int
    sent_at: float
    callbacks: list[Json] = field(default_factory=list)
    original: Json | None = None
    original_deleted: bool = False
    followups: list[Json] = field(default_factory=list)

    @property
    def callback_types(self) -> list[int]:
        return [c["type"] for c in self.callbacks]

    def answers(self) -> list[Json]:
        """Every message the asker saw: the original (if kept) then follow-ups."""
        shown = [] if self.original is None or self.original_deleted else [self.original]
        return shown + self.followups


class FakeDiscord:
    """REST under /api/v10 and the gateway at /gateway, on an ephemeral 127.0.0.1 port."""

    def __init__(self, token: str = TOKEN, nonce_seconds: float = NONCE_SECONDS) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.channel_messages: dict[int, list[Json]] = {}
        self.interactions: dict[str, InteractionRecord] = {}
        self.identifies: list[Json] = []
        self.commands: dict[int | None, list[Json]] = {}
        self.extra_channels: set[int] = set()
        self.limits: Limits | None = None
        # Discord honours a nonce for a few minutes only: a retry after that posts again.
        self.nonce_seconds = nonce_seconds
        self._created: dict[str, float] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = 0
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/users/@me"), self._get_me),
            ("GET", re.compile(r"/oauth2/applications/@me"), self._get_app),
            ("GET", re.compile(r"/gateway(/bot)?"), self._get_gateway),
            ("POST", re.compile(r"/channels/(\d+)/messages"), self._post_message),
            ("GET", re.compile(r"/channels/(\d+)/messages"), self._get_messages),
            ("POST", re.compile(r"/interactions/(\d+)/([^/]+)/callback"), self._callback),
            ("POST", re.compile(r"/webhooks/(\d+)/([^/]+)"), self._followup),
            ("PATCH", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/@original"), self._edit_orig),
            ("DELETE", re.compile(r"/webhooks/(\d+)/([^/]+)/messages/@original"), self._del_orig),
            ("PUT", re.compile(r"/applications/(\d+)/commands"), self._put_commands),
            ("PUT", re.compile(r"/applications/(\d+)/guilds/(\d+)/commands"), self._put_commands),
        ]

    # --- lifecycle -------------------------------------------------------------------
    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> yarl.URL:
        return yarl.URL(f"ws://127.0.0.1:{self.port}/gateway")

    async def start(self) -> None:
        # Room above Discord's per-file limit, so the fake itself answers oversize uploads.
        app = web.Application(client_max_size=4 * ATTACHMENT_SIZE_LIMIT)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point discord.py's REST base (interactions and webhooks use it too) and gateway here."""
        monkeypatch.setattr(discord.http.Route, "BASE", self.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", self.gateway_url)

    # --- test helpers ------------------------------------------------------------------
    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        retry_after: float = 0.0,
        via: bool = True,
        after_effect: bool = False,
        times: int = 1,
    ) -> None:
        self.faults.append(
            Fault(method, re.compile(path_regex), status, retry_after, via, after_effect, times)
        )

    def enforce_limits(
        self,
        global_rate: Rate = DISCORD_GLOBAL,
        channel_messages: Rate = DISCORD_CHANNEL_MESSAGES,
    ) -> Limits:
        """Answer requests over Discord's limits with 429 from now on (off by default)."""
        self.limits = Limits(global_rate, channel_messages)
        return self.limits

    def add_channels(self, channel_ids: Iterable[int]) -> None:
        """More text channels the bot may post to (beyond the server's two)."""
        self.extra_channels.update(channel_ids)

    def calls_to(self, method: str, path_regex: str) -> list[Call]:
        pattern = re.compile(path_regex)
        return [c for c in self.calls if c.method == method and pattern.fullmatch(c.path)]

    async def wait_for(
        self, condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        await wait_until(condition, timeout, f"{what} (fake Discord)")

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """Until a bot has identified on the gateway (READY and GUILD_CREATE are sent then)."""
        await self.wait_for(lambda: bool(self.identifies), timeout, "IDENTIFY")

    async def dispatch(self, event: str, data: Json) -> None:
        for ws in list(self._sockets):
            await self._send_event(ws, event, data)

    async def interact(
        self,
        command: str,
        options: list[Json] | None = None,
        *,
        sub: str | None = None,
        channel: int = CHINA_TECH,
        user_id: int = ALICE,
        permissions: int = MEMBER_PERMS,
        autocomplete: bool = False,
    ) -> InteractionRecord:
        """Send an INTERACTION_CREATE for /COMMAND [SUB] as Discord does; returns its record."""
        if not self._sockets:
            raise AssertionError("no bot connected to the fake gateway")
        interaction_id = next(self._ids)
        token = f"itok-{interaction_id}"
        opts = options or []
        if sub is not None:
            opts = [{"type": 1, "name": sub, "options": opts}]
        record = InteractionRecord(interaction_id, token, channel, time.monotonic())
        self.interactions[token] = record
        payload = self._interaction_payload(
            interaction_id, token, command, opts, channel, user_id, permissions, autocomplete
        )
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    async def press(
        self,
        message: Json,
        custom_id: str,
        *,
        user_id: int = ALICE,
        permissions: int = MEMBER_PERMS,
    ) -> InteractionRecord:
        """Send the INTERACTION_CREATE (type 3, a button) Discord sends when a user presses
        the button CUSTOM_ID on MESSAGE; returns its record."""
        if not self._sockets:
            raise AssertionError("no bot connected to the fake gateway")
        interaction_id = next(self._ids)
        token = f"itok-{interaction_id}"
        channel = int(message["channel_id"])
        record = InteractionRecord(interaction_id, token, channel, time.monotonic())
        self.interactions[token] = record
        payload = self._interaction_payload(
            interaction_id, token, "", [], channel, user_id, permissions, False
        )
        payload.update(
            type=3,
            data={"custom_id": custom_id, "component_type": 2},
            message=message,
        )
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    async def answered(self, record: InteractionRecord, timeout: float = 5.0) -> InteractionRecord:
        """Wait until the interaction has a callback and, if deferred, a follow-up."""

        def done() -> bool:
            if not record.callbacks:
                return False
            if record.callback_types[0] == 5:
                return bool(record.followups) or bool(
                    record.original and not record.original.get("loading")
                )
            return True

        await self.wait_for(done, timeout, f"an answer to interaction {record.id}")
        return record

    def posted(self, channel: int) -> list[Json]:
        return self.channel_messages.get(channel, [])

    # --- gateway -------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_gateway_message(ws, json.loads(msg.data))
        finally:
            if ws in self._sockets:
                self._sockets.remove(ws)
        return ws

    async def _on_gateway_message(self, ws: web.WebSocketResponse, msg: Json) -> None:
        op = msg.get("op")
        if op == 1:
            await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            if msg["d"].get("token") != self.token:
                await ws.close(code=4004, message=b"Authentication failed.")
                return
            self.identifies.append(msg["d"])
            await self._send_event(ws, "READY", self._ready())
            await self._send_event(ws, "GUILD_CREATE", self._guild())
        elif op == 6:
            await self._send_event(ws, "RESUMED", {})

    async def _send_event(self, ws: web.WebSocketResponse, event: str, data: Json) -> None:
        self._seq += 1
        await ws.send_json({"op": 0, "t": event, "s": self._seq, "d": data})

    def _ready(self) -> Json:
        return {
            "v": 10,
            "user": BOT_USER,
            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
            "session_id": "fake-session",
            "resume_gateway_url": str(self.gateway_url),
            "shard": [0, 1],
            "application": {"id": str(APP_ID), "flags": 0},
        }

    def _channel(self, channel_id: int) -> Json:
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(GUILD_ID),
            "name": CHANNEL_NAMES.get(channel_id, f"channel-{channel_id}"),
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
        }

    def _guild(self) -> Json:
        everyone = {
            "id": str(GUILD_ID),
            "name": "@everyone",
            "permissions": str(MEMBER_PERMS),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return {
            "id": str(GUILD_ID),
            "name": "Test server",
            "icon": None,
            "owner_id": str(BOB),
            "unavailable": False,
            "large": False,
            "member_count": 3,
            "joined_at": "2025-03-01T00:00:00+00:00",
            "features": [],
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "channels": [self._channel(c) for c in CHANNEL_NAMES],
            "threads": [],
            "members": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _interaction_payload(
        self,
        interaction_id: int,
        token: str,
        command: str,
        options: list[Json],
        channel: int,
        user_id: int,
        permissions: int,
        autocomplete: bool,
    ) -> Json:
        member = {
            "user": user(user_id, "alice" if user_id == ALICE else f"user{user_id}"),
            "roles": [],
            "joined_at": "2025-03-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "permissions": str(permissions),
        }
        return {
            "id": str(interaction_id),
            "application_id": str(APP_ID),
            "type": 4 if autocomplete else 2,
            "data": {"id": "1", "name": command, "type": 1, "options": options},
            "guild_id": str(GUILD_ID),
            "guild": {"id": str(GUILD_ID), "locale": "en-US", "features": []},
            "channel_id": str(channel),
            "channel": {**self._channel(channel), "permissions": str(permissions)},
            "member": member,
            "token": token,
            "version": 1,
            "app_permissions": str(VIEW_SEND_USE),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
            "attachment_size_limit": 8 * 1024 * 1024,
        }

    # --- REST --------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        try:
            body, uploads = await self._body(request)
        except BadUpload as exc:
            return error(400, 50035, f"Invalid Form Body: {exc}")
        call = Call(request.method, path, dict(request.query), body, time.monotonic())
        call.uploads = uploads
        self.calls.append(call)
        request[UPLOADS] = uploads
        response = await self._route(request, path, body)
        call.status = response.status
        return response

    async def _route(self, request: web.Request, path: str, body: Any) -> web.Response:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if method != request.method or match is None:
                continue
            app_route = path.startswith(("/interactions/", "/webhooks/"))
            if not app_route and not self._authorized(request):
                return error(401, 0, "401: Unauthorized")
            bucket: FixedWindow | None = None
            if self.limits is not None and not app_route:
                refusal, bucket = self._over_limit(match, handler)
                if refusal is not None:
                    return refusal
            response = await self._answer(request, path, body, match, handler)
            if bucket is not None:
                response.headers.update(bucket_headers(bucket, time.monotonic()))
            return response
        return error(404, 0, "404: Not Found")

    async def _answer(
        self, request: web.Request, path: str, body: Any, match: re.Match[str], handler: Handler
    ) -> web.Response:
        fault = self._take_fault(request.method, path)
        if fault is None:
            return await handler(request, match, body)
        if fault.after_effect:
            await handler(request, match, body)
        if fault.status == 0 and request.transport is not None:
            request.transport.close()
        return self._fault_response(fault)

    def _over_limit(
        self, match: re.Match[str], handler: Handler
    ) -> tuple[web.Response | None, FixedWindow | None]:
        """Count the request against the global limit and its channel's bucket, or a 429.

        Interactions and webhooks are outside the global limit, as on Discord; a refused
        request counts against neither limit.
        """
        assert self.limits is not None
        limits, now = self.limits, time.monotonic()
        bucket = None
        if handler == self._post_message:
            bucket = limits.channel(int(match.group(1)))
            if bucket.remaining(now) <= 0:
                limits.limited_route += 1
                headers = bucket_headers(bucket, now)
                return rate_limited(bucket.reset_after(now), is_global=False, headers=headers), None
        if not limits.global_window.take(now):
            limits.limited_global += 1
            retry_after = limits.global_window.reset_after(now)
            return rate_limited(retry_after, is_global=True, headers={}), None
        if bucket is not None:
            bucket.take(now)
        return None, bucket

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bot {self.token}"

    async def _body(self, request: web.Request) -> tuple[Any, list[Upload]]:
        if not request.can_read_body:
            return None, []
        if request.content_type == "application/json":
            return await request.json(), []
        if request.content_type.startswith("multipart/"):
            return await self._multipart(request)
        return (await request.read()).decode(errors="replace"), []

    async def _multipart(self, request: web.Request) -> tuple[Any, list[Upload]]:
        """payload_json and files[n] parts, as Discord takes them; anything else is refused."""
        body: Any = None
        uploads: list[Upload] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadUpload("nested multipart")
            if part.name == "payload_json":
                body = json.loads(await part.text())
            elif part.name is not None and FILE_PART.fullmatch(part.name):
                data = bytes(await part.read())
                kind = part.headers.get("Content-Type", "")
                uploads.append(Upload(part.name, part.filename or "", kind, data))
            else:
                raise BadUpload(f"unexpected part {part.name!r}")
        if body is None:
            raise BadUpload("no payload_json part")
        if len({u.index for u in uploads}) != len(uploads):
            raise BadUpload("two files with the same index")
        return body, uploads

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.pattern.fullmatch(path):
                fault.times -= 1
                return fault
        return None

    def _fault_response(self, fault: Fault) -> web.Response:
        if fault.status == 429:
            headers = {"Retry-After": str(max(1, round(fault.retry_after)))}
            if fault.via:
                headers["Via"] = "1.1 google"
            body = {
                "message": "You are being rate limited.",
                "retry_after": fault.retry_after,
                "global": False,
            }
            return json_response(body, 429, headers)
        return error(fault.status, 0, f"{fault.status}: injected fault")

    async def _get_me(self, request: web.Request, match: re.Match[str], body: Any) -> web.Response:
        return json_response(BOT_USER)

    async def _get_app(self, request: web.Request, match: re.Match[str], body: Any) -> web.Response:
        return json_response(
            {
                "id": str(APP_ID),
                "name": "Market Bot",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": user(BOB, "bob"),
                "verify_key": "00" * 32,
                "flags": 0,
                "team": None,
                "summary": "",
            }
        )

    async def _get_gateway(
        self, request: web.Request, match: re.Match[str], body: Any
    ) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response(
            {"url": str(self.gateway_url), "shards": 1, "session_start_limit": limit}
        )

    def _message(
        self, channel_id: int, body: Json, flags: int = 0, uploads: list[Upload] | None = None
    ) -> Json:
        content = body.get("content") or ""
        mentions = resolve_mentions(content, body.get("allowed_mentions"))
        attachments = self._attachments(channel_id, body, uploads or [])
        return {
            "id": str(next(self._ids)),
            "channel_id": str(channel_id),
            "author": BOT_USER,
            "content": content,
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": mentions["everyone"],
            "mentions": [],
            "mention_roles": mentions["roles"],
            "pinged_users": mentions["users"],
            "attachments": attachments,
            "embeds": resolve_attachment_images(body.get("embeds") or [], attachments),
            "pinned": False,
            "type": 0,
            "flags": flags | int(body.get("flags") or 0),
            "nonce": body.get("nonce"),
            "components": [
                {**row, "id": i + 1} for i, row in enumerate(body.get("components") or [])
            ],
        }

    def _attachments(self, channel_id: int, body: Json, uploads: list[Upload]) -> list[Json]:
        """The message's attachment objects, named as payload_json's attachments say."""
        names = {a.get("id"): a.get("filename") for a in body.get("attachments") or []}
        attachments = []
        for upload in uploads:
            attachment_id = str(next(self._ids))
            filename = names.get(upload.index) or upload.filename
            url = f"{CDN}/{channel_id}/{attachment_id}/{filename}"
            attachment: Json = {
                "id": attachment_id,
                "filename": filename,
                "size": upload.size,
                "url": url,
                "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
                "content_type": sniffed_type(upload.data),
            }
            dimensions = png_size(upload.data)
            if dimensions is not None:
                attachment["width"], attachment["height"] = dimensions
            attachments.append(attachment)
        return attachments

    def _invalid_body(self, body: Json, uploads: list[Upload] | None = None) -> web.Response | None:
        uploads = uploads or []
        problems = embed_problems(body.get("embeds") or [])
        problems += attachment_problems(body, uploads)
        problems += component_problems(body.get("components") or [])
        if len(body.get("content") or "") > 2000:
            problems.append("content longer than 2000")
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            problems.append("nonce longer than 25")
        if any(u.size > ATTACHMENT_SIZE_LIMIT for u in uploads):
            return error(413, 40005, "Request entity too large")
        if not (body.get("content") or body.get("embeds") or uploads):
            return error(400, 50006, "Cannot send an empty message")
        if problems:
            return error(400, 50035, "Invalid Form Body", {"problems": problems})
        return None

    async def _post_message(
        self, request: web.Request, match: re.Match[str], body: Any
    ) -> web.Response:
        channel_id = int(match.group(1))
        if channel_id not in CHANNEL_NAMES and channel_id not in self.extra_channels:
            return error(404, 10003, "Unknown Channel")
        uploads = request[UPLOADS]
        invalid = self._invalid_body(body, uploads)
        if invalid is not None:
            return invalid
        messages = self.channel_messages.setdefault(channel_id, [])
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            recent = time.monotonic() - self.nonce_seconds
            for existing in messages:
                if existing["nonce"] == nonce and self._created[existing["id"]] >= recent:
                    return json_response(existing)
        message = self._message(channel_id, body, uploads=uploads)
        messages.append(message)
        self._created[message["id"]] = time.monotonic()
        return json_response(message)

    async def _get_messages(
        self, request: web.Request, match: re.Match[str], body: Any
    ) -> web.Response:
        """A channel's messages, newest first, as GET /channels/{id}/messages pages them."""
        channel_id = int(match.group(1))
        if channel_id not in CHANNEL_NAMES and channel_id not in self.extra_channels:
            return error(404, 10003, "Unknown Channel")
        limit = min(max(int(request.query.get("limit", 50)), 1), MAX_HISTORY)
        found = sorted(self.posted(channel_id), key=lambda m: int(m["id"]))
        if "after" in request.query:
            after = int(request.query["after"])
            found = [m for m in found if int(m["id"]) > after][:limit]
        if "before" in request.query:
            before = int(request.query["before"])
            found = [m for m in found if int(m["id"]) < before][-limit:]
        public = [{k: v for k, v in m.items() if k != "nonce"} for m in found[-limit:]]
        return json_response(list(reversed(public)))

    def _record(self, token: str) -> InteractionRecord | None:
        return self.interactions.get(token)

    async def _callback(
        self, request: web.Request, match: re.Match[str], body: Any
    ) -> web.Response:
        record = self._record(match.group(2))
        if record is None or str(record.id) != match.group(1):
            return error(404, 10062, "Unknown interaction")
        if record.callbacks:
            return error(400, 40060, "Interaction has already been acknowledged.")
        kind = body["type"]
        data = body.get("data") or {}
        if kind in (4, 5):
            uploads = request[UPLOADS]
            invalid = self._invalid_body(data, uploads) if kind == 4 else None
            if invalid is not None:
                return invalid
            record.callbacks.append(body)
            record.original = self._message(record.channel_id, data, uploads=uploads)
            record.original["loading"] = kind == 5
            interaction = {
                "id": str(record.id),
                "type": 2,
                "response_message_id": record.original["id"],
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL),
            }
            return json_response(
                {"interaction": interaction, "resource": {"type": kind, "message": record.original}}
            )
        record.callbacks.append(body)
        return json_response({"interaction": {"id": str(record.id), "type": 4}})

    async def _followup(
        self, request: web.Request, match: re.Match[str], body: Any
    ) -> web.Response:
        record = self._record(match.group(2))
        if record is None or not record.callbacks:
            return error(404, 10015, "Unknown Webhook")
        uploads = request[UPLOADS]
        invalid = self._invalid_body(body, uploads)
        if invalid is not None:
            return invalid
        original = record.original
        if original is not None and original.get("loading") and not record.original_deleted:
            # Discord: the first follow-up after a deferral fills in the "thinking" message and
            # keeps the deferral's visibility.
            flags = int(original["flags"])
            filled = self._message(record.channel_id, body, flags, uploads)
            filled["id"] = original["id"]
            record.original = filled
            return json_response(filled)
        message = self._message(record.channel_id, body, uploads=uploads)
        record.followups.append(message)
        return json_response(message)

    async def _edit_orig(
        self, request: web.Request, match: re.Match[str], body: Any
    ) -> web.Response:
        record = self._record(match.group(2))
        if record is None or record.original is None or record.original_deleted:
            return error(404, 10008, "Unknown Message")
        record.original = {**record.original, **body, "loading": False}
        return json_response(record.original)

    async def _del_orig(
        self, request: web.Request, match: re.Match[str], body: Any
    ) -> web.Response:
        record = self._record(match.group(2))
        if record is None or record.original is None or record.original_deleted:
            return error(404, 10008, "Unknown Message")
        record.original_deleted = True
        return web.Response(status=204)

    async def _put_commands(
        self, request: web.Request, match: re.Match[str], body: Any
    ) -> web.Response:
        guild = int(match.group(2)) if match.lastindex and match.lastindex > 1 else None
        published = []
        for i, command in enumerate(body):
            published.append(
                {
                    **command,
                    "id": str(next(self._ids)),
                    "application_id": str(APP_ID),
                    "version": str(i + 1),
                    "guild_id": str(guild) if guild else None,
                    "default_member_permissions": (
                        None
                        if command.get("default_member_permissions") is None
                        else str(command["default_member_permissions"])
                    ),
                }
            )
        self.commands[guild] = published
        return json_response(published)


def attachment_problems(body: Json, uploads: list[Upload]) -> list[str]:
    """payload_json attachments that name no uploaded files[n] part (Discord refuses them)."""
    uploaded = {u.index for u in uploads}
    problems = []
    for i, attachment in enumerate(body.get("attachments") or []):
        if attachment.get("id") not in uploaded:
            problems.append(f"attachments[{i}] names no uploaded file")
    return problems


def resolve_attachment_images(embeds: list[Json], attachments: list[Json]) -> list[Json]:
    """The embeds as Discord returns them: attachment://NAME images become the CDN file."""
    by_name = {a["filename"]: a for a in attachments}
    resolved = []
    for embed in embeds:
        image = embed.get("image") or {}
        url = str(image.get("url") or "")
        attachment = by_name.get(url.removeprefix("attachment://"))
        if url.startswith("attachment://") and attachment is not None:
            fields = ("url", "proxy_url", "width", "height")
            image = {k: attachment[k] for k in fields if k in attachment}
            embed = {**embed, "image": {**image, "flags": 0}}
        resolved.append(embed)
    return resolved


MARKDOWN_ESCAPE = re.compile(r"\\([^0-9A-Za-z\s])")


def displayed(text: str) -> str:
    """TEXT as a Discord client shows it: a backslash before punctuation is hidden (the escape
    rule of Discord's markdown), and the zero-width spaces that break mentions are invisible."""
    return MARKDOWN_ESCAPE.sub(r"\1", text).replace("\u200b", "")


def resolve_mentions(content: str, allowed: Json | None) -> Json:
    """Who a message would ping, by Discord's rules (no allowed_mentions: everything parses)."""
    parse = ["everyone", "users", "roles"] if allowed is None else allowed.get("parse", [])
    roles = re.findall(r"<@&(\d+)>", content)
    users = re.findall(r"<@!?(\d+)>", content)
    return {
        "everyone": "everyone" in parse and bool(re.search(r"@(everyone|here)", content)),
        "roles": roles if "roles" in parse else list((allowed or {}).get("roles", [])),
        "users": users if "users" in parse else list((allowed or {}).get("users", [])),
    }
