"""What every route module of the admin HTTP app shares.

The node the app serves (``request.app[NODE]``), the admin bearer check, the JSON body
checked against its declaration in ``ADMIN_BODIES`` (the one schema), the ids read from
the path, and the error reply a protocol error becomes. A route module (``api_*.py``,
``demo.py``) imports these and registers its routes with one ``routes(app)``;
``admin.py`` assembles the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from ..errors import BadRequest, Forbidden, LivesrvError, Unauthorized
from ..metrics import Metrics
from ..settings import Settings
from ..settlement import SettlementWorker
from ..store.facade import Backend
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

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: LivesrvError) -> web.Response:
    """The JSON error reply of a protocol error, with the HTTP status of its code."""
    return web.json_response(
        {"ok": False, "error": {"code": exc.code, "message": exc.message}},
        status=STATUS.get(exc.code, 500),
    )


def require_admin(request: web.Request) -> tokens.Identity:
    """The identity of the request's admin bearer token.

    Raises:
        Unauthorized: No bearer token, or one that does not verify.
        Forbidden: A valid token that is not an admin's.
    """
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():  # the scheme is case-insensitive
        raise Unauthorized("send Authorization: Bearer <admin token>")
    who = tokens.verify(request.app[NODE].secret, token.strip())
    if not who.is_admin:
        raise Forbidden("an admin token is required")
    return who


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body.

    Raises:
        BadRequest: Not JSON, not an object, or not arrived within ``http_header_timeout``.
    """
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


def body_args(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The body's arguments checked against ``ADMIN_BODIES[name]`` (None when left out)."""
    return {field.name: _arg(body, field) for field in ADMIN_BODIES[name]}


def path_id(request: web.Request, name: str = "user") -> str:
    """An id from the path, checked like every id (the whole string, no trailing newline)."""
    value = request.match_info[name]
    if not IDENT.fullmatch(value):
        raise BadRequest(f"{name} must be 1-64 of [A-Za-z0-9_.-]")
    return value


def backend_of(request: web.Request) -> Backend:
    """The store of the node serving the request."""
    return request.app[NODE].backend
