"""The admin API of refunds, chargebacks and minors (livesrv/services/refunds.py).

Routes (docs/protocol.md, admin bearer token): ``POST /api/receipts/{receipt}/refund``
(what the payment provider's webhook calls), ``GET /api/receipts/{receipt}``,
``POST /api/users/{user}/minor``. Their OpenAPI operations are :data:`OPERATIONS`.
"""

from __future__ import annotations

from aiohttp import web

from ..services import refunds
from .base import NODE, backend_of, body_args, json_body, path_id, require_admin
from .openapi_schemas import ADMIN_ERRORS, INT, STR, Operation, obj, path_param


async def api_refund(request: web.Request) -> web.Response:
    """Refund or charge back a receipt, idempotently by receipt id (the first result)."""
    require_admin(request)
    a = body_args(await json_body(request), "refund")
    rid = path_id(request, "receipt")
    fresh, reply = await refunds.refund(backend_of(request), rid, a["kind"], a["reason"] or "")
    if fresh:
        request.app[NODE].metrics.refunds.labels(reply["kind"]).inc()
    return web.json_response(reply)


async def api_receipt(request: web.Request) -> web.Response:
    """A claimed receipt: who bought which package, and its refund when reversed."""
    require_admin(request)
    rid = path_id(request, "receipt")
    return web.json_response(await refunds.reversal(backend_of(request), rid))


async def api_minor(request: web.Request) -> web.Response:
    """Flag an account as a minor and reverse its spends of the refund window (idempotent)."""
    require_admin(request)
    fresh, reply = await refunds.flag_minor(backend_of(request), path_id(request))
    if fresh:
        request.app[NODE].metrics.minors_flagged.inc()
    return web.json_response(reply)


def routes(app: web.Application) -> None:
    """Register the refund routes."""
    r = app.router
    r.add_post("/api/receipts/{receipt}/refund", api_refund)
    r.add_get("/api/receipts/{receipt}", api_receipt)
    r.add_post("/api/users/{user}/minor", api_minor)


REFUND = obj(
    receipt=STR,
    kind={"enum": ["refund", "chargeback"]},
    user=STR,
    coins=INT,
    balance=INT,
    shortfall=INT,
    clawed=INT,
    clawbacks=INT,
)
_RECEIPT = path_param("receipt", "the receipt id")
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/api/receipts/{receipt}/refund",
        "Refund or charge back a coin purchase, once per receipt (a repeat: the first result)",
        REFUND,
        (*ADMIN_ERRORS, 404, 409),
        body="refund",
        example={"kind": "refund", "reason": "payment provider webhook"},
        params=(_RECEIPT,),
    ),
    Operation(
        "GET",
        "/api/receipts/{receipt}",
        "A claimed receipt, and its refund or chargeback when reversed",
        obj(
            receipt=STR,
            user=STR,
            package=STR,
            reversed={"anyOf": [{"type": "object"}, {"type": "null"}]},
        ),
        (*ADMIN_ERRORS, 404),
        params=(_RECEIPT,),
    ),
    Operation(
        "POST",
        "/api/users/{user}/minor",
        "Flag an account as a minor: no money ops from then, its recent spends reversed",
        obj(
            user=STR,
            minor={"const": True},
            since=INT,
            reversed=INT,
            coins_returned=INT,
            **{"from": INT},
        ),
        ADMIN_ERRORS,
        params=(path_param("user", "the user"),),
    ),
)
