"""Slack hardening through the real Bolt app: replays, malformed requests, the admin check."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import AppContext, SimulatedClock, replay_context
from bot.infra.store import Store
from bot.platforms.slack.adapter import (
    OTHER_WORKSPACE,
    AdminCheck,
    bound_port,
    create_slack_app,
    start_slack_http,
)
from bot.sources.replay import Replay
from tests import test_slack
from tests.conftest import DEMO_BARS, DEMO_NEWS
from tests.fake_slack import FakeSlack, signed_request, slash_payload
from tests.helpers import at
from tests.test_slack import SECRET, Rig, client_for, make_settings

# The Slack adapter tests' fixtures, shared.
fake = test_slack.fake
replayed = test_slack.replayed
rig = test_slack.rig


async def post(http: aiohttp.ClientSession, url: str, body: str, headers: dict[str, str]) -> int:
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status


def why_request(fake: FakeSlack, user: str = "UMEMBER") -> tuple[str, dict[str, str]]:
    payload = slash_payload("/why", "BABA", user, "CMARKETS", fake.response_url())
    return signed_request(SECRET, payload)


async def answers_settle(fake: FakeSlack) -> int:
    """How many /why answers went out, after giving any late one time to arrive."""
    await asyncio.sleep(0.5)
    return len(fake.calls_to("chat.postMessage")) + len(fake.calls_to("response_url"))


async def test_a_replayed_signed_request_is_refused_and_runs_once(rig: Rig) -> None:
    body, headers = why_request(rig.fake)
    assert await post(rig.http, rig.url, body, headers) == 200
    await rig.fake.wait_for("chat.postMessage")
    for _ in range(3):
        assert await post(rig.http, rig.url, body, headers) == 401
    assert await answers_settle(rig.fake) == 1


async def test_a_replay_to_another_instance_is_refused_too(fake: FakeSlack, tmp_path: Path) -> None:
    """Two instances behind a load balancer on one database: a copy sent to the second fails."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    runners, urls, stores = [], [], []
    for _ in range(2):
        store = Store(url)
        ctx, _, _ = replay_context(
            make_settings(db_url=url), store, [DEMO_BARS], DEMO_NEWS, at("2025-03-05", "16:00")
        )
        runner = await start_slack_http(create_slack_app(ctx, client_for(fake)), "127.0.0.1", 0)
        runners.append(runner)
        stores.append(store)
        urls.append(f"http://127.0.0.1:{bound_port(runner)}/slack/events")
    try:
        body, headers = why_request(fake)
        async with aiohttp.ClientSession() as http:
            first = await post(http, urls[0], body, headers)
            second = await post(http, urls[1], body, headers)
            fresh_body, fresh_headers = why_request(fake)
            fresh = await post(http, urls[1], fresh_body, fresh_headers)
        assert (first, second, fresh) == (200, 401, 200)
        assert await answers_settle(fake) == 2
    finally:
        for runner in runners:
            await runner.cleanup()
        for store in stores:
            store.close()


@pytest.mark.parametrize("stamp", ["abc", "", "1e9", "-5", "12.5", "９９", "1" * 40])
async def test_a_malformed_timestamp_gets_401_without_a_traceback(
    rig: Rig, stamp: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(rig.ctx, "answer_why", lambda symbol: ran.append(symbol))
    body, headers = why_request(rig.fake)
    headers["X-Slack-Request-Timestamp"] = stamp
    with caplog.at_level(logging.DEBUG):
        status = await post(rig.http, rig.url, body, headers)
    assert status == 401
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert ran == [] and await answers_settle(rig.fake) == 0


async def test_a_redelivered_socket_mode_command_is_acked_and_answered_once(
    fake: FakeSlack, replayed: tuple[AppContext, Replay, SimulatedClock]
) -> None:
    from bot.platforms.slack.adapter import socket_mode_handler

    ctx, _, _ = replayed
    settings = make_settings(slack_signing_secret=None)
    ctx.settings = settings
    app = create_slack_app(ctx, client_for(fake), socket_mode=True)
    handler = socket_mode_handler(ctx, "xapp-1-test", app=app)
    try:
        await handler.connect_async()  # type: ignore[no-untyped-call]
        await fake.wait_until(lambda: bool(fake._sockets))
        payload = slash_payload("/why", "BABA", "UMEMBER", "CMARKETS", fake.response_url())
        for envelope_id in ("env-1", "env-2"):  # Slack redelivers an unacked envelope anew
            envelope: dict[str, Any] = {
                "envelope_id": envelope_id,
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": payload,
            }
            await fake.push(envelope)
        await fake.wait_until(
            lambda: {a.get("envelope_id") for a in fake.socket_acks} >= {"env-1", "env-2"}
        )
        assert await answers_settle(fake) == 1
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


# --- the admin check ---------------------------------------------------------------------


async def test_an_admin_of_another_workspace_may_not_edit(rig: Rig) -> None:
    rig.fake.users["UOTHERADMIN"] = {"is_admin": True, "team_id": "T0ELSEWHERE"}
    rig.fake.users["USTRANGER"] = {"is_admin": True, "is_stranger": True}
    for user in ("UOTHERADMIN", "USTRANGER"):
        answer = await rig.ask("/watch", "add BABA", user=user)
        assert OTHER_WORKSPACE in answer["text"].replace("&amp;", "&"), answer
        answer = await rig.ask("/mute", "BABA 1h", user=user)
        assert OTHER_WORKSPACE in answer["text"].replace("&amp;", "&"), answer
    assert rig.store.watch_entries() == []
    ok = await rig.ask("/watch", "add BABA", user="UADMIN")
    assert "BABA" in ok["text"] and len(rig.store.watch_entries()) == 1


async def test_the_team_is_part_of_the_cache_key(fake: FakeSlack) -> None:
    check = AdminCheck(client_for(fake), [])
    assert (await check.check("T0TEST", "UADMIN")).allowed
    assert not (await check.check("T0ELSEWHERE", "UADMIN")).allowed
    assert (await check.check("T0TEST", "UADMIN")).allowed
    assert len(fake.calls_to("users.info")) == 2


async def test_a_hung_users_info_fails_closed_within_seconds(rig: Rig) -> None:
    rig.fake.delays["users.info"] = 30.0
    started = time.monotonic()
    answer = await rig.ask("/watch", "add BABA", user="UADMIN")
    took = time.monotonic() - started
    assert "Could not check your Slack permissions" in answer["text"]
    assert took < 10.0, took  # the client alone would wait 30 s
    assert rig.store.watch_entries() == []


# --- exactly once by reconciliation --------------------------------------------------------


async def test_a_post_whose_answer_was_lost_is_found_by_its_metadata(rig: Rig) -> None:
    from bot.delivery import sentlog
    from bot.delivery.outbox import outbox_counts
    from bot.runner import deliver
    from tests.test_slack import retry_later, sample_alert, to_slack

    alert = sample_alert()
    rig.fake.lose_answers["chat.postMessage"] = 1  # posted, but the answer never came
    await deliver(rig.ctx, to_slack(alert, "CMARKETS"))
    assert len(rig.fake.messages["CMARKETS"]) == 1  # and the client did not retry blindly
    assert not sentlog.was_sent(rig.store, alert.id, "slack", "CMARKETS")
    assert outbox_counts(rig.store) == {"pending": 1}
    await retry_later(rig.ctx)  # the outbox's retry
    [posted] = rig.fake.messages["CMARKETS"]
    assert sentlog.message_id(rig.store, alert.id, "slack", "CMARKETS") == posted["ts"]
    assert outbox_counts(rig.store) == {"sent": 1}
    [history] = rig.fake.calls_to("conversations.history")
    assert history.args["channel"] == "CMARKETS"
    assert posted["metadata"]["event_payload"] == {"alert_id": alert.id}
