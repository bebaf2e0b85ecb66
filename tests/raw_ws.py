"""A WebSocket client that writes frames byte by byte: pings answered only when told to,
fragments, reserved bits, payloads no library client would send."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

from yarl import URL

from tests.conftest import Running

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class RawWS:
    """One raw client connection to a running server's /ws."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: Running) -> RawWS:
        url = URL(server.ws_url)
        assert url.host is not None and url.port is not None
        reader, writer = await asyncio.open_connection(url.host, url.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: livesrv.v1.json\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101 "), head
        return cls(reader, writer)

    def send(self, opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> None:
        """One masked frame; ``rsv`` is the three reserved bits (0-7)."""
        n = len(payload)
        if n < 126:
            size = bytes((0x80 | n,))
        elif n < 1 << 16:
            size = bytes((0x80 | 126,)) + struct.pack("!H", n)
        else:
            size = bytes((0x80 | 127,)) + struct.pack("!Q", n)
        head = (0x80 if fin else 0) | (rsv << 4) | opcode
        # masked with an all-zero key: valid, and the payload goes as it is
        self.writer.write(bytes((head,)) + size + b"\0\0\0\0" + payload)

    async def frame(self) -> tuple[int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def close_code(self) -> int:
        """Read until the server's close frame; its code."""
        while True:
            opcode, payload = await self.frame()
            if opcode == CLOSE:
                (code,) = struct.unpack("!H", payload[:2])
                return int(code)

    def close(self) -> None:
        self.writer.close()
