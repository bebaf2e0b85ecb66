"""The admin API of series (paid premium content): one series, a creator's series.

Routes (docs/protocol.md, admin bearer token): ``/api/series/{series}``,
``/api/creators/{user}/series``.
"""

from __future__ import annotations

from aiohttp import web

from ..services import series
from ..services.paging import query_args
from .base import backend_of, path_id, require_admin


async def api_series(request: web.Request) -> web.Response:
    """One series with every episode's URL (``series_get`` as an admin)."""
    who = require_admin(request)
    return web.json_response(
        await series.read(backend_of(request), who, path_id(request, "series"))
    )


async def api_creator_series(request: web.Request) -> web.Response:
    """A creator's series, unpublished ones too, by id (paged, like ``series_list``)."""
    require_admin(request)
    creator = path_id(request)
    limit, cursor = query_args(request.query)
    page = await series.listing(backend_of(request), creator, None, cursor, limit)
    return web.json_response(page)


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/series/{series}", api_series)
    r.add_get("/api/creators/{user}/series", api_creator_series)
