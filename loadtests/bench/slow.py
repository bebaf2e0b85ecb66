"""Scenario: slow consumers. The fan-out run twice at the same rates with long chat
messages: all viewers reading, then one in ``plan.slow_every`` never reading (a small
receive buffer, paused); the other readers' latency, the server's memory, and how the slow
ones end (cut with close code 4409).
"""

from __future__ import annotations

from typing import Any

from .config import Plan
from .fanout import Target, fanout_run
from .pool import Pool


def slow_consumers(pool: Pool, target: Target, plan: Plan) -> dict[str, Any]:
    """The baseline run and the run with slow consumers, side by side."""
    base = fanout_run(
        pool,
        target,
        plan.slow_viewers,
        plan,
        chat_rate=plan.slow_chat_rate,
        seconds=plan.slow_seconds,
        rate=plan.slow_gift_rate,
    )
    with_slow = fanout_run(
        pool,
        target,
        plan.slow_viewers,
        plan,
        slow_every=plan.slow_every,
        chat_rate=plan.slow_chat_rate,
        seconds=plan.slow_seconds,
        rate=plan.slow_gift_rate,
    )
    return {"fraction": 1 / plan.slow_every, "baseline": base, "with_slow": with_slow}
