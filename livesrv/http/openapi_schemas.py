"""The building blocks of the OpenAPI document (``openapi.py``): JSON Schemas of the
request fields (from the same :class:`~livesrv.wire.schema.Field` declarations the
handlers check), the reply schemas several routes share, and how an operation and its
parameters are declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..services.paging import CURSOR_MAX, PAGE_DEFAULT, PAGE_MAX
from ..services.withdrawals import STATUSES
from ..wire.schema import IDENT, Field

IDENT_PATTERN = "^" + IDENT.pattern + "$"
PRINTABLE_ASCII = "^[ -~]*$"


def field_schema(f: Field) -> dict[str, Any]:
    """The JSON Schema of one request field, with the bounds
    :func:`~livesrv.wire.schema.check` uses."""
    if f.kind == "int":
        return {"type": "integer", "minimum": f.lo, "maximum": f.hi}
    if f.kind == "bool":
        return {"type": "boolean"}
    if f.kind == "list":  # its items are checked by the service that takes it
        return {"type": "array", "minItems": f.lo, "maxItems": f.hi}
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


def obj(**props: Any) -> dict[str, Any]:
    """An object schema whose properties are all required."""
    return {"type": "object", "properties": props, "required": list(props)}


def loose(**props: Any) -> dict[str, Any]:
    """An object schema whose properties may be left out."""
    return {"type": "object", "properties": props}


INT = {"type": "integer"}
STR = {"type": "string"}
NEXT = {"anyOf": [STR, {"type": "null"}], "description": "cursor of the next page; null: end"}


def page(items: str, item: dict[str, Any]) -> dict[str, Any]:
    """The schema of one page of a paged listing: ``items`` and ``next``."""
    return obj(**{items: {"type": "array", "items": item}, "next": NEXT})


WALLET = obj(coins=INT, diamonds=INT, pending=INT)
PRODUCT = loose(product=STR, title=STR, seller=STR, price=INT, stock=INT, commission=INT)
ORDER = loose(order=STR, user=STR, product=STR, qty=INT, coins=INT, room=STR)
WITHDRAWAL = obj(
    withdrawal=STR, user=STR, status={"enum": list(STATUSES)}, diamonds=INT, cents=INT, created=INT
)
ROOM = obj(room=STR, title=STR, creator=STR, viewers=INT)
UP_DOWN = {"enum": ["up", "down"]}
HEALTH = obj(
    ok={"type": "boolean"},
    store=UP_DOWN,
    masters={"type": "object", "additionalProperties": UP_DOWN},
)


@dataclass(frozen=True)
class Param:
    """One path or query parameter of an operation."""

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


def path_param(name: str, description: str) -> Param:
    """An id in the path, checked like every id."""
    return Param(name, "path", {"type": "string", "pattern": IDENT_PATTERN}, description)


@dataclass(frozen=True)
class Operation:
    """One route of the admin app, as the document describes it."""

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
