"""Attempt notes of concurrent alert sends, coalesced into one store transaction."""

from __future__ import annotations

import asyncio
from datetime import datetime

from bot.infra.store import Store

Pending = tuple[str, str, "asyncio.Future[str]"]


class DeliveryStarts:
    """Tells each send whether its channel is "sent", "unknown" or "new" (see
    Store.start_many), noting the attempt durably before the post goes out.

    Sends that ask at the same moment (a fan-out) share one transaction, so noting attempts
    does not spread a burst out by one commit per channel.
    """

    def __init__(self, store: Store, platform: str) -> None:
        self.store = store
        self.platform = platform
        self._queue: list[Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def start(self, alert_id: str, channels: list[str], at: datetime) -> dict[str, str]:
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[str]] = {}
        for channel in dict.fromkeys(channels):
            futures[channel] = loop.create_future()
            self._queue.append((alert_id, channel, futures[channel]))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(at))
        return {channel: await future for channel, future in futures.items()}

    async def _flush(self, at: datetime) -> None:
        await asyncio.sleep(0)  # let the other sends of this moment queue theirs
        while self._queue:
            batch, self._queue = self._queue, []
            pairs = [(alert_id, channel) for alert_id, channel, _ in batch]
            try:
                states = await asyncio.to_thread(self.store.start_many, self.platform, pairs, at)
            except Exception as exc:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for alert_id, channel, future in batch:
                if not future.done():
                    future.set_result(states[(alert_id, channel)])
