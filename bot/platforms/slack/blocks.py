"""Block Kit rendering of the neutral Message, escaped and cut to fit Slack's limits."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

from bot.inert import clean, host_of, looks_like_url, web_url
from bot.platforms.base import BUTTON_PREFIX
from handlers.models import Direction
from handlers.render import Button, ContextItem, Field, Link, Message

log = logging.getLogger(__name__)

Block = dict[str, Any]

# Slack's published Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 3000
# The top-level `text` may be up to 40,000 characters, but notifications show only the start.
MAX_FALLBACK_TEXT = 3000
MAX_LINK_LABEL = 300
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_ACTIONS = 25
ELLIPSIS = "…"
# Slack user ids as slash-command payloads carry them; anything else is never put in a mention.
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
# Slack formats *bold*, _italic_, ~strike~ and `code` when a mark touches a word boundary;
# such marks in external text are swapped for lookalikes (marks inside a word stay).
FORMATTING_MARK = re.compile(r"(?<!\w)[*_~`]|[*_~`](?!\w)")
LOOKALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
DIRECTION_EMOJI = {
    Direction.UP: ":chart_with_upwards_trend:",
    Direction.DOWN: ":chart_with_downwards_trend:",
}


def escape(text: str) -> str:
    """Escape Slack's control characters so <!channel>, <@U..> or <url|x> in text never parse."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _lookalike(match: re.Match[str]) -> str:
    return LOOKALIKES[match.group(0)]


def inert(text: str) -> str:
    """External text as inert mrkdwn: controls dropped, <>& escaped, formatting marks that
    could open or close *bold*, _italic_, ~strike~ or `code` swapped for lookalikes (Slack
    has no escape character), and every @ broken so nothing reads as a mention."""
    text = FORMATTING_MARK.sub(_lookalike, clean(text))
    return escape(text).replace("@", "@\u200b")


def fit(text: str, limit: int) -> str:
    """TEXT made inert and, when too long, cut (never inside an entity) to LIMIT with a "…"."""
    escaped = inert(text)
    if len(escaped) <= limit:
        return escaped
    budget = limit - len(ELLIPSIS)
    out: list[str] = []
    used = 0
    for char in FORMATTING_MARK.sub(_lookalike, clean(text)):
        piece = escape(char).replace("@", "@\u200b")
        if used + len(piece) > budget:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + ELLIPSIS


def cut_escaped(text: str, limit: int) -> str:
    """Already-escaped mrkdwn cut to LIMIT, never inside an entity (&amp;) or a link (<...>)."""
    if len(text) <= limit:
        return text
    cut = limit - len(ELLIPSIS)
    amp, semi = text.rfind("&", 0, cut), text.rfind(";", 0, cut)
    if amp > semi:
        cut = amp
    opened, closed = text.rfind("<", 0, cut), text.rfind(">", 0, cut)
    if opened > closed:
        cut = opened
    return text[:cut] + ELLIPSIS


def safe_url(url: str | None) -> str | None:
    """A real http(s) URL with a host, percent-encoded, safe inside <url|label>; else None."""
    checked = web_url(url)
    return escape(checked).replace("|", "%7C") if checked else None


def link(url: str | None, label: str, limit: int = MAX_LINK_LABEL) -> str:
    """A mrkdwn link with an escaped label, or just the label when the URL is unusable."""
    text = fit(label, limit)
    target = safe_url(url)
    if target and looks_like_url(label):
        return f"{text} (<{target}|{fit(host_of(web_url(url) or ''), 100)}>)"
    return f"<{target}|{text}>" if target else text


def join_lines(lines: Sequence[str], limit: int, noun: str = "lines") -> str:
    """Whole (already escaped) lines up to LIMIT characters, saying how many were left out."""
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        extra = len(line) + (1 if kept else 0)
        left = len(lines) - index
        note = f"\n_… {left} more {noun} not shown_"
        if used + extra + (len(note) if left > 1 else 0) > limit:
            if not kept:
                return cut_escaped(line, limit)
            kept.append(note.strip())
            log.info("Slack text cut: %d of %d %s shown", index, len(lines), noun)
            break
        kept.append(line)
        used += extra
    return "\n".join(kept)


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object Slack takes as written: verbatim, so it links and mentions nothing
    by itself (only the <url|label> links this module writes)."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def header_block(title: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": fit(title, MAX_HEADER_TEXT)}}


def section(text: str) -> Block:
    return {
        "type": "section",
        "text": mrkdwn(cut_escaped(text, MAX_SECTION_TEXT)),
    }


def context_block(texts: Iterable[str]) -> Block:
    elements = [mrkdwn(cut_escaped(t, MAX_CONTEXT_TEXT)) for t in texts if t]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def field_text(item: Field) -> str:
    name = fit(item.name, 200)
    return f"*{name}*\n" + fit(item.value, MAX_FIELD_TEXT - len(name) - 3)


def field_sections(fields: Sequence[Field], max_blocks: int) -> list[Block]:
    """Sections of at most 10 fields each, no more than MAX_BLOCKS of them."""
    texts = [field_text(f) for f in fields]
    room = max(max_blocks, 0) * MAX_FIELDS
    if len(texts) > room > 0:
        hidden = len(texts) - room + 1
        texts = [*texts[: room - 1], f"_… {hidden} more moves not shown_"]
        log.info("Slack alert cut: %d of %d moves shown", room - 1, len(fields))
    elif room == 0:
        texts = []
    chunks = [texts[i : i + MAX_FIELDS] for i in range(0, len(texts), MAX_FIELDS)]
    return [{"type": "section", "fields": [mrkdwn(t) for t in chunk]} for chunk in chunks]


def news_line(item: Link) -> str:
    source = f" — {fit(item.publisher, 80)}" if item.publisher else ""
    return f"• {link(item.url, item.title)}{source} _({fit(item.kind, 20)})_"


def news_section(news: Sequence[Link]) -> Block | None:
    if not news:
        return None
    lines = [news_line(n) for n in news]
    return section(join_lines(["*News*", *lines], MAX_SECTION_TEXT, "headlines"))


def context_line(item: ContextItem) -> str:
    label = "Context" if item.kind == "catalyst" else "Backdrop"
    sources = " · ".join(link(url, host_of(url)) for url in item.links[:3] if safe_url(url))
    summary = fit(item.summary, 1200)
    return f"*{label}: {fit(item.title, 300)}*\n{summary}" + (f"\n{sources}" if sources else "")


def context_section(items: Sequence[ContextItem]) -> Block | None:
    if not items:
        return None
    lines = [context_line(c) for c in items]
    return section(join_lines(lines, MAX_SECTION_TEXT, "context items"))


def summary_section(message: Message) -> Block:
    emoji = DIRECTION_EMOJI.get(message.direction, "") if message.direction else ""
    cause = fit(message.cause_line, 1000)
    lines = [f"{emoji} *{cause}*".strip()]
    if message.headline:
        lines.append(fit(message.headline, MAX_SECTION_TEXT - len(lines[0]) - 1))
    return section("\n".join(lines))


def evidence_block(message: Message) -> Block | None:
    if not message.evidence:
        return None
    lines = [fit(e, 500) for e in message.evidence]
    return context_block([join_lines(lines, MAX_CONTEXT_TEXT, "searches")])


def actions_block(buttons: Sequence[Button]) -> Block | None:
    """The alert's buttons; one whose id would not fit Slack's limit is left out (logged)."""
    elements = []
    for button in buttons[:MAX_ACTIONS]:
        action_id = BUTTON_PREFIX + button.action_id
        if len(action_id) > MAX_ACTION_ID:
            log.info("Slack button %r left out: its id is too long", button.label[:40])
            continue
        label = {"type": "plain_text", "text": fit(clean(button.label), MAX_BUTTON_TEXT)}
        elements.append(
            {"type": "button", "text": label, "action_id": action_id, "value": button.action_id}
        )
    if not elements:
        return None
    return {"type": "actions", "block_id": "marketbot_actions", "elements": elements}


def message_blocks(message: Message) -> list[Block]:
    """The Block Kit form of a Message: header, cause, move fields, news, context, footer,
    and the alert's buttons."""
    head = [header_block(message.title)] if message.title.strip() else []
    if message.cause_line or message.headline:
        head.append(summary_section(message))
    tail = [
        b
        for b in (
            news_section(message.news),
            context_section(message.context),
            evidence_block(message),
            context_block([fit(message.footer, MAX_CONTEXT_TEXT)]) if message.footer else None,
            actions_block(message.buttons),
        )
        if b is not None
    ]
    fields = field_sections(message.fields, MAX_BLOCKS - len(head) - len(tail))
    return [*head, *fields, *tail]


def command_note(command: str, user: str) -> Block:
    """A context line saying which command a posted answer answers, and who asked."""
    who = f" · asked by <@{user}>" if USER_ID.fullmatch(user) else ""
    return context_block([f"Answer to {fit(command, 200)}{who}"])


def with_block(blocks: Sequence[Block], extra: Block) -> list[Block]:
    """BLOCKS with EXTRA appended when Slack's block limit leaves room for it."""
    return [*blocks, extra] if len(blocks) < MAX_BLOCKS else list(blocks)


def fallback_text(message: Message) -> str:
    """The plain `text` shown in notifications and by clients that cannot draw blocks."""
    return fit(message.plain_text(), MAX_FALLBACK_TEXT)


def reply_text(text: str) -> str:
    """A command reply as escaped mrkdwn within one section's limit."""
    return join_lines([fit(line, MAX_SECTION_TEXT) for line in text.splitlines()], MAX_SECTION_TEXT)
