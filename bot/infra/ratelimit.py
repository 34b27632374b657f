"""The one token bucket: send pacing and source throttles both take their turns from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """RATE tokens a second, holding at most BURST (default max(1, RATE)); a call takes one.

    `delay`/`take` are the arithmetic at a given time (the async pacer sleeps itself);
    `acquire` is the blocking form for threads, sleeping with SLEEP on CLOCK's time.
    """

    rate: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    burst: float | None = None
    tokens: float = field(init=False)
    updated: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"a token bucket needs a rate above 0, not {self.rate!r}")
        if self.burst is None:
            self.burst = max(1.0, self.rate)
        if self.burst < 1:
            raise ValueError(f"a token bucket needs a burst of at least 1, not {self.burst!r}")
        self.tokens = self.burst

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else max(1.0, self.rate)

    def _refill(self, now: float) -> None:
        if self.updated is not None:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def delay(self, now: float) -> float:
        """Seconds until a token is there (0 when one is there now)."""
        self._refill(now)
        # Within rounding of a whole token counts as one: after sleeping exactly the delay,
        # float error must not ask for another sleep of 1e-16 s.
        return 0.0 if self.tokens >= 1 - 1e-9 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def acquire(self) -> float:
        """Take one token, sleeping (blocking) until there is one; returns the seconds slept."""
        with self._lock:
            waited = self.delay(self.clock())
            if waited > 0:
                self.sleep(waited)
            self.take(self.clock())
            self.tokens = max(0.0, self.tokens)
            return waited
