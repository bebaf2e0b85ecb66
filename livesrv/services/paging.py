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

from ..errors import BadRequest
from ..store.facade import Backend, store_errors
from ..store.keys import NameIndex

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


async def adopt_legacy(b: Backend, index: NameIndex) -> None:
    """Move the names an older livesrv kept in one key (a plain set before paged listings,
    one sorted set before index shards) into the index shards.

    Idempotent and safe to repeat: names are added to their shard before they leave the
    old key, so a crash in between loses nothing. Costs one pipelined EXISTS once adopted.
    """
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        for key in index.legacy:
            pipe.exists(key)
        present = [k for k, n in zip(index.legacy, await pipe.execute(), strict=True) if n]
        for key in present:
            kind = await b.redis.type(key)
            if kind in ("set", "zset"):
                await _adopt(b, index, key, kind)


async def _adopt(b: Backend, index: NameIndex, legacy: str, kind: str) -> None:
    cursor = 0
    while True:
        if kind == "set":
            cursor, names = await b.redis.sscan(legacy, cursor, count=ADOPT_CHUNK)
        else:
            cursor, pairs = await b.redis.zscan(legacy, cursor, count=ADOPT_CHUNK)
            names = [name for name, _ in pairs]
        if names:
            pipe = b.redis.pipeline(transaction=False)
            for name in names:
                pipe.zadd(index.key_for(name), {name: 0})
            await pipe.execute()
            if kind == "set":
                await b.redis.srem(legacy, *names)
            else:
                await b.redis.zrem(legacy, *names)
        if cursor == 0:
            return


async def index_add(b: Backend, index: NameIndex, name: str) -> None:
    """Add ``name`` to its index shard."""
    async with store_errors():
        await b.redis.zadd(index.key_for(name), {name: 0})


async def index_remove(b: Backend, index: NameIndex, name: str) -> None:
    """Remove ``name`` from its index shard and from the keys of older versions."""
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        pipe.zrem(index.key_for(name), name)
        pipe.zrem(index.old_zset, name)
        pipe.srem(index.old_set, name)
        await pipe.execute()


async def names_after(
    b: Backend, index: NameIndex, after: str | None, count: int
) -> tuple[list[str], bool]:
    """Up to ``count`` names of ``index`` that sort after ``after``, merged across shards.

    Each shard gives at most ``count`` names (ZRANGE BYLEX LIMIT), one pipelined read
    grouped by store node; the ``count`` smallest of their union are the page.

    Returns:
        (names, more): ``more`` is True when names after the last one may remain.
    """
    low = "-" if after is None else "(" + after
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        for key in index.keys:
            pipe.zrangebylex(key, low, "+", start=0, num=count)
        reads = await pipe.execute()
    merged = sorted({name for names in reads for name in names})
    more = len(merged) > count or any(len(names) == count for names in reads)
    return merged[:count], more


async def all_names(b: Backend, index: NameIndex) -> list[str]:
    """Every name of ``index`` (older versions' keys adopted first), sorted."""
    await adopt_legacy(b, index)
    names: list[str] = []
    after: str | None = None
    while True:
        page, more = await names_after(b, index, after, ADOPT_CHUNK)
        names.extend(page)
        if not more or not page:
            return names
        after = page[-1]
