"""Send pacing: token buckets that keep alert sends just under each platform's rate limits.

The limits below are what the platforms document (see each constant's source). They are
modelled as "at most COUNT requests per PERIOD seconds, the window opening at the first
request", which is how Discord's X-RateLimit-* buckets behave; the test fakes enforce exactly
these windows (`FixedWindow`), and the pacer sends a margin below them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.infra.ratelimit import TokenBucket

if TYPE_CHECKING:
    from config.settings import Settings

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# How far under a limit the pacer aims: enough for the jitter between leaving the pacer and
# reaching the platform, little enough to stay above 90 % of the limit.
DEFAULT_MARGIN = 0.05
# How late a timer may fire without the pace drifting (see `under`).
CATCH_UP_S = 0.01


@dataclass(frozen=True, slots=True)
class Rate:
    """At most COUNT requests in any window of PERIOD seconds."""

    count: int
    period: float

    @property
    def per_second(self) -> float:
        return self.count / self.period


@dataclass(frozen=True, slots=True)
class PlatformLimits:
    """One platform's limits on posting a message: for the whole bot, and per channel."""

    platform: str
    overall: Rate
    per_channel: Rate
    source: str

    def with_overall(self, count: int, period: float, least: int) -> PlatformLimits:
        """These limits with the overall rate an operator set (COUNT per PERIOD seconds);
        below LEAST per PERIOD there is nothing sensible to pace against."""
        if count < least:
            raise ValueError(f"{self.platform} needs >= {least:g} per {period:g} s to pace against")
        return replace(self, overall=Rate(count, period))


# Discord, docs "Topics > Rate Limits": "All bots can make up to 50 requests per second to our
# API" (global; a 429 then says "global": true). Per-route buckets are announced in the
# X-RateLimit-Limit/-Remaining/-Reset-After/-Bucket headers, per top-level resource (a channel
# for POST /channels/{id}/messages); the bucket observed for bot messages is 5 per 5 s.
DISCORD_GLOBAL = Rate(50, 1.0)
DISCORD_CHANNEL_MESSAGES = Rate(5, 5.0)
# Discord, same page: 10,000 invalid requests (401, 403, 429) per 10 minutes get the IP banned
# by Cloudflare for a while.
DISCORD_INVALID_REQUESTS = Rate(10_000, 600.0)

# Slack, docs "Web API rate limits" and the chat.postMessage page: "Special" tier, generally
# 1 message per second per channel with short bursts allowed, and a workspace-wide limit of
# "several hundred messages per minute". Slack publishes no exact workspace figure: 600 a
# minute, counted per minute as Slack words it, is this project's reading of it (a one-second
# window would make a steady pace trip over a few milliseconds of network jitter); the burst
# per channel is taken as 3.
SLACK_WORKSPACE_POSTS = Rate(600, 60.0)
SLACK_CHANNEL_POSTS = Rate(3, 3.0)
# Slack's other Web API methods: per method per workspace, "Tier 1: 1+ per minute, Tier 2: 20+,
# Tier 3: 50+, Tier 4: 100+".
SLACK_TIERS: dict[int, Rate] = {
    1: Rate(1, 60.0),
    2: Rate(20, 60.0),
    3: Rate(50, 60.0),
    4: Rate(100, 60.0),
}

DISCORD = PlatformLimits(
    "discord",
    DISCORD_GLOBAL,
    DISCORD_CHANNEL_MESSAGES,
    "discord.com/developers/docs/topics/rate-limits",
)
SLACK = PlatformLimits(
    "slack",
    SLACK_WORKSPACE_POSTS,
    SLACK_CHANNEL_POSTS,
    "docs.slack.dev/apis/web-api/rate-limits; docs.slack.dev/reference/methods/chat.postMessage",
)
DEFAULT_LIMITS: dict[str, PlatformLimits] = {"discord": DISCORD, "slack": SLACK}


@dataclass
class FixedWindow:
    """A platform's side of a Rate: COUNT requests per window opened by the first request.

    The fakes answer 429 with it; tests check the pacer against it.
    """

    rate: Rate
    opened: float | None = None
    used: int = 0

    def _roll(self, now: float) -> None:
        if self.opened is not None and now >= self.opened + self.rate.period:
            self.opened, self.used = None, 0

    def take(self, now: float) -> bool:
        """Count one request at NOW; False (and nothing counted) when the window is full."""
        self._roll(now)
        if self.used >= self.rate.count:
            return False
        if self.opened is None:
            self.opened = now
        self.used += 1
        return True

    def remaining(self, now: float) -> int:
        self._roll(now)
        return self.rate.count - self.used

    def reset_after(self, now: float) -> float:
        """Seconds until the window frees up (the full period when none is open)."""
        self._roll(now)
        if self.opened is None:
            return self.rate.period
        return max(0.0, self.opened + self.rate.period - now)


def under(rate: Rate, margin: float = DEFAULT_MARGIN) -> TokenBucket:
    """A bucket that stays MARGIN under RATE in any window, even with some jitter.

    At r = COUNT / (PERIOD * (1 + MARGIN)) a window of PERIOD seconds gets at most
    r * PERIOD + burst sends, under COUNT even when the platform sees them up to a few tens of
    milliseconds closer together than they left. The burst of 1 + r * CATCH_UP_S lets a send
    that woke a few milliseconds late be followed on time, so the pace does not drift down.
    """
    per_second = rate.count / (rate.period * (1 + margin))
    return TokenBucket(per_second, burst=1 + per_second * CATCH_UP_S)


class Pacer:
    """Waits until a send to KEY fits both the overall bucket and KEY's own bucket.

    Waiters for the overall bucket are served in arrival order (one sleeps, the rest queue on
    a lock), so pacing costs one timer at a time, not a wake-up storm.
    """

    def __init__(
        self,
        overall: TokenBucket,
        per_key: Callable[[], TokenBucket],
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.overall = overall
        self._new_key_bucket = per_key
        self.clock = clock
        self.sleep = sleep
        self.keys: dict[str, TokenBucket] = {}
        self._waiting: dict[str, int] = {}
        self.waited = 0.0
        self.sends = 0
        self._lock = asyncio.Lock()

    @classmethod
    def for_limits(
        cls,
        limits: PlatformLimits,
        margin: float = DEFAULT_MARGIN,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> Pacer:
        return cls(
            under(limits.overall, margin),
            lambda: under(limits.per_channel, margin),
            clock=clock,
            sleep=sleep,
        )

    def _bucket(self, key: str) -> TokenBucket:
        bucket = self.keys.get(key)
        if bucket is None:
            bucket = self.keys[key] = self._new_key_bucket()
        return bucket

    async def key_ready(self, key: str) -> None:
        """Wait until KEY has a token, without taking it (nor a place in the overall queue)."""
        with self._holding(key):
            await self._pause(self._bucket(key).delay(self.clock()))

    async def acquire(self, key: str, cost: int = 1) -> float:
        """Wait for the send's turn and take it; returns the seconds waited. A send that makes
        COST platform messages (a text, then a chart) is charged for all of them at once, so
        the sends after it wait for the extra ones."""
        started = self.clock()
        with self._holding(key):
            bucket = self._bucket(key)
            while True:
                await self._pause(bucket.delay(self.clock()))
                async with self._lock:
                    await self._pause(self.overall.delay(self.clock()))
                    now = self.clock()
                    # Another send to KEY may have taken its token while this one queued.
                    if bucket.delay(now) <= 0:
                        for _ in range(max(cost, 1)):
                            bucket.take(now)
                            self.overall.take(now)
                        break
        waited = self.clock() - started
        self.waited += waited
        self.sends += 1
        self._forget_idle(now)
        return waited

    @contextmanager
    def _holding(self, key: str) -> Iterator[None]:
        """Mark KEY's bucket as in use, so that _forget_idle leaves it alone."""
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._waiting[key] - 1
            if left:
                self._waiting[key] = left
            else:
                del self._waiting[key]

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await self.sleep(seconds)

    def _forget_idle(self, now: float) -> None:
        """Drop per-key buckets that are full again, so 10,000 channels cost no memory."""
        if len(self.keys) < 1024:
            return
        full = [
            k
            for k, b in self.keys.items()
            if k not in self._waiting and b.delay(now) == 0 and b.tokens >= b.capacity
        ]
        for key in full:
            del self.keys[key]


def limits_for(settings: Settings) -> dict[str, PlatformLimits]:
    """Each registered platform's limits, with the figures an operator may know better than
    the docs taken from its settings (e.g. settings.discord.requests_per_second)."""
    from bot.platforms.registry import PLATFORMS  # the platforms import these constants

    return {p.name: p.limits(settings) for p in PLATFORMS}


def default_pacers(
    limits: Mapping[str, PlatformLimits] = DEFAULT_LIMITS, margin: float = DEFAULT_MARGIN
) -> dict[str, Pacer]:
    """One pacer per platform, from the documented limits."""
    return {name: Pacer.for_limits(lim, margin) for name, lim in limits.items()}
