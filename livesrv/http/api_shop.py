"""The admin API of the shop: products (list, create, restock) and orders.

Routes (docs/protocol.md, admin bearer token): ``/api/products``,
``/api/products/{product}/restock``, ``/api/orders``.
"""

from __future__ import annotations

from aiohttp import web

from .. import audit
from ..errors import BadRequest
from ..services import shop
from ..services.paging import query_args
from ..wire.schema import IDENT
from .base import backend_of, body_args, json_body, path_id, require_admin


async def api_products(request: web.Request) -> web.Response:
    who = require_admin(request)
    b = backend_of(request)
    if request.method == "GET":
        limit, cursor = query_args(request.query)
        return web.json_response(await shop.listing(b, None, cursor, limit))
    product = await shop.create(b, who, **body_args(await json_body(request), "products"))
    return web.json_response(product, status=201)


async def api_restock(request: web.Request) -> web.Response:
    who = require_admin(request)
    qty = body_args(await json_body(request), "restock")["qty"]
    product = path_id(request, "product")
    return web.json_response(await shop.restock(backend_of(request), who, product, qty))


async def api_orders(request: web.Request) -> web.Response:
    require_admin(request)
    b = backend_of(request)
    user = request.query.get("user")
    limit, cursor = query_args(request.query)
    if user is not None:
        if not IDENT.fullmatch(user):
            raise BadRequest("user must be 1-64 of [A-Za-z0-9_.-]")
        return web.json_response(await shop.orders_of(b, user, cursor, limit))
    return web.json_response(await audit.all_orders(b, cursor, limit))


def routes(app: web.Application) -> None:
    """Register the shop routes."""
    r = app.router
    r.add_route("GET", "/api/products", api_products)
    r.add_route("POST", "/api/products", api_products)
    r.add_post("/api/products/{product}/restock", api_restock)
    r.add_get("/api/orders", api_orders)
