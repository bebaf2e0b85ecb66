"""Keepalive over the wire: the node pings every connection each ``ping_interval``; a client
that answers stays, one that answers no ping is closed with 1011 (the node's one keepalive
task, not a task per connection: livesrv/realtime/wsconn.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time

from yarl import URL

from tests.conftest import Running, ServerFactory
from tests.timing import scaled

PING, PONG, CLOSE, TEXT = 0x9, 0xA, 0x8, 0x1
INTERVAL = 0.3


class RawWS:
    """A WebSocket client that answers pings only when told to."""

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

    def send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        size = bytes((0x80 | n,)) if n < 126 else bytes((0x80 | 126,)) + struct.pack("!H", n)
        # masked with an all-zero key: valid, and the payload goes as it is
        self.writer.write(bytes((0x80 | opcode,)) + size + b"\0\0\0\0" + payload)

    async def frame(self) -> tuple[int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    def close(self) -> None:
        self.writer.close()


async def test_a_client_that_answers_pings_stays(make_server: ServerFactory) -> None:
    server = await make_server(ping_interval=INTERVAL)
    ws = await RawWS.open(server)
    try:
        pings = 0
        async with asyncio.timeout(scaled(10)):
            while pings < 4:  # several rounds, each checking the previous pong
                opcode, payload = await ws.frame()
                assert opcode == PING, (opcode, payload)
                pings += 1
                ws.send(PONG, payload)
            ws.send(
                TEXT, json.dumps({"id": 1, "op": "hello", "token": server.token("ka1")}).encode()
            )
            while True:
                opcode, payload = await ws.frame()
                if opcode == PING:
                    ws.send(PONG, payload)
                    continue
                assert opcode == TEXT, (opcode, payload)
                reply = json.loads(payload)
                assert reply["id"] == 1 and reply["ok"] is True and reply["user"] == "ka1"
                break
    finally:
        ws.close()


async def test_a_client_that_answers_no_ping_is_closed_1011(make_server: ServerFactory) -> None:
    server = await make_server(ping_interval=INTERVAL)
    ws = await RawWS.open(server)
    try:
        ws.send(TEXT, json.dumps({"id": 1, "op": "hello", "token": server.token("ka2")}).encode())
        seen: list[int] = []
        started = time.monotonic()
        async with asyncio.timeout(scaled(10)):
            while True:
                opcode, payload = await ws.frame()
                seen.append(opcode)
                if opcode == CLOSE:
                    break
        (code,) = struct.unpack("!H", payload[:2])
        assert code == 1011 and payload[2:] == b"keepalive ping timeout"
        assert seen.count(PING) == 1  # one unanswered ping, then the close
        assert time.monotonic() - started >= INTERVAL  # not before a whole interval
    finally:
        ws.close()
