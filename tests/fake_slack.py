"""A fake Slack Web API, response_url and Socket Mode endpoint on 127.0.0.1, for adapter tests.

Slack's rate limits are enforced only when a test or benchmark calls ``enforce_limits``:
chat.postMessage then allows 1 message/s per channel (short bursts) within a workspace-wide
limit, other methods their tier's limit, and a call over a limit gets Slack's answer, HTTP 429
with Retry-After (whole seconds) and {"ok": false, "error": "ratelimited"}.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web

from bot.delivery.pacing import (
    SLACK_CHANNEL_POSTS,
    SLACK_TIERS,
    SLACK_WORKSPACE_POSTS,
    FixedWindow,
    Rate,
)

# Block Kit limits the real API enforces with `invalid_blocks`.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
# The tiers Slack's method reference gives the methods the fake answers (chat.postMessage is
# "Special": per channel and per workspace, see Limits).
METHOD_TIERS = {
    "auth.test": 4,
    "users.info": 4,
    "conversations.history": 3,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "apps.connections.open": 1,
}


@dataclass
class Call:
    """One request the fake received: API method (or 'response_url'), arguments, headers."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)
    status: int = 200


@dataclass
class Limits:
    """Slack's rate limits as the fake enforces them, and the 429s it answered."""

    workspace_posts: Rate = SLACK_WORKSPACE_POSTS
    channel_posts: Rate = SLACK_CHANNEL_POSTS
    tiers: dict[int, Rate] = field(default_factory=lambda: dict(SLACK_TIERS))
    windows: dict[tuple[str, str], FixedWindow] = field(default_factory=dict)
    limited: int = 0

    def window(self, method: str, key: str, rate: Rate) -> FixedWindow:
        found = self.windows.get((method, key))
        if found is None:
            found = self.windows[(method, key)] = FixedWindow(rate)
        return found

    def check(self, method: str, args: dict[str, Any], now: float) -> float | None:
        """Count one call; None when allowed, else the seconds to wait (nothing counted)."""
        if method == "chat.postMessage":
            windows = [
                self.window(method, "", self.workspace_posts),
                self.window(method, str(args.get("channel", "")), self.channel_posts),
            ]
        elif method in METHOD_TIERS:
            windows = [self.window(method, "", self.tiers[METHOD_TIERS[method]])]
        else:
            return None
        full = [w.reset_after(now) for w in windows if w.remaining(now) <= 0]
        if full:
            self.limited += 1
            return max(full)
        for w in windows:
            w.take(now)
        return None


def block_errors(blocks: list[dict[str, Any]]) -> list[str]:
    """What the real API would reject in BLOCKS, as readable strings (empty when valid)."""
    errors = [f"{len(blocks)} blocks > {MAX_BLOCKS}"] if len(blocks) > MAX_BLOCKS else []
    for i, block in enumerate(blocks):
        kind = block.get("type")
        text = (block.get("text") or {}).get("text", "")
        if kind == "header" and len(text) > MAX_HEADER_TEXT:
            errors.append(f"block {i}: header text {len(text)} > {MAX_HEADER_TEXT}")
        if kind == "section":
            if len(text) > MAX_SECTION_TEXT:
                errors.append(f"block {i}: section text {len(text)} > {MAX_SECTION_TEXT}")
            fields = block.get("fields") or []
            if len(fields) > MAX_FIELDS:
                errors.append(f"block {i}: {len(fields)} fields > {MAX_FIELDS}")
            errors += [
                f"block {i}: field text {len(f['text'])} > {MAX_FIELD_TEXT}"
                for f in fields
                if len(f["text"]) > MAX_FIELD_TEXT
            ]
            if not text and not fields:
                errors.append(f"block {i}: empty section")
        if kind == "context":
            elements = block.get("elements") or []
            if not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
                errors.append(f"block {i}: {len(elements)} context elements")
        if kind == "actions":
            errors += [f"block {i}: {e}" for e in action_errors(block.get("elements") or [])]
    return errors


def action_errors(elements: list[dict[str, Any]]) -> list[str]:
    """What Slack rejects in an actions block's buttons (1-25, text <= 75, unique ids)."""
    errors = [] if 0 < len(elements) <= 25 else [f"{len(elements)} action elements"]
    ids = [e.get("action_id", "") for e in elements]
    if len(set(ids)) != len(ids):
        errors.append("duplicate action_id")
    for e in elements:
        if e.get("type") != "button" or e["text"]["type"] != "plain_text":
            errors.append(f"not a plain-text button: {e}")
        elif not 0 < len(e["text"]["text"]) <= 75:
            errors.append(f"button text of {len(e['text']['text'])} characters")
        if not 0 < len(e.get("action_id", "")) <= 255 or len(e.get("value", "")) > 2000:
            errors.append("action_id or value out of range")
    return errors


class FakeSlack:
    """Answers auth.test, users.info, chat.postMessage, file uploads, Socket Mode, response_urls.

    Every request is recorded in `calls`; `rate_limit` makes the next calls of a method answer
    429 with Retry-After; `channel_errors` makes posts to a channel fail like the real API.
    """

    def __init__(
        self,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-1-test",
        users: dict[str, dict[str, Any]] | None = None,
        team_id: str = "T0TEST",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.users = users or {}
        self.team_id = team_id
        self.calls: list[Call] = []
        self.channel_errors: dict[str, str] = {}
        self.socket_acks: list[dict[str, Any]] = []
        self.reject_reply_blocks = False
        # Seconds a method takes to answer (a hung API), e.g. {"users.info": 60}.
        self.delays: dict[str, float] = {}
        # Calls of a method whose effect happens but whose answer is lost (connection dropped).
        self.lose_answers: dict[str, int] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self._throttle: dict[str, tuple[int, int]] = {}
        self.limits: Limits | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- lifecycle --------------------------------------------------------------------
    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{key}", self._respond)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def response_url(self) -> str:
        return f"{self.base_url}/respond/{uuid.uuid4().hex[:8]}"

    # --- test controls ------------------------------------------------------------------
    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        self._throttle[method] = (times, retry_after)

    def enforce_limits(
        self,
        workspace_posts: Rate = SLACK_WORKSPACE_POSTS,
        channel_posts: Rate = SLACK_CHANNEL_POSTS,
    ) -> Limits:
        """Answer calls over Slack's limits with 429 from now on (off by default)."""
        self.limits = Limits(workspace_posts, channel_posts)
        return self.limits

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Wait until METHOD was called at least COUNT times; fail after TIMEOUT seconds."""
        deadline = time.monotonic() + timeout
        while len(self.calls_to(method)) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{method} called {len(self.calls_to(method))}x, not {count}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return self.calls_to(method)

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to every connected client."""
        for ws in self._sockets:
            await ws.send_str(json.dumps(envelope))

    async def wait_until(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.05)

    # --- handlers ---------------------------------------------------------------------
    def _record(self, method: str, args: dict[str, Any], request: web.Request) -> None:
        self.calls.append(Call(method, args, dict(request.headers)))
        self._changed.set()

    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        self._record(method, args, request)
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        times, retry_after = self._throttle.get(method, (0, 0))
        if times > 0:
            self._throttle[method] = (times - 1, retry_after)
            return self._rate_limited(retry_after)
        wait = self.limits.check(method, args, time.monotonic()) if self.limits else None
        if wait is not None:
            # A refused call keeps only its channel: a naive fan-out draws tens of thousands.
            self.calls[-1].args = {"channel": args.get("channel")}
            return self._rate_limited(max(1, math.ceil(wait)))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != wanted:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        answer = getattr(self, "_" + method.replace(".", "_"), None)
        if answer is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result = answer(args)
        if self.lose_answers.get(method, 0) > 0 and request.transport is not None:
            self.lose_answers[method] -= 1
            request.transport.close()
        return web.json_response(result)

    def _rate_limited(self, retry_after: int) -> web.Response:
        """Slack's 429: Retry-After in whole seconds, and ok false with error ratelimited."""
        self.calls[-1].status = 429
        body = {"ok": False, "error": "ratelimited"}
        return web.json_response(body, status=429, headers={"Retry-After": str(retry_after)})

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://example.invalid/",
            "team": "Test team",
            "team_id": self.team_id,
            "user": "marketbot",
            "user_id": "UBOT",
            "bot_id": "BBOT",
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": args["user"], "team_id": self.team_id, **user}}

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel in self.channel_errors:
            return {"ok": False, "error": self.channel_errors[channel]}
        blocks = args.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if block_errors(blocks) or not args.get("text"):
            return {"ok": False, "error": "invalid_blocks", "details": block_errors(blocks)}
        ts = f"{1741200000 + len(self.calls_to('chat.postMessage'))}.000100"
        metadata = args.get("metadata")
        message = {"type": "message", "ts": ts, "text": args["text"], "bot_id": "BBOT"}
        if metadata:
            message["metadata"] = json.loads(metadata) if isinstance(metadata, str) else metadata
        self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": args["text"]}}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest first; metadata only with include_all_metadata, as the real method."""
        channel = str(args.get("channel", ""))
        if channel in self.channel_errors:
            return {"ok": False, "error": self.channel_errors[channel]}
        limit = min(int(args.get("limit", 100)), 999)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        newest = list(reversed(self.messages.get(channel, [])))[:limit]
        if not with_metadata:
            newest = [{k: v for k, v in m.items() if k != "metadata"} for m in newest]
        return {"ok": True, "messages": newest, "has_more": False}

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{len(self.calls_to('files.getUploadURLExternal')):04d}"
        return {"ok": True, "file_id": file_id, "upload_url": f"{self.base_url}/upload/{file_id}"}

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files") or []
        if isinstance(files, str):
            files = json.loads(files)
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}

    async def _upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        self._record("upload", {"file_id": request.match_info["file_id"], "data": data}, request)
        return web.Response(text="OK - " + str(len(data)))

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.base_url.replace("http", "ws", 1) + "/socket"}

    async def _respond(self, request: web.Request) -> web.Response:
        args = await request.json()
        self._record("response_url", args, request)
        blocks = args.get("blocks") or []
        if block_errors(blocks) or (blocks and self.reject_reply_blocks):
            return web.Response(status=400, text="invalid_blocks")
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0TEST"}}
        await ws.send_str(json.dumps(hello))
        self._changed.set()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.socket_acks.append(json.loads(msg.data))
                self._changed.set()
        self._sockets.remove(ws)
        return ws


def sign(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature: v0= + HMAC-SHA256 of 'v0:{timestamp}:{body}'."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slash_payload(
    command: str, text: str, user: str, channel: str, response_url: str, team: str = "T0TEST"
) -> dict[str, str]:
    """The fields Slack sends for a slash command (a subset, with the same names)."""
    return {
        "token": "deprecated-verification-token",
        "team_id": team,
        "team_domain": "test",
        "channel_id": channel,
        "channel_name": "markets",
        "user_id": user,
        "user_name": user.lower(),
        "command": command,
        "text": text,
        "api_app_id": "A0TEST",
        "response_url": response_url,
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
    }


def block_actions_payload(
    action: dict[str, Any], user: str, channel: str, response_url: str, team: str = "T0TEST"
) -> dict[str, str]:
    """The form Slack posts when a message button is pressed: one field, `payload`, as JSON
    (a subset of block_actions, with the same names)."""
    body = {
        "type": "block_actions",
        "team": {"id": team, "domain": "test"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0TEST",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": "1741194000.000100", "channel_id": channel},
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
        "channel": {"id": channel, "name": "markets"},
        "response_url": response_url,
        "actions": [
            {
                **action,
                "block_id": "marketbot_actions",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return {"payload": json.dumps(body)}


def signed_request(
    secret: str, payload: dict[str, str], timestamp: int | None = None
) -> tuple[str, dict[str, str]]:
    """A form-encoded body and the headers Slack would send with it."""
    body = urlencode(payload)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sign(secret, ts, body),
    }
    return body, headers
