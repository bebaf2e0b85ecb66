"""The admin HTTP app (aiohttp): health, metrics, the admin API, and the demo page.

Routes (docs/protocol.md): ``/healthz``, ``/metrics``, ``/client.json``,
``/demo/login`` (``--demo`` only), ``/api/...`` (admin bearer token), static ``/``.
This module has the public routes, ``/api/tokens`` and ``/api/openapi.json``, the
middlewares, and :func:`make_app`; each group of routes is a module with one
``routes(app)``: ``api_money.py``, ``api_shop.py``, ``api_rooms.py``, ``api_live.py``,
``demo.py`` (the helpers they share are ``base.py``'s).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import time

from aiohttp import web

from ..errors import LivesrvError
from ..settings import url_host
from ..store.facade import STORE_FAILURES, as_protocol_error
from ..wire import tokens
from . import (
    admin_series,
    admin_subs,
    api_live,
    api_money,
    api_refunds,
    api_rooms,
    api_shop,
    demo,
)
from .base import NODE, Node, Route, body_args, error_response, json_body, require_admin
from .status import STATUS

__all__ = ["NODE", "Node", "make_app"]


access_log = logging.getLogger("livesrv.access")


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
        require_admin(request)
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
        ws_url = f"ws://{url_host(request.url.host or '127.0.0.1')}:{node.ws_port}/ws"
    return web.json_response({"ws_url": ws_url, "demo": node.settings.demo})


async def openapi_json(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this app (public: it holds no secret)."""
    from .openapi import document

    server = f"{request.scheme}://{request.host}"
    return web.json_response(document(demo=request.app[NODE].settings.demo, server_url=server))


# -- admin API --------------------------------------------------------------------------


async def api_tokens(request: web.Request) -> web.Response:
    require_admin(request)
    a = body_args(await json_body(request), "tokens")
    ttl = a["ttl"] or tokens.DEFAULT_TTL
    token = tokens.issue(
        request.app[NODE].secret, a["user"], a["role"], ttl, a["birth_year"], a["region"]
    )
    return web.json_response({"token": token})


def make_app(node: Node) -> web.Application:
    app = web.Application(
        middlewares=[access_middleware, errors_middleware], client_max_size=64 * 1024
    )
    app[NODE] = node
    r = app.router
    r.add_get("/healthz", healthz)
    r.add_get("/metrics", metrics)
    r.add_get("/client.json", client_json)
    demo.routes(app)
    r.add_get("/api/openapi.json", openapi_json)
    r.add_post("/api/tokens", api_tokens)
    api_money.routes(app)
    api_refunds.routes(app)  # -- refunds and minors --
    api_shop.routes(app)
    api_rooms.routes(app)
    admin_series.routes(app)  # -- series --
    admin_subs.routes(app)  # -- subscription tiers --
    api_live.routes(app)  # -- live match, goals, hype train --
    demo.page_routes(app)  # last: the static files under "/"
    return app
