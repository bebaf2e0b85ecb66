"""The client's link: one WebSocket connection at a time, reopened when it drops.

:class:`ReconnectingLink` is the I/O half under :class:`~livesrv.client.core.Client`:
it opens the connection and reads it (frames go to the :class:`~.dispatch.Dispatcher`),
sends a request and waits for its reply, and, when the connection drops, reconnects
(backoff with jitter), says ``hello`` again and re-joins every joined room with ``since``
= the last seq delivered (a room that refuses becomes a ``rejoin_failed`` event).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from .dispatch import Dispatcher
from .errors import CallTimeout, ConnectionLost, ProtocolError, Unauthorized, Unavailable, error_for
from .events import REJOIN_FAILED
from .policy import Backoff, should_reconnect

log = logging.getLogger("livesrv.client")

Token = str | Callable[[], str | Awaitable[str]]


class ReconnectingLink(Dispatcher):
    """The connection's life, under the client's public calls.

    Args:
        url: ``ws://host:port/ws``.
        token: The JWT for ``hello`` (or a function returning a fresh one, called on every
            connect); None: no ``hello``.
        codec: ``"json"`` or ``"msgpack"`` (or the subprotocol name).
        call_timeout: Default seconds a request may take.
        reconnect: The backoff between reconnect attempts; None never reconnects.
        event_buffer: The most events held (the oldest are dropped).
        dedupe: Drop a logged event whose seq was already delivered for its room.
        connect_kwargs: Passed to ``websockets.asyncio.client.connect``.
    """

    def __init__(
        self,
        url: str,
        token: Token | None,
        codec: str,
        call_timeout: float,
        reconnect: Backoff | None,
        event_buffer: int,
        dedupe: bool,
        connect_kwargs: dict[str, Any] | None,
    ) -> None:
        super().__init__(codec, event_buffer, dedupe)
        self.url = url
        self.call_timeout = call_timeout
        self.reconnect = reconnect
        self.close_code: int | None = None
        self.reconnects = 0
        self._token = token
        self._connect_kwargs = dict(connect_kwargs or {})
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # connected and signed in; also set once closed
        self._closing = False
        self._closed = False

    # -- one request -------------------------------------------------------------------------
    async def _request(
        self, message: dict[str, Any], timeout: float | None, gated: bool
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(self.call_timeout if timeout is None else timeout):
                return await self._exchange(message, gated)
        except TimeoutError as exc:
            if isinstance(exc, CallTimeout):
                raise
            raise CallTimeout(f"{message.get('op')}: no reply in time") from exc

    async def _exchange(self, message: dict[str, Any], gated: bool) -> dict[str, Any]:
        if gated:
            await self._ready.wait()
        if self._closed or self._ws is None:
            raise ConnectionLost("the client is closed", self.close_code)
        ws = self._ws
        rid = message.get("id")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        entry = (fut, message)
        self._pending[rid] = entry
        try:
            try:
                await ws.send(self.encode(message))
            except ConnectionClosed as exc:
                if ws is self._ws:
                    self._ready.clear()  # the reader will see it too; wait for the new link
                raise ConnectionLost(f"connection closed ({ws.close_code})", ws.close_code) from exc
            return await fut
        finally:
            if self._pending.get(rid) is entry:
                del self._pending[rid]

    # -- receiving ----------------------------------------------------------------------------
    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for data in ws:
                try:
                    frame = self.decode(data)
                except ValueError:
                    log.warning("undecodable frame from the server dropped")
                    continue
                self._frame_received(frame)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = ws.close_code
            if ws is self._ws:
                self._ready.clear()
            self._fail_pending(
                ConnectionLost(f"connection closed ({ws.close_code})", ws.close_code)
            )

    # -- the connection's life -------------------------------------------------------------
    async def _open_link(self) -> None:
        ws = await connect(
            self.url,
            subprotocols=[Subprotocol(self.codec)],
            max_size=None,
            **self._connect_kwargs,
        )
        self._ws = ws
        self.close_code = None
        self._reader = asyncio.create_task(self._read(ws))

    async def _drop_link(self) -> None:
        ws, reader = self._ws, self._reader
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _hello(self) -> None:
        token = self._token
        if callable(token):
            value = token()
            token = await value if isinstance(value, Awaitable) else value
        message = {"id": next(self._ids), "op": "hello", "token": token}
        reply = await self._request(message, None, gated=False)
        if reply.get("ok") is not True:
            raise error_for(reply)

    async def _rejoin(self) -> None:
        for room, since in self.rooms.rejoins():
            message = {"id": next(self._ids), "op": "join", "room": room, "since": since}
            reply = await self._request(message, None, gated=False)
            if reply.get("ok") is True:
                continue
            error = error_for(reply)
            if isinstance(error, Unavailable):
                raise error
            log.warning("re-joining %s failed: %s", room, error)
            self.rooms.left(room)
            self._deliver(
                {"ev": REJOIN_FAILED, "room": room, "code": error.code, "message": error.message}
            )

    async def _supervise(self) -> None:
        while True:
            reader = self._reader
            if reader is not None:
                await asyncio.wait({reader})
            if self._closing or self.reconnect is None or not should_reconnect(self.close_code):
                break
            if not await self._reconnect(self.reconnect):
                break
        self._finish()

    async def _reconnect(self, policy: Backoff) -> bool:
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        while not self._closing and not policy.exhausted(attempt, loop.time() - started):
            await asyncio.sleep(policy.delay(attempt))
            attempt += 1
            try:
                await self._open_link()
                await self._hello()
                await self._rejoin()
            except Unauthorized:
                log.warning("reconnect refused: the token is not accepted")
                await self._drop_link()
                return False
            except (
                OSError,
                TimeoutError,
                WebSocketException,
                ProtocolError,
                ConnectionLost,
            ) as exc:
                log.info("reconnect attempt %d failed: %r", attempt, exc)
                await self._drop_link()
                continue
            self.reconnects += 1
            self._ready.set()
            return True
        return False

    def _finish(self) -> None:
        self._closed = True
        self._fail_pending(ConnectionLost("the client is closed", self.close_code))
        self.buffer.close()
        self._ready.set()  # wake requests waiting for a connection: they raise
