"""Reconnect and retry policies of the client (plain values and functions, no I/O)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

# close codes after which reconnecting cannot help: the server refused this client
# (bad token, protocol abuse, a frame it sent was too large) or this client closed
NO_RECONNECT = frozenset({1000, 1009, 4400, 4401})

# ops whose retry is exactly-once by the server's idempotency even without ``key``:
# ``buy_coins`` is keyed by its receipt's id
IDEMPOTENT_OPS = frozenset({"buy_coins"})


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter.

    The n-th wait (from 0) is ``min(maximum, initial * factor**n)`` scaled by a random
    factor in ``[1 - jitter, 1]``, so many clients dropped at once do not come back at once.

    Attributes:
        initial: The first wait, in seconds.
        maximum: The longest wait, in seconds.
        factor: Growth per attempt.
        jitter: The fraction of each wait that is random (0 to 1).
        attempts: Give up after this many attempts (None: never).
        deadline: Give up after this many seconds since the first attempt (None: never).
    """

    initial: float = 0.1
    maximum: float = 5.0
    factor: float = 2.0
    jitter: float = 0.5
    attempts: int | None = None
    deadline: float | None = None

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt number ``attempt`` (0 for the first retry)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        r = (rng or random).random()
        return base * (1.0 - self.jitter * r)

    def exhausted(self, attempt: int, elapsed: float) -> bool:
        """Whether to stop after ``attempt`` attempts taking ``elapsed`` seconds."""
        if self.attempts is not None and attempt >= self.attempts:
            return True
        return self.deadline is not None and elapsed >= self.deadline


DEFAULT_RECONNECT = Backoff()
"""Reconnect forever, 0.1 s doubling to 5 s, half of each wait random."""

DEFAULT_RETRY = Backoff(initial=0.2, maximum=2.0, attempts=20, deadline=30.0)
"""Retry a keyed op answered ``unavailable``: up to 20 times within 30 s."""


def is_keyed(op: str, args: dict[str, Any]) -> bool:
    """Whether a request may be sent again and still act at most once (it carries ``key``)."""
    return "key" in args or op in IDEMPOTENT_OPS


def should_reconnect(close_code: int | None) -> bool:
    """Whether a connection that closed with ``close_code`` is worth opening again."""
    return close_code not in NO_RECONNECT
