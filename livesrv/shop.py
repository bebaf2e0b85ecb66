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

from . import wallet
from .backend import Backend, args_hash, now_ms, store_errors
from .errors import (
    BadRequest,
    Forbidden,
    IdempotencyConflict,
    LivesrvError,
    NotFound,
    OutOfStock,
    Unavailable,
)
from .keys import PRODUCTS, ProductKeys
from .rooms import RoomInfo, event, log_event
from .tokens import Identity

ABANDONED_MS = 60_000
PRODUCT_INTS = ("price", "stock", "commission", "sold", "reserved", "stocked")


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
    async with store_errors():
        await b.redis.sadd(PRODUCTS, product)
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


async def listing(b: Backend, seller: str | None = None) -> list[dict[str, Any]]:
    async with store_errors():
        names = sorted(await b.redis.smembers(PRODUCTS))
        pipe = b.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(ProductKeys(name).meta)
        rows = await pipe.execute() if names else []
    out = [product_view(r) for r in rows if r]
    return [p for p in out if seller is None or p["seller"] == seller]


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


def order_id(b: Backend, user: str, key: str) -> str:
    shard = b.user(user).shard.shard
    return f"o{shard}-" + hashlib.sha1(f"{user}\n{key}".encode()).hexdigest()[:16]


async def buy(
    b: Backend, user: str, room: RoomInfo, product: str, qty: int, key: str
) -> dict[str, Any]:
    """Buy ``qty`` of a product in a live room, exactly once per key.

    Raises:
        NotFound, OutOfStock, InsufficientFunds, LimitExceeded, IdempotencyConflict,
        Forbidden (buying your own product).
    """
    raw = await get(b, product)
    if raw["seller"] == user:
        raise Forbidden("you cannot buy your own product")
    price, bps = int(raw["price"]), int(raw["commission"])
    host = room.creator or raw["seller"]
    digest = buy_digest(room.room, product, qty)
    pk = ProductKeys(product)
    ref = f"{user}|{key}"
    status, left = await b.run(
        "reserve_stock",
        [pk.meta, pk.reservations, pk.reservation_queue],
        [ref, qty, digest, now_ms()],
    )
    if status == "conflict":
        raise IdempotencyConflict()
    if status == "out_of_stock":
        raise OutOfStock(f"{product!r} has fewer than {qty} left")
    if status == "not_found":
        raise NotFound(f"no product {product!r}")
    oid = order_id(b, user, key)
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
    evid = f"b:{user}:{key}"
    try:
        _, reply = await wallet.spend(
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
            },
            extra_key=b.user(user).orders,
            params=(_order_json(order), 0),
            reply={"order": oid},
        )
    except Unavailable:
        raise  # outcome unknown: the retry (or the sweeper) finishes the reservation
    except LivesrvError:
        await _finish(b, pk, ref, "cancelled")
        raise
    await _finish(b, pk, ref, "sold")
    await log_event(b, room.room, ev, evid=evid)
    return {"order": reply["order"], "coins": reply["coins"]}


def buy_digest(room: str, product: str, qty: int) -> str:
    return args_hash("buy", {"room": room, "product": product, "qty": qty})


async def replayed_buy(
    b: Backend, user: str, room: str, product: str, qty: int, key: str
) -> dict[str, Any] | None:
    """The first result of a purchase already made with ``key`` and these arguments."""
    reply = await wallet.first_result(b, user, key, buy_digest(room, product, qty))
    return None if reply is None else {"order": reply["order"], "coins": reply["coins"]}


async def _finish(b: Backend, pk: ProductKeys, ref: str, outcome: str) -> int:
    _, stock = await b.run(
        "finish_reservation", [pk.meta, pk.reservations, pk.reservation_queue], [ref, outcome]
    )
    return int(stock)


def _order_json(order: dict[str, Any]) -> str:
    return orjson.dumps(order).decode()


async def orders_of(b: Backend, user: str, limit: int = 100) -> list[dict[str, Any]]:
    async with store_errors():
        rows = await b.redis.lrange(b.user(user).orders, 0, limit - 1)
    return [orjson.loads(r) for r in rows]


async def sweep(b: Backend, older_than_ms: int = ABANDONED_MS) -> int:
    """Finish reservations left open by a crash: sold if the buyer was debited, else
    cancel them (after closing the buyer's key so it can never debit later).

    Returns:
        How many reservations were finished.
    """
    async with store_errors():
        names = await b.redis.smembers(PRODUCTS)
    finished = 0
    cutoff = now_ms() - older_than_ms
    for name in names:
        pk = ProductKeys(name)
        async with store_errors():
            refs = await b.redis.zrangebyscore(pk.reservation_queue, "-inf", cutoff)
        for ref in refs:
            user, _, key = ref.partition("|")
            outcome = await b.run(
                "abort_spend", [b.user(user).idem(key)], [b.settings.idempotency_ttl]
            )
            await _finish(b, pk, ref, "sold" if outcome == "done" else "cancelled")
            finished += 1
    return finished
