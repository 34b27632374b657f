"""External text made inert for chat platforms: invisible controls dropped, URLs parsed strictly."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, urlsplit

# Longest URL we link to; longer ones are shown as text (Discord and Slack cut far later).
MAX_URL = 1000
WEB_SCHEMES = ("http", "https")
HOST_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# Characters kept as they are in a URL's path, query and fragment; everything else (spaces,
# brackets, parentheses, quotes, pipes, backslashes, non-ASCII) is percent-encoded, so that
# a URL can never close the link it sits in or open another; "@" too, so it reads as no
# mention.
PATH_SAFE = "/-._~!$&*+,;=:%"
QUERY_SAFE = PATH_SAFE + "?"
LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
KEPT_CONTROLS = {"\n", "\t"}
LINE_BREAKS = {"\u2028": "\n", "\u2029": "\n", "\r": ""}


def _dropped(char: str) -> bool:
    """Invisible characters that can reorder or hide text (bidi overrides, zero-width)."""
    if char in KEPT_CONTROLS:
        return False
    return unicodedata.category(char) in ("Cc", "Cf", "Co", "Cs", "Cn")


def clean(text: str) -> str:
    """TEXT without bidi overrides, zero-width or other invisible format/control characters."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for char in text:
        if char in LINE_BREAKS:
            out.append(LINE_BREAKS[char])
        elif not _dropped(char):
            out.append(char)
    return "".join(out)


def _host(hostname: str) -> str | None:
    """The hostname as ASCII (IDNA) when every label is a valid DNS label, else None."""
    try:
        ascii_host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_host.rstrip(".").split(".")
    if not labels or not all(HOST_LABEL.fullmatch(label) for label in labels):
        return None
    return ascii_host


def _encoded(part: str, safe: str) -> str:
    return quote(LONE_PERCENT.sub("%25", part), safe=safe)


def web_url(url: str | None) -> str | None:
    """URL as a real http(s) URL with a host, percent-encoded where needed; None otherwise.

    User info (https://bank.example@evil.example) is refused: it exists to disguise a host.
    """
    if not url:
        return None
    text = url.strip()
    if len(text) > MAX_URL or any(_dropped(c) or c in "\r\n" for c in text):
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return None
    host = _host(parts.hostname)
    if host is None:
        return None
    netloc = host if port is None else f"{host}:{port}"
    rebuilt = f"{parts.scheme.lower()}://{netloc}{_encoded(parts.path, PATH_SAFE) or '/'}"
    if parts.query:
        rebuilt += "?" + _encoded(parts.query, QUERY_SAFE)
    if parts.fragment:
        rebuilt += "#" + _encoded(parts.fragment, QUERY_SAFE)
    return rebuilt if len(rebuilt) <= MAX_URL else None


def host_of(url: str) -> str:
    """The host a (checked) URL points at, for a link's label."""
    return urlsplit(url).hostname or "source"


URL_LIKE = re.compile(r"://|\bwww\.|\b[a-z0-9-]+\.(?:com|net|org|io|co|gov|bank)\b", re.IGNORECASE)


def looks_like_url(label: str) -> bool:
    """True when a link label reads as an address: it could disguise where the link goes, so
    such a label is shown as text and the link is labelled with its real host instead."""
    return bool(URL_LIKE.search(clean(label)))
