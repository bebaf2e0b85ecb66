"""LIVE goals and hype trains (issue 13 item 2).

A goal ("500 roses", "10 new subscribers", "20,000 coins") is a hash in the room's slot;
``room_event.lua`` adds each gift or subscription to it in the step that logs it, sends
the progress (the unlogged ``goal`` event) and logs exactly one ``goal_reached``. The hype
train is counted there too (start, contributions, levels); its end, once the countdown ran
out, is :func:`end_hype` (``hype_end.lua``), run by the tick of any node with members in
the room. The rules are in :mod:`.live_rules`.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from ..errors import BadRequest, Forbidden, NotFound
from ..store.facade import Backend, now_ms, store_errors
from ..store.keys import RoomKeys
from ..wire.tokens import Identity
from . import live_rules
from .rooms import RoomInfo, event, log_event

TOP_CONTRIBUTORS = 5


async def set_goal(
    b: Backend, who: Identity, room: RoomInfo, kind: str, target: int, gift: str | None
) -> dict[str, Any]:
    """The room's creator (or an admin) sets its goal, replacing any earlier one.

    Raises:
        Forbidden: Not the room's creator. BadRequest: Unknown kind, or ``gift`` missing
            for a gift goal (or given for another kind). NotFound: Unknown gift.
    """
    if room.creator != who.user and not who.is_admin:
        raise Forbidden("only the room's creator can set its goal")
    if kind not in live_rules.GOAL_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(live_rules.GOAL_KINDS)}")
    if (kind == "gift") != (gift is not None):
        raise BadRequest("gift is required for a gift goal, and only for it")
    if gift is not None and gift not in b.catalog.gifts:
        raise NotFound(f"unknown gift {gift!r}")
    gid = uuid.uuid4().hex[:12]
    k = RoomKeys(room.room)
    async with store_errors():
        pipe = b.redis.pipeline(transaction=True)
        pipe.delete(k.goal)
        pipe.hset(
            k.goal,
            mapping={
                "id": gid,
                "kind": kind,
                "gift": gift or "",
                "target": target,
                "progress": 0,
                "done": 0,
            },
        )
        await pipe.execute()
    goal = {"goal": gid, "kind": kind, "gift": gift, "target": target, "progress": 0}
    await log_event(b, room.room, event("goal_set", room.room, **goal), evid=f"goal:{gid}")
    return goal


async def view(b: Backend, room: str) -> dict[str, Any]:
    """The goal and the hype train as ``join`` returns them (each None when absent)."""
    k = RoomKeys(room)
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        pipe.hgetall(k.goal)
        pipe.hgetall(k.hype)
        goal, hype = await pipe.execute()
    g = None
    if goal:
        g = {
            "goal": goal["id"],
            "kind": goal["kind"],
            "gift": goal.get("gift") or None,
            "target": int(goal["target"]),
            "progress": int(goal.get("progress", 0)),
            "reached": goal.get("done") == "1",
        }
    h = None
    if hype.get("state") == "run" and now_ms() < int(hype.get("ends", 0)):
        thresholds = live_rules.hype_thresholds(b.settings.hype_level_coins, b.settings.hype_levels)
        total = int(hype.get("total", 0))
        h = {
            "train": int(hype.get("n", 0)),
            "level": int(hype.get("level", 0)),
            "total": total,
            "next": next((t for t in thresholds if t > total), None),
            "ends": int(hype["ends"]),
        }
    return {"goal": g, "hype": h}


async def end_hype(b: Backend, room: str) -> bool:
    """End the room's hype train if its countdown ran out, and log ``hype_end`` (once:
    by the train's event id). Returns whether an end was logged or repeated."""
    k = RoomKeys(room)
    cooldown = live_rules.ms(b.settings.hype_cooldown)
    payload, fresh = await b.run(
        "hype_end", [k.hype, k.hype_contributors], [cooldown, TOP_CONTRIBUTORS]
    )
    if not payload:
        return False
    fields = orjson.loads(payload)
    if fresh == 1:
        b.live("hype_ended", str(fields["level"]))
    ev = event("hype_end", room, **fields)
    await log_event(b, room, ev, evid=f"h:{fields['train']}:end", meta=("hype", "0"))
    return True
