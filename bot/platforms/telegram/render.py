"""The neutral Message as Telegram HTML: escaped, safely linked, cut to Telegram's limits."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.inert import clean, host_of, looks_like_url, web_url
from handlers.models import Direction
from handlers.render import Button, ContextItem, Field, Link, Message

log = logging.getLogger(__name__)

# Bot API, sendMessage and sendPhoto: 1-4096 characters of text, 0-1024 of caption, counted
# after entities parsing; callback_data 1-64 bytes.
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
# Caps on single external texts, so that no one line can fill a message by itself.
MAX_TITLE = 250
MAX_LINE = 1000
MAX_LABEL = 300
ARROWS = {Direction.UP: "📈", Direction.DOWN: "📉"}
# Our own tags: external text is escaped, so it never contains a raw < or >.
TAG = re.compile(r"<[^>]*>")


def text_length(markup: str) -> int:
    """MARKUP's length as Telegram counts it: the text after entities parsing, in UTF-16."""
    return len(html.unescape(TAG.sub("", markup)).encode("utf-16-le")) // 2


def inert(text: str, limit: int = MAX_LINE) -> str:
    """External text as inert HTML: invisible controls dropped, cut to LIMIT characters,
    <>&" escaped, and every @ broken so that nothing reads as a @username mention."""
    plain = clean(text)
    if len(plain) > limit:
        plain = plain[: limit - 1] + "…"
    return html.escape(plain, quote=True).replace("@", "@\u200b")


def link(url: str | None, label: str) -> str:
    """An <a href> to URL's real http(s) address, or the label alone when the URL is unusable.

    A label that reads as an address is shown as text and the link labelled with its host.
    """
    target = web_url(url)
    text = inert(label, MAX_LABEL)
    if target is None:
        return text
    href = html.escape(target, quote=True)
    if looks_like_url(label):
        return f'{text} (<a href="{href}">{inert(host_of(target), 100)}</a>)'
    return f'<a href="{href}">{text}</a>'


def field_line(item: Field) -> str:
    return f"<b>{inert(item.name, MAX_LABEL)}</b>: {inert(item.value)}"


def news_lines(news: Sequence[Link]) -> list[str]:
    if not news:
        return []
    lines = ["", "<b>News</b>"]
    for item in news:
        source = f" — {inert(item.publisher, 80)}" if item.publisher else ""
        lines.append(f"• {link(item.url, item.title)}{source} <i>({inert(item.kind, 20)})</i>")
    return lines


def context_lines(items: Sequence[ContextItem]) -> list[str]:
    lines: list[str] = []
    for item in items:
        label = "Context" if item.kind == "catalyst" else "Backdrop"
        lines += ["", f"<b>{label}: {inert(item.title, MAX_LABEL)}</b>"]
        if item.summary:
            lines.append(inert(item.summary))
        sources = [link(url, host_of(url)) for url in item.links[:3] if web_url(url)]
        if sources:
            lines.append(" · ".join(sources))
    return lines


def message_lines(message: Message) -> list[str]:
    """The Message as lines of HTML; no tag spans two lines, so any prefix of lines is valid."""
    lines = [f"<b>{inert(message.title, MAX_TITLE)}</b>"] if message.title.strip() else []
    if message.cause_line:
        arrow = ARROWS.get(message.direction, "") if message.direction else ""
        lines.append(f"{arrow} <b>{inert(message.cause_line)}</b>".strip())
    if message.headline:
        lines.append(inert(message.headline))
    if message.fields:
        lines += ["", *(field_line(f) for f in message.fields)]
    lines += news_lines(message.news)
    lines += context_lines(message.context)
    if message.evidence:
        lines += ["", *(f"<i>{inert(e, 500)}</i>" for e in message.evidence)]
    if message.footer:
        lines += ["", f"<i>{inert(message.footer, 500)}</i>"]
    return lines


def cut_note(left: int, limit: int) -> str:
    return f"<i>… {left} more line(s) cut to fit Telegram's {limit}-character limit</i>"


def join_lines(lines: Sequence[str], limit: int = MAX_TEXT) -> str:
    """Whole lines of HTML up to LIMIT, with a note saying how many were cut."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        extra = text_length(line) + (1 if kept else 0)
        left = len(lines) - index
        note = cut_note(left, limit)
        if used + extra + (text_length(note) + 1 if left > 1 else 0) > limit:
            kept.append(note)
            log.info("Telegram text cut: %d of %d lines shown", index, len(lines))
            break
        kept.append(line)
        used += extra
    while kept and not kept[0]:
        kept.pop(0)
    return "\n".join(kept)


def message_html(message: Message, limit: int = MAX_TEXT) -> str:
    """The whole Message as Telegram HTML within LIMIT characters."""
    return join_lines(message_lines(message), limit)


def reply_lines(text: str) -> list[str]:
    """A command reply (the core's plain text) as lines of escaped HTML."""
    return [inert(line, MAX_TEXT // 2) for line in text.splitlines()]


def fits(text: str, limit: int) -> bool:
    return text_length(text) <= limit


def callback_data(button: Button) -> str | None:
    """The button's action id when Telegram can carry it (at most 64 bytes), else None."""
    data = button.action_id
    return data if 0 < len(data.encode("utf-8")) <= MAX_CALLBACK_DATA else None


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """The buttons as one row of an inline keyboard (None when there are none to show)."""
    row = []
    for button in buttons:
        data = callback_data(button)
        if data is None:
            log.warning("button %r left out: its action id exceeds 64 bytes", button.label)
            continue
        row.append(InlineKeyboardButton(clean(button.label)[:64], callback_data=data))
    return InlineKeyboardMarkup([row]) if row else None
