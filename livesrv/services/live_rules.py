"""The rules of LIVE matches, goals and hype trains (sans-I/O; issue 13 items 1 and 2).

The atomic counting runs in the store (``room_event.lua``, in the same step that logs a
gift or a subscription, so a retried or re-logged event counts once); this module is the
one statement of the arithmetic those scripts follow, the arguments they get, and the
decisions made in Python (the winner). Tested with no socket (tests/test_live_rules.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BOOST_FACTOR = 2
GOAL_KINDS = ("coins", "gift", "subs")


# -- match ------------------------------------------------------------------------------


def queue_boost(boost_until: int, now: int, window_ms: int) -> int:
    """A booster gift at ``now``: its window starts when the queued ones end (windows
    queue, they never stack): the new end of the x2 time of that side."""
    return max(boost_until, now) + window_ms


def points(coins: int, now: int, boost_until: int) -> int:
    """The match points of a gift worth ``coins`` logged at ``now``."""
    return coins * BOOST_FACTOR if now < boost_until else coins


def score_side(
    gifts: list[tuple[int, int, bool]], starts: int, ends: int, window_ms: int
) -> tuple[int, int]:
    """The score of one side from its gifts ``(ms, coins, is_booster)`` in log order (the
    hand count the store's running count must equal).

    Returns:
        (score, boost_until).
    """
    score, boost = 0, 0
    for t, coins, booster in gifts:
        if not starts <= t < ends:
            continue
        if booster:
            boost = queue_boost(boost, t, window_ms)
        score += points(coins, t, boost)
    return score, boost


def winner(scores: dict[str, int], forfeit: str | None = None) -> str | None:
    """The winning room of a two-room match, or None for a draw. A room whose creator
    closed it (``forfeit``) loses whatever the scores."""
    rooms = list(scores)
    if forfeit in scores:
        return next(r for r in rooms if r != forfeit)
    a, b = rooms
    if scores[a] == scores[b]:
        return None
    return a if scores[a] > scores[b] else b


# -- hype train -------------------------------------------------------------------------


def hype_thresholds(base: int, levels: int) -> list[int]:
    """The cumulative coins a train needs for each level: base x 1, 3, 6, 10, ...
    (each level costs ``base`` more than the one before)."""
    return [base * k * (k + 1) // 2 for k in range(1, levels + 1)]


def hype_level(total: int, thresholds: list[int]) -> int:
    """The level a train with ``total`` coins has reached (0 before the first)."""
    return sum(1 for t in thresholds if total >= t)


@dataclass
class HypeTrain:
    """One room's hype train, with the clock given: the model ``room_event.lua`` (start,
    contributions, levels) and ``live_tick.lua`` (the end) follow.

    ``viewers`` distinct gifters within ``window_ms`` start it; each gift while it runs
    adds its coins and restarts the ``countdown_ms``; when the countdown runs out it ends
    with its level and top contributors and no train starts for ``cooldown_ms``.
    """

    viewers: int
    window_ms: int
    countdown_ms: int
    cooldown_ms: int
    thresholds: list[int]
    running: bool = False
    ends: int = 0
    cool_until: int = 0
    total: int = 0
    level: int = 0
    recent: dict[str, int] = field(default_factory=dict)
    contributors: dict[str, int] = field(default_factory=dict)

    def gift(self, user: str, coins: int, now: int) -> list[str]:
        """A gift at ``now``. Returns the events it causes: ``hype_start``,
        ``hype_level`` (one per level passed), in order."""
        out: list[str] = []
        if self.running and now >= self.ends:
            return out  # over: its end is logged by the tick first
        if not self.running:
            if now < self.cool_until:
                return out
            self.recent[user] = now
            self.recent = {u: t for u, t in self.recent.items() if t > now - self.window_ms}
            if len(self.recent) < self.viewers:
                return out
            self.running, self.total, self.level = True, 0, 0
            self.contributors, self.recent = {}, {}
            out.append("hype_start")
        self.total += coins
        self.contributors[user] = self.contributors.get(user, 0) + coins
        self.ends = now + self.countdown_ms
        level = hype_level(self.total, self.thresholds)
        out.extend("hype_level" for _ in range(self.level, level))
        self.level = max(self.level, level)
        return out

    def tick(self, now: int) -> dict[str, Any] | None:
        """The end, once the countdown ran out: ``{level, total, top}``, else None."""
        if not self.running or now < self.ends:
            return None
        self.running = False
        self.cool_until = self.ends + self.cooldown_ms
        top = sorted(self.contributors.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        return {"level": self.level, "total": self.total, "top": [list(t) for t in top]}


# -- the arguments of room_event.lua -----------------------------------------------------


def counted(ev: dict[str, Any]) -> str:
    """What an event counts as for the room's mechanics: "gift", "sub", or "" (nothing)."""
    name = ev.get("ev")
    return name if name in ("gift", "sub") else ""


def event_args(settings: Any, room: str, ev: dict[str, Any], booster: str) -> list[Any]:
    """ARGV 12.. of ``room_event.lua`` for a gift or subscription event (see the script)."""
    gift = str(ev.get("gift", ""))
    return [
        counted(ev),
        ev.get("from", ""),
        int(ev.get("coins", 0)),
        gift,
        int(ev.get("count", 0)),
        ms(settings.match_boost_seconds) if gift and gift == booster else 0,
        settings.hype_viewers,
        ms(settings.hype_window),
        ms(settings.hype_countdown),
        ms(settings.hype_cooldown),
        ",".join(map(str, hype_thresholds(settings.hype_level_coins, settings.hype_levels))),
        room,
    ]


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))
