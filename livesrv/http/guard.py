"""The admin HTTP port's fd budget and request-head deadline, below aiohttp.

aiohttp gives us ``keepalive_timeout`` (an idle keep-alive connection, or one that does not
complete its next request in that time after a response, is closed) and ``client_max_size``
(the body limit), but no cap on open connections and no deadline for reading a request
head: before 3.11 a connection that never sends a complete head is never closed, and since
then only after the keep-alive timeout (an hour by default). The admin app shares the
process, and its file-descriptor limit, with the WebSocket server, so slowloris clients
could starve WebSocket accepts.

:class:`GuardedSite` listens like aiohttp's ``TCPSite``/``SockSite`` but wraps each
connection's aiohttp protocol in :class:`GuardedProtocol`, a pass-through that

- refuses a connection over ``http_max_connections`` with a 503 and closes it at once, and
- closes a connection whose first request head (request line and headers, up to the blank
  line) is not complete within ``http_header_timeout`` of the connect, with a 408.

Later requests on a kept-alive connection are bounded by aiohttp's ``keepalive_timeout``
(set from ``http_keepalive_timeout``): a head not complete that long after the previous
response is closed like an idle connection. A body gets its own deadline where it is read
(:func:`livesrv.http.base.json_body`). This is the smallest thing that works on every aiohttp
this project supports, and it needs none of aiohttp's private attributes.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import cast

from aiohttp import web

from ..settings import url_host

BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"
)
LATE = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 31\r\nConnection: close\r\n\r\nthe request head came too late\n"
)
HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


class HttpGuard:
    """The limits, and the count of open connections, shared by every guarded connection."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0
        self.refused = 0
        self.timed_out = 0


def head_complete(tail: bytes, data: bytes) -> tuple[bool, bytes]:
    """Whether the bytes so far end a request head; and the tail to keep for the next call.

    Args:
        tail: The last bytes of what came before (at most 3).
        data: What just arrived.
    """
    seen = tail + data
    if any(end in seen for end in HEAD_ENDS):
        return True, b""
    return False, seen[-3:]


class GuardedProtocol(asyncio.Protocol):
    """A pass-through to aiohttp's protocol for one connection, with the guard's limits."""

    def __init__(self, guard: HttpGuard, factory: Callable[[], asyncio.Protocol]) -> None:
        self.guard = guard
        self.factory = factory
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        guard = self.guard
        if guard.open >= guard.max_connections:
            guard.refused += 1
            self.transport.write(BUSY)
            self.transport.close()
            return
        guard.open += 1
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(guard.header_timeout, self._late)
        self.inner = self.factory()
        self.inner.connection_made(transport)

    def _late(self) -> None:
        self.timer = None
        self.guard.timed_out += 1
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(LATE)
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.inner is None:
            return
        if self.timer is not None:
            done, self.tail = head_complete(self.tail, data)
            if done:
                self.timer.cancel()
                self.timer = None
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.inner is not None:
            self.guard.open -= 1
            inner, self.inner = self.inner, None
            inner.connection_lost(exc)


class GuardedSite(web.BaseSite):
    """Like ``web.TCPSite`` (``host``, ``port``) or ``web.SockSite`` (``sock``), guarded."""

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: HttpGuard,
        *,
        host: str | None = None,
        port: int = 0,
        sock: socket.socket | None = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self.guard = guard
        self.host, self.port, self.sock = host, port, sock

    @property
    def name(self) -> str:
        return f"http://{url_host(self.host or '')}:{self.port}"

    @property
    def bound_port(self) -> int:
        """The port listened on (the one picked when ``port`` was 0)."""
        assert self._server is not None
        sockets = cast(asyncio.Server, self._server).sockets
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        guard = self.guard

        def protocol() -> GuardedProtocol:
            return GuardedProtocol(guard, server)

        if self.sock is not None:
            self._server = await loop.create_server(protocol, sock=self.sock, backlog=self._backlog)
        else:
            self._server = await loop.create_server(
                protocol, self.host, self.port, backlog=self._backlog
            )
