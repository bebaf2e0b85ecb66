"""A minimal, fast WebSocket client for load generation (asyncio Protocol, RFC 6455).

Why not the ``websockets`` client: the load side must not be the bottleneck when one
process holds thousands of connections that each receive tens of frames a second. This
client does the least work per frame: no per-connection task, no per-frame future, frames
parsed straight out of the receive buffer, outgoing frames pre-encoded (client frames are
masked with an all-zero key, which is valid on the wire and leaves the payload unchanged,
so a request is a header plus the bytes the caller already has).

Only what the load tests need: the opening handshake, text/binary messages (with
continuation frames), ping -> pong, and the closing handshake (the close code is kept).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from collections.abc import Callable

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_ZERO_MASK = b"\x00\x00\x00\x00"

# status for connections that ended without a close frame (reset or EOF)
CLOSE_ABNORMAL = 1006


def encode_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One complete masked client frame (FIN set, zero masking key)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + struct.pack("!H", n)
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + struct.pack("!Q", n)
    return header + _ZERO_MASK + payload


MessageHandler = Callable[[bytes], None]


class WSClient(asyncio.Protocol):
    """One client connection. Set ``on_message`` to receive each complete message."""

    __slots__ = (
        "transport",
        "on_message",
        "opened",
        "closed",
        "close_code",
        "_buf",
        "_handshake_done",
        "_frag",
        "_request",
        "subprotocol",
        "count_pattern",
        "counted",
        "last_count",
    )

    def __init__(self, request: bytes, on_message: MessageHandler | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.on_message = on_message
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[int] = loop.create_future()
        self.close_code: int | None = None
        self._buf = bytearray()
        self._handshake_done = False
        self._frag: bytearray | None = None
        self._request = request
        self.subprotocol: str | None = None
        # counting mode: when set, complete data messages are not handed to on_message;
        # occurrences of this pattern are counted in place (no copy) instead
        self.count_pattern: bytes | None = None
        self.counted = 0
        self.last_count = 0.0

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self._request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._handshake_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 16384:
                    self._fail(ConnectionError("handshake response too large"))
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            status = head.split("\r\n", 1)[0]
            if " 101 " not in status + " ":
                self._fail(ConnectionError(f"handshake refused: {status}"))
                return
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "sec-websocket-protocol":
                    self.subprotocol = value.strip()
            self._handshake_done = True
            if not self.opened.done():
                self.opened.set_result(None)
        self._parse()

    def _parse(self) -> None:  # noqa: C901 - one tight loop on purpose
        buf = self._buf
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + n
            if end > size:
                break
            opcode = b0 & 0x0F
            pos = end
            if self.count_pattern is not None and b0 & 0x80 and opcode in (OP_TEXT, OP_BINARY):
                n = buf.count(self.count_pattern, start, end)
                if n:
                    self.counted += n
                    self.last_count = time.time()
                continue
            payload = bytes(buf[start:end])
            if opcode in (OP_TEXT, OP_BINARY):
                if b0 & 0x80:
                    if self.on_message is not None:
                        self.on_message(payload)
                else:
                    self._frag = bytearray(payload)
            elif opcode == OP_CONT:
                if self._frag is not None:
                    self._frag += payload
                    if b0 & 0x80:
                        whole = bytes(self._frag)
                        self._frag = None
                        if self.on_message is not None:
                            self.on_message(whole)
            elif opcode == OP_PING:
                self.send(payload, OP_PONG)
            elif opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close_code = code
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.write(encode_frame(payload[:2], OP_CLOSE))
                    self.transport.close()
                break
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None:
            self.close_code = CLOSE_ABNORMAL
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during handshake"))
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    # -- sending ------------------------------------------------------------------------
    def send(self, payload: bytes, opcode: int = OP_TEXT) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(payload, opcode))

    def send_raw(self, frame: bytes) -> None:
        """Write an already encoded frame (see :func:`encode_frame`)."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def close(self, code: int = 1000) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(struct.pack("!H", code), OP_CLOSE))
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def pause(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _fail(self, exc: Exception) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        if self.transport is not None:
            self.transport.abort()


def handshake_request(host: str, port: int, path: str, subprotocol: str | None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_ws_url(url: str) -> tuple[str, int, str]:
    if not url.startswith("ws://"):
        raise ValueError(f"only ws:// urls are supported: {url}")
    rest = url[5:]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.rpartition(":")
    if not host:
        host, port = hostport, "80"
    return host.strip("[]"), int(port), "/" + path


async def connect(
    url: str,
    *,
    on_message: MessageHandler | None = None,
    subprotocol: str | None = "livesrv.v1.json",
    source_ip: str | None = None,
    rcvbuf: int | None = None,
    timeout: float = 30.0,
) -> WSClient:
    """Open one connection, optionally from a given loopback source address.

    Args:
        url: ``ws://host:port/path``.
        on_message: Called with each complete message payload.
        subprotocol: Offered in ``Sec-WebSocket-Protocol``.
        source_ip: Local address to bind (127.0.0.x spreads connections over many
            source addresses, each with its own ephemeral port range).
        rcvbuf: SO_RCVBUF for the socket (small values make a non-reading client
            back-pressure the server quickly).
        timeout: Seconds for TCP connect plus handshake.

    Returns:
        The open connection.
    """
    host, port, path = parse_ws_url(url)
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source_ip:
            sock.setsockopt(socket.SOL_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
            sock.bind((source_ip, 0))
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    request = handshake_request(host, port, path, subprotocol)
    _, proto = await loop.create_connection(lambda: WSClient(request, on_message), sock=sock)
    try:
        await asyncio.wait_for(asyncio.shield(proto.opened), timeout)
    except BaseException:
        proto.abort()
        raise
    return proto
