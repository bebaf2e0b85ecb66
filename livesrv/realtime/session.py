"""The WebSocket session pump: decode a frame, check it, call its op (``ops.py``: one
service function each), encode what comes back.

No business rule lives here. This is the one place where exceptions become error replies
and close codes, and where a client that stops reading is cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from typing import Any, Protocol

from .. import logs
from ..errors import (
    BadRequest,
    CloseCode,
    Forbidden,
    LimitExceeded,
    LivesrvError,
    NotFound,
    RateLimited,
    Unauthorized,
)
from ..metrics import Metrics
from ..services import age, rooms, wallet
from ..services.receipts import ReceiptVerifier
from ..services.rooms import RoomInfo
from ..settings import Settings
from ..store.facade import Backend, as_protocol_error
from ..wire import tokens
from ..wire.codec import Codec, codec_for
from ..wire.schema import MONEY_OPS, Request, parse, request_id
from . import ops, ops_live, ops_series, ops_subs  # noqa: F401 -- the handlers register themselves
from .hub import Hub
from .optable import OPS, Then
from .wsconn import OPEN, Connection, ConnectionClosed


class Host(Protocol):
    """What a session needs of the node that serves it (``node.py``)."""

    settings: Settings
    backend: Backend
    hub: Hub
    metrics: Metrics
    secret: str
    receipts: ReceiptVerifier
    sessions: set[Session]  # the open ones; a session leaves it when its run() ends

    def begin_op(self) -> None: ...

    def end_op(self) -> None: ...


log = logging.getLogger(__name__)


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
        "_transport",
        "_buffer_limit",
        "opened",
    )

    def __init__(self, ws: Connection, node: Host) -> None:
        self.ws = ws
        self.node = node
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
        if self.cut or self.ws.state != OPEN:
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

    def keepalive(self) -> None:
        """A keepalive round (the node's one keepalive task calls it every
        ``ping_interval``): ping, or close 1011 if the last ping got no pong."""
        if not self.ws.keepalive_round():
            self.close(CloseCode.KEEPALIVE_TIMEOUT, "keepalive ping timeout")

    def reply_error(self, rid: int | str | None, exc: LivesrvError) -> None:
        error = {"code": exc.code, "message": exc.message}
        error.update(getattr(exc, "extra", {}))  # e.g. muted: until, slow_mode: retry_after_ms
        self.send({"id": rid, "ok": False, "error": error})

    # -- the pump ---------------------------------------------------------------------

    async def run(self) -> None:
        metrics = self.node.metrics
        metrics.connections.inc()
        metrics.worker_connections.inc()
        peer = logs.ws_open(self.ws.remote_address)
        try:
            if await self._await_hello():
                while True:  # recv(), not ``async for``: no async generator per connection
                    await self.handle(await self.ws.recv())
        except ConnectionClosed:
            pass
        finally:
            self.node.sessions.discard(self)
            if self._closing is not None:
                # Our close code must go out before the handler returns (which closes 1000).
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._closing)
            metrics.connections.dec()
            metrics.worker_connections.dec()
            logs.ws_close(peer, self.user, self.opened, self.ws.close_sent)
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
        if req.op in MONEY_OPS:  # the age gate, before anything moves
            age.require(self.who, time.time(), self.node.settings)
        return await OPS[req.op](self, req.args)

    async def hello(self, args: dict[str, Any]) -> dict[str, Any]:
        try:
            who = tokens.verify(self.node.secret, args["token"])
        except Unauthorized:
            self._hello_failed = True
            raise
        if self.who is not None and (self.who.user, self.who.role) != (who.user, who.role):
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
            self.who = who  # the same user and role: a newer token's claims (birth year) count
            w = await wallet.read(self.b, who.user)
        return {"user": who.user, "role": who.role, **w, "protocol": 1}

    # -- helpers for ops -----------------------------------------------------------

    @property
    def identity(self) -> tokens.Identity:
        assert self.who is not None
        return self.who

    def member_of(self, room: str) -> RoomInfo | None:
        """The room's info if this connection joined it, else None."""
        info = self.node.hub.room_info(room)
        if info is None or not self.node.hub.is_member(self, room):
            return None
        return info

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
