"""Retrying while the store is away: exponential back-off, and a few log lines, not a flood.

A loop that keeps talking to the store (the settlement reader and upkeep, the hub's
listener) holds a :class:`Backoff` for its delays and an :class:`Outage` for its log: one
warning when the store goes away, at most one line per ``every`` seconds while it stays away
(with the count of failed attempts), and one line when it is back.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

FIRST_DELAY = 0.2  # seconds before the first retry
MAX_DELAY = 5.0  # the longest wait between two retries


class Backoff:
    """Exponential delays with jitter: about 0.2, 0.4, 0.8, ... seconds, capped at 5.

    Each delay is drawn between half and all of its step, so that many loops (and nodes)
    that lost the store at the same moment do not all retry at the same moment.
    """

    def __init__(self, first: float = FIRST_DELAY, cap: float = MAX_DELAY) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        """The delay before the next attempt (the steps grow with each call)."""
        step = min(self.cap, self.first * 2 ** min(self.failures, 32))
        self.failures += 1
        return float(step * random.uniform(0.5, 1.0))

    def reset(self) -> None:
        self.failures = 0


class Outage:
    """The log of one loop's view of the store: gone, still gone (throttled), back.

    Args:
        what: The loop, as its log lines name it (e.g. ``settlement upkeep``).
        log: The logger to write to.
        every: At most one "still unavailable" line per this many seconds.
        clock: Monotonic seconds (tests may pass their own).
    """

    def __init__(
        self,
        what: str,
        log: logging.Logger,
        every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.log = log
        self.every = every
        self.clock = clock
        self.since: float | None = None  # when the store went away; None while it answers
        self.failures = 0
        self._last_line = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        """Record one failed attempt; log it if it is the first, or if ``every`` passed."""
        now = self.clock()
        self.failures += 1
        cause = " ".join(str(exc).split()) or type(exc).__name__
        if self.since is None:
            self.since = self._last_line = now
            self.log.warning("%s: store unavailable (%s); retrying with back-off", self.what, cause)
        elif now - self._last_line >= self.every:
            self._last_line = now
            self.log.warning(
                "%s: store still unavailable after %.1f s (%d failed attempts; last: %s)",
                self.what,
                now - self.since,
                self.failures,
                cause,
            )

    def ok(self) -> None:
        """Record a successful attempt; log the end of the outage if there was one."""
        if self.since is None:
            return
        self.log.info(
            "%s: store back after %.1f s (%d failed attempts)",
            self.what,
            self.clock() - self.since,
            self.failures,
        )
        self.since = None
        self.failures = 0
