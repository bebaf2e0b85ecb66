"""Bad frames: each gets its error reply (``id`` null when it has no usable id) or its close
code, nothing moves, and the server keeps serving the other clients."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest

from tests.client import JSON, MSGPACK, Client
from tests.conftest import Running, ServerFactory


@dataclass
class Scene:
    server: Running
    creator: Client
    witness: Client  # another viewer in the room: must be served throughout
    attacker: Client  # signed in, in the room, with coins
    codec: str


@pytest.fixture(params=[JSON, MSGPACK], ids=["json", "msgpack"])
async def scene(request: pytest.FixtureRequest, make_server: ServerFactory) -> Scene:
    codec = str(request.param)
    server = await make_server(abuse_limit=1000)
    creator = await server.connect("alice", "creator", codec)
    await creator.ok("room_open", room="r1", title="live")
    await creator.ok("join", room="r1")
    witness = await server.connect("wendy", codec=codec)
    await witness.ok("join", room="r1")
    await server.grant("mallory", 100)
    attacker = await server.connect("mallory", codec=codec)
    await attacker.ok("join", room="r1")
    return Scene(server, creator, witness, attacker, codec)


async def reply_to_raw(c: Client, data: str | bytes) -> dict[str, Any]:
    """Send a raw frame and return the reply that carries id null."""
    await c.send_raw(data)
    reply: dict[str, Any] = await c.wait(lambda: c.replies.pop(None, None))
    return reply


def assert_bad_request(reply: dict[str, Any], rid: Any) -> None:
    assert reply["id"] == rid
    assert reply["ok"] is False
    assert reply["error"]["code"] == "bad_request"
    assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    assert set(reply) == {"id", "ok", "error"} and set(reply["error"]) == {"code", "message"}


_marks = iter(range(1, 1 << 30))


async def still_served(s: Scene, *, attacker_open: bool = True) -> None:
    """The witness gets replies and live events; the attacker too unless it was cut."""
    assert (await s.witness.ok("wallet"))["coins"] == 0
    text = f"still here {next(_marks)}"
    await s.creator.ok("chat", room="r1", text=text)
    await s.witness.event("chat", lambda e: e["text"] == text)
    if attacker_open:
        await s.attacker.event("chat", lambda e: e["text"] == text)
        assert (await s.attacker.ok("wallet"))["coins"] == 100  # nothing moved


def raw(s: Scene, value: Any) -> str | bytes:
    """A value encoded in the scene's codec."""
    return s.attacker.encode(value)


# -- frames with no usable id: the reply has id null -------------------------------------


async def test_not_json(scene: Scene) -> None:
    for data in ("hello world", "{", '{"id": 1, "op": "wallet"', "{'id': 1}", "NaN", "[1,]"):
        if scene.codec == MSGPACK:
            data = data.encode()  # a binary frame that is not one msgpack map
        reply = await reply_to_raw(scene.attacker, data)
        assert_bad_request(reply, None)
    await still_served(scene)


async def test_not_msgpack(scene: Scene) -> None:
    for data in (b"\xc1", b"\x81", b"\x92\x01", msgpack.packb({"id": 1}) + b"\x00", b"\xd9\x09abc"):
        reply = await reply_to_raw(scene.attacker, data)
        assert_bad_request(reply, None)
    await still_served(scene)


async def test_wrong_frame_type_for_codec(scene: Scene) -> None:
    if scene.codec == MSGPACK:
        # text frames on a msgpack connection are refused, even when they hold a request
        reply = await reply_to_raw(scene.attacker, json.dumps({"id": 5, "op": "wallet"}))
        assert_bad_request(reply, None)
        assert "binary" in reply["error"]["message"]
    else:
        reply = await reply_to_raw(scene.attacker, msgpack.packb({"id": 5, "op": "wallet"}))
        assert_bad_request(reply, None)
    await still_served(scene)


async def test_deeply_nested(scene: Scene) -> None:
    if scene.codec == JSON:
        data: str | bytes = "[" * 5000 + "]" * 5000
    else:
        data = b"\x91" * 5000 + b"\xc0"
    reply = await reply_to_raw(scene.attacker, data)
    assert_bad_request(reply, None)
    await still_served(scene)


@pytest.mark.parametrize("value", [5, "wallet", None, True, 1.5], ids=repr)
async def test_not_a_map(scene: Scene, value: Any) -> None:
    assert_bad_request(await reply_to_raw(scene.attacker, raw(scene, value)), None)
    await still_served(scene)


async def test_batch_from_client(scene: Scene) -> None:
    batch = [
        {"id": 1, "op": "gift", "room": "r1", "gift": "rose", "count": 5, "key": "b1"},
        {"id": 2, "op": "wallet"},
    ]
    reply = await reply_to_raw(scene.attacker, raw(scene, batch))
    assert_bad_request(reply, None)
    assert "batch" in reply["error"]["message"]
    await still_served(scene)
    # none of the batched requests ran
    assert 1 not in scene.attacker.replies and 2 not in scene.attacker.replies
    assert [e for e in scene.witness.events if e["ev"] == "gift"] == []


@pytest.mark.parametrize(
    "message",
    [
        {"op": "wallet"},
        {"id": None, "op": "wallet"},
        {"id": 1.5, "op": "wallet"},
        {"id": 1.0, "op": "wallet"},
        {"id": True, "op": "wallet"},
        {"id": "", "op": "wallet"},
        {"id": "x" * 65, "op": "wallet"},
        {"id": [1], "op": "wallet"},
        {"id": {"n": 1}, "op": "wallet"},
        {"id": (1 << 53) + 1, "op": "wallet"},
        {"id": 1 << 53, "op": "wallet"},
        {"id": 1.5, "op": "gift", "room": "r1", "gift": "rose", "count": 5, "key": "f1"},
    ],
    ids=lambda m: repr(m.get("id", "missing"))[:12],
)
async def test_no_usable_id(scene: Scene, message: dict[str, Any]) -> None:
    reply = await reply_to_raw(scene.attacker, raw(scene, message))
    assert_bad_request(reply, None)
    await still_served(scene)  # also proves the gift did not run


@pytest.mark.parametrize("scene", [MSGPACK], ids=["msgpack"], indirect=True)
async def test_non_string_keys(scene: Scene) -> None:
    # only msgpack can carry them: JSON object keys are always strings
    reply = await reply_to_raw(scene.attacker, msgpack.packb({1: 1, "op": "wallet"}))
    assert_bad_request(reply, None)
    reply = await reply_to_raw(scene.attacker, msgpack.packb({b"id": 1, b"op": b"wallet"}))
    assert_bad_request(reply, None)
    await still_served(scene)


async def test_bad_frames_before_hello(scene: Scene) -> None:
    c = await scene.server.raw(scene.codec)
    assert_bad_request(await reply_to_raw(c, c.encode([1, 2])), None)
    assert_bad_request(await reply_to_raw(c, c.encode({"op": "hello"})), None)
    reply = await c.request({"id": 3, "op": "nope"})
    assert_bad_request(reply, 3)
    assert (await c.ok("hello", token=scene.server.token("late")))["user"] == "late"
    await still_served(scene)


async def test_random_garbage(scene: Scene) -> None:
    """200 frames of random bytes: one bad_request each, and the connection survives."""
    rng = random.Random(42)
    for _ in range(200):
        data = rng.randbytes(rng.randrange(1, 64))
        frame: str | bytes = data
        if scene.codec == JSON:
            frame = data.decode("latin-1")  # a valid text frame holding garbage
        reply = await reply_to_raw(scene.attacker, frame)
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply
    await still_served(scene)


# -- frames with a usable id: the reply carries it ----------------------------------------


async def test_unknown_op(scene: Scene) -> None:
    for rid, op in ((1, "transfer"), ("abc", "WALLET"), (3, ""), (4, "x" * 300)):
        reply = await scene.attacker.request({"id": rid, "op": op})
        assert_bad_request(reply, rid)
        assert len(reply["error"]["message"]) < 100
    await still_served(scene)


@pytest.mark.parametrize("op", [None, 7, True, ["wallet"], {"op": "wallet"}], ids=repr)
async def test_missing_or_bad_op(scene: Scene, op: Any) -> None:
    message: dict[str, Any] = {"id": 9} if op is None else {"id": 9, "op": op}
    assert_bad_request(await scene.attacker.request(message), 9)
    await still_served(scene)


@pytest.mark.parametrize(
    "args",
    [
        {"op": "join", "room": 5},
        {"op": "join", "room": ["r1"]},
        {"op": "join", "room": "r1", "since": "3"},
        {"op": "join", "room": "r1", "since": -1},
        {"op": "join", "room": "r1", "since": 1.5},
        {"op": "chat", "room": "r1", "text": ["hi"]},
        {"op": "chat", "room": "r1", "text": 5},
        {"op": "chat", "room": True, "text": "hi"},
        {"op": "gift", "room": "r1", "gift": 1, "count": 1, "key": "k"},
        {"op": "gift", "room": "r1", "gift": "rose", "count": 1, "key": 12},
        {"op": "gift", "room": "r1", "gift": "rose", "count": 1, "key": ["k"]},
        {"op": "gift", "room": "r1", "gift": "rose", "count": 1, "key": "\u00e9"},
        {"op": "gift", "room": "r1", "gift": "rose", "count": 1, "key": "k" * 65},
        {"op": "buy_coins", "package": 65, "receipt": "r"},
        {"op": "buy_coins", "package": "p65", "receipt": 123},
        {"op": "room_open", "room": "r2", "title": {"t": 1}},
        {"op": "hello", "token": 12},
        {"op": "hello", "token": None},
        {"op": "leave", "room": None},
    ],
    ids=lambda a: "-".join(f"{k}={v!r}"[:14] for k, v in a.items() if k != "op") + f"@{a['op']}",
)
async def test_wrong_types(scene: Scene, args: dict[str, Any]) -> None:
    reply = await scene.attacker.request({"id": "t1", **args})
    assert_bad_request(reply, "t1")
    await still_served(scene)


COUNTS: list[Any] = [0, -1, -9999, 10_000, 1 << 40, (1 << 63) - 1, 1.5, 1.0, "5", True, None]


@pytest.mark.parametrize("count", COUNTS, ids=repr)
async def test_bad_gift_counts(scene: Scene, count: Any) -> None:
    message = {"id": 77, "op": "gift", "room": "r1", "gift": "rose", "count": count, "key": "c1"}
    assert_bad_request(await scene.attacker.request(message), 77)
    await still_served(scene)
    # nothing moved and the key is still free
    assert [e for e in scene.witness.events if e["ev"] == "gift"] == []
    r = await scene.attacker.ok("gift", room="r1", gift="rose", count=1, key="c1")
    assert r["coins"] == 99


@pytest.mark.parametrize("scene", [JSON], ids=["json"], indirect=True)
async def test_huge_json_integers(scene: Scene) -> None:
    # only JSON can carry them: msgpack integers are at most 64 bits
    text = (
        '{"id": 5, "op": "gift", "room": "r1", "gift": "rose", '
        '"count": 100000000000000000000000000000, "key": "h1"}'
    )
    assert_bad_request(await reply_to_raw_with_id(scene.attacker, text, 5), 5)
    # a huge id is not a usable id
    text = '{"id": 100000000000000000000000000000, "op": "wallet"}'
    assert_bad_request(await reply_to_raw(scene.attacker, text), None)
    await still_served(scene)


async def reply_to_raw_with_id(c: Client, data: str | bytes, rid: Any) -> dict[str, Any]:
    await c.send_raw(data)
    reply: dict[str, Any] = await c.wait(lambda: c.replies.pop(rid, None))
    return reply


@pytest.mark.parametrize("count", [0, -1, 101, 1.5, "2", False], ids=repr)
async def test_bad_like_counts(scene: Scene, count: Any) -> None:
    reply = await scene.attacker.request({"id": 8, "op": "like", "room": "r1", "count": count})
    assert_bad_request(reply, 8)
    await still_served(scene)
    assert [e for e in scene.witness.events if e["ev"] == "like"] == []


# -- frames that close the connection -------------------------------------------------------


async def test_oversize_frame(scene: Scene) -> None:
    big = {"id": 1, "op": "chat", "room": "r1", "text": "x" * (65 * 1024)}
    await scene.attacker.send_raw(raw(scene, big))
    assert await scene.attacker.closed() == 1009
    await still_served(scene, attacker_open=False)
    # the attacker can come back on a new connection; its coins are intact
    again = await scene.server.connect("mallory", codec=scene.codec)
    assert (await again.ok("wallet"))["coins"] == 100


async def test_abuse_closes_only_the_abuser(make_server: ServerFactory) -> None:
    server = await make_server(abuse_limit=5)
    alice = await server.connect("alice", "creator")
    await alice.ok("room_open", room="r1", title="live")
    await alice.ok("join", room="r1")
    witness = await server.connect("wendy")
    await witness.ok("join", room="r1")
    abuser = await server.connect("mallory")
    for _ in range(5):
        assert_bad_request(await reply_to_raw(abuser, "garbage"), None)
    assert await abuser.closed() == 4400
    assert (await witness.ok("wallet"))["coins"] == 0
    await alice.ok("chat", room="r1", text="after")
    await witness.event("chat", lambda e: e["text"] == "after")
