"""Symbol normalisation: what users type becomes Yahoo's form, or a clear refusal."""

from __future__ import annotations

import pytest

from handlers.symbols import SymbolError, normalize_symbol, parse_symbols


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BRK.B", "BRK-B"),
        ("brk.b", "BRK-B"),
        ("0700.HK", "0700.HK"),
        ("^GSPC", "^GSPC"),
        ("BTC-USD", "BTC-USD"),
        ("EURUSD=X", "EURUSD=X"),
        ("$baba", "BABA"),
        (" jd ", "JD"),
    ],
)
def test_accepted_symbols_are_normalised(raw: str, expected: str) -> None:
    assert normalize_symbol(raw) == expected


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ("$$$", "not a valid ticker"),
        ("", "Empty symbol"),
        ("   ", "Empty symbol"),
        ("A" * 30, "too long"),
        ("<@&123>", "not a valid ticker"),
        ("@everyone", "not a valid ticker"),
    ],
)
def test_bad_symbols_are_refused_with_a_reason(raw: str, phrase: str) -> None:
    with pytest.raises(SymbolError, match=phrase):
        normalize_symbol(raw)


def test_parse_symbols_keeps_good_ones_and_reports_bad_ones() -> None:
    symbols, errors = parse_symbols("BABA, jd $$$ BABA tcehy")
    assert symbols == ["BABA", "JD", "TCEHY"]
    assert len(errors) == 1 and "$$$" in errors[0]
