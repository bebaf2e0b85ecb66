"""Parsing and validating client requests (sans-I/O).

A decoded frame goes in; a :class:`Request` with checked, typed arguments comes out, or a
:class:`~livesrv.errors.BadRequest` naming what is wrong. Business rules (balances, who
may do what) are not checked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest
from .tokens import ROLES

IDENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # always fullmatch: "$" also matches before "\n"
MAX_INT = (1 << 53) - 1  # the largest integer the protocol carries exactly (JS, Lua doubles)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "int" | "text" | "ident" | "key" | "bool" | "list" (lo-hi items)
    required: bool = True
    lo: int = 0
    hi: int = MAX_INT
    choices: tuple[str, ...] = ()  # when not empty, the only values allowed


def _f(name: str, kind: str, lo: int = 0, hi: int = MAX_INT, required: bool = True) -> Field:
    return Field(name, kind, required, lo, hi)


ROOM = _f("room", "ident")
KEY = _f("key", "key", 1, 64)
# Paged listings (livesrv.services.paging): the range of limit is checked there, not here.
PAGE = (_f("limit", "int", required=False), _f("cursor", "key", 1, 512, required=False))

OPS: dict[str, tuple[Field, ...]] = {
    "hello": (_f("token", "text", 1, 4096),),
    "wallet": (),
    "catalog": (),
    "rooms": PAGE,
    "buy_coins": (_f("package", "ident"), _f("receipt", "key", 1, 200)),
    "room_open": (ROOM, _f("title", "text", 1, 100)),
    "room_close": (ROOM,),
    "join": (ROOM, _f("since", "int", 0, required=False)),
    "history": (ROOM, _f("before", "int", 1), _f("limit", "int", required=False)),
    "leave": (ROOM,),
    "chat": (ROOM, _f("text", "text", 1, 500)),
    "like": (ROOM, _f("count", "int", 1, 100, required=False)),
    "gift": (ROOM, _f("gift", "ident"), _f("count", "int", 1, 9999), KEY),
    "subscribe": (ROOM, KEY, _f("tier", "int", 1, 3, required=False)),
    "buy": (ROOM, _f("product", "ident"), _f("qty", "int", 1, 99), KEY),
    "pin": (ROOM, _f("product", "ident", required=False)),
    "withdraw": (_f("diamonds", "int", 1), KEY),
    "chat_mode": (ROOM, _f("subscribers_only", "bool")),
    "sub_price": (_f("price", "int", 1),),
    "product_create": (
        _f("product", "ident"),
        _f("title", "text", 1, 100),
        _f("price", "int", 1, 1_000_000),
        _f("stock", "int", 0, 1_000_000),
        _f("commission", "int", 0, 9200, required=False),
    ),
    "product_restock": (_f("product", "ident"), _f("qty", "int", 1, 1_000_000)),
    "products": (_f("seller", "ident", required=False), *PAGE),
    "orders": PAGE,
    "withdrawals": PAGE,
    # -- moderation (livesrv/services/moderation.py) --
    "mod_add": (ROOM, _f("user", "ident")),
    "mod_remove": (ROOM, _f("user", "ident")),
    "mods": (ROOM,),
    "moderation": (ROOM,),
    "mute": (ROOM, _f("user", "ident"), _f("seconds", "int", 0, 7 * 86400)),
    "ban": (ROOM, _f("user", "ident")),
    "unban": (ROOM, _f("user", "ident")),
    "chat_delete": (ROOM, _f("seq", "int", 1)),
    "slow_mode": (ROOM, _f("seconds", "int", 0, 3600)),
    # -- end moderation --
    # -- paid pinned messages and treasure boxes (services/paid_chat.py, treasure.py) --
    "paid_chat": (ROOM, _f("text", "text", 1, 200), _f("coins", "int", 1, 1_000_000), KEY),
    "unpin": (ROOM, _f("pin", "ident")),
    "box_drop": (ROOM, _f("coins", "int", 1, 1_000_000), _f("seconds", "int", 1, 3600), KEY),
    "box_claim": (ROOM, _f("box", "ident")),
    # -- end paid pinned messages and treasure boxes --
    # -- live match, goals (services/match.py, services/goals.py) --
    "match_invite": (ROOM, _f("opponent", "ident")),
    "match_accept": (_f("match", "ident"),),
    "match_decline": (_f("match", "ident"),),
    "goal_set": (
        ROOM,
        Field("kind", "ident", choices=("coins", "gift", "subs")),
        _f("target", "int", 1, 1_000_000_000),
        _f("gift", "ident", required=False),
    ),
    # -- end live match, goals --
    # -- series (services/series.py; episodes are checked in services/series_rules.py) --
    "series_publish": (
        _f("series", "ident"),
        _f("title", "text", 1, 100),
        _f("description", "text", 0, 2000, required=False),
        _f("price", "int", 1, 1_000_000),
        _f("episodes", "list", 1, 50),
    ),
    "series_get": (_f("series", "ident"),),
    "series_buy": (_f("series", "ident"), KEY),
    "series_price": (_f("series", "ident"), _f("price", "int", 1, 1_000_000)),
    "series_unpublish": (_f("series", "ident"),),
    "series_list": (_f("creator", "ident"), *PAGE),
    # -- end series --
    # -- subscription tiers, gifted subs (services/sub_tiers.py, sub_gifts.py) --
    "sub_tiers": (_f("prices", "list", 1, 3),),
    "sub_gift": (
        ROOM,
        _f("tier", "int", 1, 3, required=False),
        _f("count", "int", 1, 50, required=False),
        _f("to", "list", 1, 50, required=False),
        KEY,
    ),
    # -- end subscription tiers, gifted subs --
}

# The ops that spend a user's money: the session checks the age gate (services/age.py) for
# these before their handler runs, so a refusal moves nothing.
MONEY_OPS = frozenset(
    {"buy_coins", "gift", "subscribe", "buy", "paid_chat", "box_drop", "series_buy", "sub_gift"}
)

# The JSON bodies of the admin HTTP API (livesrv.http.admin), checked with the same fields; the
# OpenAPI document (livesrv.http.openapi) is generated from these and from OPS.
DEMO_ROLES = ("viewer", "creator")
# the age claims of a token (livesrv/wire/tokens.py checks them further: year, region letters)
AGE_CLAIMS = (
    _f("birth_year", "int", 1900, 9999, required=False),
    _f("region", "key", 2, 2, required=False),
)
MOD_ACTIONS = ("mod_add", "mod_remove", "mute", "ban", "unban", "chat_delete", "slow_mode")
REFUND_KINDS = ("refund", "chargeback")  # POST /api/receipts/{receipt}/refund (refunds.py)
ADMIN_BODIES: dict[str, tuple[Field, ...]] = {
    "demo_login": (
        _f("user", "ident"),
        Field("role", "ident", False, choices=DEMO_ROLES),
        *AGE_CLAIMS,
    ),
    "tokens": (
        _f("user", "ident"),
        Field("role", "ident", choices=ROLES),
        _f("ttl", "int", 1, 366 * 86400, required=False),
        *AGE_CLAIMS,
    ),
    "grant": (_f("coins", "int", 1), KEY, _f("reason", "text", 1, 200, False)),
    "receipts": (
        _f("user", "ident"),
        _f("package", "ident"),
        _f("id", "ident"),
        _f("issued", "int", 0, 999_999_999_999, required=False),
    ),
    "products": (*OPS["product_create"][:2], _f("seller", "ident"), *OPS["product_create"][2:]),
    "restock": OPS["product_restock"][1:],
    "sub_price": OPS["sub_price"],
    "sub_tiers": OPS["sub_tiers"],  # PUT /api/creators/{user}/sub_tiers (http/admin_subs.py)
    "refund": (Field("kind", "ident", choices=REFUND_KINDS), _f("reason", "text", 1, 200, False)),
    # -- moderation: POST /api/rooms/{room}/moderation (the fields the action needs) --
    "moderation": (
        Field("action", "ident", choices=MOD_ACTIONS),
        _f("user", "ident", required=False),
        _f("seconds", "int", 0, 7 * 86400, required=False),
        _f("seq", "int", 1, required=False),
    ),
}


@dataclass(frozen=True)
class Request:
    id: int | str
    op: str
    args: dict[str, Any]


def request_id(message: Any) -> int | str | None:
    """The usable ``id`` of a decoded frame, or None (the reply then carries id null)."""
    if not isinstance(message, dict):
        return None
    rid = message.get("id")
    if isinstance(rid, bool):
        return None
    if isinstance(rid, int) and -MAX_INT <= rid <= MAX_INT:
        return rid
    if isinstance(rid, str) and 0 < len(rid) <= 64:
        return rid
    return None


def parse(message: Any) -> Request:
    """Check a decoded frame and return the request it holds.

    Raises:
        BadRequest: Not a map, no usable id, unknown op, or a bad argument.
    """
    if isinstance(message, list):
        raise BadRequest("clients send one message per frame, not a batch")
    if not isinstance(message, dict):
        raise BadRequest("a request must be a map")
    rid = request_id(message)
    if rid is None:
        raise BadRequest("id is required: an integer or a string of 1-64 characters")
    op = message.get("op")
    if not isinstance(op, str):
        raise BadRequest("op is required and must be a string")
    fields = OPS.get(op)
    if fields is None:
        raise BadRequest(f"unknown op {op[:40]!r}")
    args: dict[str, Any] = {}
    for field in fields:
        value = message.get(field.name)
        if value is None:
            if field.required:
                raise BadRequest(f"{field.name} is required")
            continue
        args[field.name] = check(field, value)
    return Request(rid, op, args)


def check(field: Field, value: Any) -> Any:
    """Check one argument against its field.

    Raises:
        BadRequest: The value has the wrong type or is out of range.
    """
    name = field.name
    if field.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{name} must be an integer")
        if not field.lo <= value <= field.hi:
            raise BadRequest(f"{name} must be between {field.lo} and {field.hi}")
        return value
    if field.kind == "bool":
        if not isinstance(value, bool):
            raise BadRequest(f"{name} must be true or false")
        return value
    if field.kind == "list":
        return _check_list(field, value)
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if field.kind == "ident" and not IDENT.fullmatch(value):
        raise BadRequest(f"{name} must be 1-64 of [A-Za-z0-9_.-]")
    if field.kind == "key" and not (
        field.lo <= len(value) <= field.hi and value.isascii() and value.isprintable()
    ):
        raise BadRequest(f"{name} must be {field.lo}-{field.hi} printable ASCII characters")
    if field.kind == "text" and not field.lo <= len(value) <= field.hi:
        raise BadRequest(f"{name} must be {field.lo}-{field.hi} characters")
    if field.choices and value not in field.choices:
        raise BadRequest(f"{name} must be one of {', '.join(field.choices)}")
    return value


def _check_list(field: Field, value: Any) -> list[Any]:
    """A list argument: its items are checked by the service that takes it.

    Raises:
        BadRequest: Not a list, or too few or too many items.
    """
    if not isinstance(value, list):
        raise BadRequest(f"{field.name} must be a list")
    if not field.lo <= len(value) <= field.hi:
        raise BadRequest(f"{field.name} must hold {field.lo}-{field.hi} items")
    return value
