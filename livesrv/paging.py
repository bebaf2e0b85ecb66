"""Paged listings: page sizes, opaque cursors, and the sorted-set name indexes.

Every listing (``rooms``, ``products``, ``orders``, ``withdrawals`` and their admin routes)
takes ``limit`` (1-:data:`PAGE_MAX`, default :data:`PAGE_DEFAULT`) and ``cursor`` (the
``next`` of the previous page) and answers one page plus ``next`` (None at the end). A
cursor is a position in the listing's order, not an offset, so walking the pages of a
listing that does not change meanwhile gives every item exactly once.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from .errors import BadRequest
from .store.facade import Backend, store_errors

PAGE_DEFAULT = 50
PAGE_MAX = 200
CURSOR_MAX = 512  # characters; every cursor the server makes is far shorter
ADOPT_CHUNK = 500


def encode_cursor(kind: str, *parts: str | int | float) -> str:
    """An opaque cursor for position ``parts`` of listing ``kind``."""
    raw = orjson.dumps([kind, *parts])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(kind: str, cursor: str | None, *types: type) -> list[Any] | None:
    """The position a cursor of listing ``kind`` holds (None for the first page).

    Args:
        kind: The listing the cursor must belong to.
        cursor: The client's cursor, or None.
        *types: The type of each part of the position.

    Raises:
        BadRequest: The cursor was not made by this listing.
    """
    if cursor is None:
        return None
    try:
        if len(cursor) > CURSOR_MAX:
            raise ValueError(cursor)
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("cursor is not one this listing gave out") from None
    if (
        not isinstance(value, list)
        or len(value) != len(types) + 1
        or value[0] != kind
        or not all(type(v) is t for v, t in zip(value[1:], types, strict=True))
    ):
        raise BadRequest("cursor is not one this listing gave out")
    return value[1:]


def page_limit(limit: int | None) -> int:
    """The page size a request asked for (the default when it did not).

    Raises:
        BadRequest: Outside 1-PAGE_MAX.
    """
    if limit is None:
        return PAGE_DEFAULT
    if not 1 <= limit <= PAGE_MAX:
        raise BadRequest(f"limit must be between 1 and {PAGE_MAX}")
    return limit


def query_args(query: Any) -> tuple[int, str | None]:
    """``limit`` and ``cursor`` from an HTTP query string.

    Raises:
        BadRequest: limit is not an integer in range.
    """
    raw = query.get("limit")
    limit: int | None = None
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            raise BadRequest(f"limit must be an integer between 1 and {PAGE_MAX}") from None
    cursor = query.get("cursor")
    return page_limit(limit), (cursor if cursor else None)


async def adopt_legacy(b: Backend, legacy: str, key: str) -> None:
    """Move the names of a plain set written by an older livesrv into sorted set ``key``.

    Idempotent and safe to repeat: names are added to ``key`` before they leave
    ``legacy``, so a crash in between loses nothing. Costs one EXISTS once adopted.
    """
    async with store_errors():
        if not await b.redis.exists(legacy):
            return
        if await b.redis.type(legacy) != "set":
            return
        cursor = 0
        while True:
            cursor, names = await b.redis.sscan(legacy, cursor, count=ADOPT_CHUNK)
            if names:
                await b.redis.zadd(key, dict.fromkeys(names, 0))
                await b.redis.srem(legacy, *names)
            if cursor == 0:
                return


async def names_after(b: Backend, key: str, after: str | None, count: int) -> list[str]:
    """Up to ``count`` names of sorted-set index ``key`` that sort after ``after``."""
    low = "-" if after is None else "(" + after
    async with store_errors():
        names = await b.redis.zrangebylex(key, low, "+", start=0, num=count)
    return list(names)
