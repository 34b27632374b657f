"""External text stays inert on Discord and Slack: no disguised links, no pings, no hidden text."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.inert import web_url
from bot.platforms.discord.render import message_embed, reply_content
from bot.platforms.slack.blocks import message_blocks, reply_text
from handlers.models import Direction
from handlers.render import ContextItem, Field, Link, Message
from tests.fake_discord import displayed

EVIL = "http://evil.example"
HOSTILE = [
    f"[bank.com]({EVIL})",
    f"[x](<{EVIL}>)",
    f"{EVIL}/p",
    f"<{EVIL}|bank.com>",
    "<!channel>",
    "<!here>",
    "<!subteam^S1>",
    "<@U123>",
    "<@&123>",
    "<@!123>",
    "<#C1>",
    "<t:1:R>",
    "@everyone",
    "@here",
    "\u202e",
    "\u202d",
    "\u2066",
    "\u200b",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u2028",
    "**",
    "__",
    "~~",
    "||",
    "`",
    "```",
    "> ",
    "# ",
    "-# ",
    "1. ",
    "\\",
    "\\\\",
    "&amp;",
    "&lt;",
    "<",
    ">",
    "](",
    ")",
    "(",
    "[",
    "]",
    "\n",
    ":",
    "//",
    "|",
    "*",
    "_",
    "~",
    "https:",
    "://",
]
hostile_text = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=6)), max_size=12).map(
    "".join
)
URLS = [
    f"https://a.example/x) [bank.com]({EVIL}",
    "https://bank.example@evil.example/",
    "javascript:alert(1)",
    "https://a.example/ok",
    "https://a.example/@everyone?x=@here#@channel",
    "http://a.example/p?q=(1)&r=<2>",
    "https://exa mple.example/a b",
    "https://ünï.example/ä",
    "https:///nohost",
    "http://a.example:99999/",
    "HTTPS://A.EXAMPLE/%zz%41",
    "https://a.example/\u202egnp.exe",
]
hostile_url = st.one_of(
    st.sampled_from(URLS),
    hostile_text,
    hostile_text.map(lambda t: "https://a.example/" + t),
    st.none(),
)
links = st.builds(Link, hostile_text, hostile_url, hostile_text, hostile_text)
contexts = st.builds(
    ContextItem,
    hostile_text,
    hostile_text,
    hostile_text,
    st.lists(hostile_url, max_size=3).map(lambda us: tuple(u for u in us if u is not None)),
)
messages = st.builds(
    Message,
    title=hostile_text,
    direction=st.sampled_from([Direction.UP, Direction.DOWN, None]),
    headline=hostile_text,
    cause=st.just("company"),
    cause_line=hostile_text,
    fields=st.lists(st.builds(Field, hostile_text, hostile_text), max_size=3).map(tuple),
    evidence=st.lists(hostile_text, max_size=3).map(tuple),
    news=st.lists(links, max_size=3).map(tuple),
    context=st.lists(contexts, max_size=2).map(tuple),
    footer=hostile_text,
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def our_urls(message: Message) -> set[str]:
    """The links the renderers are meant to make: the checked form of each real web URL."""
    urls = [link.url for link in message.news] + [u for c in message.context for u in c.links]
    return {checked for checked in map(web_url, urls) if checked is not None}


def invisible(text: str) -> list[str]:
    """Format or control characters, except our zero-width space right after an @."""
    found = []
    for i, char in enumerate(text):
        if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf"):
            continue
        if char == "\u200b" and i > 0 and text[i - 1] == "@":
            continue
        found.append(repr(char))
    return found


# --- Discord: a model of its markdown's links, autolinks and mentions ----------------------

ESCAPED = re.compile(r"\\[^0-9A-Za-z\s]")
# simple-markdown's link rule (Discord's parser), applied anywhere in the text.
LINK_INSIDE = r"(?:\[[^\]]*\]|[^\[\]]|\](?=[^\[]*\]))*"
LINK_HREF = r"\s*<?((?:\([^)]*\)|[^\s\\])*?)>?(?:\s+['\"]([\s\S]*?)['\"])?\s*"
MASKED = re.compile(r"\[(" + LINK_INSIDE + r")\]\(" + LINK_HREF + r"\)")
AUTOLINK = re.compile(r"<?https?://[^\s<]+[^<.,:;\"')\]\s]")
DISCORD_MENTION = re.compile(r"@(everyone|here)|<@[!&]?\d|<#\d|<t:|<a?:\w+:\d")


def discord_links(text: str) -> list[str]:
    """Link targets Discord would make of TEXT: masked links, then autolinks in the rest."""
    plain = ESCAPED.sub("\x00", text)  # an escaped character is literal text
    targets = [m.group(2) for m in MASKED.finditer(plain)]
    rest = MASKED.sub(" ", plain)
    return targets + AUTOLINK.findall(rest)


def discord_footer(message: Message) -> str:
    """The footer, which Discord shows as plain text: nothing in it can link or ping."""
    embed: dict[str, Any] = message_embed(message).to_dict()  # type: ignore[assignment]
    return str((embed.get("footer") or {}).get("text", ""))


def discord_texts(message: Message) -> list[str]:
    """Every embed text Discord parses as markdown (title, description, fields)."""
    embed: dict[str, Any] = message_embed(message).to_dict()  # type: ignore[assignment]
    texts = [embed.get("title", ""), embed.get("description", "")]
    for f in embed.get("fields", []):
        texts += [f["name"], f["value"]]
    return [t for t in texts if t]


@FUZZ
@given(messages)
def test_discord_embeds_link_only_what_we_link_and_ping_nobody(message: Message) -> None:
    allowed = our_urls(message)
    for text in discord_texts(message):
        for target in discord_links(text):
            assert target in allowed, (target, text)
        assert not DISCORD_MENTION.search(ESCAPED.sub("\x00", text)), text
        assert not invisible(text), text
    assert not invisible(discord_footer(message))


@FUZZ
@given(hostile_text)
def test_discord_replies_link_and_ping_nothing(text: str) -> None:
    content = reply_content(text)
    assert discord_links(content) == []
    assert not DISCORD_MENTION.search(ESCAPED.sub("\x00", content))
    assert not invisible(content)


def test_a_masked_link_in_a_headline_stays_text() -> None:
    headline = "Alibaba [results](http://evil.example/phish) beat"
    link = Link(headline, "https://news.example/a", "company", "Wire")
    message = Message(
        "▲ BABA +8.6 %",
        Direction.UP,
        headline,
        "company",
        f"Company news: {headline}",
        news=(link,),
    )
    texts = discord_texts(message)
    assert [t for text in texts for t in discord_links(text)] == ["https://news.example/a"]
    description = message_embed(message).description or ""
    assert headline in displayed(description)  # shown as written, backslashes hidden


def test_a_url_cannot_add_a_second_disguised_link() -> None:
    url = "https://a.example/x) [bank.com](http://evil.example"
    message = Message("t", None, "", None, "", news=(Link("Results", url, "company"),))
    [news] = [f.value for f in message_embed(message).fields if f.name == "News"]
    assert news is not None
    [target] = discord_links(news)
    assert target == "https://a.example/x%29%20%5Bbank.com%5D%28http://evil.example"
    slack = " ".join(slack_texts(message))
    assert re.findall(r"<([^|>]*)\|", slack) == [target]


def test_one_escaping_step_leaves_no_visible_backslash() -> None:
    title = "Shares *soar* [update] (A_B) ~5 % \\o/ 1. # @everyone"
    link = Link(title, "https://news.example/a", "company", "W_ire")
    message = Message(title, None, "", None, "", news=(link,))
    embed = message_embed(message)
    assert displayed(embed.title or "") == title
    [news] = [f.value for f in embed.fields if f.name == "News"]
    assert news is not None and f"[{title}]" in displayed(news)


def test_macro_and_error_texts_are_escaped_too() -> None:
    context = ContextItem("e1", "Event [x](http://evil.example) @here", "Summary <@123> **big**")
    evidence = ("yahoo news: error <@&55> [retry](http://evil.example)",)
    message = Message("t", None, "", None, "", evidence=evidence, context=(context,))
    for text in discord_texts(message):
        assert discord_links(text) == [], text
        assert not DISCORD_MENTION.search(ESCAPED.sub("\x00", text)), text


def test_rtl_overrides_and_zero_width_characters_are_dropped() -> None:
    sneaky = "BABA \u202egnp.exe\u202c up\u200b\u2066 \ufeff"
    message = Message(sneaky, None, sneaky, None, sneaky, footer=sneaky)
    for text in [*discord_texts(message), discord_footer(message), *slack_texts(message)]:
        assert not invisible(text), text
        assert "gnp.exe up" in displayed(text)


def test_only_real_web_urls_with_a_host_are_linked() -> None:
    assert web_url("https://A.Example/x y") == "https://a.example/x%20y"
    assert web_url("HTTPS://A.EXAMPLE/%zz%41") == "https://a.example/%25zz%41"
    assert web_url("https://ünï.example/ä") == "https://xn--n-nga1b.example/%C3%A4"
    for bad in (
        "javascript:alert(1)",
        "https:///x",
        "https://bank.example@evil.example/",
        "http://a.example:99999/",
        "ftp://a.example/",
        "https://a_b.example/",
        "",
    ):
        assert web_url(bad) is None, bad


# --- Slack: mrkdwn <...> entities and verbatim text objects ---------------------------------

SLACK_ENTITY = re.compile(r"<([^<>]*)>")
SLACK_MENTION = re.compile(r"@(everyone|here|channel)|<[!@#]")


def mrkdwn_objects(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for block in blocks:
        texts = [block.get("text"), *(block.get("fields") or [])]
        texts += list(block.get("elements") or [])
        found += [t for t in texts if isinstance(t, dict)]
    return found


def slack_texts(message: Message) -> list[str]:
    return [str(t["text"]) for t in mrkdwn_objects(message_blocks(message))]


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@FUZZ
@given(messages)
def test_slack_blocks_link_only_what_we_link_and_ping_nobody(message: Message) -> None:
    allowed = our_urls(message)
    for obj in mrkdwn_objects(message_blocks(message)):
        text = str(obj["text"])
        if obj["type"] == "mrkdwn":
            assert obj.get("verbatim") is True, obj
        for entity in SLACK_ENTITY.findall(text):
            target, bar, _label = entity.partition("|")
            assert bar and unescape(target) in allowed, (entity, text)
        assert not SLACK_MENTION.search(text), text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text
        assert not invisible(text), text


@FUZZ
@given(hostile_text)
def test_slack_replies_link_and_ping_nothing(text: str) -> None:
    reply = reply_text(text)
    assert "<" not in reply and not SLACK_MENTION.search(reply)
    assert not invisible(reply)


def test_slack_formatting_marks_in_headlines_do_not_format() -> None:
    message = Message("t", None, "Shares *soar* _now_ ~x~ `y` yahoo_news", None, "cause")
    [summary] = [t for t in slack_texts(message) if "Shares" in t]
    assert "*soar*" not in summary and "_now_" not in summary and "`y`" not in summary
    assert "yahoo_news" in summary  # a mark inside a word formats nothing and is kept


def test_a_label_that_reads_as_an_address_does_not_label_a_link() -> None:
    link = Link("Log in at https://bank.example now", "https://evil.example/x", "company")
    message = Message("t", None, "", None, "", news=(link,))
    [news] = [f.value for f in message_embed(message).fields if f.name == "News"]
    assert news is not None
    assert "[evil.example](https://evil.example/x)" in news  # labelled with its real host
    slack = " ".join(slack_texts(message))
    assert "<https://evil.example/x|evil.example>" in slack
