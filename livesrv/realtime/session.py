"""The WebSocket connection pump: decode a frame, route the op, send what comes back.

No business rule lives here; each op calls one service function. This is also the one
place where exceptions become error replies and close codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from .. import logs
from ..errors import (
    BadRequest,
    CloseCode,
    Forbidden,
    LimitExceeded,
    LivesrvError,
    NotFound,
    NotLive,
    RateLimited,
    Unauthorized,
)
from ..services import gifts, paging, rooms, shop, subscriptions, wallet, withdrawals
from ..services.rooms import RoomInfo
from ..store.facade import as_protocol_error
from ..wire import tokens
from ..wire.codec import Codec, codec_for
from ..wire.schema import Request, parse, request_id

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)


class Then(NamedTuple):
    """An op result with work to do right after its reply is written (join's replay)."""

    result: dict[str, Any]
    after: Callable[[], None]


Handler = Callable[["Session", dict[str, Any]], Awaitable["dict[str, Any] | Then"]]
OPS: dict[str, Handler] = {}


def op(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        OPS[name] = fn
        return fn

    return register


class TokenBucket:
    """Requests per second with a burst, per connection."""

    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Session:
    """One client connection."""

    # Thousands of these live at once: slots keep each one small.
    __slots__ = (
        "ws",
        "node",
        "b",
        "codec",
        "who",
        "user",
        "bucket",
        "abuse",
        "limited",
        "cut",
        "in_rooms",
        "_close_after",
        "_closing",
        "_hello_failed",
        "_protocol",
        "_transport",
        "_buffer_limit",
        "opened",
    )

    def __init__(self, ws: ServerConnection, node: Node) -> None:
        self.ws = ws
        self.node = node
        self._protocol = ws.protocol
        self._transport = ws.transport
        self._buffer_limit = node.settings.send_buffer_limit
        sndbuf = node.settings.socket_sndbuf
        if sndbuf:
            # A bounded kernel send buffer makes a client that stops reading show up in the
            # transport's buffer (and be cut with 4409) instead of parking megabytes of
            # kernel memory per socket.
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_SNDBUF, node.settings.socket_sndbuf
                    )
        self._hello_failed = False
        self.b = node.backend
        self.codec: Codec = codec_for(ws.subprotocol)
        self.who: tokens.Identity | None = None
        self.user = ""
        self.bucket = TokenBucket(node.settings.ops_per_second, node.settings.ops_burst)
        self.abuse = 0
        self.limited = 0
        self.cut = False
        self.in_rooms: set[str] = set()  # joined on this connection (bounded)
        self._close_after: tuple[int, str] | None = None  # close once this reply is out
        self._closing: asyncio.Task[None] | None = None
        self.opened = time.monotonic()

    # -- output: replies and events share one ordered, non-blocking path ---------------

    def send_frame(self, frame: bytes) -> None:
        """Write a complete frame; cut the connection (4409) if it is not reading."""
        if self.cut or self._protocol.state is not State.OPEN:
            return
        transport = self._transport
        if transport.get_write_buffer_size() > self._buffer_limit:
            self.node.metrics.slow_consumers.inc()
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer")
            return
        transport.write(frame)

    def send(self, message: Any) -> None:
        self.send_frame(self.codec.frame(message))

    def close(self, code: int, reason: str) -> None:
        if self.cut:
            return
        self.cut = True
        task = asyncio.get_running_loop().create_task(self.ws.close(code, reason))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._closing = task

    def reply_error(self, rid: int | str | None, exc: LivesrvError) -> None:
        self.send({"id": rid, "ok": False, "error": {"code": exc.code, "message": exc.message}})

    # -- the pump ---------------------------------------------------------------------

    async def run(self) -> None:
        metrics = self.node.metrics
        metrics.connections.inc()
        metrics.worker_connections.inc()
        peer = logs.ws_open(self.ws.remote_address)
        try:
            if await self._await_hello():
                async for data in self.ws:
                    await self.handle(data)
        except ConnectionClosed:
            pass
        finally:
            if self._closing is not None:
                # Our close code must go out before the handler returns (which closes 1000).
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._closing)
            metrics.connections.dec()
            metrics.worker_connections.dec()
            sent = self._protocol.close_sent
            logs.ws_close(peer, self.user, self.opened, sent.code if sent else None)
            if self.who is not None:
                await self.node.hub.detach(self)

    async def _await_hello(self) -> bool:
        try:
            async with asyncio.timeout(self.node.settings.hello_timeout):
                while self.who is None and not self.cut:
                    await self.handle(await self.ws.recv())
        except TimeoutError:
            self.close(CloseCode.HELLO_TIMEOUT, "no hello in time")
            return False
        return self.who is not None

    async def handle(self, data: str | bytes) -> None:
        """Answer one frame. Never raises for anything the client sent."""
        message: Any = None
        rid: int | str | None = None
        op_name = "?"
        try:
            message = self.codec.decode(data)
            rid = request_id(message)
            req = parse(message)
            op_name = req.op
            self.node.begin_op()
            try:
                result = await self.dispatch(req)
            finally:
                self.node.end_op()
        except LivesrvError as exc:
            self._count(op_name, exc)
            self.reply_error(rid, exc)
            self._police(exc)
            return
        except ConnectionClosed:
            raise
        except Exception as exc:
            away = as_protocol_error(exc)  # a store error no service translated: unavailable
            if away is None:
                log.exception("op %s failed", op_name)
            else:
                log.warning("op %s: the store failed: %r", op_name, exc)
            error = away or LivesrvError()
            self._count(op_name, error)
            self.reply_error(rid, error)
            return
        self.node.metrics.op(op_name, "ok")
        self.abuse = self.limited = 0
        if isinstance(result, Then):
            self.send({"id": req.id, "ok": True, **result.result})
            result.after()
        else:
            self.send({"id": req.id, "ok": True, **result})

    def _count(self, op_name: str, exc: LivesrvError) -> None:
        name = op_name if op_name in OPS else "?"
        self.node.metrics.op(name, exc.code)

    def _police(self, exc: LivesrvError) -> None:
        s = self.node.settings
        if isinstance(exc, BadRequest):
            self.abuse += 1
            if self.abuse >= s.abuse_limit:
                self.close(CloseCode.ABUSE, "repeated protocol abuse")
        elif isinstance(exc, RateLimited):
            self.limited += 1
            if self.limited >= s.abuse_limit:
                self.close(CloseCode.RATE_LIMIT, "rate limit exceeded repeatedly")
        elif isinstance(exc, Unauthorized) and self.who is None and self._hello_failed:
            self.close(CloseCode.UNAUTHORIZED, "unauthorized")
        elif self._close_after is not None:
            self.close(*self._close_after)

    async def dispatch(self, req: Request) -> dict[str, Any] | Then:
        if not self.bucket.take():  # every op counts, hello included
            raise RateLimited()
        if req.op == "hello":
            return await self.hello(req.args)
        if self.who is None:
            raise Unauthorized()
        return await OPS[req.op](self, req.args)

    async def hello(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            who = tokens.verify(self.node.secret, args["token"])
        except Unauthorized:
            self._hello_failed = True
            raise
        if self.who is not None and self.who != who:
            raise BadRequest("this connection is already signed in as another user")
        if self.who is None:
            cap = self.node.settings.max_connections_per_user
            if len(self.node.hub.users.get(who.user, ())) >= cap:
                self._close_after = (CloseCode.TOO_MANY_CONNECTIONS, "too many connections")
                raise LimitExceeded(f"at most {cap} connections per user on this server")
            self.who, self.user = who, who.user
            self.node.hub.attach(self)  # before the read: no wallet event falls between
            try:
                w = await wallet.read(self.b, who.user)
            except BaseException:
                # not signed in after all (e.g. the store is away): the client says hello again
                await self.node.hub.detach(self)
                self.who, self.user = None, ""
                raise
        else:
            w = await wallet.read(self.b, who.user)
        return {"user": who.user, "role": who.role, **w, "protocol": 1}

    # -- helpers for ops -----------------------------------------------------------

    @property
    def identity(self) -> tokens.Identity:
        assert self.who is not None
        return self.who

    def joined(self, room: str) -> RoomInfo:
        """The room's info, for a member of it.

        Raises:
            Forbidden: Not in the room.
        """
        info = self.node.hub.room_info(room)
        if info is None or not self.node.hub.is_member(self, room):
            raise Forbidden("join the room first")
        return info

    async def room(self, room: str) -> RoomInfo:
        info = self.node.hub.room_info(room) or await rooms.info(self.b, room)
        if info is None:
            raise NotFound(f"no room {room!r}")
        return info


# -- ops ----------------------------------------------------------------------------


@op("wallet")
async def _wallet(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await wallet.read(s.b, s.user)


@op("catalog")
async def _catalog(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return s.b.catalog.to_wire()


@op("rooms")
async def _rooms(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await rooms.live_rooms(s.b, a.get("cursor"), paging.page_limit(a.get("limit")))


@op("buy_coins")
async def _buy_coins(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await wallet.buy_coins(s.b, s.node.receipts, s.user, a["package"], a["receipt"])


@op("room_open")
async def _room_open(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await rooms.open_room(s.b, s.identity, a["room"], a["title"])


@op("room_close")
async def _room_close(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await rooms.close_room(s.b, s.identity, a["room"])


@op("join")
async def _join(s: Session, a: dict[str, Any]) -> Then:
    cap = s.node.settings.max_rooms_per_connection
    if a["room"] not in s.in_rooms and len(s.in_rooms) >= cap:
        raise LimitExceeded(f"at most {cap} rooms per connection; leave one first")
    hub = s.node.hub
    result, replay = await hub.join(s, a["room"], a.get("since"))
    s.in_rooms.add(a["room"])
    try:
        creator = result["creator"]
        if creator:
            result["sub_price"] = await subscriptions.price_of(s.b, creator)
            result["subscribed_until"] = await subscriptions.until_of(s.b, s.user, creator)
        result["pinned_product"] = None
        if result["pinned"]:
            with contextlib.suppress(NotFound):
                result["pinned_product"] = shop.product_view(await shop.get(s.b, result["pinned"]))
    except BaseException:
        hub.synced(s, a["room"])
        raise

    def after() -> None:
        # The reply goes first, then the replay, then the live events that waited.
        if replay:
            s.send(replay if len(replay) > 1 else replay[0])
        hub.synced(s, a["room"])

    return Then(result, after)


@op("history")
async def _history(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    limit = a.get("limit", s.node.settings.replay_limit)
    if not 1 <= limit <= s.node.settings.replay_limit:
        raise BadRequest(f"limit must be between 1 and {s.node.settings.replay_limit}")
    if not s.node.hub.is_member(s, a["room"]):
        raise Forbidden("join the room first")
    return await rooms.history(s.b, a["room"], a["before"], limit)


@op("leave")
async def _leave(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    s.in_rooms.discard(a["room"])
    if not await s.node.hub.leave(s, a["room"]):
        raise Forbidden("not in this room")
    return {}


@op("chat")
async def _chat(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    info = s.joined(a["room"])
    if not info.live:
        raise NotLive()
    badge = None
    if info.creator and info.creator != s.user:
        if await subscriptions.until_of(s.b, s.user, info.creator):
            badge = "sub"
        elif info.subscribers_only:
            raise Forbidden("chat is for subscribers only in this room")
    await rooms.chat(s.b, a["room"], s.user, a["text"], badge)
    return {}


@op("like")
async def _like(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    info = s.joined(a["room"])
    if not info.live:
        raise NotLive()
    s.node.hub.add_likes(a["room"], a.get("count", 1))
    return {}


@op("gift")
async def _gift(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    try:
        info = s.joined(a["room"])
        return await gifts.send_gift(s.b, s.user, info, a["gift"], a["count"], a["key"])
    except (Forbidden, NotLive, NotFound):
        # A retried gift that went through gets its first result, whatever the room is now.
        done = await gifts.replayed_gift(s.b, s.user, a["room"], a["gift"], a["count"], a["key"])
        if done is None:
            raise
        return done


@op("subscribe")
async def _subscribe(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await subscriptions.subscribe(s.b, s.user, await s.room(a["room"]), a["key"])


@op("sub_price")
async def _sub_price(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    if not s.identity.is_creator:
        raise Forbidden("only creators set a subscription price")
    return await subscriptions.set_price(s.b, s.user, a["price"])


@op("chat_mode")
async def _chat_mode(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    info = await s.room(a["room"])
    if info.creator != s.user and not s.identity.is_admin:
        raise Forbidden("only the room's creator can change the chat mode")
    on = a["subscribers_only"]
    await rooms.set_chat_mode(s.b, a["room"], on)
    return {"subscribers_only": on}


@op("buy")
async def _buy(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    try:
        info = s.joined(a["room"])
        if not info.live:
            raise NotLive()
    except (Forbidden, NotLive):
        # A retried purchase that went through gets its first result, whatever the room is.
        done = await shop.replayed_buy(s.b, s.user, a["room"], a["product"], a["qty"], a["key"])
        if done is None:
            raise
        return done
    return await shop.buy(s.b, s.user, info, a["product"], a["qty"], a["key"])


@op("pin")
async def _pin(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await shop.pin(s.b, s.identity, await s.room(a["room"]), a.get("product"))


@op("product_create")
async def _product_create(s: Session, a: dict[str, Any]) -> dict[str, Any]:
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
async def _product_restock(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await shop.restock(s.b, s.identity, a["product"], a["qty"])


@op("products")
async def _products(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    limit = paging.page_limit(a.get("limit"))
    return await shop.listing(s.b, a.get("seller"), a.get("cursor"), limit)


@op("orders")
async def _orders(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await shop.orders_of(s.b, s.user, a.get("cursor"), paging.page_limit(a.get("limit")))


@op("withdraw")
async def _withdraw(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    return await withdrawals.withdraw(s.b, s.identity, a["diamonds"], a["key"])


@op("withdrawals")
async def _withdrawals(s: Session, a: dict[str, Any]) -> dict[str, Any]:
    if not s.identity.is_creator:
        raise Forbidden("only creators have withdrawals")
    limit = paging.page_limit(a.get("limit"))
    return await withdrawals.of_user(s.b, s.user, a.get("cursor"), limit)
