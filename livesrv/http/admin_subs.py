"""The admin API of subscription tiers: read and set a creator's tier prices.

Routes (docs/protocol.md, admin bearer token): ``/api/creators/{user}/sub_tiers`` (GET,
PUT); their OpenAPI operations are :data:`OPERATIONS`. The body is checked against
``ADMIN_BODIES["sub_tiers"]`` (the op's own fields) and the prices by the service, as for
the ``sub_tiers`` op.
"""

from __future__ import annotations

from aiohttp import web

from ..services import sub_tiers
from .base import backend_of, body_args, json_body, path_id, require_admin
from .openapi_schemas import ADMIN_ERRORS, INT, STR, Operation, obj, path_param


async def api_sub_tiers(request: web.Request) -> web.Response:
    """A creator's tier prices, tier 1 first (the defaults when never set)."""
    require_admin(request)
    creator = path_id(request)
    prices = await sub_tiers.tiers_of(backend_of(request), creator)
    return web.json_response({"creator": creator, "prices": list(prices)})


async def api_set_sub_tiers(request: web.Request) -> web.Response:
    """Set a creator's tier prices (as the creator's ``sub_tiers`` op; tier 1 is also
    ``sub_price``)."""
    require_admin(request)
    creator = path_id(request)
    prices = body_args(await json_body(request), "sub_tiers")["prices"]
    reply = await sub_tiers.store_tiers(backend_of(request), creator, prices)
    return web.json_response({"creator": creator, **reply})


def routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/creators/{user}/sub_tiers", api_sub_tiers)
    r.add_put("/api/creators/{user}/sub_tiers", api_set_sub_tiers)


_TIERS = obj(creator=STR, prices={"type": "array", "items": INT, "minItems": 1, "maxItems": 3})
_CREATOR = path_param("user", "the creator")

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/api/creators/{user}/sub_tiers",
        "A creator's subscription tier prices, tier 1 first (the defaults when never set)",
        _TIERS,
        ADMIN_ERRORS,
        params=(_CREATOR,),
    ),
    Operation(
        "PUT",
        "/api/creators/{user}/sub_tiers",
        "Set a creator's subscription tiers: 1-3 of the catalogue's prices, ascending "
        "(tier 1 is also the creator's sub_price)",
        _TIERS,
        ADMIN_ERRORS,
        body="sub_tiers",
        example={"prices": [350, 700, 1750]},
        params=(_CREATOR,),
    ),
)
