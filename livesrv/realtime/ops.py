"""The op table of the economy and the rooms: each WebSocket op is one line calling one
service function.

Argument shapes are checked before a handler runs (one schema: ``livesrv/wire/schema.py``);
rules live in the services; what a handler adds is only what the session knows (who is
asking, which rooms it joined). The LIVE mechanics' ops are in ``ops_live.py``, the
series' in ``ops_series.py``; the registry in ``optable.py``."""

from __future__ import annotations

from typing import Any

from ..errors import Forbidden, LimitExceeded
from ..services import (
    chat,
    gifts,
    joining,
    match,
    moderation,
    paging,
    roomlog,
    rooms,
    shop,
    sub_tiers,
    subscriptions,
    wallet,
    withdrawals,
)
from .optable import Caller, Then, joined, op


@op("wallet")
async def _wallet(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await wallet.read(s.b, s.user)


@op("catalog")
async def _catalog(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return s.b.catalog.to_wire()


@op("rooms")
async def _rooms(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await rooms.live_rooms(s.b, a.get("cursor"), paging.page_limit(a.get("limit")))


@op("buy_coins")
async def _buy_coins(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await wallet.buy_coins(s.b, s.node.receipts, s.user, a["package"], a["receipt"])


@op("room_open")
async def _room_open(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await rooms.open_room(s.b, s.identity, a["room"], a["title"])


@op("room_close")
async def _room_close(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    result = await rooms.close_room(s.b, s.identity, a["room"])
    await match.room_closed(s.b, a["room"])  # -- live match: the other side wins --
    return result


@op("join")
async def _join(s: Caller, a: dict[str, Any]) -> Then:
    room = a["room"]
    cap = s.node.settings.max_rooms_per_connection
    if room not in s.in_rooms and len(s.in_rooms) >= cap:
        raise LimitExceeded(f"at most {cap} rooms per connection; leave one first")
    hub = s.node.hub
    # banned: refused, nothing written; the moderation fields come with the room's
    result, replay = await hub.join(s, room, a.get("since"))
    s.in_rooms.add(room)
    try:
        # the same for every viewer: read once per batch of joiners (realtime/replays.py)
        result.update(await hub.room_view(room))
        result.update(await joining.member_view(s.b, s.user, result["creator"]))
    except BaseException:
        hub.synced(s, room)
        raise

    def after() -> None:
        # The reply goes first, then the replay, then the live events that waited.
        if replay:
            s.send(replay if len(replay) > 1 else replay[0])
        hub.synced(s, room)

    return Then(result, after)


@op("history")
async def _history(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    s.joined(a["room"])
    return await roomlog.history(s.b, a["room"], a["before"], a.get("limit"))


@op("leave")
async def _leave(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    s.in_rooms.discard(a["room"])
    if not await s.node.hub.leave(s, a["room"]):
        raise Forbidden("not in this room")
    return {}


@op("chat")
async def _chat(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    await chat.send(s.b, s.user, await joined(s, a["room"]), a["text"])
    return {}


@op("like")
async def _like(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    rooms.require_live(s.joined(a["room"]))
    s.node.hub.add_likes(a["room"], a.get("count", 1))
    return {}


@op("gift")
async def _gift(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    info = s.member_of(a["room"])
    try:
        return await gifts.gift_in_room(
            s.b, s.user, a["room"], info, a["gift"], a["count"], a["key"]
        )
    except Forbidden:
        if info is None:  # removed from the room by a ban: say so
            await moderation.require_not_banned(s.b, a["room"], s.user)
        raise


@op("subscribe")
async def _subscribe(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    room = await s.room(a["room"])
    await moderation.require_not_banned(s.b, a["room"], s.user)
    return await sub_tiers.subscribe(s.b, s.user, room, a["key"], a.get("tier"))


@op("sub_price")
async def _sub_price(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await subscriptions.set_own_price(s.b, s.identity, a["price"])


@op("chat_mode")
async def _chat_mode(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    room = await s.room(a["room"])
    return await chat.set_mode(s.b, s.identity, room, a["subscribers_only"])


@op("buy")
async def _buy(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    info = s.member_of(a["room"])
    try:
        return await shop.buy_in_room(
            s.b, s.user, a["room"], info, a["product"], a["qty"], a["key"]
        )
    except Forbidden:
        if info is None:  # removed from the room by a ban: say so
            await moderation.require_not_banned(s.b, a["room"], s.user)
        raise


@op("pin")
async def _pin(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await shop.pin(s.b, s.identity, await s.room(a["room"]), a.get("product"))


@op("product_create")
async def _product_create(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await shop.create(
        s.b,
        s.identity,
        product=a["product"],
        title=a["title"],
        seller=s.user,
        price=a["price"],
        stock=a["stock"],
        commission=a.get("commission"),
    )


@op("product_restock")
async def _product_restock(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await shop.restock(s.b, s.identity, a["product"], a["qty"])


@op("products")
async def _products(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    limit = paging.page_limit(a.get("limit"))
    return await shop.listing(s.b, a.get("seller"), a.get("cursor"), limit)


@op("orders")
async def _orders(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await shop.orders_of(s.b, s.user, a.get("cursor"), paging.page_limit(a.get("limit")))


@op("withdraw")
async def _withdraw(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    return await withdrawals.withdraw(s.b, s.identity, a["diamonds"], a["key"])


@op("withdrawals")
async def _withdrawals(s: Caller, a: dict[str, Any]) -> dict[str, Any]:
    limit = paging.page_limit(a.get("limit"))
    return await withdrawals.mine(s.b, s.identity, a.get("cursor"), limit)
