"""WebSocket frames at the byte level: fragments put together, and the frames RFC 6455 says
fail the connection closing it with their code, the client's connection only."""

from __future__ import annotations

import asyncio
import json
import struct

from tests.conftest import Running, ServerFactory
from tests.raw_ws import CLOSE, CONTINUATION, TEXT, RawWS
from tests.timing import scaled


async def reply(ws: RawWS) -> dict[str, object]:
    async with asyncio.timeout(scaled(10)):
        while True:
            opcode, payload = await ws.frame()
            if opcode == TEXT:
                message: dict[str, object] = json.loads(payload)
                return message


async def closed_with(ws: RawWS) -> int:
    async with asyncio.timeout(scaled(10)):
        return await ws.close_code()


async def still_served(server: Running, user: str) -> None:
    other = await server.connect(user)
    assert (await other.ok("wallet"))["coins"] == 0


async def test_a_fragmented_request_is_one_message(make_server: ServerFactory) -> None:
    server = await make_server()
    ws = await RawWS.open(server)
    try:
        text = json.dumps({"id": 7, "op": "hello", "token": server.token("frag")}).encode()
        cut = [text[:5], text[5:40], text[40:]]
        ws.send(TEXT, cut[0], fin=False)
        ws.send(CONTINUATION, cut[1], fin=False)
        ws.send(CONTINUATION, cut[2])
        answer = await reply(ws)
        assert answer["id"] == 7 and answer["ok"] is True and answer["user"] == "frag"
    finally:
        ws.close()


async def test_many_small_fragments_are_one_message(make_server: ServerFactory) -> None:
    server = await make_server()
    ws = await RawWS.open(server)
    try:
        text = json.dumps({"id": 8, "op": "hello", "token": server.token("frag2")}).encode()
        text = text[:-1] + b', "pad": "' + b"x" * 20_000 + b'"}'
        pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
        ws.send(TEXT, pieces[0], fin=False)
        for piece in pieces[1:-1]:
            ws.send(CONTINUATION, piece, fin=False)
        ws.send(CONTINUATION, pieces[-1])
        answer = await reply(ws)
        # about 5,000 frames of 4 bytes each: one hello, answered once
        assert answer["id"] == 8 and answer["ok"] is True and answer["user"] == "frag2"
    finally:
        ws.close()


async def test_fragments_beyond_the_limit_close_1009(make_server: ServerFactory) -> None:
    server = await make_server(max_frame=1024)
    ws = await RawWS.open(server)
    try:
        for _ in range(3):  # each frame is under the limit, the message is not
            ws.send(TEXT if _ == 0 else CONTINUATION, b"x" * 500, fin=False)
        assert await closed_with(ws) == 1009
    finally:
        ws.close()
    await still_served(server, "frag-other")


async def test_reserved_bits_close_1002(make_server: ServerFactory) -> None:
    server = await make_server()
    ws = await RawWS.open(server)
    try:
        ws.send(TEXT, b'{"id": 1, "op": "wallet"}', rsv=4)  # RSV1: no compression was agreed
        assert await closed_with(ws) == 1002
    finally:
        ws.close()
    await still_served(server, "rsv-other")


async def test_reserved_bits_on_a_continuation_close_1002(make_server: ServerFactory) -> None:
    server = await make_server()
    ws = await RawWS.open(server)
    try:
        ws.send(TEXT, b'{"id": 1, ', fin=False)
        ws.send(CONTINUATION, b'"op": "wallet"}', rsv=2)
        assert await closed_with(ws) == 1002
    finally:
        ws.close()


async def test_a_continuation_with_nothing_to_continue_closes_1002(
    make_server: ServerFactory,
) -> None:
    server = await make_server()
    ws = await RawWS.open(server)
    try:
        ws.send(CONTINUATION, b"{}")
        assert await closed_with(ws) == 1002
    finally:
        ws.close()


async def test_text_that_is_not_utf8_closes_1007(make_server: ServerFactory) -> None:
    server = await make_server()
    ws = await RawWS.open(server)
    try:
        ws.send(TEXT, b'{"id": 1, "op": "\xff\xfe"}')
        assert await closed_with(ws) == 1007
    finally:
        ws.close()
    await still_served(server, "utf8-other")


async def test_a_client_close_is_answered_with_its_code(make_server: ServerFactory) -> None:
    server = await make_server()
    ws = await RawWS.open(server)
    try:
        ws.send(CLOSE, struct.pack("!H", 4000) + b"bye")
        assert await closed_with(ws) == 4000
        async with asyncio.timeout(scaled(10)):  # then the server hangs up
            assert await ws.reader.read() == b""
    finally:
        ws.close()
