"""The asyncio client of protocol v1: one connection at a time, reopened when it drops.

Use::

    async with Client(url, token) as c:
        await c.call("join", room="r1")
        await c.call("gift", room="r1", gift="rose", count=1, key="g-1")
        async for ev in c.events(room="r1"):
            ...

What the client does for you (docs/protocol.md): matches replies to requests by ``id``,
raises one exception class per error code (:mod:`livesrv.client.errors`), and, when the
connection drops, opens a new one (backoff with jitter), says ``hello`` again, joins every
joined room again with ``since`` = the last seq it delivered (so no logged event is lost or
repeated; a ``gap`` reply becomes a ``gap`` event) and only then sends again every keyed op
that had no reply, with the same key and arguments (exactly once, by the server's
idempotency). A keyed op answered ``unavailable`` is retried the same way. Any other op
that was in flight raises :class:`ConnectionLost`; it is never sent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from types import TracebackType
from typing import Any

from websockets.asyncio.client import ClientConnection

from .dispatch import JSON, MSGPACK
from .errors import CallTimeout, ConnectionLost, Unavailable, error_for
from .events import Event, matcher
from .policy import DEFAULT_RECONNECT, DEFAULT_RETRY, Backoff, is_keyed
from .reconnect import ReconnectingLink, Token

log = logging.getLogger("livesrv.client")

__all__ = ["JSON", "MSGPACK", "Client"]


class Client(ReconnectingLink):
    """A protocol v1 connection that survives reconnects.

    Args:
        url: ``ws://host:port/ws``.
        token: The JWT for ``hello`` (or a function returning a fresh one, called on every
            connect). None opens the connection without ``hello`` (send it with ``call``).
        codec: ``"json"`` or ``"msgpack"`` (or the subprotocol name).
        call_timeout: Default seconds a :meth:`call` may take, retries included.
        reconnect: The backoff between reconnect attempts; None never reconnects.
        retry: The backoff for keyed ops answered ``unavailable``; None never retries.
        event_buffer: The most events held for :meth:`events` (the oldest are dropped).
        dedupe: Drop a logged event whose seq was already delivered for its room.
        connect_kwargs: Passed to ``websockets.asyncio.client.connect`` (``origin``, ...).

    Attributes:
        user: The last ``hello`` reply (``user``, ``role``, ``coins``, ...).
        rooms: The joined rooms and the last seq delivered of each.
        buffer: The bounded event buffer (``dropped`` counts what it lost).
        close_code: The close code of the last connection, None while it is open.
        reconnects: How many times the connection was opened again.
        retries: How many times a keyed op was sent again.

    A seq jump in live events (after a store failover) is delivered as it comes; the
    client does not re-join by itself for it (``join since`` is the caller's choice there).
    """

    def __init__(
        self,
        url: str,
        token: Token | None = None,
        *,
        codec: str = "json",
        call_timeout: float = 30.0,
        reconnect: Backoff | None = DEFAULT_RECONNECT,
        retry: Backoff | None = DEFAULT_RETRY,
        event_buffer: int = 10_000,
        dedupe: bool = True,
        connect_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            url, token, codec, call_timeout, reconnect, event_buffer, dedupe, connect_kwargs
        )
        self.retry = retry
        self.retries = 0

    # -- opening and closing ---------------------------------------------------------------
    @classmethod
    async def connect(cls, url: str, token: Token | None = None, **options: Any) -> Client:
        """Open a client and say ``hello``; returns once the hello is answered.

        Raises:
            ProtocolError: ``hello`` failed (``Unauthorized``, ``Unavailable``, ...).
            OSError: The server could not be reached.
        """
        client = cls(url, token, **options)
        await client.open()
        return client

    async def open(self) -> None:
        """Connect and, with a token, say ``hello`` (errors close the client and propagate)."""
        await self._open_link()
        try:
            if self._token is not None:
                await self._hello()
        except BaseException:
            await self.close()
            raise
        self._ready.set()
        self._supervisor = asyncio.create_task(self._supervise())

    async def close(self) -> None:
        """Close the connection for good; pending calls raise :class:`ConnectionLost`."""
        self._closing = True
        if self._supervisor is not None and self._supervisor is not asyncio.current_task():
            self._supervisor.cancel()
        await self._drop_link()
        if self._supervisor is not None and self._supervisor is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
        self._finish()

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def ws(self) -> ClientConnection:
        """The current WebSocket connection."""
        if self._ws is None:
            raise ConnectionLost("not connected")
        return self._ws

    @property
    def closed(self) -> bool:
        """True once the client closed for good (no reconnect will follow)."""
        return self._closed

    # -- requests --------------------------------------------------------------------------
    async def call(self, op: str, /, timeout: float | None = None, **args: Any) -> dict[str, Any]:
        """Send ``op`` with ``args`` and return the success reply.

        A keyed op (one carrying ``key``, and ``buy_coins``) is sent again with the same
        arguments after a reconnect or an ``unavailable`` reply, until a definitive reply or
        the timeout.

        Raises:
            ProtocolError: The error reply, as its subclass (``InsufficientFunds``, ...).
            ConnectionLost: The connection dropped before the reply of a non-keyed op, or
                the client is closed.
            CallTimeout: No definitive reply within ``timeout`` (default ``call_timeout``).
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + (self.call_timeout if timeout is None else timeout)
        keyed = is_keyed(op, args)
        attempt = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise CallTimeout(f"{op}: no definitive reply in time")
            try:
                reply = await self.request({"id": next(self._ids), "op": op, **args}, remaining)
            except ConnectionLost:
                if not keyed or self.reconnect is None or self._closed or self._closing:
                    raise
                log.info("connection lost during keyed %s: sending it again", op)
                self.retries += 1
                continue
            if reply.get("ok") is True:
                return reply
            error = error_for(reply)
            retry = self.retry
            if keyed and isinstance(error, Unavailable) and retry is not None:
                attempt += 1
                if not retry.exhausted(attempt, loop.time() - started):
                    wait = min(retry.delay(attempt - 1), max(0.0, deadline - loop.time()))
                    await asyncio.sleep(wait)
                    self.retries += 1
                    continue
            raise error

    async def request(
        self, message: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one request map as it is and return its reply, whatever it says.

        The low-level path: no retry and no exception for an error reply. Waits for the
        connection while a reconnect is under way.

        Raises:
            ConnectionLost: The connection dropped before the reply, or the client is closed.
            CallTimeout: No reply within ``timeout`` (default ``call_timeout``).
        """
        return await self._request(message, timeout, gated=True)

    async def send_raw(self, data: str | bytes) -> None:
        """Send a frame payload as it is (no reply is awaited)."""
        await self.ws.send(data)

    # -- events ----------------------------------------------------------------------------
    async def events(
        self, room: str | None = None, names: str | Iterable[str] | None = None
    ) -> AsyncIterator[Event]:
        """Received events, oldest first, optionally only ``room``'s or those ``names``.

        Each event goes to one reader; events other readers' filters leave stay buffered.
        Ends once the client is closed and the buffer holds no matching event.
        """
        match = matcher(room, names) if room is not None or names is not None else None
        while True:
            ev = self.buffer.take(match)
            if ev is not None:
                yield ev
                continue
            if self.buffer.closed:
                return
            await self.buffer.wait()

    async def next_event(
        self,
        room: str | None = None,
        names: str | Iterable[str] | None = None,
        timeout: float | None = None,
    ) -> Event:
        """The next event :meth:`events` would give (raises ``CallTimeout`` after ``timeout``)."""
        try:
            async with asyncio.timeout(self.call_timeout if timeout is None else timeout):
                async for ev in self.events(room, names):
                    return ev
        except TimeoutError as exc:
            raise CallTimeout("no event in time") from exc
        raise ConnectionLost("the client is closed", self.close_code)
