"""The training script's inputs: extra labelled files, their split, and which rows are fitted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import extra_items, news_dev
from bench import train_classifier as training
from handlers.classifier import own_sentences


def _symbol_on(side: news_dev.Side) -> str:
    return next(f"ZZ{n}" for n in range(100) if news_dev.side_of(f"ZZ{n}") == side)


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _row(symbol: str, title: str, label: str, lead: str = "") -> dict[str, str]:
    return {"symbol": symbol, "company": "Zephyr Air", "title": title, "lead": lead, "label": label}


@pytest.fixture
def title_rows() -> Iterator[set[str]]:
    saved = set(training.TITLE_ROWS)
    yield training.TITLE_ROWS
    training.TITLE_ROWS.clear()
    training.TITLE_ROWS.update(saved)


def test_extra_files_give_only_their_tune_side_tickers(tmp_path: Path) -> None:
    tune, held = _symbol_on("tune"), _symbol_on("held")
    dev = _write(tmp_path / "dev.jsonl", [_row(tune, "Zephyr Air wins a contract", "company")])
    extra = _write(
        tmp_path / "extra.jsonl",
        [
            _row(tune, "Zephyr Air cuts its outlook", "company"),
            _row(held, "Airline stocks slide as fuel jumps", "macro"),
        ],
    )
    dev_items, extra_items = training.tune_sides(dev, [extra])
    assert [i.symbol for i in dev_items] == [tune]
    assert [(i.symbol, i.label) for i in extra_items] == [(tune, "company")]


def test_a_malformed_extra_file_is_refused_with_its_line(tmp_path: Path) -> None:
    dev = _write(tmp_path / "dev.jsonl", [_row("ZEPH", "Zephyr Air wins a contract", "company")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"symbol": "ZEPH"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1"):
        training.tune_sides(dev, [bad])


def test_extra_rows_share_folds_with_news_dev_and_carry_their_tag() -> None:
    item = news_dev.DevItem(
        "ZEPH", "Zephyr Air", "Zephyr Air cuts outlook", "It fell.", "company", ""
    )
    dev_rows = training.examples([item], "dev")
    ext_rows = training.examples([item], "ext")
    assert {r.group for r in dev_rows} == {r.group for r in ext_rows} == {"dev:ZEPH"}
    assert [r.tag for r in ext_rows] == ["ext", "ext"]
    assert [bool(r.body) for r in ext_rows] == [False, True]


def test_named_mode_leaves_unnamed_company_titles_out_of_fitting(title_rows: set[str]) -> None:
    wrap = news_dev.DevItem(
        "ZEPH",
        "Zephyr Air",
        "Wall Street rises as chip stocks gain",
        "Zephyr Air won a deal.",
        "company",
        "",
    )
    named = news_dev.DevItem("ZEPH", "Zephyr Air", "Zephyr Air wins a deal", "", "company", "")
    industry = news_dev.DevItem(
        "ZEPH", "Zephyr Air", "Airline stocks slide as fuel jumps", "", "macro", ""
    )
    title_rows.clear()
    title_rows.add("named")
    rows = training.examples([wrap, named, industry], "ext")
    fitted = {(r.title, bool(r.body)): r.fitted for r in rows}
    assert fitted[(wrap.title, False)] is False  # the title alone does not say whose news
    assert fitted[(wrap.title, True)] is True
    assert fitted[(named.title, False)] is True
    assert fitted[(industry.title, False)] is True
    assert training.weights(rows)[0] == 0.0
    title_rows.clear()
    title_rows.add("all")
    assert all(r.fitted for r in training.examples([wrap], "ext"))


def test_news_dev_report_scores_extra_files_on_the_same_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    held = _symbol_on("held")
    path = _write(
        tmp_path / "items.jsonl",
        [
            _row(held, "Zephyr Air jumps after it wins approval for new routes", "company"),
            _row(held, "Stocks slide after the Fed signals higher rates", "macro"),
        ],
    )
    assert news_dev.main([str(path), "--side", "held", "--extra", str(path)]) == 0
    out = capsys.readouterr().out
    assert "news_dev side held: 2 items" in out
    assert "extra side held: 2 items" in out
    assert news_dev.main([str(path), "--extra", str(tmp_path / "missing.jsonl")]) == 2


def test_sentences_do_not_end_at_abbreviations() -> None:
    body = "zzco fell 5% after a unit of Acme Inc. opened a probe. Others rose."
    assert own_sentences(body) == ["zzco fell 5% after a unit of Acme Inc. opened a probe."]


def _gathered(symbol: str, title: str, url: str, label: str = "company") -> dict[str, str]:
    return {
        "symbol": symbol,
        "company": "Zephyr Air",
        "title": title,
        "title_from": "page",
        "lead": "",
        "published": "",
        "source_url": url,
        "label": label,
        "alt_label": "",
        "note": "our own sample",
    }


def test_merge_keeps_valid_items_once_and_none_from_news_dev(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = _write(
        tmp_path / "dev.jsonl",
        [{**_gathered("ZEPH", "Zephyr Air wins a contract", "https://a.example/1")}],
    )
    folder = tmp_path / "gathered"
    folder.mkdir()
    _write(
        folder / "w2_b.jsonl",
        [
            _gathered("zeph", "Zephyr Air cuts its outlook", "https://b.example/2"),
            _gathered("ZEPH", "Zephyr Air Wins A Contract", "https://c.example/3"),
            _gathered("QRTZ", "Quartz rises", "http://www.a.example/1/?utm=x"),
            _gathered("QRTZ", "Quartz slides", "https://d.example/4", label="rumour"),
        ],
    )
    _write(folder / "w10_c.jsonl", [_gathered("ZEPH", "Zephyr Air cuts its outlook", "https://e")])
    assert extra_items.main(["merge", str(folder), "--news-dev", str(dev)]) == 0
    merged = [json.loads(line) for line in (folder / "all.jsonl").read_text().splitlines()]
    assert [(m["symbol"], m["title"]) for m in merged] == [("ZEPH", "Zephyr Air cuts its outlook")]
    assert "1 items" in capsys.readouterr().out
    assert extra_items.main(["check", str(folder / "w2_b.jsonl"), "--news-dev", str(dev)]) == 1
    report = capsys.readouterr().out
    assert "line 2: title is in news_dev" in report
    assert "line 3: address is in news_dev" in report
    assert "line 4: label 'rumour'" in report
