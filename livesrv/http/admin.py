"""The admin HTTP app (aiohttp): health, metrics, the admin API, and the demo page.

Routes (docs/protocol.md): ``/healthz``, ``/metrics``, ``/client.json``,
``/demo/login`` (``--demo`` only), ``/api/...`` (admin bearer token), static ``/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from .. import audit
from ..errors import BadRequest, Forbidden, LivesrvError, NotFound, Unauthorized
from ..metrics import Metrics
from ..services import (  # -- paid_chat, rooms, treasure: paid pins and treasure boxes --
    moderation,
    paid_chat,
    receipts,
    rooms,
    shop,
    subscriptions,
    treasure,
    wallet,
    withdrawals,
)
from ..services.paging import query_args
from ..services.rooms import live_rooms
from ..settings import Settings
from ..settlement import SettlementWorker
from ..store.facade import STORE_FAILURES, Backend, as_protocol_error, store_errors
from ..wire import tokens
from ..wire.schema import ADMIN_BODIES, IDENT, Field, check
from .status import STATUS


class Node(Protocol):
    """What the admin app needs of the node that serves it (``livesrv/realtime/node.py``)."""

    settings: Settings
    backend: Backend
    metrics: Metrics
    worker: SettlementWorker
    secret: str
    receipt_key: bytes
    ws_port: int

    @property
    def ws_url(self) -> str: ...

    def sync_metrics(self) -> None: ...


NODE: web.AppKey[Node] = web.AppKey("node")
access_log = logging.getLogger("livesrv.access")


def client_demo_dir() -> Path:
    """The demo page: ``client_demo/`` of the repository, shipped inside the package (a link
    in a checkout, the files themselves in a wheel)."""
    return (Path(__file__).resolve().parent.parent / "client_demo").resolve()


DEMO_PRODUCTS = (
    ("demo_tee", "livesrv T-shirt", 300, 50),
    ("demo_mug", "Coffee mug", 150, 100),
    ("demo_cap", "Cap", 200, 30),
)
DEMO_SELLER = "demo_shop"

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: LivesrvError) -> web.Response:
    return web.json_response(
        {"ok": False, "error": {"code": exc.code, "message": exc.message}},
        status=STATUS.get(exc.code, 500),
    )


@web.middleware
async def errors_middleware(request: web.Request, handler: Route) -> web.StreamResponse:
    try:
        return await handler(request)
    except LivesrvError as exc:
        return error_response(exc)


@web.middleware
async def access_middleware(request: web.Request, handler: Route) -> web.StreamResponse:
    """One ``livesrv.access`` line per request: method, path, status, milliseconds (and the
    exception, at ERROR, for a request that failed unexpectedly: it answers 500 internal)."""
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except Exception as exc:
        away = as_protocol_error(exc)  # a store failure no handler translated: unavailable
        if away is not None:
            access_log.warning("%s %s: the store failed: %r", request.method, request.path, exc)
            status = STATUS.get(away.code, 500)
            return error_response(away)
        access_log.exception("%s %s failed", request.method, request.path)
        return error_response(LivesrvError())
    finally:
        ms = round((time.perf_counter() - start) * 1000, 1)
        access_log.info(
            "%s %s %d %.1f ms",
            request.method,
            request.path,
            status,
            ms,
            extra={"method": request.method, "path": request.path, "status": status, "ms": ms},
        )


def _admin(request: web.Request) -> tokens.Identity:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():  # the scheme is case-insensitive
        raise Unauthorized("send Authorization: Bearer <admin token>")
    who = tokens.verify(request.app[NODE].secret, token.strip())
    if not who.is_admin:
        raise Forbidden("an admin token is required")
    return who


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        # The head had its deadline (httpguard); a body trickled in slowly gets one too.
        async with asyncio.timeout(request.app[NODE].settings.http_header_timeout):
            body = await request.json()
    except TimeoutError as exc:
        raise BadRequest("the body did not arrive in time") from exc
    except ValueError as exc:
        raise BadRequest("the body must be JSON") from exc
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _arg(body: dict[str, Any], field: Field) -> Any:
    value = body.get(field.name)
    if value is None:
        if field.required:
            raise BadRequest(f"{field.name} is required")
        return None
    return check(field, value)


def _args(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The body's arguments checked against ``ADMIN_BODIES[name]`` (None when left out)."""
    return {field.name: _arg(body, field) for field in ADMIN_BODIES[name]}


def _user(request: web.Request, name: str = "user") -> str:
    """An id from the path, checked like every id (the whole string, no trailing newline)."""
    value = request.match_info[name]
    if not IDENT.fullmatch(value):
        raise BadRequest(f"{name} must be 1-64 of [A-Za-z0-9_.-]")
    return value


# -- public ---------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    """200 when every store master answers, else 503; the body names each master's state."""
    masters = await request.app[NODE].backend.health()
    up = all(masters.values())
    body = {
        "ok": up,
        "store": "up" if up else "down",
        "masters": {where: "up" if ok else "down" for where, ok in masters.items()},
    }
    return web.json_response(body, status=200 if up else 503)


async def metrics(request: web.Request) -> web.Response:
    node = request.app[NODE]
    if not _loopback(request.remote):
        _admin(request)
    node.sync_metrics()
    with contextlib.suppress(*STORE_FAILURES):
        node.metrics.settle_backlog.set(await node.worker.backlog())
    return web.Response(body=node.metrics.render(), content_type="text/plain")


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def client_json(request: web.Request) -> web.Response:
    """Where the WebSocket server is. Bound to a wildcard address, the page is told the host
    it reached this app by, since ``ws://0.0.0.0`` is not an address a browser can use."""
    node = request.app[NODE]
    ws_url = node.ws_url
    if node.settings.host in ("0.0.0.0", "::", ""):
        host = request.url.host or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        ws_url = f"ws://{host}:{node.ws_port}/ws"
    return web.json_response({"ws_url": ws_url, "demo": node.settings.demo})


async def demo_login(request: web.Request) -> web.Response:
    node = request.app[NODE]
    args = _args(await _body(request), "demo_login")
    user, role = args["user"], args["role"] or "viewer"
    token = tokens.issue(node.secret, user, role, 24 * 3600)
    w = await wallet.grant(
        node.backend, user, node.settings.demo_coins, f"demo-starter:{user}", "demo starter coins"
    )
    return web.json_response({"token": token, "user": user, "role": role, "coins": w["coins"]})


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this app (public: it holds no secret)."""
    from .openapi import document

    server = f"{request.scheme}://{request.host}"
    return web.json_response(document(demo=request.app[NODE].settings.demo, server_url=server))


async def not_found(request: web.Request) -> web.Response:
    raise NotFound(f"no route {request.path}")


async def seed_demo(node: Node) -> None:
    """Seed the demo products (idempotent)."""
    admin = tokens.Identity("admin", "admin")
    for product, title, price, stock in DEMO_PRODUCTS:
        with contextlib.suppress(BadRequest):  # already seeded
            await shop.create(
                node.backend,
                admin,
                product=product,
                title=title,
                seller=DEMO_SELLER,
                price=price,
                stock=stock,
                commission=None,
            )


# -- admin API --------------------------------------------------------------------------


async def api_tokens(request: web.Request) -> web.Response:
    _admin(request)
    a = _args(await _body(request), "tokens")
    ttl = a["ttl"] or tokens.DEFAULT_TTL
    token = tokens.issue(request.app[NODE].secret, a["user"], a["role"], ttl)
    return web.json_response({"token": token})


async def api_wallet(request: web.Request) -> web.Response:
    _admin(request)
    return web.json_response(await wallet.read(request.app[NODE].backend, _user(request)))


async def api_grant(request: web.Request) -> web.Response:
    _admin(request)
    a = _args(await _body(request), "grant")
    b, user = request.app[NODE].backend, _user(request)
    result = await wallet.grant(b, user, a["coins"], a["key"], a["reason"] or "")
    return web.json_response(result)


async def api_receipts(request: web.Request) -> web.Response:
    """Sign an ``hmac`` receipt, as the payment backend would, for tests and integrations.

    No new power: an admin token can grant coins outright.
    """
    _admin(request)
    a = _args(await _body(request), "receipts")
    node = request.app[NODE]
    if a["package"] not in node.backend.catalog.packages:
        raise NotFound(f"unknown package {a['package']!r}")
    receipt = receipts.sign(node.receipt_key, a["user"], a["package"], a["id"], a["issued"])
    return web.json_response({"receipt": receipt, "id": a["id"]})


async def api_rooms(request: web.Request) -> web.Response:
    _admin(request)
    limit, cursor = query_args(request.query)
    return web.json_response(await live_rooms(request.app[NODE].backend, cursor, limit))


async def api_audit(request: web.Request) -> web.Response:
    _admin(request)
    report = await audit.run(request.app[NODE].backend)
    return web.json_response(report, status=200)


async def api_products(request: web.Request) -> web.Response:
    who = _admin(request)
    b = request.app[NODE].backend
    if request.method == "GET":
        limit, cursor = query_args(request.query)
        return web.json_response(await shop.listing(b, None, cursor, limit))
    product = await shop.create(b, who, **_args(await _body(request), "products"))
    return web.json_response(product, status=201)


async def api_restock(request: web.Request) -> web.Response:
    who = _admin(request)
    qty = _args(await _body(request), "restock")["qty"]
    product = _user(request, "product")
    return web.json_response(await shop.restock(request.app[NODE].backend, who, product, qty))


async def api_orders(request: web.Request) -> web.Response:
    _admin(request)
    b = request.app[NODE].backend
    user = request.query.get("user")
    limit, cursor = query_args(request.query)
    if user is not None:
        if not IDENT.fullmatch(user):
            raise BadRequest("user must be 1-64 of [A-Za-z0-9_.-]")
        return web.json_response(await shop.orders_of(b, user, cursor, limit))
    return web.json_response(await audit.all_orders(b, cursor, limit))


async def api_sub_price(request: web.Request) -> web.Response:
    _admin(request)
    price = _args(await _body(request), "sub_price")["price"]
    b = request.app[NODE].backend
    return web.json_response(await subscriptions.set_price(b, _user(request), price))


async def api_withdrawals(request: web.Request) -> web.Response:
    _admin(request)
    status = request.query.get("status")
    limit, cursor = query_args(request.query)
    page = await withdrawals.listing(request.app[NODE].backend, status, cursor, limit)
    return web.json_response(page)


async def api_withdrawal_status(request: web.Request) -> web.Response:
    _admin(request)
    action = request.match_info["action"]
    status = {"paid": "paid", "reject": "rejected"}.get(action)
    if status is None:
        raise NotFound("use /paid or /reject")
    wid = request.match_info["wid"]
    return web.json_response(await withdrawals.set_status(request.app[NODE].backend, wid, status))


# -- moderation --


async def api_moderation(request: web.Request) -> web.Response:
    """A room's moderation state (GET), or one moderation action as an admin (POST)."""
    who = _admin(request)
    b, room = request.app[NODE].backend, _user(request, "room")
    if request.method == "GET":
        return web.json_response(await moderation.state(b, room))
    a = _args(await _body(request), "moderation")
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
    _admin(request)
    room = _user(request, "room")
    return web.json_response({"room": room, "pins": await paid_chat.pins(_backend(request), room)})


async def api_room_unpin(request: web.Request) -> web.Response:
    """End a pinned paid message early as an admin (no refund), like ``unpin``."""
    who = _admin(request)
    b, room, pin = _backend(request), _user(request, "room"), _user(request, "pin")
    info = await rooms.info(b, room)
    if info is None:
        raise NotFound(f"no room {room!r}")
    return web.json_response(await paid_chat.unpin(b, who, info, pin))


async def api_room_boxes(request: web.Request) -> web.Response:
    """A room's open treasure boxes (the ``boxes`` of a join reply)."""
    _admin(request)
    room = _user(request, "room")
    boxes = await treasure.join_view(_backend(request), room)
    return web.json_response({"room": room, "boxes": boxes})


def _backend(request: web.Request) -> Backend:
    return request.app[NODE].backend


# -- end paid pins and treasure boxes --


async def index(request: web.Request) -> web.StreamResponse:
    page = client_demo_dir() / "index.html"
    if not page.exists():
        return web.Response(text="livesrv is running; the demo page is not installed\n")
    return web.FileResponse(page)


def make_app(node: Node) -> web.Application:
    app = web.Application(
        middlewares=[access_middleware, errors_middleware], client_max_size=64 * 1024
    )
    app[NODE] = node
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    r.add_get("/client.json", client_json)
    if node.settings.demo:
        r.add_post("/demo/login", demo_login)

        async def seed(app: web.Application) -> None:
            async with store_errors():
                await seed_demo(app[NODE])

        app.on_startup.append(seed)
    else:
        # Without --demo the demo routes do not exist, for every method (the static files
        # under "/" would otherwise answer 405 to a POST).
        r.add_route("*", "/demo/{tail:.*}", not_found)
    r.add_get("/api/openapi.json", openapi_json)
    r.add_post("/api/tokens", api_tokens)
    r.add_get("/api/users/{user}/wallet", api_wallet)
    r.add_post("/api/users/{user}/grant", api_grant)
    r.add_post("/api/receipts", api_receipts)
    r.add_get("/api/rooms", api_rooms)
    r.add_get("/api/audit", api_audit)
    r.add_route("GET", "/api/products", api_products)
    r.add_route("POST", "/api/products", api_products)
    r.add_post("/api/products/{product}/restock", api_restock)
    r.add_get("/api/orders", api_orders)
    r.add_put("/api/creators/{user}/sub_price", api_sub_price)
    r.add_get("/api/withdrawals", api_withdrawals)
    r.add_post("/api/withdrawals/{wid}/{action}", api_withdrawal_status)
    r.add_route("GET", "/api/rooms/{room}/moderation", api_moderation)  # -- moderation --
    r.add_route("POST", "/api/rooms/{room}/moderation", api_moderation)
    r.add_get("/api/rooms/{room}/pins", api_room_pins)  # -- paid pins, treasure boxes --
    r.add_post("/api/rooms/{room}/pins/{pin}/unpin", api_room_unpin)
    r.add_get("/api/rooms/{room}/boxes", api_room_boxes)
    r.add_get("/", index)
    static = client_demo_dir()
    if static.is_dir():
        r.add_static("/", static, show_index=False)
    return app
