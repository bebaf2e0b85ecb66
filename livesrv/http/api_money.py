"""The admin API of money: wallets, grants, signed receipts, subscription prices,
withdrawals and the audit.

Routes (docs/protocol.md, admin bearer token): ``/api/users/{user}/wallet``,
``/api/users/{user}/grant``, ``/api/receipts``, ``/api/creators/{user}/sub_price``,
``/api/withdrawals``, ``/api/withdrawals/{wid}/{action}``, ``/api/audit``.
"""

from __future__ import annotations

from aiohttp import web

from .. import audit
from ..errors import NotFound
from ..services import receipts, subscriptions, wallet, withdrawals
from ..services.paging import query_args
from .base import NODE, backend_of, body_args, json_body, path_id, require_admin


async def api_wallet(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response(await wallet.read(backend_of(request), path_id(request)))


async def api_grant(request: web.Request) -> web.Response:
    require_admin(request)
    a = body_args(await json_body(request), "grant")
    b, user = backend_of(request), path_id(request)
    result = await wallet.grant(b, user, a["coins"], a["key"], a["reason"] or "")
    return web.json_response(result)


async def api_receipts(request: web.Request) -> web.Response:
    """Sign an ``hmac`` receipt, as the payment backend would, for tests and integrations.

    No new power: an admin token can grant coins outright.
    """
    require_admin(request)
    a = body_args(await json_body(request), "receipts")
    node = request.app[NODE]
    if a["package"] not in node.backend.catalog.packages:
        raise NotFound(f"unknown package {a['package']!r}")
    receipt = receipts.sign(node.receipt_key, a["user"], a["package"], a["id"], a["issued"])
    return web.json_response({"receipt": receipt, "id": a["id"]})


async def api_sub_price(request: web.Request) -> web.Response:
    require_admin(request)
    price = body_args(await json_body(request), "sub_price")["price"]
    b = backend_of(request)
    return web.json_response(await subscriptions.set_price(b, path_id(request), price))


async def api_withdrawals(request: web.Request) -> web.Response:
    require_admin(request)
    status = request.query.get("status")
    limit, cursor = query_args(request.query)
    page = await withdrawals.listing(backend_of(request), status, cursor, limit)
    return web.json_response(page)


async def api_withdrawal_status(request: web.Request) -> web.Response:
    require_admin(request)
    action = request.match_info["action"]
    status = {"paid": "paid", "reject": "rejected"}.get(action)
    if status is None:
        raise NotFound("use /paid or /reject")
    wid = request.match_info["wid"]
    return web.json_response(await withdrawals.set_status(backend_of(request), wid, status))


async def api_audit(request: web.Request) -> web.Response:
    require_admin(request)
    report = await audit.run(backend_of(request))
    return web.json_response(report, status=200)


def routes(app: web.Application) -> None:
    """Register the money routes."""
    r = app.router
    r.add_get("/api/users/{user}/wallet", api_wallet)
    r.add_post("/api/users/{user}/grant", api_grant)
    r.add_post("/api/receipts", api_receipts)
    r.add_get("/api/audit", api_audit)
    r.add_put("/api/creators/{user}/sub_price", api_sub_price)
    r.add_get("/api/withdrawals", api_withdrawals)
    r.add_post("/api/withdrawals/{wid}/{action}", api_withdrawal_status)
