"""Keepalive over the wire: the node pings every connection each ``ping_interval``; a client
that answers stays, one that answers no ping is closed with 1011 (the node's one keepalive
task, not a task per connection: livesrv/realtime/wsconn.py)."""

from __future__ import annotations

import asyncio
import json
import struct
import time

from tests.conftest import ServerFactory
from tests.raw_ws import CLOSE, PING, PONG, TEXT, RawWS
from tests.timing import scaled

INTERVAL = 0.3


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
