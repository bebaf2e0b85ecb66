"""WebSocket frames at the byte level: fragments put together, and the frames RFC 6455 says
fail the connection closing it with their code, the client's connection only."""

from __future__ import annotations

import asyncio
import json
import struct

import pytest

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


Frame = tuple[int, bytes, bool, int]  # opcode, payload, fin, reserved bits

FAILING = {
    # each frame is under the 1024-byte limit, the message is not
    "fragments beyond the limit": (
        [(TEXT, b"x" * 500, False, 0), *[(CONTINUATION, b"x" * 500, False, 0)] * 2],
        1009,
    ),
    # RSV1: no compression was agreed
    "reserved bits": ([(TEXT, b'{"id": 1, "op": "wallet"}', True, 4)], 1002),
    "reserved bits on a continuation": (
        [(TEXT, b'{"id": 1, ', False, 0), (CONTINUATION, b'"op": "wallet"}', True, 2)],
        1002,
    ),
    "a continuation with nothing to continue": ([(CONTINUATION, b"{}", True, 0)], 1002),
    "text that is not UTF-8": ([(TEXT, b'{"id": 1, "op": "\xff\xfe"}', True, 0)], 1007),
}


@pytest.mark.parametrize(("frames", "code"), FAILING.values(), ids=FAILING.keys())
async def test_frames_that_fail_the_connection_close_with_their_code(
    make_server: ServerFactory, frames: list[Frame], code: int
) -> None:
    server = await make_server(max_frame=1024)
    ws = await RawWS.open(server)
    try:
        for opcode, payload, fin, rsv in frames:
            ws.send(opcode, payload, fin=fin, rsv=rsv)
        assert await closed_with(ws) == code
    finally:
        ws.close()
    await still_served(server, "frames-other")  # only that client's connection closed


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
