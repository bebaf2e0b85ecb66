"""The admin API of rooms: the live rooms, moderation, paid pins and treasure boxes.

Routes (docs/protocol.md, admin bearer token): ``/api/rooms``,
``/api/rooms/{room}/moderation``, ``/api/rooms/{room}/pins``,
``/api/rooms/{room}/pins/{pin}/unpin``, ``/api/rooms/{room}/boxes``.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import BadRequest, NotFound
from ..services import moderation, paid_chat, rooms, treasure
from ..services.paging import query_args
from .base import backend_of, body_args, json_body, path_id, require_admin


async def api_rooms(request: web.Request) -> web.Response:
    require_admin(request)
    limit, cursor = query_args(request.query)
    return web.json_response(await rooms.live_rooms(backend_of(request), cursor, limit))


# -- moderation --


async def api_moderation(request: web.Request) -> web.Response:
    """A room's moderation state (GET), or one moderation action as an admin (POST)."""
    who = require_admin(request)
    b, room = backend_of(request), path_id(request, "room")
    if request.method == "GET":
        return web.json_response(await moderation.state(b, room))
    a = body_args(await json_body(request), "moderation")
    action = a["action"]
    value = a["seconds"] if action in ("mute", "slow_mode") else a["seq"]
    if value is None and action in ("mute", "slow_mode", "chat_delete"):
        raise BadRequest("seq is required" if action == "chat_delete" else "seconds is required")
    result = await moderation.act(b, who, room, action, a["user"] or "", value or 0)
    return web.json_response(result)


# -- end moderation --


# -- paid pins and treasure boxes --


async def api_room_pins(request: web.Request) -> web.Response:
    """A room's pinned paid messages (the ``pins`` of a join reply)."""
    require_admin(request)
    room = path_id(request, "room")
    pins = await paid_chat.pins(backend_of(request), room)
    return web.json_response({"room": room, "pins": pins})


async def api_room_unpin(request: web.Request) -> web.Response:
    """End a pinned paid message early as an admin (no refund), like ``unpin``."""
    who = require_admin(request)
    b, room, pin = backend_of(request), path_id(request, "room"), path_id(request, "pin")
    info = await rooms.info(b, room)
    if info is None:
        raise NotFound(f"no room {room!r}")
    return web.json_response(await paid_chat.unpin(b, who, info, pin))


async def api_room_boxes(request: web.Request) -> web.Response:
    """A room's open treasure boxes (the ``boxes`` of a join reply)."""
    require_admin(request)
    room = path_id(request, "room")
    boxes = await treasure.join_view(backend_of(request), room)
    return web.json_response({"room": room, "boxes": boxes})


# -- end paid pins and treasure boxes --


def routes(app: web.Application) -> None:
    """Register the room routes."""
    r = app.router
    r.add_get("/api/rooms", api_rooms)
    r.add_route("GET", "/api/rooms/{room}/moderation", api_moderation)  # -- moderation --
    r.add_route("POST", "/api/rooms/{room}/moderation", api_moderation)
    r.add_get("/api/rooms/{room}/pins", api_room_pins)  # -- paid pins, treasure boxes --
    r.add_post("/api/rooms/{room}/pins/{pin}/unpin", api_room_unpin)
    r.add_get("/api/rooms/{room}/boxes", api_room_boxes)
