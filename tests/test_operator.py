"""What a new operator trips over (issue 14): a test or more per item, the CLI run as a process."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.app import AppContext, build_engine
from bot.charts import alert_chart, alert_chart_context, series_styles
from bot.delivery.outbox import OutboxWorker, claim, enqueue, outbox_counts
from bot.infra.store import Store
from bot.replay_run import replay_entries, run_replay
from bot.run import warn_unserved_platforms
from bot.sources.news_file import NewsFile
from bot.sources.replay import Replay, load_bars
from bot.symbol_check import KnownSymbols, YahooSymbolCheck
from config.loader import load_groups
from config.settings import Settings, load_settings, setting_fields
from config.settings_doc import readme_section, settings_markdown
from handlers import commands
from handlers.chart_data import build_chart_spec, rebase
from handlers.models import Alert, Delivery, Destination, WatchEntry
from tests.conftest import DEMO_BARS, DEMO_NEWS, ROOT
from tests.fakes import AlertRecorder
from tests.yahoo_fake import FakeSession, FakeYahoo, Reply, daily_chart, load_days

# A proxy nobody listens on: every Yahoo request fails at once, as offline, internet or not.
OFFLINE = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
MARKETBOT = [sys.executable, "-m", "bot.cli"]
NOW = datetime(2025, 3, 5, 15, 0, tzinfo=UTC)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any MARKETBOT_ setting or platform token, plus EXTRA."""
    drop = ("MARKETBOT_", "DISCORD_", "SLACK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.pop("https_proxy", None)
    env.pop("HTTPS_PROXY", None)
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MARKETBOT, *args],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("MARKETBOT_", "DISCORD_", "SLACK_")):
            monkeypatch.delenv(name, raising=False)


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.stderr.strip()


# --- 1. settings ---------------------------------------------------------------------------


def test_1_typo_in_toml_and_env_names_key_and_closest(tmp_path: Path) -> None:
    (tmp_path / "marketbot.toml").write_text("default_treshold_pct = 2\n")
    proc = cli(tmp_path, "config", "--check", MARKETBOT_DEFAULT_TRESHOLD_PCT="2")
    err = one_error_line(proc)
    assert proc.returncode == 2
    assert "marketbot.toml: unknown setting default_treshold_pct" in err
    assert "did you mean default_threshold_pct?" in err
    assert "unknown setting MARKETBOT_DEFAULT_TRESHOLD_PCT" in err
    assert "did you mean MARKETBOT_DEFAULT_THRESHOLD_PCT?" in err


def test_1_missing_config_file_and_broken_toml_name_the_file(tmp_path: Path) -> None:
    proc = cli(tmp_path, "status", MARKETBOT_CONFIG="/nonexistent.toml")
    assert proc.returncode == 2
    assert "MARKETBOT_CONFIG=/nonexistent.toml: no such file" in one_error_line(proc)
    (tmp_path / "bad.toml").write_text("cooldown_minutes = = 3\n")
    proc = cli(tmp_path, "status", MARKETBOT_CONFIG="bad.toml")
    err = one_error_line(proc)
    assert proc.returncode == 2 and "bad.toml" in err and "not valid TOML" in err


def test_1_unknown_dotenv_key_and_secret_in_toml(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MARKETBOT_POLL_INTERVALL_SECONDS=30\n")
    with pytest.raises(Exception, match="did you mean MARKETBOT_POLL_INTERVAL_SECONDS"):
        load_settings()
    (tmp_path / ".env").unlink()
    (tmp_path / "marketbot.toml").write_text('discord_token = "abc"\n')
    with pytest.raises(Exception, match="discord_token is a secret: set DISCORD_TOKEN"):
        load_settings()


def test_1_config_list_shows_every_setting_even_when_settings_are_broken(tmp_path: Path) -> None:
    (tmp_path / "marketbot.toml").write_text("no_such_thing = 1\n")
    proc = cli(tmp_path, "config", "--list")
    assert proc.returncode == 0, proc.stderr
    for name in setting_fields():  # platform settings dotted: slack.port
        assert f"\n{name}\n" in f"\n{proc.stdout}", name
    assert "env: MARKETBOT_DEFAULT_THRESHOLD_PCT" in proc.stdout
    assert "env: DISCORD_TOKEN or MARKETBOT_DISCORD_TOKEN" in proc.stdout


def test_1_readme_settings_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_section(readme) == settings_markdown(), "run `make settings-table`"
    for name in setting_fields():  # new settings appear without anyone editing the table
        assert f"| `{name}` |" in settings_markdown()


# --- 2. watch add: thresholds and symbols --------------------------------------------------


WHERE = ("--platform", "discord", "--channel", "42")


def watched(db: Path) -> list[str]:
    return [e.symbol for e in Store(f"sqlite:///{db}").watch_entries(Destination("discord", "42"))]


def test_2_mistyped_threshold_is_not_a_ticker(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    proc = cli(tmp_path, "--db", f"sqlite:///{db}", "watch", "add", "BABA", "abc", *WHERE)
    assert proc.returncode == 1
    assert "'abc' is not a threshold" in proc.stdout and "Nothing added" in proc.stdout
    assert watched(db) == []


def test_2_negative_threshold_refuses_the_whole_command(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    proc = cli(tmp_path, "--db", f"sqlite:///{db}", "watch", "add", "BABA", "-5", *WHERE)
    assert proc.returncode == 1
    assert "Nothing added" in proc.stdout and "threshold -5 % is out of range" in proc.stdout
    assert "not a valid ticker" not in proc.stdout
    assert watched(db) == []


def test_2_unknown_symbol_refused_against_the_replay(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    args = ("--db", f"sqlite:///{db}", "watch", "add", "ZZZZ", "--bars", str(DEMO_BARS), *WHERE)
    proc = cli(tmp_path, *args)
    assert proc.returncode == 1 and "knows no symbol ZZZZ" in proc.stdout
    assert watched(db) == []


def test_2_offline_says_it_could_not_check(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    proc = cli(tmp_path, "--db", f"sqlite:///{db}", "watch", "add", "ZZZZ", *WHERE, **OFFLINE)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Could not check the symbols against Yahoo Finance" in proc.stdout
    assert "added as typed" in proc.stdout
    assert watched(db) == ["ZZZZ"]
    assert "curl" not in proc.stderr


def test_2_yahoo_check_against_the_fake() -> None:
    days = load_days()
    fake = FakeYahoo(daily_charts={"BABA": Reply.json(daily_chart("BABA", days["BABA"]))})
    check = YahooSymbolCheck(FakeSession(fake)).check_symbols(["BABA", "ZZZZ"])
    assert check.unknown == ("ZZZZ",) and check.unchecked is None
    fake.overrides["/v8/finance/chart/"] = Reply.json({}, 503)
    assert YahooSymbolCheck(FakeSession(fake)).check_symbols(["BABA"]).unchecked == (
        "Yahoo answered HTTP 503"
    )


# --- 3. which channel; the channel-wide threshold ------------------------------------------


def test_3_watch_needs_a_platform_and_channel(tmp_path: Path) -> None:
    proc = cli(tmp_path, "--db", f"sqlite:///{tmp_path / 'w.db'}", "watch", "add", "BABA")
    assert proc.returncode == 2
    assert "--platform" in proc.stderr and "--channel" in proc.stderr
    assert not (tmp_path / "w.db").exists() or watched(tmp_path / "w.db") == []


def test_3_channel_threshold_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    proc = cli(tmp_path, "--db", db, "watch", "threshold", "4", *WHERE)
    assert proc.returncode == 0 and "This channel now alerts at ±4 %" in proc.stdout
    proc = cli(tmp_path, "--db", db, "watch", "add", "JD", "--no-check", *WHERE)
    assert "at this channel's threshold (±4 %)" in proc.stdout
    listed = cli(tmp_path, "--db", db, "watch", "list", *WHERE).stdout
    assert "channel threshold ±4 %" in listed and "JD ±4 %" in listed
    assert Store(db).channel_thresholds() == {Destination("discord", "42"): 4.0}


# --- 4. secrets -----------------------------------------------------------------------------


def test_4_every_missing_secret_at_once(tmp_path: Path) -> None:
    proc = cli(tmp_path, "run", "--platform", "discord,slack")
    err = one_error_line(proc)
    assert proc.returncode == 2 and len(err.splitlines()) == 1
    for name in ("DISCORD_TOKEN", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        assert name in err


# --- 5. status ------------------------------------------------------------------------------


def test_5_status_tells_stopped_from_running_and_shows_the_next_poll(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(db)
    now = datetime.now(UTC)
    live = {"feed": "polling", "report_every_s": 10, "next_poll": (now + timedelta(seconds=42))}
    store.report_status("hostA:1", {**live, "next_poll": live["next_poll"].isoformat()}, now)
    store.report_status(
        "hostB:2", {"feed": "starting", "report_every_s": 10}, now - timedelta(minutes=5)
    )
    store.report_status("hostC:3", {"state": "stopped", "feed": "stopped"}, now)
    proc = cli(tmp_path, "--db", db, "status")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "hostA:1: running" in out
    # 42 s ahead when written; the CLI's start on a loaded machine uses up some of it.
    wait = re.search(r"next poll: .* UTC \(in (\d+) s\)", out)
    assert wait is not None and 0 < int(wait.group(1)) <= 42
    assert "hostB:2: stopped" in out
    assert "last report 5 min ago (reports every 10 s): not running" in out
    assert "hostC:3: stopped" in out
    only_stopped = cli(tmp_path, "--db", db, "status", "--host", "hostB")
    assert only_stopped.returncode == 1 and "hostA" not in only_stopped.stdout


# --- 6. empty replays -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ("--from", "2025-03-07", "--to", "2025-03-03"),
            "--from 2025-03-07 is after --to 2025-03-03",
        ),
        (("--from", "2030-01-01"), "no bars from 2030-01-01"),
    ],
)
def test_6_empty_replay_names_the_days_covered(
    tmp_path: Path, args: tuple[str, ...], said: str
) -> None:
    proc = cli(tmp_path, "replay", "--bars", str(DEMO_BARS), *args)
    err = one_error_line(proc)
    assert proc.returncode == 2 and said in err
    assert "the bars cover 2025-02-18 to 2025-03-07" in err


def test_6_empty_csv_and_one_alert(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    proc = cli(tmp_path, "replay", "--bars", "empty.csv")
    assert proc.returncode == 2 and "empty.csv: the file is empty" in one_error_line(proc)
    args = (
        "--news",
        str(DEMO_NEWS),
        "--watch",
        "BABA",
        "--from",
        "2025-03-05",
        "--to",
        "2025-03-05",
    )
    proc = cli(tmp_path, "replay", "--bars", str(DEMO_BARS), *args)
    assert proc.returncode == 0 and ": 1 alert" in proc.stderr and "1 alerts" not in proc.stderr


# --- 7. mute durations ----------------------------------------------------------------------


def test_7_mute_durations() -> None:
    assert commands.parse_duration("4 hours") == timedelta(hours=4)
    assert commands.parse_duration("1 week") == timedelta(days=7)
    assert commands.parse_duration("30m") == timedelta(minutes=30)
    with pytest.raises(ValueError, match="'5' needs a unit: 5m"):
        commands.parse_duration("5")
    for huge in ("99999999999d", "9" * 400 + "w", "31d"):
        with pytest.raises(ValueError, match="at most 30 days"):
            commands.parse_duration(huge)


def test_7_mute_list_and_watch_list_show_mutes() -> None:
    store = Store("sqlite://")
    who = commands.Requester("slack", "C1", "U1", can_manage=True)
    assert commands.run_watch_text(store, who, "add BABA JD 5", 5.0, NOW).ok
    muted = commands.run_mute_text(store, who, "BABA 4 hours", NOW)
    assert muted.ok and "2025-03-05 19:00 UTC" in muted.text
    bad = commands.run_mute_text(store, who, "JD 99999999999d", NOW)
    assert not bad.ok and "at most 30 days" in bad.text
    assert commands.run_mute_text(store, who, "list", NOW).text == (
        "Muted here: BABA until 2025-03-05 19:00 UTC."
    )
    assert commands.run_watch_text(store, who, "mutes", 5.0, NOW).text.startswith("Muted here")
    listed = commands.run_watch_text(store, who, "list", 5.0, NOW).text
    assert "BABA ±5 % (muted until 2025-03-05 19:00 UTC)" in listed and "JD ±5 %" in listed


# --- 8. why offline -------------------------------------------------------------------------


def test_8_why_offline_says_once_that_yahoo_cannot_be_reached(tmp_path: Path) -> None:
    proc = cli(tmp_path, "why", "BABA", "--source", "yfinance", **OFFLINE)
    err = one_error_line(proc)
    assert proc.returncode == 2
    assert len(err.splitlines()) == 1 and "Yahoo cannot be reached" in err
    assert "curl" not in err and "no quote this tick" not in proc.stdout


# --- 9. help --------------------------------------------------------------------------------


def test_9_help_lists_commands_with_examples_and_defaults(tmp_path: Path) -> None:
    top = cli(tmp_path, "--help")
    assert top.returncode == 0 and "as they land" not in top.stdout
    for name in ("replay", "why", "chart", "watch", "run", "status", "config", "discord"):
        assert re.search(rf"^\s+{name}\s+\S", top.stdout, re.M), name
    assert "examples:" in top.stdout
    why = cli(tmp_path, "why", "--help").stdout
    assert "examples:" in why and "marketbot why BABA" in why
    assert re.search(r"--source.*\n?.*replay: answer from --bars", why)
    assert "(default: replay)" in " ".join(why.split())
    watch = " ".join(cli(tmp_path, "watch", "--help").stdout.split())
    assert "--platform" in watch and "(required)" in watch and "examples:" in watch


# --- 10. charts -----------------------------------------------------------------------------


def test_10_chart_into_a_missing_folder(tmp_path: Path) -> None:
    at = ("--at", "2025-03-05T16:00-05:00")
    proc = cli(tmp_path, "chart", "BABA", "--bars", str(DEMO_BARS), *at, "-o", "missing/dir/x.png")
    assert proc.returncode == 0, proc.stderr
    assert "wrote missing/dir/x.png (created missing/dir/)" in proc.stdout
    assert (tmp_path / "missing/dir/x.png").read_bytes().startswith(b"\x89PNG")
    (tmp_path / "file").write_text("")
    proc = cli(tmp_path, "chart", "BABA", "--bars", str(DEMO_BARS), *at, "-o", "file/x.png")
    assert proc.returncode == 2 and "cannot write file/x.png" in one_error_line(proc)


@pytest.fixture(scope="module")
def demo_alerts() -> list[Alert]:
    settings = Settings()
    engine = build_engine(settings)
    replay = Replay(load_bars([DEMO_BARS])[0])
    symbols = ["BABA", "JD", "TCEHY", "PDD", "BIDU", "SPY"]
    store = Store("sqlite://")
    alerts = AlertRecorder(store, "console")
    run_replay(
        engine,
        replay,
        replay_entries(symbols, None),
        store,
        alerts,
        NewsFile.load(DEMO_NEWS),
        date(2025, 3, 3),
        date(2025, 3, 7),
    )
    return alerts.alerts


def test_10_group_chart_has_every_alerted_symbol_and_the_right_footer(
    demo_alerts: list[Alert],
) -> None:
    replay = Replay(load_bars([DEMO_BARS])[0])
    groups = load_groups()
    (npc,) = demo_alerts
    # JD closed +0.4 % on its results day (03-06, inside the NPC event's dates): alert at 0.3 %.
    jd_store = Store("sqlite://")
    jd_alerts = AlertRecorder(jd_store, "console")
    run_replay(
        build_engine(Settings()),
        replay,
        replay_entries(["JD"], 0.3),
        jd_store,
        jd_alerts,
        NewsFile.load(DEMO_NEWS),
        date(2025, 3, 6),
        date(2025, 3, 6),
    )
    (jd,) = jd_alerts.alerts
    assert set(npc.symbols) >= {"BABA", "JD", "PDD", "TCEHY", "BIDU"}
    spec = alert_chart(npc, replay, groups, 5.0, "America/New_York", "replay")
    assert spec is not None
    assert {s.symbol for s in spec.series if s.role == "subject"} == set(npc.symbols)
    assert spec.event_label is not None and "National People" in spec.event_label
    assert jd.symbols == ("JD",) and jd.cause == "company"
    assert alert_chart_context(jd, "America/New_York") == []
    jd_spec = alert_chart(jd, replay, groups, 5.0, "America/New_York", "replay")
    assert jd_spec is not None and jd_spec.event_label is None


def test_10_peers_get_colours_of_their_own_and_replay_points_are_not_joined() -> None:
    replay = Replay(load_bars([DEMO_BARS])[0])
    peers = {"JD": 6.9, "TCEHY": 6.5}
    at = datetime(2025, 3, 5, 16, 0, tzinfo=replay.tz)
    spec = build_chart_spec(
        ["BABA"], at, replay, load_groups(), 5.0, "America/New_York", "r", (), peers
    )
    assert spec is not None
    colours = [str(style["color"]) for style in series_styles(spec)]
    assert len(set(colours)) == len(colours), colours
    assert spec.sparse  # one close a day: drawn as points
    subject = spec.series[0]
    # the previous close sits at the session's first price (here the close), not a point the
    # evening before
    assert subject.points[0][0] == subject.points[1][0]
    assert subject.points[0][1] == 0.0 and subject.points[0][0].hour == 16
    five_minutes = [(at - timedelta(days=1), 100.0)] + [
        (at.replace(hour=10) + timedelta(minutes=5 * i), 100.0 + i) for i in range(20)
    ]
    assert rebase(five_minutes)[0][0] == five_minutes[1][0]
    dense = build_chart_spec(["BABA"], at, _Paths(five_minutes), load_groups(), 5.0, "UTC", "y")
    assert dense is not None and not dense.sparse


class _Paths:
    def __init__(self, points: list[tuple[datetime, float]]) -> None:
        self.points = points

    def session_path(self, symbol: str, until: datetime) -> list[tuple[datetime, float]]:
        return self.points


# --- 11. a platform the instance does not run ------------------------------------------------


async def test_11_rows_for_a_platform_not_run_stay_pending_without_retries(
    demo_alerts: list[Alert], caplog: pytest.LogCaptureFixture
) -> None:
    store = Store("sqlite://")
    store.add_watch([WatchEntry("discord", "123", "BABA", 5.0), WatchEntry("slack", "C1", "BABA")])
    alert = demo_alerts[0]
    dests = (Destination("discord", "123"),)
    enqueue(store, [Delivery(alert, dests)], NOW)
    ctx = AppContext(Settings(), build_engine(Settings()), store, Replay({}), None)
    worker = OutboxWorker.of(ctx, clock=lambda: NOW, platforms=frozenset({"slack"}))
    for _ in range(5):
        assert await worker.run_once() == 0
    assert outbox_counts(store) == {"pending": 1}
    assert worker.last_error is None and "will retry" not in caplog.text
    [line] = warn_unserved_platforms(store, ["slack"])
    assert "1 discord channel(s)" in line and "stay pending" in line
    assert claim(store, "w", NOW, worker.policy, {"discord"})  # a Discord instance takes them


# --- 12. README -----------------------------------------------------------------------------


def readme_commands() -> list[str]:
    """The `marketbot ...` lines of the README's CLI section, before the ../shared example."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using the CLI", 1)[1].split("../shared", 1)[0]
    return [ln.strip() for ln in section.splitlines() if ln.strip().startswith("marketbot ")]


def test_12_readme_first_examples_run_on_bundled_data(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/marketbot" in readme and ". .venv/bin/activate" in readme
    assert readme.index("make demo") < readme.index("## Using the CLI")
    assert "MARKETBOT_MACRO_EVENTS_FILE" in readme and "--macro-events FILE" in readme
    lines = readme_commands()
    assert len(lines) >= 6
    db = f"sqlite:///{tmp_path / 'readme.db'}"
    for line in lines:
        args = shlex.split(line.split("#", 1)[0])[1:]
        proc = subprocess.run(
            [*MARKETBOT, *args],
            cwd=ROOT,
            env=clean_env(MARKETBOT_DB_URL=db, **OFFLINE),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, (line, proc.stderr)


def test_12_pytest_shows_skip_reasons() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'addopts = ".*-rs', text)


# --- 13. deployment and /help ----------------------------------------------------------------


def local_marketbot() -> str:
    return str(Path(sys.executable).with_name("marketbot"))


def test_13_entrypoint_script_runs_marketbot(tmp_path: Path) -> None:
    script = str(ROOT / "deploy/entrypoint.sh")
    env = clean_env(MARKETBOT_BIN=local_marketbot(), MARKETBOT_DB_URL=f"sqlite:///{tmp_path}/e.db")
    status = subprocess.run(["sh", script, "status"], env=env, capture_output=True, text=True)
    assert status.returncode == 1 and "No instance has reported" in status.stdout
    # no arguments: `run --platform discord`, after the settings check; no token here
    run = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "DISCORD_TOKEN" in run.stderr
    env["MARKETBOT_DEFAULT_TRESHOLD_PCT"] = "2"
    bad = subprocess.run(["sh", script], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "did you mean MARKETBOT_DEFAULT_THRESHOLD_PCT" in bad.stderr


def test_13_compose_file_has_the_bot_and_postgres() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    db, bot = compose["services"]["db"], compose["services"]["bot"]
    assert db["image"].startswith("postgres:")
    pg = db["environment"]
    url = bot["environment"]["MARKETBOT_DB_URL"]
    expected = (
        f"postgresql+psycopg://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@db:5432/"
        f"{pg['POSTGRES_DB']}"
    )
    assert url == expected
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert "healthcheck" in db and bot["build"] == "."
    assert bot["env_file"] == ".env" and bot["command"][0] == "run"
    assert "pgdata" in compose["volumes"]


def test_13_dockerfile_slim_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.1\d-slim$", text, re.M)
    user = re.search(r"^USER (\S+)$", text, re.M)
    assert user is not None and user.group(1) not in ("root", "0")
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r"^HEALTHCHECK .*\n?.*CMD marketbot status", text, re.M)
    for source in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path


def test_13_systemd_unit_command_lines_run(tmp_path: Path) -> None:
    unit = (ROOT / "deploy/marketbot.service").read_text(encoding="utf-8")
    lines = dict(re.findall(r"^(ExecStartPre|ExecStart)=(.+)$", unit, re.M))
    env = clean_env(MARKETBOT_DB_URL=f"sqlite:///{tmp_path}/u.db")
    for key, line in lines.items():
        args = shlex.split(line)
        assert args[0] == "/opt/marketbot/.venv/bin/marketbot"
        args[0] = local_marketbot()
        if key == "ExecStart":
            args.append("--help")  # the real command would connect to Discord
        proc = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, (line, proc.stderr)
    assert "User=marketbot" in unit and "EnvironmentFile=" in unit


def test_13_example_files_are_valid_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text(encoding="utf-8"))
    monkeypatch.setenv("MARKETBOT_CONFIG", str(ROOT / "marketbot.example.toml"))
    settings = load_settings()
    assert settings.discord.token is None  # `DISCORD_TOKEN=` left blank means unset
    assert settings.default_threshold_pct == 5.0


def test_13_help_lists_every_command_with_an_example() -> None:
    for named in (False, True):
        text = commands.help_text(named, 5.0)
        for usage in ("/why", "/watch add", "/watch list", "/watch threshold", "/mute", "/unmute"):
            assert usage in text
        assert text.count("Example:") == len(commands.HELP_ENTRIES)
        assert "Discord" not in text and "Slack" not in text
    assert "symbol:BABA" in commands.help_text(True) and "symbol:" not in commands.help_text()


def test_13_replay_symbols_validator() -> None:
    check = KnownSymbols(["BABA", "JD"]).check_symbols(["BABA", "ZZZZ"])
    assert check.unknown == ("ZZZZ",)
    assert json.dumps(check.source)
