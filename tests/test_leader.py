"""Leader election on the local PostgreSQL: one leader, a takeover when it goes away."""

from __future__ import annotations

import asyncio

from bot.infra.leader import Leadership, lead_when_elected


def test_one_leader_then_takeover(pg_url: str) -> None:
    first, second = Leadership(pg_url, key=4242), Leadership(pg_url, key=4242)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.still_held()
        first.release()  # the leader stops (a killed process closes its connection the same way)
        assert second.try_acquire()
        assert not first.still_held()
    finally:
        first.release()
        second.release()


def test_sqlite_instance_always_leads() -> None:
    assert Leadership("sqlite:///x.db").try_acquire()


async def test_only_the_leader_runs_the_work(pg_url: str) -> None:
    ran: list[str] = []
    gate = asyncio.Event()

    def work(name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            ran.append(name)
            await gate.wait()

        return run

    a = asyncio.create_task(lead_when_elected(Leadership(pg_url, 777), work("a"), 0.05))
    await asyncio.sleep(0.3)
    b = asyncio.create_task(lead_when_elected(Leadership(pg_url, 777), work("b"), 0.05))
    await asyncio.sleep(0.3)
    assert ran == ["a"]
    a.cancel()  # the leader shuts down: its lock is released
    await asyncio.gather(a, return_exceptions=True)
    for _ in range(50):
        if ran == ["a", "b"]:
            break
        await asyncio.sleep(0.05)
    assert ran == ["a", "b"]
    gate.set()
    await asyncio.wait_for(b, 5)
