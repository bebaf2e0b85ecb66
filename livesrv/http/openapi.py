"""The OpenAPI 3.1 description of the admin HTTP app (``GET /api/openapi.json``).

Request bodies are generated from the same :class:`~livesrv.wire.schema.Field` declarations
the handlers check (``ADMIN_BODIES``), so the document cannot drift from the checks; the
routes are listed in :data:`OPERATIONS` and ``tests/test_openapi.py`` compares them with
the routes the app really has, both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..services.paging import CURSOR_MAX, PAGE_DEFAULT, PAGE_MAX
from ..services.withdrawals import STATUSES
from ..wire.schema import ADMIN_BODIES, IDENT, Field
from .status import STATUS

IDENT_PATTERN = "^" + IDENT.pattern + "$"
PRINTABLE_ASCII = "^[ -~]*$"


def field_schema(f: Field) -> dict[str, Any]:
    """The JSON Schema of one request field, with the bounds :func:`requests.check` uses."""
    if f.kind == "int":
        return {"type": "integer", "minimum": f.lo, "maximum": f.hi}
    if f.kind == "bool":
        return {"type": "boolean"}
    schema: dict[str, Any] = {"type": "string"}
    if f.kind == "ident":
        schema["pattern"] = IDENT_PATTERN
    elif f.kind == "key":
        schema.update(minLength=f.lo, maxLength=f.hi, pattern=PRINTABLE_ASCII)
    else:
        schema.update(minLength=f.lo, maxLength=f.hi)
    if f.choices:
        schema["enum"] = list(f.choices)
    return schema


def body_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    """The JSON Schema of a request body made of ``fields`` (null means left out)."""
    props = {}
    for f in fields:
        one = field_schema(f)
        props[f.name] = one if f.required else {"anyOf": [one, {"type": "null"}]}
    required = [f.name for f in fields if f.required]
    return {"type": "object", "properties": props, "required": required}


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props)}


def _loose(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


INT = {"type": "integer"}
STR = {"type": "string"}
NEXT = {"anyOf": [STR, {"type": "null"}], "description": "cursor of the next page; null: end"}


def _page(items: str, item: dict[str, Any]) -> dict[str, Any]:
    return _obj(**{items: {"type": "array", "items": item}, "next": NEXT})


WALLET = _obj(coins=INT, diamonds=INT, pending=INT)
PRODUCT = _loose(product=STR, title=STR, seller=STR, price=INT, stock=INT, commission=INT)
ORDER = _loose(order=STR, user=STR, product=STR, qty=INT, coins=INT, room=STR)
WITHDRAWAL = _obj(
    withdrawal=STR, user=STR, status={"enum": list(STATUSES)}, diamonds=INT, cents=INT, created=INT
)
ROOM = _obj(room=STR, title=STR, creator=STR, viewers=INT)
UP_DOWN = {"enum": ["up", "down"]}
HEALTH = _obj(
    ok={"type": "boolean"},
    store=UP_DOWN,
    masters={"type": "object", "additionalProperties": UP_DOWN},
)


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" | "query"
    schema: dict[str, Any]
    description: str = ""


LIMIT = Param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": PAGE_MAX, "default": PAGE_DEFAULT},
    "items per page",
)
CURSOR = Param(
    "cursor",
    "query",
    {"type": "string", "minLength": 1, "maxLength": CURSOR_MAX},
    "the `next` of the previous page, as given",
)
PAGED = (LIMIT, CURSOR)


def _id(name: str, description: str) -> Param:
    return Param(name, "path", {"type": "string", "pattern": IDENT_PATTERN}, description)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    reply: dict[str, Any] | None  # JSON schema of the success body (None: not JSON)
    errors: tuple[int, ...] = ()
    admin: bool = True
    body: str | None = None  # a key of ADMIN_BODIES
    example: dict[str, Any] | None = None
    params: tuple[Param, ...] = ()
    status: int = 200
    media: str = "application/json"
    demo_only: bool = False
    tags: tuple[str, ...] = field(default=("admin",))


PUBLIC: dict[str, Any] = {"admin": False, "tags": ("public",)}
ADMIN_ERRORS = (400, 401, 403, 503)
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
        _obj(ws_url=STR, demo={"type": "boolean"}),
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
        _obj(token=STR, user=STR, role=STR, coins=INT),
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
        _obj(token=STR),
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
        params=(_id("user", "the user"),),
    ),
    Operation(
        "POST",
        "/api/users/{user}/grant",
        "Grant coins (idempotent by key)",
        {"type": "object", "properties": {"coins": INT}},
        (*ADMIN_ERRORS, 409),
        body="grant",
        example={"coins": 10, "key": "openapi-grant", "reason": "example"},
        params=(_id("user", "the user"),),
    ),
    Operation(
        "POST",
        "/api/receipts",
        "Sign an hmac coin-purchase receipt, as the payment backend would",
        _obj(receipt=STR, id=STR),
        (*ADMIN_ERRORS, 404),
        body="receipts",
        example={"user": "openapi_user", "package": "p330", "id": "pay-1"},
    ),
    Operation(
        "GET",
        "/api/rooms",
        "Live rooms with viewer counts (paged)",
        _page("rooms", ROOM),
        ADMIN_ERRORS,
        params=PAGED,
    ),
    Operation(
        "GET",
        "/api/audit",
        "The ledger invariants (docs/economy.md)",
        _obj(
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
        _page("products", PRODUCT),
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
        _obj(product=STR, stock=INT),
        (*ADMIN_ERRORS, 404),
        body="restock",
        example={"qty": 5},
        params=(_id("product", "the product"),),
    ),
    Operation(
        "GET",
        "/api/orders",
        "Orders: one user's newest first, or all (paged)",
        _page("orders", ORDER),
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
        _obj(price=INT),
        ADMIN_ERRORS,
        body="sub_price",
        example={"price": 350},
        params=(_id("user", "the creator"),),
    ),
    Operation(
        "GET",
        "/api/withdrawals",
        "Withdrawals, newest first (paged)",
        _page("withdrawals", WITHDRAWAL),
        ADMIN_ERRORS,
        params=(Param("status", "query", {"enum": list(STATUSES)}, "only this status"), *PAGED),
    ),
    Operation(
        "POST",
        "/api/withdrawals/{wid}/{action}",
        "Decide a withdrawal: paid, or "
        "reject (returns the diamonds); repeating a decision moves nothing",
        _obj(withdrawal=STR, status={"enum": ["paid", "rejected"]}),
        (*ADMIN_ERRORS, 404),
        params=(
            Param("wid", "path", STR, "the withdrawal id"),
            Param("action", "path", {"enum": ["paid", "reject"]}, "the decision"),
        ),
    ),
)


# -- moderation (livesrv/services/moderation.py) --
MODERATION = _obj(
    room=STR,
    creator=STR,
    mods={"type": "array", "items": STR},
    slow_mode=INT,
    banned={"type": "array", "items": STR},
    muted={"type": "array", "items": _obj(user=STR, until=INT)},
)
MOD_RESULT = _loose(
    room=STR,
    seq={"anyOf": [INT, {"type": "null"}], "description": "the action's event; null: no change"},
    user=STR,
    until=INT,
    chat_seq=INT,
    seconds=INT,
    mods={"type": "array", "items": STR},
)
OPERATIONS += (
    Operation(
        "GET",
        "/api/rooms/{room}/moderation",
        "A room's moderation: moderators, slow mode, banned and muted users (200 of each)",
        MODERATION,
        (*ADMIN_ERRORS, 404),
        params=(_id("room", "the room"),),
    ),
    Operation(
        "POST",
        "/api/rooms/{room}/moderation",
        "Moderate a room as an admin: mod_add, mod_remove, mute (user, seconds; 0 unmutes), "
        "ban, unban (user), chat_delete (seq of a chat line), slow_mode (seconds; 0 off)",
        MOD_RESULT,
        (*ADMIN_ERRORS, 404, 409),
        body="moderation",
        example={"action": "slow_mode", "seconds": 5},
        params=(_id("room", "the room"),),
    ),
)
# -- end moderation --

# -- paid pins and treasure boxes (livesrv/services/paid_chat.py, treasure.py) --
PIN = _obj(**{"from": STR}, text=STR, coins=INT, pin=STR, until=INT)
BOX = _obj(box=STR, **{"from": STR}, coins=INT, opens_at=INT, claimers=INT)
OPERATIONS += (
    Operation(
        "GET",
        "/api/rooms/{room}/pins",
        "A room's pinned paid messages, the most coins first (at most 50)",
        _obj(room=STR, pins={"type": "array", "items": PIN}),
        ADMIN_ERRORS,
        params=(_id("room", "the room"),),
    ),
    Operation(
        "POST",
        "/api/rooms/{room}/pins/{pin}/unpin",
        "End a pinned paid message early (no refund); logs unpinned",
        _obj(seq=INT),
        (*ADMIN_ERRORS, 404),
        params=(_id("room", "the room"), _id("pin", "the pin id")),
    ),
    Operation(
        "GET",
        "/api/rooms/{room}/boxes",
        "A room's open treasure boxes, the soonest to open first",
        _obj(room=STR, boxes={"type": "array", "items": BOX}),
        ADMIN_ERRORS,
        params=(_id("room", "the room"),),
    ),
)
# -- end paid pins and treasure boxes --


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
    error = _obj(ok={"const": False}, error=_obj(code={"enum": list(STATUS)}, message=STR))
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
