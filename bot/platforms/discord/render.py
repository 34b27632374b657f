"""The neutral alert Message drawn as a Discord embed, cut to Discord's limits, text escaped."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import discord

from bot.inert import clean, host_of, looks_like_url, web_url
from handlers.models import Direction
from handlers.render import ContextItem, Link, Message

# Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object).
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
CONTENT_MAX = 2000
NONCE_MAX = 25
# Discord's upload limit for a server without boosts (the smallest any bot may meet).
ATTACHMENT_MAX = 8 * 1024 * 1024

ELLIPSIS = "…"
# Room kept in the total for the "N more not shown" note and the alert reference added to
# the footer after cutting.
NOTE_RESERVE = 128
ALERT_REF = "alert {}"
# Shares of the 6000 total, so that a long text never crowds out the moves and the context.
FOOTER_BUDGET = 512
DESCRIPTION_BUDGET = 1536
MIN_FIELD_VALUE = 24
MAX_MOVE_FIELDS = 15
MAX_NEWS_TITLE = 200
MAX_CAUSE_LINE = 1000
MOVE_NAME_MAX = 100
MOVE_VALUE_MAX = 300
CONTEXT_VALUE_MAX = 700
EVIDENCE_VALUE_MAX = 600

COLOURS: dict[Direction | None, int] = {
    Direction.UP: 0x2ECC71,
    Direction.DOWN: 0xE74C3C,
    None: 0x95A5A6,
}
NO_MENTIONS = discord.AllowedMentions.none()
CHART_FILENAME = "chart.png"
CHART_URL = f"attachment://{CHART_FILENAME}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_LINK_URL = 512
# Discord markdown (simple-markdown) hides a backslash before any ASCII punctuation. Escaped
# anywhere: emphasis, code, spoilers, brackets of masked links, <...> mentions and links,
# and the colon of "://" so that a bare URL in a headline is not made a link.
INLINE_MARKUP = re.compile(r"[\\*_~|`\[\]<>]|:(?=//)")
# Escaped at the start of a line only: headings, quotes, lists, subtext.
LINE_MARKUP = re.compile(r"^(\s*)([#>+-])", re.MULTILINE)
NUMBERED = re.compile(r"^(\s*\d+)\.", re.MULTILINE)


def cut(text: str, limit: int) -> str:
    """TEXT within LIMIT characters; a cut ends with a visible ellipsis."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    kept = text[: limit - 1].rstrip()
    trailing = len(kept) - len(kept.rstrip("\\"))
    if trailing % 2:  # never leave half of an escape: it would escape the next character
        kept = kept[:-1]
    return kept + ELLIPSIS


def no_mentions(text: str) -> str:
    """Break every @ so no text can ping (@everyone, <@&role>, <@user>), whatever the client."""
    return text.replace("@", "@\u200b")


def _escaped(match: re.Match[str]) -> str:
    return "\\" + match.group(0)


def escape_text(text: str) -> str:
    """One escaping step for Discord markdown: every character that could format, link or
    quote gets a backslash (which Discord hides), and nothing is escaped twice."""
    text = INLINE_MARKUP.sub(_escaped, clean(text))
    text = LINE_MARKUP.sub(lambda m: m.group(1) + "\\" + m.group(2), text)
    return NUMBERED.sub(lambda m: m.group(1) + "\\.", text)


def safe_text(text: str) -> str:
    """User- or third-party-supplied text made inert: controls dropped, markdown escaped once,
    masked links, autolinks and mentions broken."""
    return no_mentions(escape_text(text))


def reply_content(text: str) -> str:
    """A command reply as message content: escaped and within the 2000-character limit."""
    return cut(safe_text(text), CONTENT_MAX)


def nonce_for(alert_id: str, channel: str) -> str:
    """The message nonce for one alert in one channel: the same on every retry, <= 25 chars."""
    return hashlib.sha256(f"{alert_id}:{channel}".encode()).hexdigest()[:NONCE_MAX]


def link_url(url: str | None) -> str | None:
    """URL fit to be a masked link's target (a checked http(s) URL), or None."""
    checked = web_url(url)
    return checked if checked is not None and len(checked) < MAX_LINK_URL else None


def masked_link(url: str | None, label: str) -> str:
    """[label](url) with the label escaped, or the label alone when the URL is unusable."""
    text = safe_text(label)
    target = link_url(url)
    if target and looks_like_url(label):
        return f"{text} ([{safe_text(host_of(target))}]({target}))"
    return f"[{text}]({target})" if target else text


def news_line(link: Link) -> str:
    """'• [title](url) — publisher · kind', the title escaped; no link for non-web URLs."""
    shown = masked_link(link.url, cut(clean(link.title), MAX_NEWS_TITLE))
    source = f" — {safe_text(link.publisher)}" if link.publisher else ""
    return f"• {shown}{source} · {safe_text(link.kind)}"


def lines_within(lines: Sequence[str], limit: int) -> str:
    """Whole lines while they fit, then '… and N more' (never a line cut in half)."""
    kept: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        rest = len(lines) - i
        note = f"{ELLIPSIS} and {rest} more"
        reserve = 0 if rest == 1 else len(note) + 1
        if used + len(line) + 1 + reserve > limit:
            if not kept:
                return cut(line, limit)
            kept.append(note)
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)


@dataclass(frozen=True)
class EmbedField:
    """A field the embed would like to show; lower PRIORITY keeps its place when space runs out."""

    name: str
    value: str
    priority: int


def _context_field(item: ContextItem) -> EmbedField:
    catalyst = item.kind == "catalyst"
    links = [u for u in (link_url(url) for url in item.links) if u]
    more = f"\n{masked_link(links[0], host_of(links[0]))}" if links else ""
    summary = cut(safe_text(item.summary), CONTEXT_VALUE_MAX - len(more))
    label = "Context" if catalyst else "Backdrop"
    return EmbedField(f"{label}: {safe_text(item.title)}", summary + more, 1 if catalyst else 3)


def _move_fields(message: Message) -> list[EmbedField]:
    moves = [
        EmbedField(
            cut(safe_text(f.name), MOVE_NAME_MAX),
            cut(safe_text(f.value), MOVE_VALUE_MAX),
            0 if i < 5 else 2,
        )
        for i, f in enumerate(message.fields)
    ]
    if len(moves) <= MAX_MOVE_FIELDS:
        return moves
    kept, rest = moves[: MAX_MOVE_FIELDS - 1], moves[MAX_MOVE_FIELDS - 1 :]
    other = lines_within([m.name for m in rest], FIELD_VALUE_MAX)
    return [*kept, EmbedField("Other moves", other, 2)]


def embed_fields(message: Message) -> list[EmbedField]:
    """Every field the embed would like to show, in display order."""
    fields = _move_fields(message)
    if message.news:
        lines = [news_line(link) for link in message.news]
        fields.append(EmbedField("News", lines_within(lines, FIELD_VALUE_MAX), 1))
    fields.extend(_context_field(item) for item in message.context)
    if message.evidence:
        checked = lines_within([safe_text(e) for e in message.evidence], EVIDENCE_VALUE_MAX)
        fields.append(EmbedField("What was checked", checked, 4))
    return [f for f in fields if f.name.strip() and f.value.strip()]


def fit_fields(fields: Sequence[EmbedField], budget: int) -> tuple[list[EmbedField], int]:
    """The fields that fit in BUDGET characters and 25 slots, by priority, in display order.

    Returns them (names and values cut to Discord's limits) and how many were left out.
    """
    order = sorted(range(len(fields)), key=lambda i: fields[i].priority)
    kept: dict[int, EmbedField] = {}
    for i in order:
        name = cut(fields[i].name, FIELD_NAME_MAX)
        room = min(FIELD_VALUE_MAX, budget - len(name))
        if len(kept) >= FIELDS_MAX or room < MIN_FIELD_VALUE:
            continue
        value = cut(fields[i].value, room)
        budget -= len(name) + len(value)
        kept[i] = EmbedField(name, value, fields[i].priority)
    return [kept[i] for i in sorted(kept)], len(fields) - len(kept)


def _description(message: Message) -> str:
    parts = []
    if message.cause_line:
        parts.append(f"**{cut(safe_text(message.cause_line), MAX_CAUSE_LINE)}**")
    if message.headline:
        parts.append(safe_text(message.headline))
    return "\n".join(parts)


@dataclass
class _Budget:
    """Characters left of the embed's 6000 in all."""

    left: int

    def take(self, text: str, limit: int) -> str:
        taken = cut(text, min(limit, self.left))
        self.left -= len(taken)
        return taken


def message_embed(message: Message) -> discord.Embed:
    """MESSAGE as one embed within every Discord limit; what was cut is marked with an ellipsis."""
    budget = _Budget(EMBED_TOTAL_MAX - NOTE_RESERVE)
    fields = embed_fields(message)
    title = budget.take(safe_text(message.title) or "Market move", TITLE_MAX)
    # Discord shows footers as plain text (no markdown, links or mentions): escaping would
    # only add visible backslashes, so invisible characters are all that is taken out.
    footer = budget.take(clean(message.footer), FOOTER_BUDGET)
    description_max = DESCRIPTION_BUDGET if fields else DESCRIPTION_MAX
    description = budget.take(_description(message), description_max)
    embed = discord.Embed(
        title=title,
        description=description or None,
        colour=COLOURS.get(message.direction, COLOURS[None]),
        timestamp=message.at,
    )
    shown, dropped = fit_fields(fields, budget.left)
    for f in shown:
        embed.add_field(name=f.name, value=f.value, inline=False)
    if dropped:
        footer = f"{footer} · {dropped} more not shown (Discord limits)"
    if footer:
        embed.set_footer(text=footer)
    return embed


def with_alert_ref(embed: discord.Embed, alert_id: str) -> discord.Embed:
    """A copy of EMBED whose footer ends with the alert's id, so that the bot can find its own
    post in the channel's history when it does not know whether a send went out."""
    marked = embed.copy()
    footer, ref = embed.footer.text or "", ALERT_REF.format(alert_id)
    marked.set_footer(text=f"{footer} · {ref}" if footer else ref)
    return marked


def carries_alert(embeds: Sequence[discord.Embed], alert_id: str) -> bool:
    """True when one of a message's EMBEDS is the post of ALERT_ID (see with_alert_ref)."""
    ref = ALERT_REF.format(alert_id)
    return any((e.footer.text or "").endswith(ref) for e in embeds)


def chart_problem(png: bytes) -> str | None:
    """Why these bytes cannot go out as the chart attachment, or None if they can."""
    if not png.startswith(PNG_SIGNATURE):
        return "not a PNG"
    if len(png) > ATTACHMENT_MAX:
        return f"{len(png)} bytes, over Discord's {ATTACHMENT_MAX} upload limit"
    return None


def chart_file(png: bytes) -> discord.File:
    """A fresh upload of the chart for one send (a File is consumed by the request)."""
    return discord.File(io.BytesIO(png), filename=CHART_FILENAME)


def with_chart(embed: discord.Embed) -> discord.Embed:
    """A copy of EMBED showing the attached chart as its image."""
    charted = embed.copy()
    charted.set_image(url=CHART_URL)
    return charted
