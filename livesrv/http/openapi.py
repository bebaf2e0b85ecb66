"""The OpenAPI 3.1 description of the admin HTTP app (``GET /api/openapi.json``).

Request bodies are generated from the same :class:`~livesrv.wire.schema.Field` declarations
the handlers check (``ADMIN_BODIES``), so the document cannot drift from the checks; the
routes are listed in :data:`OPERATIONS` and ``tests/test_openapi.py`` compares them with
the routes the app really has, both ways.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..services.withdrawals import STATUSES
from ..wire.schema import ADMIN_BODIES
from . import admin_subs, api_refunds, openapi_rooms
from .openapi_schemas import (
    ADMIN_ERRORS,
    HEALTH,
    IDENT_PATTERN,
    INT,
    ORDER,
    PAGED,
    PRODUCT,
    PUBLIC,
    ROOM,
    STR,
    WALLET,
    WITHDRAWAL,
    Operation,
    Param,
    body_schema,
    obj,
    page,
    path_param,
)
from .status import STATUS

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "GET",
        "/healthz",
        "Store health: 200 when every store master answers, else 503",
        HEALTH,
        (503,),
        **PUBLIC,
    ),
    Operation(
        "GET",
        "/metrics",
        "Prometheus metrics of the whole process group (no token needed from loopback)",
        None,
        (401, 403),
        media="text/plain",
        **PUBLIC,
    ),
    Operation(
        "GET",
        "/client.json",
        "Where the WebSocket server is (read by the demo page)",
        obj(ws_url=STR, demo={"type": "boolean"}),
        **PUBLIC,
    ),
    Operation(
        "GET",
        "/",
        "The demo page (static files under / too)",
        None,
        media="text/html",
        **PUBLIC,
    ),
    Operation(
        "GET",
        "/api/openapi.json",
        "This document",
        {"type": "object"},
        **PUBLIC,
    ),
    Operation(
        "POST",
        "/demo/login",
        "Demo sign-in: a 24 h token and the starter coins, once per user (serve --demo only)",
        obj(token=STR, user=STR, role=STR, coins=INT),
        (400, 503),
        admin=False,
        body="demo_login",
        example={"user": "openapi_demo", "role": "viewer"},
        demo_only=True,
        tags=("demo",),
    ),
    Operation(
        "POST",
        "/api/tokens",
        "Sign a token",
        obj(token=STR),
        ADMIN_ERRORS,
        body="tokens",
        example={"user": "openapi_user", "role": "viewer", "ttl": 3600},
    ),
    Operation(
        "GET",
        "/api/users/{user}/wallet",
        "A user's balances",
        WALLET,
        ADMIN_ERRORS,
        params=(path_param("user", "the user"),),
    ),
    Operation(
        "POST",
        "/api/users/{user}/grant",
        "Grant coins (idempotent by key)",
        {"type": "object", "properties": {"coins": INT}},
        (*ADMIN_ERRORS, 409),
        body="grant",
        example={"coins": 10, "key": "openapi-grant", "reason": "example"},
        params=(path_param("user", "the user"),),
    ),
    Operation(
        "POST",
        "/api/receipts",
        "Sign an hmac coin-purchase receipt, as the payment backend would",
        obj(receipt=STR, id=STR),
        (*ADMIN_ERRORS, 404),
        body="receipts",
        example={"user": "openapi_user", "package": "p330", "id": "pay-1"},
    ),
    Operation(
        "GET",
        "/api/rooms",
        "Live rooms with viewer counts (paged)",
        page("rooms", ROOM),
        ADMIN_ERRORS,
        params=PAGED,
    ),
    Operation(
        "GET",
        "/api/audit",
        "The ledger invariants (docs/economy.md)",
        obj(
            ok={"type": "boolean"},
            checks={
                "type": "array",
                "items": {"type": "object", "properties": {"name": STR, "ok": {"type": "boolean"}}},
            },
        ),
        ADMIN_ERRORS,
    ),
    Operation(
        "GET",
        "/api/products",
        "Products (paged)",
        page("products", PRODUCT),
        ADMIN_ERRORS,
        params=PAGED,
    ),
    Operation(
        "POST",
        "/api/products",
        "Create a product",
        PRODUCT,
        ADMIN_ERRORS,
        body="products",
        status=201,
        example={
            "product": "openapi_tee",
            "title": "T-shirt",
            "seller": "openapi_shop",
            "price": 300,
            "stock": 5,
        },
    ),
    Operation(
        "POST",
        "/api/products/{product}/restock",
        "Add stock to a product",
        obj(product=STR, stock=INT),
        (*ADMIN_ERRORS, 404),
        body="restock",
        example={"qty": 5},
        params=(path_param("product", "the product"),),
    ),
    Operation(
        "GET",
        "/api/orders",
        "Orders: one user's newest first, or all (paged)",
        page("orders", ORDER),
        ADMIN_ERRORS,
        params=(
            Param(
                "user",
                "query",
                {"type": "string", "pattern": IDENT_PATTERN},
                "only this buyer's orders",
            ),
            *PAGED,
        ),
    ),
    Operation(
        "PUT",
        "/api/creators/{user}/sub_price",
        "Set a creator's subscription price (one of the catalogue's prices)",
        obj(price=INT),
        ADMIN_ERRORS,
        body="sub_price",
        example={"price": 350},
        params=(path_param("user", "the creator"),),
    ),
    Operation(
        "GET",
        "/api/withdrawals",
        "Withdrawals, newest first (paged)",
        page("withdrawals", WITHDRAWAL),
        ADMIN_ERRORS,
        params=(Param("status", "query", {"enum": list(STATUSES)}, "only this status"), *PAGED),
    ),
    Operation(
        "POST",
        "/api/withdrawals/{wid}/{action}",
        "Decide a withdrawal: paid, or "
        "reject (returns the diamonds); repeating a decision moves nothing",
        obj(withdrawal=STR, status={"enum": ["paid", "rejected"]}),
        (*ADMIN_ERRORS, 404),
        params=(
            Param("wid", "path", STR, "the withdrawal id"),
            Param("action", "path", {"enum": ["paid", "reject"]}, "the decision"),
        ),
    ),
)


OPERATIONS += openapi_rooms.OPERATIONS  # moderation, paid pins, treasure boxes

# -- series (livesrv/services/series.py; routes: livesrv/http/admin_series.py) --
EPISODE = {"type": "object", "properties": {"title": STR, "url": STR}, "required": ["title"]}
_SERIES_BOOL = {"type": "boolean"}
_SERIES = dict(
    series=STR, creator=STR, title=STR, description=STR, price=INT,
    published=_SERIES_BOOL, created=INT,
)  # fmt: skip
OPERATIONS += (
    Operation(
        "GET",
        "/api/series/{series}",
        "A series with every episode's URL",
        obj(**_SERIES, episodes={"type": "array", "items": EPISODE}, purchased=_SERIES_BOOL),
        (*ADMIN_ERRORS, 404),
        params=(path_param("series", "the series"),),
    ),
    Operation(
        "GET",
        "/api/creators/{user}/series",
        "A creator's series, unpublished ones too, by id (paged; episodes: how many)",
        page("series", obj(**_SERIES, episodes=INT)),
        ADMIN_ERRORS,
        params=(path_param("user", "the creator"), *PAGED),
    ),
)
# -- end series --

OPERATIONS += api_refunds.OPERATIONS  # refunds, chargebacks and minors
OPERATIONS += admin_subs.OPERATIONS  # subscription tiers


def _error_response(status: int) -> dict[str, Any]:
    codes = [c for c, s in STATUS.items() if s == status]
    return {
        "description": ", ".join(codes) or "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _operation(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "success"}
    if op.reply is not None:
        ok["content"] = {op.media: {"schema": op.reply}}
    else:
        ok["content"] = {op.media: {"schema": STR}}
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": (op.method + op.path)
        .lower()
        .replace("/", "_")
        .replace(".", "_")
        .replace("{", "")
        .replace("}", ""),
        "tags": list(op.tags),
        "responses": {str(op.status): ok},
    }
    for status in sorted({*op.errors, *((500,) if op.admin or op.body else ())}):
        out["responses"][str(status)] = _error_response(status)
    if not op.admin:
        out["security"] = []
    if op.params:
        out["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.where == "path",
                "schema": p.schema,
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
    if op.body is not None:
        schema = body_schema(ADMIN_BODIES[op.body])
        content: dict[str, Any] = {"schema": schema}
        if op.example is not None:
            content["example"] = op.example
        out["requestBody"] = {"required": True, "content": {"application/json": content}}
    return out


def document(*, demo: bool, server_url: str | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the admin app.

    Args:
        demo: Whether the app runs with ``--demo`` (``/demo/login`` exists only then).
        server_url: The URL the document was fetched from (its ``servers`` entry).
    """
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        if op.demo_only and not demo:
            continue
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    error = obj(ok={"const": False}, error=obj(code={"enum": list(STATUS)}, message=STR))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "livesrv admin HTTP API",
            "version": __version__,
            "description": "Health, metrics and the admin API of one livesrv node. Every "
            "operation tagged admin needs `Authorization: Bearer <token with role admin>` "
            "(`livesrv token NAME --role admin`). Errors answer "
            "`{ok: false, error: {code, message}}`; clients act on the code. The demo page's "
            "static files are served under `/` as well. See docs/protocol.md.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        **({"servers": [{"url": server_url}]} if server_url else {}),
        "security": [{"admin": []}],
        "tags": [
            {"name": "public", "description": "no token needed"},
            {"name": "admin", "description": "an admin bearer token"},
            {"name": "demo", "description": "only with serve --demo"},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {"Error": error},
        },
    }
