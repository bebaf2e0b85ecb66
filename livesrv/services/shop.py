"""Live shopping: products, pinning, and purchases that debit coins and take stock.

A purchase touches two slots (the product's stock and the buyer's wallet), so it is a
saga of single-slot, idempotent steps: reserve stock, debit the buyer, then mark the
reservation sold (or cancelled, returning the stock, when the debit fails). Reservations
left open by a crash are finished by :func:`sweep` (run by the settlement worker).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ..errors import (
    BadRequest,
    Forbidden,
    IdempotencyConflict,
    KeyExpired,
    LivesrvError,
    NotFound,
    NotLive,
    OutOfStock,
    Unavailable,
)
from ..store.facade import Backend, args_hash, now_ms, store_errors
from ..store.keys import PRODUCT_INDEX, ProductKeys
from ..wire.tokens import Identity
from . import wallet
from .paging import adopt_legacy, all_names, decode_cursor, encode_cursor, index_add, names_after
from .rooms import RoomInfo, event, log_event

ABANDONED_MS = 60_000


def product_view(raw: dict[str, str]) -> dict[str, Any]:
    """A stored product as the wire shows it."""
    view: dict[str, Any] = {k: raw[k] for k in ("product", "title", "seller")}
    view.update({k: int(raw[k]) for k in ("price", "stock", "commission")})
    return view


async def get(b: Backend, product: str) -> dict[str, str]:
    """The stored product record.

    Raises:
        NotFound: No such product.
    """
    async with store_errors():
        raw = await b.redis.hgetall(ProductKeys(product).meta)
    if not raw:
        raise NotFound(f"no product {product!r}")
    return raw  # type: ignore[no-any-return]


async def create(
    b: Backend,
    who: Identity,
    *,
    product: str,
    title: str,
    seller: str,
    price: int,
    stock: int,
    commission: int | None,
) -> dict[str, Any]:
    """Create a product sold by ``seller``.

    Raises:
        Forbidden: A creator creating for someone else. BadRequest: The id exists or the
            commission leaves the seller nothing.
    """
    if not who.is_admin and (not who.is_creator or seller != who.user):
        raise Forbidden("creators create their own products")
    bps = b.catalog.default_commission_bps if commission is None else commission
    if not 0 <= bps <= 10_000 - b.catalog.shop_platform_bps:
        raise BadRequest(f"commission must be 0-{10_000 - b.catalog.shop_platform_bps} bps")
    status, _ = await b.run(
        "product",
        [ProductKeys(product).meta],
        [
            "create",
            who.user,
            "1" if who.is_admin else "0",
            product,
            title,
            seller,
            price,
            stock,
            bps,
            now_ms(),
        ],
    )
    if status == "exists":
        raise BadRequest(f"product {product!r} already exists")
    await index_add(b, PRODUCT_INDEX, product)
    return product_view(await get(b, product))


async def restock(b: Backend, who: Identity, product: str, qty: int) -> dict[str, Any]:
    status, stock = await b.run(
        "product",
        [ProductKeys(product).meta],
        ["restock", who.user, "1" if who.is_admin else "0", qty],
    )
    if status == "not_found":
        raise NotFound(f"no product {product!r}")
    if status == "forbidden":
        raise Forbidden("only the product's seller can restock it")
    return {"product": product, "stock": stock}


async def listing(b: Backend, seller: str | None, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of the products, by id (only ``seller``'s when given).

    Reads ``limit`` ids per page, so a page filtered by seller may hold fewer products.

    Returns:
        ``{"products": [product objects], "next": cursor or None}``.

    Raises:
        BadRequest: A cursor this listing did not give out.
    """
    pos = decode_cursor("products", cursor, str)
    await adopt_legacy(b, PRODUCT_INDEX)
    names, more = await names_after(b, PRODUCT_INDEX, pos[0] if pos else None, limit)
    async with store_errors():
        pipe = b.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(ProductKeys(name).meta)
        rows = await pipe.execute() if names else []
    out = [product_view(r) for r in rows if r]
    return {
        "products": [p for p in out if seller is None or p["seller"] == seller],
        "next": encode_cursor("products", names[-1]) if more else None,
    }


async def pin(b: Backend, who: Identity, room: RoomInfo, product: str | None) -> dict[str, Any]:
    """Show a product in the room (or none); logs ``pinned``.

    Raises:
        Forbidden: Not the room's creator. NotFound: No such product.
    """
    if room.creator != who.user and not who.is_admin:
        raise Forbidden("only the room's creator can pin products")
    fields: dict[str, Any] = {"product": None}
    if product is not None:
        fields = product_view(await get(b, product))
    ev = event("pinned", room.room, **fields)
    seq = await log_event(b, room.room, ev, meta=("pinned", product or ""))
    return {"seq": seq}


def order_id(b: Backend, user: str, key: str, exp: int) -> str:
    """The order id of the purchase made with ``key`` in the key generation ending at ``exp``."""
    shard = b.user(user).shard.shard
    return f"o{shard}-" + hashlib.sha1(f"{user}\n{key}\n{exp}".encode()).hexdigest()[:16]


async def buy(
    b: Backend, user: str, room: RoomInfo, product: str, qty: int, key: str
) -> dict[str, Any]:
    """Buy ``qty`` of a product in a live room, exactly once per key generation.

    Raises:
        NotFound, OutOfStock, InsufficientFunds, LimitExceeded, IdempotencyConflict,
        Forbidden (buying your own product), Unavailable (an earlier purchase with this
        key is still being finished).
    """
    raw = await get(b, product)
    if raw["seller"] == user:
        raise Forbidden("you cannot buy your own product")
    for _ in range(3):
        try:
            return await _buy_once(b, user, room, raw, qty, key)
        except KeyExpired:
            continue  # the key's generation ended mid-purchase: the next try starts a new one
    raise KeyExpired()


async def _buy_once(
    b: Backend, user: str, room: RoomInfo, raw: dict[str, str], qty: int, key: str
) -> dict[str, Any]:
    product = raw["product"]
    price, bps = int(raw["price"]), int(raw["commission"])
    host = room.creator or raw["seller"]
    digest = buy_digest(room.room, product, qty)
    pk = ProductKeys(product)
    ref = f"{user}|{key}"
    status, left, exp = await b.run(
        "reserve_stock",
        [pk.meta, pk.reservations, pk.reservation_queue, pk.reservation_expiry],
        [ref, qty, digest, now_ms(), b.settings.idempotency_ttl * 1000],
    )
    if status == "conflict" or (
        status in ("out_of_stock", "not_found")
        and await wallet.used_otherwise(b, user, key, digest)
    ):
        raise IdempotencyConflict()  # the key first: a reused key never reads as sold out
    if status == "out_of_stock":
        raise OutOfStock(f"{product!r} has fewer than {qty} left")
    if status == "not_found":
        raise NotFound(f"no product {product!r}")
    if status == "busy":
        raise Unavailable("an earlier purchase with this key is still being finished; retry")
    oid = order_id(b, user, key, exp)
    seller_bps = 10_000 - b.catalog.shop_platform_bps - bps
    order = {
        "order": oid,
        "product": product,
        "qty": qty,
        "coins": price * qty,
        "room": room.room,
        "seller": raw["seller"],
        "ts": now_ms(),
    }
    # ``stock`` is what this reservation left; set now, because the settlement worker may
    # log the event from the outbox payload before this coroutine does.
    ev = event(
        "purchase", room.room, **{"from": user, "product": product, "qty": qty, "stock": left}
    )
    evid = f"b:{user}:{key}:{exp}"
    try:
        _, reply, _ = await wallet.spend(
            b,
            user,
            kind="shop",
            amount=price * qty,
            key=key,
            digest=digest,
            payload={
                "room": room.room,
                "product": product,
                "qty": qty,
                "order": oid,
                "e": [
                    [raw["seller"], f"shop:{seller_bps}", seller_bps],
                    [host, f"commission:{bps}", bps],
                ],
                "ev": ev,
                "evid": evid,
                "ref": ref,
                "x": exp,
            },
            extra_key=b.user(user).orders,
            exp=exp,
            params=(_order_json(order), 0),
            reply={"order": oid},
        )
    except KeyExpired:
        if status == "reserved":  # held by this try, which debited nothing
            await _finish(b, pk, ref, "cancelled", exp)
        raise
    except Unavailable:
        raise  # outcome unknown: the retry (or the sweeper) finishes the reservation
    except LivesrvError:
        await _finish(b, pk, ref, "cancelled", exp)
        raise
    await _finish(b, pk, ref, "sold", exp)
    await log_event(b, room.room, ev, evid=evid, exp=exp)
    return {"order": reply["order"], "coins": reply["coins"]}


def buy_digest(room: str, product: str, qty: int) -> str:
    return args_hash("buy", {"room": room, "product": product, "qty": qty})


async def replayed_buy(
    b: Backend, user: str, room: str, product: str, qty: int, key: str
) -> dict[str, Any] | None:
    """The first result of a purchase already made with ``key`` and these arguments."""
    reply = await wallet.first_result(b, user, key, buy_digest(room, product, qty))
    return None if reply is None else {"order": reply["order"], "coins": reply["coins"]}


async def buy_in_room(
    b: Backend, user: str, room: str, info: RoomInfo | None, product: str, qty: int, key: str
) -> dict[str, Any]:
    """A member's purchase of the room's product; ``info`` is the room as the member's
    session knows it (None: not a member). A retried purchase that went through gets its
    first result, whatever the room is now.

    Raises:
        Forbidden: Not a member. NotLive: The room is not live. Otherwise as :func:`buy`.
    """
    try:
        if info is None:
            raise Forbidden("join the room first")
        if not info.live:
            raise NotLive()
    except (Forbidden, NotLive):
        done = await replayed_buy(b, user, room, product, qty, key)
        if done is None:
            raise
        return done
    return await buy(b, user, info, product, qty, key)


async def _finish(b: Backend, pk: ProductKeys, ref: str, outcome: str, exp: int) -> int:
    _, stock = await b.run(
        "finish_reservation",
        [pk.meta, pk.reservations, pk.reservation_queue],
        [ref, outcome, exp],
    )
    return int(stock)


async def mark_sold(b: Backend, product: str, ref: str, exp: int) -> int:
    """Mark a paid purchase's reservation sold (settlement does it for every paid one)."""
    return await _finish(b, ProductKeys(product), ref, "sold", exp)


def _order_json(order: dict[str, Any]) -> str:
    return orjson.dumps(order).decode()


async def orders_of(b: Backend, user: str, cursor: str | None, limit: int) -> dict[str, Any]:
    """One page of a user's orders, newest first.

    The orders list only grows at its head, so the cursor counts from its tail: new
    orders never shift a page.

    Returns:
        ``{"orders": [...], "next": cursor or None}``.

    Raises:
        BadRequest: A cursor this listing did not give out.
    """
    pos = decode_cursor("orders", cursor, int)
    key = b.user(user).orders
    async with store_errors():
        if pos is None:
            pipe = b.redis.pipeline(transaction=True)
            pipe.llen(key)
            pipe.lrange(key, 0, limit - 1)
            length, rows = await pipe.execute()
            left = int(length) - len(rows)  # orders older than this page
        else:
            below = pos[0]  # this many of the oldest orders are still to come
            if below < 1:
                raise BadRequest("cursor is not one this listing gave out")
            rows = await b.redis.lrange(key, -below, min(-1, limit - below - 1))
            left = below - len(rows)
    return {
        "orders": [orjson.loads(r) for r in rows],
        "next": encode_cursor("orders", left) if left > 0 and rows else None,
    }


async def sweep(b: Backend, older_than_ms: int = ABANDONED_MS) -> int:
    """Finish reservations left open by a crash: sold if the buyer was debited, else
    cancel them (after closing the buyer's key so it can never debit later).

    Returns:
        How many reservations were finished.
    """
    names = await all_names(b, PRODUCT_INDEX)
    finished = 0
    cutoff = now_ms() - older_than_ms
    async with store_errors():  # one pipelined read of every queue, grouped by store node
        pipe = b.redis.pipeline(transaction=False)
        for name in names:
            pipe.zrangebyscore(ProductKeys(name).reservation_queue, "-inf", cutoff)
        queues = await pipe.execute() if names else []
    for name, refs in zip(names, queues, strict=True):
        pk = ProductKeys(name)
        for ref in refs:
            user, _, key = ref.partition("|")
            async with store_errors():
                held = await b.redis.hget(pk.reservations, ref)
            r: dict[str, Any] = orjson.loads(held) if held else {"h": "", "x": 0}
            exp = int(r.get("x", 0))
            outcome = await b.run("abort_spend", [b.user(user).idem(key)], [exp, r["h"]])
            if outcome == "expired" and not await _settled_up(b, user):
                continue  # a debit of this generation may still be on its way to settlement
            await _finish(b, pk, ref, "sold" if outcome == "done" else "cancelled", exp)
            finished += 1
    return finished


async def _settled_up(b: Backend, user: str) -> bool:
    """Whether settlement has handled every entry of ``user``'s shard outbox (and so has
    marked every paid reservation of theirs sold)."""
    outbox = b.user(user).shard.outbox
    async with store_errors():
        groups = await b.redis.xinfo_groups(outbox) if await b.redis.exists(outbox) else []
    return all(int(g.get("lag") or 0) + int(g.get("pending") or 0) == 0 for g in groups)
