"""Series (paid premium content): publish, buy once, read, reprice, unpublish, list.

A series lives in its own slot (``series.lua``: create, price, unpublish). Buying it is one
debit in the buyer's shard (``spend.lua``, kind ``series``) that writes the buyer's access
record in the same atomic step, with the outbox entry that pays the creator through
settlement, idempotent by key and counted against the rolling-day spend limit; access is
bought once, whatever the key. The rules are in :mod:`livesrv.services.series_rules`.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import BadRequest, Forbidden, KeyExpired, NotFound
from ..store.facade import Backend, args_hash, now_ms, store_errors
from ..store.keys import series_key
from ..wire.tokens import Identity
from . import series_rules as rules
from . import wallet
from .paging import decode_cursor, encode_cursor


async def get_raw(b: Backend, series: str) -> dict[str, str]:
    """The stored series record.

    Raises:
        NotFound: No such series.
    """
    async with store_errors():
        raw: dict[str, str] = await b.redis.hgetall(series_key(series))
    if not raw:
        raise NotFound(f"no series {series!r}")
    return raw


async def has_access(b: Backend, user: str, series: str) -> bool:
    """Whether ``user`` bought ``series`` (the access record in the user's shard)."""
    async with store_errors():
        return bool(await b.redis.hexists(b.user(user).series_access, series))


async def publish(
    b: Backend,
    who: Identity,
    *,
    series: str,
    title: str,
    description: str,
    price: int,
    episodes: list[Any],
) -> dict[str, Any]:
    """Publish a series sold by the caller (a creator).

    Raises:
        Forbidden: Not a creator. BadRequest: Bad episodes or price, or the id exists (a
            creator publishing one of its own ids again also gets it back in its listing,
            should a crash have left it out).
    """
    if not who.is_creator:
        raise Forbidden("only creators publish series")
    eps = rules.check_episodes(episodes)
    rules.check_price(price)
    if len(description) > rules.DESCRIPTION_MAX:
        raise BadRequest(f"description must be 0-{rules.DESCRIPTION_MAX} characters")
    status, owner = await b.run(
        "series",
        [series_key(series)],
        ["create", who.user, "0", series, title, description, price,
         orjson.dumps(eps).decode(), now_ms()],
    )  # fmt: skip
    if owner == who.user:  # second step, creator's slot; a repeat repairs a crash between
        async with store_errors():
            await b.redis.zadd(b.user(who.user).series_index, {series: 0})
    if status == "exists":
        raise BadRequest(f"series {series!r} already exists")
    return rules.view(await get_raw(b, series), urls=True) | {"purchased": False}


async def _change(b: Backend, who: Identity, series: str, action: str, *args: Any) -> None:
    admin = "1" if who.is_admin else "0"
    status, _ = await b.run("series", [series_key(series)], [action, who.user, admin, *args])
    if status == "not_found":
        raise NotFound(f"no series {series!r}")
    if status == "forbidden":
        raise Forbidden("only the series' creator can change it")


async def set_price(b: Backend, who: Identity, series: str, price: int) -> dict[str, Any]:
    """Change the price for future buyers (buyers keep what they bought).

    Raises:
        NotFound, Forbidden (not its creator), BadRequest (price out of range).
    """
    await _change(b, who, series, "price", rules.check_price(price))
    return {"series": series, "price": price}


async def unpublish(b: Backend, who: Identity, series: str) -> dict[str, Any]:
    """Stop selling a series; its buyers keep access. Repeating it changes nothing.

    Raises:
        NotFound, Forbidden (not its creator).
    """
    await _change(b, who, series, "unpublish")
    return {"series": series, "published": False}


async def read(b: Backend, who: Identity, series: str) -> dict[str, Any]:
    """A series as ``who`` sees it: episode URLs for its buyers, creator and admins.

    Raises:
        NotFound: No such series.
    """
    raw = await get_raw(b, series)
    purchased = await has_access(b, who.user, series)
    urls = rules.can_read(raw, who.user, purchased, who.is_admin)
    return rules.view(raw, urls=urls) | {"purchased": purchased}


def buy_digest(series: str) -> str:
    return args_hash("series_buy", {"series": series})


async def buy(b: Backend, user: str, series: str, key: str) -> dict[str, Any]:
    """Buy access to a series at its current price, once (idempotent by key; a buyer who
    already has access, or its creator, pays nothing and gets ``paid: 0``).

    Returns:
        ``{series, paid, coins}``: coins paid now and the new balance.

    Raises:
        NotFound: No such series. Forbidden: Unpublished (and not bought before).
        InsufficientFunds, LimitExceeded, IdempotencyConflict: from the debit.
    """
    digest = buy_digest(series)
    done = await wallet.first_result(b, user, key, digest)
    if done is not None:  # a retry: the first result, whatever the series is now
        return _reply(series, done)
    raw = await get_raw(b, series)
    if raw["creator"] == user or await has_access(b, user, series):
        return {"series": series, "paid": 0, "coins": (await wallet.read(b, user))["coins"]}
    if raw["published"] != "1":
        raise Forbidden("this series is unpublished and can no longer be bought")
    price, share = int(raw["price"]), b.catalog.series_share_bps
    for _ in range(3):
        exp = wallet.generation_expiry(b)
        try:
            _, reply, _ = await wallet.spend(
                b,
                user,
                kind="series",
                amount=price,
                key=key,
                digest=digest,
                payload={"series": series, "e": rules.earners(raw["creator"], share)},
                extra_key=b.user(user).series_access,
                exp=exp,
                params=(series, 0),
                reply={"series": series, "paid": price},
            )
        except KeyExpired:
            continue  # the key's generation ended mid-request: the next try starts a new one
        return _reply(series, reply)
    raise KeyExpired()


def _reply(series: str, reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("owned"):  # bought meanwhile with another key: nothing moved now
        return {"series": series, "paid": 0, "coins": reply["coins"]}
    return {"series": series, "paid": reply["paid"], "coins": reply["coins"]}


async def listing(
    b: Backend, creator: str, viewer: str | None, cursor: str | None, limit: int
) -> dict[str, Any]:
    """One page of a creator's series, by id: published ones, and unpublished ones too
    for the creator itself and admins (``viewer`` None). A page may hold fewer than
    ``limit`` series when some are hidden.

    Returns:
        ``{"series": [summaries], "next": cursor or None}``.

    Raises:
        BadRequest: A cursor this listing did not give out.
    """
    pos = decode_cursor("series", cursor, str)
    low = "-" if pos is None else "(" + pos[0]
    async with store_errors():
        ids = await b.redis.zrangebylex(b.user(creator).series_index, low, "+", 0, limit + 1)
        page = ids[:limit]
        pipe = b.redis.pipeline(transaction=False)
        for sid in page:
            pipe.hgetall(series_key(sid))
        rows = await pipe.execute() if page else []
    return {
        "series": [rules.summary(r) for r in rows if r and rules.listed(r, viewer)],
        "next": encode_cursor("series", page[-1]) if len(ids) > limit else None,
    }


async def access_records(b: Backend, users: list[str]) -> dict[str, dict[str, int]]:
    """Every access record of ``users``, for the audit: user -> series -> coins paid."""
    if not users:
        return {}
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        for user in users:
            pipe.hgetall(b.user(user).series_access)
        rows = await pipe.execute()
    return {
        user: {sid: int(v.partition("|")[0]) for sid, v in row.items()}
        for user, row in zip(users, rows, strict=True)
        if row
    }
