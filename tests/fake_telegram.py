"""A fake Telegram Bot API on 127.0.0.1, speaking the protocol python-telegram-bot uses.

`POST /bot<TOKEN>/<method>` with a JSON, form or multipart body; answers
{"ok": true, "result": ...} or {"ok": false, "error_code", "description", "parameters"}.
Tests queue updates (commands, button presses) that getUpdates hands out by long polling,
and read what the bot sent. HTML text is parsed as strictly as Telegram does.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456789:AAE-fake-TOKEN_for_tests_only_abcdef"
BOT_ID = 123456789
BOT_USERNAME = "market_test_bot"
GROUP = -1001234567890
OTHER_GROUP = -1009876543210
CHANNEL = -1005555555555
ANONYMOUS_ADMIN_BOT = 1087968824  # GroupAnonymousBot, the sender of anonymous admins' messages
ADMIN = 111
MEMBER = 222
OWNER = 333
MAX_TEXT = 4096
MAX_CAPTION = 1024
# The tags Telegram's HTML parse mode knows; anything else is "Unsupported start tag".
TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "span", "tg-spoiler", "blockquote", "tg-emoji",
}  # fmt: skip
NAMED_ENTITIES = {"lt", "gt", "amp", "quot"}
MARKUP = re.compile(
    r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+\s*=\s*\"[^\"<>]*\")*)\s*>"
    r"|&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);|[<>&]"
)
ATTRIBUTE = re.compile(r"([a-zA-Z-]+)\s*=\s*\"([^\"]*)\"")
# Fields python-telegram-bot sends JSON-encoded in form bodies.
JSON_FIELDS = {"reply_markup", "reply_parameters", "link_preview_options", "allowed_updates"}
JSON_FIELDS |= {"commands", "scope"}
INT_FIELDS = {"user_id", "offset", "limit", "timeout", "message_id"}


class EntityError(Exception):
    """Text Telegram would refuse with "can't parse entities"."""


@dataclass
class Parsed:
    """HTML text as Telegram reads it: the visible text and the links' targets."""

    text: str
    links: list[str] = field(default_factory=list)


def parse_html(markup: str) -> Parsed:
    """Parse like Telegram: known tags only, properly nested, entities well formed."""
    out: list[str] = []
    links: list[str] = []
    stack: list[str] = []
    pos = 0
    for match in MARKUP.finditer(markup):
        out.append(markup[pos : match.start()])
        pos = match.end()
        closing, tag, attrs, entity = match.groups()
        if tag is not None:
            _tag(tag.lower(), bool(closing), attrs, stack, links, match.start())
        elif entity is not None:
            out.append(_entity(entity, match.start()))
        else:
            raise EntityError(f"unescaped {match.group(0)!r} at byte offset {match.start()}")
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    out.append(markup[pos:])
    return Parsed("".join(out), links)


def _tag(tag: str, closing: bool, attrs: str, stack: list[str], links: list[str], at: int) -> None:
    if tag not in TAGS:
        raise EntityError(f'Unsupported start tag "{tag}" at byte offset {at}')
    if closing:
        if not stack or stack[-1] != tag:
            raise EntityError(f'Unmatched end tag at byte offset {at}, expected "</{tag}>"')
        stack.pop()
        return
    stack.append(tag)
    if tag == "a":
        href = dict(ATTRIBUTE.findall(attrs)).get("href")
        if not href:
            raise EntityError(f"<a> without href at byte offset {at}")
        links.append(html.unescape(href))


def _entity(entity: str, at: int) -> str:
    if entity.startswith("#"):
        return html.unescape(f"&{entity};")
    if entity not in NAMED_ENTITIES:
        raise EntityError(f'Unsupported HTML entity "&{entity};" at byte offset {at}')
    return html.unescape(f"&{entity};")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    """One request the fake received: the Bot API method and its decoded arguments."""

    method: str
    args: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    status: int = 200


@dataclass
class Sent:
    """A message the bot posted: its chat, HTML source, visible text, links, buttons, photo."""

    message_id: int
    chat_id: int | str
    method: str
    markup: str
    text: str
    parse_mode: str | None
    links: list[str]
    reply_markup: dict[str, Any] | None
    photo: bytes | None = None
    reply_to: int | None = None

    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline keyboard button."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b["text"], b.get("callback_data", "")) for row in rows for b in row]


class ApiError(Exception):
    """A Bot API error answer."""

    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def user(user_id: int, name: str = "") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name or f"user{user_id}"}


class FakeTelegram:
    """Answers getMe, deleteWebhook, getUpdates (long polling), setMyCommands, sendMessage,
    sendPhoto, getChatMember, answerCallbackQuery; everything it was asked is in `calls`."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.answers: list[dict[str, Any]] = []
        # Chat member statuses by (chat id, user id); anyone else is a plain "member".
        self.members: dict[tuple[int, int], str] = {}
        self.chats: dict[int, dict[str, Any]] = {
            GROUP: {"id": GROUP, "type": "supergroup", "title": "Markets <&> chat"},
            OTHER_GROUP: {"id": OTHER_GROUP, "type": "supergroup", "title": "Other"},
            CHANNEL: {"id": CHANNEL, "type": "channel", "title": "Alerts"},
        }
        self.commands: list[dict[str, Any]] = []
        # Photos Telegram cannot process: sendPhoto answers 400 IMAGE_PROCESS_FAILED.
        self.refuse_photos = False
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._throttle: dict[str, tuple[int, int]] = {}
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # --- lifecycle --------------------------------------------------------------------
    async def start(self) -> FakeTelegram:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._api)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        self._closing.set()
        if self._runner:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return self.base_url + "/bot"

    @property
    def file_url(self) -> str:
        return self.base_url + "/file/bot"

    # --- test controls ------------------------------------------------------------------
    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        self.members[(chat_id, user_id)] = status

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next TIMES calls of METHOD answer 429 with parameters.retry_after."""
        self._throttle[method] = (times, retry_after)

    def queue(self, update: dict[str, Any]) -> int:
        update_id = next(self._update_ids)
        self._updates.append({"update_id": update_id, **update})
        self._notify()
        return update_id

    def command(
        self, text: str, chat_id: int = GROUP, user_id: int = MEMBER, as_group: bool = False
    ) -> int:
        """Queue a message starting with a bot_command entity, as a user typed it; its id.

        In a channel it is a channel_post: no user, the channel itself as sender_chat.
        AS_GROUP: an anonymous administrator's, sent as the group (from GroupAnonymousBot).
        """
        message_id = next(self._message_ids)
        command = text.split(maxsplit=1)[0]
        entity = {"type": "bot_command", "offset": 0, "length": len(command)}
        if self.chat(chat_id)["type"] == "channel":
            message = self._message(message_id, chat_id, {})
            del message["from"]
            message["sender_chat"] = self.chat(chat_id)
            self.queue({"channel_post": {**message, "text": text, "entities": [entity]}})
            return message_id
        message = self._message(message_id, chat_id, user(user_id))
        if as_group:
            message["from"] = {"id": ANONYMOUS_ADMIN_BOT, "is_bot": True, "first_name": "Group"}
            message["sender_chat"] = self.chat(chat_id)
        self.queue({"message": {**message, "text": text, "entities": [entity]}})
        return message_id

    def press(self, data: str, message_id: int, chat_id: int = GROUP, user_id: int = MEMBER) -> str:
        """Queue a callback_query: USER pressed a button carrying DATA under a bot message."""
        query_id = f"cq{next(self._update_ids)}"
        message = {**self._message(message_id, chat_id, self.me()), "text": "alert"}
        self.queue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user(user_id),
                    "message": message,
                    "chat_instance": f"ci{chat_id}",
                    "data": data,
                }
            }
        )
        return query_id

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def answer_to(self, query_id: str) -> dict[str, Any] | None:
        return next((a for a in self.answers if a.get("callback_query_id") == query_id), None)

    async def wait_until(self, check: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the bot did not do it in time")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.05))

    async def wait_sent(self, chat_id: int, count: int, timeout: float = 10.0) -> list[Sent]:
        """The chat's messages once there are at least COUNT of them."""
        await self.wait_until(lambda: len(self.sent_to(chat_id)) >= count, timeout)
        return self.sent_to(chat_id)

    async def wait_answer(self, query_id: str, timeout: float = 10.0) -> dict[str, Any]:
        await self.wait_until(lambda: self.answer_to(query_id) is not None, timeout)
        found = self.answer_to(query_id)
        assert found is not None
        return found

    # --- objects --------------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "MarketBot",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def chat(self, chat_id: int | str) -> dict[str, Any]:
        if isinstance(chat_id, int) and chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"}
        found = self.chats.get(chat_id) if isinstance(chat_id, int) else None
        if found is None:
            raise ApiError(400, "Bad Request: chat not found")
        return found

    def _message(self, message_id: int, chat_id: int, sender: dict[str, Any]) -> dict[str, Any]:
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": sender,
        }

    def _notify(self) -> None:
        self._changed.set()

    # --- protocol -------------------------------------------------------------------------
    async def _args(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            body: dict[str, Any] = await request.json() if request.can_read_body else {}
            return body
        args: dict[str, Any] = {}
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                args[name] = value.file.read()
            elif name in JSON_FIELDS or value in ("true", "false"):
                args[name] = json.loads(str(value))
            elif name in INT_FIELDS or (name == "chat_id" and str(value).lstrip("-").isdigit()):
                args[name] = int(str(value))
            else:
                args[name] = value
        for name, value in list(args.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                args[name] = args.pop(value.removeprefix("attach://"), b"")
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return self._error(ApiError(401, "Unauthorized"))
        args = await self._args(request)
        call = Call(method, args)
        self.calls.append(call)
        self._notify()
        times, retry_after = self._throttle.get(method, (0, 0))
        if times > 0:
            self._throttle[method] = (times - 1, retry_after)
            call.status = 429
            error = ApiError(
                429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
            )
            return self._error(error)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(ApiError(404, "Not Found"))
        try:
            result = await handler(args)
        except ApiError as exc:
            call.status = exc.code
            return self._error(exc)
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(exc: ApiError) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": exc.code,
            "description": exc.description,
        }
        if exc.parameters:
            body["parameters"] = exc.parameters
        return web.json_response(body, status=exc.code)

    # --- methods ----------------------------------------------------------------------------
    async def _m_getMe(self, args: dict[str, Any]) -> Any:
        return self.me()

    async def _m_deleteWebhook(self, args: dict[str, Any]) -> Any:
        return True

    async def _m_setMyCommands(self, args: dict[str, Any]) -> Any:
        self.commands = list(args.get("commands") or [])
        return True

    async def _m_getUpdates(self, args: dict[str, Any]) -> Any:
        offset = int(args.get("offset") or 0)
        if offset:
            # An offset confirms every update before it: Telegram forgets them.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + float(args.get("timeout") or 0)
        while not self._updates and not self._closing.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.1))
        limit = int(args.get("limit") or 100)
        return self._updates[:limit]

    def _parsed(self, markup: str, parse_mode: str | None, limit: int, what: str) -> Parsed:
        if parse_mode == "HTML":
            try:
                parsed = parse_html(markup)
            except EntityError as exc:
                raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from exc
        else:
            parsed = Parsed(markup)
        if utf16_len(parsed.text) > limit:
            raise ApiError(400, f"Bad Request: {what} is too long")
        return parsed

    def _record_sent(self, method: str, args: dict[str, Any], markup: str, parsed: Parsed) -> Sent:
        chat_id = args["chat_id"]
        chat = self.chat(chat_id)
        reply = args.get("reply_parameters") or {}
        sent = Sent(
            next(self._message_ids),
            chat["id"],
            method,
            markup,
            parsed.text,
            args.get("parse_mode"),
            parsed.links,
            args.get("reply_markup"),
            args.get("photo") if isinstance(args.get("photo"), bytes) else None,
            reply.get("message_id"),
        )
        self.sent.append(sent)
        return sent

    def _result(self, sent: Sent) -> dict[str, Any]:
        chat = self.chat(sent.chat_id)
        result = {"message_id": sent.message_id, "date": int(time.time()), "chat": chat}
        result["from"] = self.me()
        if sent.reply_markup:
            result["reply_markup"] = sent.reply_markup
        return result

    async def _m_sendMessage(self, args: dict[str, Any]) -> Any:
        markup = str(args.get("text") or "")
        if not markup.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        parsed = self._parsed(markup, args.get("parse_mode"), MAX_TEXT, "message")
        sent = self._record_sent("sendMessage", args, markup, parsed)
        return {**self._result(sent), "text": parsed.text}

    async def _m_sendPhoto(self, args: dict[str, Any]) -> Any:
        photo = args.get("photo")
        if not isinstance(photo, bytes) or not photo:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        if self.refuse_photos:
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        markup = str(args.get("caption") or "")
        parsed = self._parsed(markup, args.get("parse_mode"), MAX_CAPTION, "message caption")
        sent = self._record_sent("sendPhoto", args, markup, parsed)
        size = {"file_id": f"ph{sent.message_id}", "file_unique_id": f"u{sent.message_id}"}
        photos = [{**size, "width": 800, "height": 500, "file_size": len(photo)}]
        return {**self._result(sent), "photo": photos, "caption": parsed.text}

    async def _m_getChatMember(self, args: dict[str, Any]) -> Any:
        chat_id, user_id = int(args["chat_id"]), int(args["user_id"])
        self.chat(chat_id)
        status = self.members.get((chat_id, user_id), "member")
        return member(status, user(user_id))

    async def _m_answerCallbackQuery(self, args: dict[str, Any]) -> Any:
        self.answers.append(args)
        self._notify()
        return True


ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories",
    "can_edit_stories", "can_delete_stories",
)  # fmt: skip


def member(status: str, who: dict[str, Any]) -> dict[str, Any]:
    """A ChatMember object as Telegram sends it for STATUS."""
    if status == "creator":
        return {"status": status, "user": who, "is_anonymous": False}
    if status == "administrator":
        rights = dict.fromkeys(ADMIN_RIGHTS, False) | {"can_manage_chat": True}
        flags = {"can_be_edited": False, "is_anonymous": False}
        return {"status": status, "user": who, **flags, **rights}
    return {"status": status, "user": who}
