"""Ticker normalisation and validation, shared by commands, config and sources."""

from __future__ import annotations

import re

MAX_SYMBOL_LENGTH = 20

# Yahoo's symbol alphabet: letters, digits, and . - = ^ in their usual places
# (BRK-B, 0700.HK, ^GSPC, BTC-USD, EURUSD=X, ES=F).
_SYMBOL_RE = re.compile(r"^\^?[A-Z0-9][A-Z0-9.\-]*(=[A-Z]{1,3})?$")
# Share classes written with a dot (BRK.B, BF.A) are dashes on Yahoo; exchange suffixes stay.
_SHARE_CLASS_RE = re.compile(r"^([A-Z]{1,5})\.([A-Z])$")


class SymbolError(ValueError):
    """A symbol that cannot be watched, with a message fit to show the user."""


def normalize_symbol(raw: str) -> str:
    """Return the Yahoo form of a user-typed symbol, or raise SymbolError saying why."""
    stripped = raw.strip().upper() if raw else ""
    if not stripped:
        raise SymbolError("Empty symbol: give a ticker such as BABA or 0700.HK.")
    # A leading $ is the cashtag habit ($BABA); anything else must be a real ticker.
    text = stripped[1:] if stripped.startswith("$") else stripped
    if len(text) > MAX_SYMBOL_LENGTH:
        raise SymbolError(
            f"'{_shorten(raw)}' is too long for a ticker (at most {MAX_SYMBOL_LENGTH} characters)."
        )
    match = _SHARE_CLASS_RE.match(text)
    if match:
        text = f"{match.group(1)}-{match.group(2)}"
    if not _SYMBOL_RE.match(text):
        raise SymbolError(
            f"'{_shorten(raw)}' is not a valid ticker: use letters, digits and . - = ^ "
            "as Yahoo writes them (BRK-B, 0700.HK, ^GSPC, BTC-USD, EURUSD=X)."
        )
    return text


def parse_symbols(text: str) -> tuple[list[str], list[str]]:
    """Split a comma/space separated list into (valid symbols, error messages)."""
    symbols: list[str] = []
    errors: list[str] = []
    for token in re.split(r"[\s,]+", text.strip()):
        if not token:
            continue
        try:
            sym = normalize_symbol(token)
        except SymbolError as exc:
            errors.append(str(exc))
            continue
        if sym not in symbols:
            symbols.append(sym)
    return symbols, errors


def _shorten(raw: str, limit: int = 24) -> str:
    return raw if len(raw) <= limit else raw[: limit - 1] + "…"
