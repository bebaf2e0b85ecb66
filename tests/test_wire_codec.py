"""Sans-I/O tests of the codecs (:mod:`livesrv.wire.codec`): WebSocket frames, JSON and
msgpack encoding and decoding, subprotocol choice; bad bytes are ``bad_request``.
"""

from __future__ import annotations

import contextlib
import json
import random

import msgpack
import pytest

from livesrv.errors import BadRequest
from livesrv.wire.codec import (
    JSON,
    JSON_CODEC,
    MSGPACK,
    MSGPACK_CODEC,
    Codec,
    codec_for,
    select_subprotocol,
    ws_frame,
)
from livesrv.wire.schema import parse, request_id
from tests.frames import unframe


@pytest.mark.parametrize(
    ("size", "head"),
    [(0, 2), (1, 2), (125, 2), (126, 4), (127, 4), (65535, 4), (65536, 10), (70000, 10)],
)
def test_ws_frame_lengths(size: int, head: int) -> None:
    payload = random.Random(size).randbytes(size)
    frame = ws_frame(payload, 0x2)
    b0, got_head, got = unframe(frame)
    assert b0 == 0x82  # FIN + binary
    assert got_head == head
    assert got == payload
    assert len(frame) == head + size


def test_ws_frame_length_encodings() -> None:
    assert ws_frame(b"x" * 125, 0x1)[:2] == bytes([0x81, 125])
    assert ws_frame(b"x" * 126, 0x1)[:4] == bytes([0x81, 126, 0, 126])
    assert ws_frame(b"x" * 65535, 0x1)[:4] == bytes([0x81, 126, 0xFF, 0xFF])
    assert ws_frame(b"x" * 65536, 0x1)[:10] == bytes([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0])


def test_codec_frames_are_text_for_json_and_binary_for_msgpack() -> None:
    msg = {"ev": "gift", "room": "r", "seq": 3, "coins": 10, "text": "é"}
    b0, _, payload = unframe(JSON_CODEC.frame(msg))
    assert b0 == 0x81 and json.loads(payload.decode("utf-8")) == msg
    b0, _, payload = unframe(MSGPACK_CODEC.frame(msg))
    assert b0 == 0x82 and msgpack.unpackb(payload, raw=False) == msg


@pytest.mark.parametrize("codec", [JSON_CODEC, MSGPACK_CODEC], ids=["json", "msgpack"])
def test_codec_round_trip(codec: Codec) -> None:
    msg = {"id": "x", "op": "gift", "count": 9999, "big": 1 << 53, "list": [1, "a"], "n": None}
    assert codec.decode(codec.encode(msg)) == msg
    batch = [msg, {"ev": "like", "total": 3}]
    assert codec.decode(codec.encode(batch)) == batch


def test_encode_types() -> None:
    assert isinstance(JSON_CODEC.encode({"a": 1}), str)
    assert isinstance(MSGPACK_CODEC.encode({"a": 1}), bytes)


@pytest.mark.parametrize(
    "data",
    ["", "{", "not json", '{"id": 1,}', "{'id': 1}", "[1, 2", "NaN", '{"a": 1e400}', b"\xff\xfe"],
)
def test_json_decode_errors(data: str | bytes) -> None:
    with pytest.raises(BadRequest, match="not valid json"):
        JSON_CODEC.decode(data)


def test_json_accepts_any_value_and_parse_rejects_it() -> None:
    for data, value in [("5", 5), ('"x"', "x"), ("null", None), ("[]", [])]:
        assert JSON_CODEC.decode(data) == value
        with pytest.raises(BadRequest):
            parse(value)


def test_json_huge_integer_is_not_an_integer() -> None:
    # Beyond 64 bits the JSON decoder yields a float, which no count field accepts.
    message = JSON_CODEC.decode(
        '{"id": 1, "op": "gift", "room": "r", "gift": "rose", '
        '"count": 100000000000000000000000000000, "key": "k"}'
    )
    with pytest.raises(BadRequest, match="count must be an integer"):
        parse(message)


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc1", b"\x81", b"\x92\x01", msgpack.packb({"id": 1}) + b"\x00", b"\xd9\x05ab"],
)
def test_msgpack_decode_errors(data: bytes) -> None:
    with pytest.raises(BadRequest, match="not valid msgpack"):
        MSGPACK_CODEC.decode(data)


def test_msgpack_refuses_text_frames() -> None:
    with pytest.raises(BadRequest, match="binary frames"):
        MSGPACK_CODEC.decode('{"id": 1, "op": "wallet"}')


def test_msgpack_non_string_keys_decode_and_fail_parse() -> None:
    value = MSGPACK_CODEC.decode(msgpack.packb({1: 2, "op": "wallet"}))
    assert value == {1: 2, "op": "wallet"}
    with pytest.raises(BadRequest, match="id is required"):
        parse(value)


def test_msgpack_binary_id_is_not_usable() -> None:
    value = MSGPACK_CODEC.decode(msgpack.packb({"id": b"\x01", "op": "wallet"}, use_bin_type=True))
    assert request_id(value) is None


@pytest.mark.parametrize("codec", [JSON_CODEC, MSGPACK_CODEC], ids=["json", "msgpack"])
def test_random_bytes_never_escape_as_other_errors(codec: Codec) -> None:
    """Whatever a client sends, decoding and parsing raise BadRequest or succeed."""
    rng = random.Random(1234)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
        with contextlib.suppress(BadRequest):
            parse(codec.decode(data))


def test_codec_for() -> None:
    assert codec_for(None) is JSON_CODEC
    assert codec_for(JSON) is JSON_CODEC
    assert codec_for(MSGPACK) is MSGPACK_CODEC
    assert codec_for("something.else") is JSON_CODEC


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([JSON], JSON),
        ([MSGPACK], MSGPACK),
        ([MSGPACK, JSON], MSGPACK),
        ([JSON, MSGPACK], JSON),
        (["chat", "livesrv.v2.json", MSGPACK, JSON], MSGPACK),
        (["chat"], None),
        ([], None),
        (("livesrv.v1.JSON",), None),
    ],
)
def test_select_subprotocol(offered: list[str], chosen: str | None) -> None:
    assert select_subprotocol(offered) == chosen
