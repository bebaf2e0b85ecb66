"""The server side of one WebSocket connection, on picows.

picows parses the HTTP upgrade and the frames in compiled code; the server CPU of a join
fell by about a quarter against websockets' server (median 0.63 -> 0.47 ms,
docs/benchmarks.md, "The WebSocket layer on picows"). This module adds what a livesrv
session needs of a connection:

- :meth:`Connection.recv`: one message at a time, in order. Fragments are put together
  (at most ``max_size`` bytes in all, else 1009), text frames are checked as UTF-8 (else
  1007), and reading from the socket pauses while ``max_queue`` messages wait unread.
- :meth:`Connection.close`: the close handshake, waiting at most ``close_timeout`` for the
  client's answer before aborting the TCP connection. A close from the client is answered
  with its own code.
- :meth:`Connection.keepalive_round`: one ping, or False when the last one got no pong;
  the node's one keepalive task calls it for every connection (no task per connection).
  Pings from the client are answered by picows.

Frames the node writes (replies, events) are complete WebSocket frames built by the codec
and go to :attr:`Connection.transport` as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

OPEN, CLOSING, CLOSED = 1, 2, 3  # as websockets' State: CONNECTING (0) is picows' own

TEXT, BINARY, CONTINUATION = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
PONG, CLOSE = WSMsgType.PONG, WSMsgType.CLOSE
NO_STATUS = 1005  # a close frame without a code
NORMAL, PROTOCOL_ERROR, INVALID_DATA, TOO_BIG = 1000, 1002, 1007, 1009


class ConnectionClosed(Exception):
    """The connection closed (either side, or the network); no more messages come."""


class ClientProtocolErrors(logging.Filter):
    """picows logs a client's protocol error (an oversize frame, a bad opcode) at error
    level as it closes that connection with the error's code: the client's doing, told by
    its close code in the access log, not a fault of the node's."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("WS parser error", "on_ws_frame raised WSProto"))


def picows_logger() -> logging.LoggerAdapter[logging.Logger]:
    """The logger picows gets: ``livesrv.ws`` at WARNING (picows' per-connection lines
    repeat the access log), without client protocol errors. An adapter, so that picows
    does not make a child logger per connection."""
    logger = logging.getLogger("livesrv.ws")
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, ClientProtocolErrors) for f in logger.filters):
        logger.addFilter(ClientProtocolErrors())
    return logging.LoggerAdapter(logger)


class Connection(WSListener):
    """One accepted WebSocket connection (``on_open`` is called once it is open)."""

    __slots__ = (
        "ws",
        "transport",
        "remote_address",
        "subprotocol",
        "state",
        "close_sent",
        "pong_due",
        "handler",
        "_on_open",
        "_max_size",
        "_max_queue",
        "_close_timeout",
        "_messages",
        "_waiter",
        "_parts",
        "_parts_text",
        "_paused",
    )

    def __init__(
        self,
        on_open: Callable[[Connection], None],
        subprotocol: str | None,
        *,
        max_size: int,
        max_queue: int,
        close_timeout: float,
    ) -> None:
        self._on_open = on_open
        self.subprotocol = subprotocol
        self._max_size = max_size
        self._max_queue = max_queue
        self._close_timeout = close_timeout
        self.ws: WSTransport | None = None
        self.transport: Any = None  # the TCP transport under the WebSocket
        self.remote_address: Any = None
        self.state = 0
        self.close_sent: int | None = None  # the close code this side sent
        self.pong_due = False  # a keepalive ping went out and no pong came back yet
        self.handler: asyncio.Task[None] | None = None  # the session's pump (the node's)
        self._messages: list[str | bytes] = []
        self._waiter: asyncio.Future[str | bytes] | None = None
        self._parts: bytearray | None = None  # a fragmented message, as its frames come
        self._parts_text = False
        self._paused = False

    # -- picows' callbacks ----------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        # picows keeps the upgrade request and response: their headers go once the
        # connection is open (2.7 KiB a connection with the load client's, more with a
        # browser's; docs/benchmarks.md)
        for kept in (transport.request, transport.response):
            if kept is not None:
                kept.headers.clear()
        self.ws = transport
        self.transport = transport.underlying_transport
        self.remote_address = self.transport.get_extra_info("peername")
        self.state = OPEN
        self._on_open(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if frame.rsv1 or frame.rsv2 or frame.rsv3:  # no extension was agreed
            self._fail(PROTOCOL_ERROR, "reserved bits set")
        elif kind in (TEXT, BINARY):
            if self._parts is not None:
                self._fail(PROTOCOL_ERROR, "expected a continuation frame")
            elif frame.fin:
                self._whole(kind == TEXT, frame.get_payload_as_bytes())
            else:
                self._parts = bytearray(frame.get_payload_as_memoryview())
                self._parts_text = kind == TEXT
        elif kind == CONTINUATION:
            self._continued(frame)
        elif kind == PONG:
            self.pong_due = False
        elif kind == CLOSE:
            self._close_received(frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.state = CLOSED
        shake = transport.close_handshake
        if self.close_sent is None and shake is not None and shake.sent is not None:
            self.close_sent = shake.sent.code.value  # picows' own close (a protocol error)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionClosed())

    # -- messages in ------------------------------------------------------------------------

    def _continued(self, frame: WSFrame) -> None:
        parts = self._parts
        if parts is None:
            self._fail(PROTOCOL_ERROR, "unexpected continuation frame")
            return
        if len(parts) + frame.payload_size > self._max_size:
            self._fail(TOO_BIG, "message too big")
            return
        parts += frame.get_payload_as_memoryview()
        if frame.fin:
            self._parts = None
            self._whole(self._parts_text, bytes(parts))

    def _whole(self, text: bool, payload: bytes) -> None:
        if self.state != OPEN:
            return
        message: str | bytes = payload
        if text:
            try:
                message = payload.decode()
            except UnicodeDecodeError:
                self._fail(INVALID_DATA, "invalid UTF-8")
                return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
            return
        self._messages.append(message)
        if len(self._messages) >= self._max_queue and not self._paused:
            self._paused = True
            self.transport.pause_reading()

    async def recv(self) -> str | bytes:
        """The next message (``str`` for a text frame, ``bytes`` for a binary one).

        Raises:
            ConnectionClosed: The connection closed, or is closing, and nothing is left.
        """
        if self._messages:
            message = self._messages.pop(0)
            if self._paused and len(self._messages) < self._max_queue and self.state == OPEN:
                self._paused = False
                self.transport.resume_reading()
            return message
        if self.state != OPEN:
            raise ConnectionClosed()
        waiter: asyncio.Future[str | bytes] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            return await waiter
        finally:
            self._waiter = None

    # -- closing ----------------------------------------------------------------------------

    def _fail(self, code: int, reason: str) -> None:
        """Close for something the client sent (its connection only)."""
        self._parts = None
        if self.state == OPEN:
            self._send_close(code, reason)
            loop = asyncio.get_running_loop()
            loop.call_later(self._close_timeout, self._abort)

    def _close_received(self, frame: WSFrame) -> None:
        if self.state == OPEN:  # the client closes: answer with its code, then hang up
            code = frame.get_close_code().value
            self._send_close(NORMAL if code == NO_STATUS else code, "")
        self._drop()

    def _send_close(self, code: int, reason: str) -> None:
        self.state = CLOSING
        self.close_sent = code
        assert self.ws is not None
        self.ws.send_close(WSCloseCode(code), reason.encode())

    def _drop(self) -> None:
        if self.ws is not None and self.state != CLOSED:
            self.ws.disconnect()  # what is buffered still goes out, then the FIN

    def _abort(self) -> None:
        if self.ws is not None and self.state != CLOSED:
            self.ws.disconnect(graceful=False)

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Send a close frame (unless one went out) and wait until the connection is
        closed: the client's answer, or ``close_timeout`` seconds and then the TCP
        connection is aborted (a client that reads nothing would hold a graceful close,
        and its unsent data, for ever)."""
        if self.ws is None:
            return
        if self.state == OPEN:
            self._send_close(code, reason)
        if self.state == CLOSED:
            return
        with contextlib.suppress(Exception):  # picows re-raises a protocol error it closed for
            try:
                async with asyncio.timeout(self._close_timeout):
                    await self.ws.wait_disconnected()
            except TimeoutError:
                self._abort()
                await self.ws.wait_disconnected()

    def keepalive_round(self) -> bool:
        """One keepalive round: ping, unless the last round's ping is still unanswered.

        Returns:
            False when the connection answered no ping since the last round (the caller
            closes it), else True (a ping went out, or the connection is not open).
        """
        if self.state != OPEN:
            return True
        if self.pong_due:
            return False
        assert self.ws is not None
        self.ws.send_ping(b"")
        self.pong_due = True
        return True
