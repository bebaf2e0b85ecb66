"""The OpenAPI operations of the room admin routes (``api_rooms.py``): moderation,
paid pins and treasure boxes; and (``api_live.py``) the match, goal and hype train.
``openapi.py`` adds them to its ``OPERATIONS``.
"""

from __future__ import annotations

from .openapi_schemas import ADMIN_ERRORS, INT, STR, Operation, loose, obj, path_param

# -- moderation (livesrv/services/moderation.py) --
MODERATION = obj(
    room=STR,
    creator=STR,
    mods={"type": "array", "items": STR},
    slow_mode=INT,
    banned={"type": "array", "items": STR},
    muted={"type": "array", "items": obj(user=STR, until=INT)},
)
MOD_RESULT = loose(
    room=STR,
    seq={"anyOf": [INT, {"type": "null"}], "description": "the action's event; null: no change"},
    user=STR,
    until=INT,
    chat_seq=INT,
    seconds=INT,
    mods={"type": "array", "items": STR},
)
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/api/rooms/{room}/moderation",
        "A room's moderation: moderators, slow mode, banned and muted users (200 of each)",
        MODERATION,
        (*ADMIN_ERRORS, 404),
        params=(path_param("room", "the room"),),
    ),
    Operation(
        "POST",
        "/api/rooms/{room}/moderation",
        "Moderate a room as an admin: mod_add, mod_remove, mute (user, seconds; 0 unmutes), "
        "ban, unban (user), chat_delete (seq of a chat line), slow_mode (seconds; 0 off)",
        MOD_RESULT,
        (*ADMIN_ERRORS, 404, 409),
        body="moderation",
        example={"action": "slow_mode", "seconds": 5},
        params=(path_param("room", "the room"),),
    ),
)
# -- end moderation --

# -- paid pins and treasure boxes (livesrv/services/paid_chat.py, treasure.py) --
PIN = obj(**{"from": STR}, text=STR, coins=INT, pin=STR, until=INT)
BOX = obj(box=STR, **{"from": STR}, coins=INT, opens_at=INT, claimers=INT)
OPERATIONS += (
    Operation(
        "GET",
        "/api/rooms/{room}/pins",
        "A room's pinned paid messages, the most coins first (at most 50)",
        obj(room=STR, pins={"type": "array", "items": PIN}),
        ADMIN_ERRORS,
        params=(path_param("room", "the room"),),
    ),
    Operation(
        "POST",
        "/api/rooms/{room}/pins/{pin}/unpin",
        "End a pinned paid message early (no refund); logs unpinned",
        obj(seq=INT),
        (*ADMIN_ERRORS, 404),
        params=(path_param("room", "the room"), path_param("pin", "the pin id")),
    ),
    Operation(
        "GET",
        "/api/rooms/{room}/boxes",
        "A room's open treasure boxes, the soonest to open first",
        obj(room=STR, boxes={"type": "array", "items": BOX}),
        ADMIN_ERRORS,
        params=(path_param("room", "the room"),),
    ),
)
# -- end paid pins and treasure boxes --

# -- live match, goals, hype train (livesrv/http/api_live.py) --
NULL = {"type": "null"}
BOOL = {"type": "boolean"}
BY_ROOM = {"type": "object", "additionalProperties": INT, "description": "by room"}
MATCH = obj(match=STR, scores=BY_ROOM, boost=BY_ROOM, ends=INT, left_ms=INT)
MATCH_END = obj(
    match=STR,
    scores=BY_ROOM,
    winner={"anyOf": [STR, NULL], "description": "the winning room; null: a draw"},
    draw=BOOL,
    reason={"enum": ["time", "closed", "admin"]},
    top={
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "array"}},
        "description": "by room: the top supporters, [user, points] each",
    },
)
GOAL = obj(
    goal=STR,
    kind={"enum": ["coins", "gift", "subs"]},
    gift={"anyOf": [STR, NULL]},
    target=INT,
    progress=INT,
    reached=BOOL,
)
HYPE = obj(train=INT, level=INT, total=INT, next={"anyOf": [INT, NULL]}, ends=INT)
OPERATIONS += (
    Operation(
        "GET",
        "/api/rooms/{room}/match",
        "A room's running LIVE match (scores, booster window ends, end, time left), or null",
        obj(room=STR, match={"anyOf": [MATCH, NULL]}),
        ADMIN_ERRORS,
        params=(path_param("room", "the room"),),
    ),
    Operation(
        "POST",
        "/api/rooms/{room}/match/end",
        "End a room's running LIVE match now (reason admin; the scores decide): both rooms "
        "log match_end once, and only the call that ended it gets the result (another: 404)",
        MATCH_END,
        (*ADMIN_ERRORS, 404),
        params=(path_param("room", "the room"),),
    ),
    Operation(
        "GET",
        "/api/rooms/{room}/goal",
        "A room's LIVE goal and its progress, or null",
        obj(room=STR, goal={"anyOf": [GOAL, NULL]}),
        ADMIN_ERRORS,
        params=(path_param("room", "the room"),),
    ),
    Operation(
        "GET",
        "/api/rooms/{room}/hype",
        "A room's running hype train (level, coins, the next level's threshold, end), or null",
        obj(room=STR, hype={"anyOf": [HYPE, NULL]}),
        ADMIN_ERRORS,
        params=(path_param("room", "the room"),),
    ),
)
# -- end live match, goals, hype train --
