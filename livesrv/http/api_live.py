"""The admin API of the LIVE mechanics of a room: its match, its goal, its hype train.

Routes (docs/protocol.md, admin bearer token): ``/api/rooms/{room}/match``,
``/api/rooms/{room}/match/end``, ``/api/rooms/{room}/goal``, ``/api/rooms/{room}/hype``.
"""

from __future__ import annotations

from aiohttp import web

from ..services import goals, match
from .base import backend_of, path_id, require_admin


async def api_match(request: web.Request) -> web.Response:
    """The room's running match as ``join`` shows it (scores, boosts, end, time left), or
    null."""
    require_admin(request)
    room = path_id(request, "room")
    return web.json_response({"room": room, "match": await match.view(backend_of(request), room)})


async def api_match_end(request: web.Request) -> web.Response:
    """End the room's running match now (reason ``admin``): both rooms log ``match_end``
    once; the call that ended it gets the result, any other one 404."""
    require_admin(request)
    room = path_id(request, "room")
    return web.json_response(await match.end_now(backend_of(request), room))


async def api_goal(request: web.Request) -> web.Response:
    """The room's goal (the ``goal`` of a join reply), or null."""
    require_admin(request)
    room = path_id(request, "room")
    view = await goals.view(backend_of(request), room)
    return web.json_response({"room": room, "goal": view["goal"]})


async def api_hype(request: web.Request) -> web.Response:
    """The room's running hype train (the ``hype`` of a join reply), or null."""
    require_admin(request)
    room = path_id(request, "room")
    view = await goals.view(backend_of(request), room)
    return web.json_response({"room": room, "hype": view["hype"]})


def routes(app: web.Application) -> None:
    """Register the LIVE mechanics routes."""
    r = app.router
    r.add_get("/api/rooms/{room}/match", api_match)
    r.add_post("/api/rooms/{room}/match/end", api_match_end)
    r.add_get("/api/rooms/{room}/goal", api_goal)
    r.add_get("/api/rooms/{room}/hype", api_hype)
