"""Sans-I/O tests of the rules: no socket, no store, no event loop.

Requests, codecs, tokens, settings, the catalogue, settlement arithmetic, the fan-out
batching and the exception tree are plain functions and classes; they are driven here
with data in and data out.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import struct
import time
import warnings
from dataclasses import FrozenInstanceError, dataclass, field
from pathlib import Path
from typing import Any

import jwt
import msgpack
import pytest

from livesrv import errors, settlement
from livesrv.catalog import Catalog
from livesrv.errors import BadRequest, Unauthorized
from livesrv.realtime.hub import Member, _coalesce, deliver
from livesrv.realtime.session import TokenBucket
from livesrv.settings import Settings
from livesrv.store import scripts
from livesrv.wire import tokens
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
from livesrv.wire.schema import Request, parse, request_id

DOCS = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
SECRET = "unit-secret-0123456789abcdef0123456789abcdef"


# -- requests.parse -------------------------------------------------------------------


def test_parse_minimal_request() -> None:
    assert parse({"id": 1, "op": "wallet"}) == Request(1, "wallet", {})
    assert parse({"id": "abc", "op": "catalog"}) == Request("abc", "catalog", {})


def test_parse_ignores_unknown_fields() -> None:
    req = parse({"id": 7, "op": "leave", "room": "r1", "extra": [1, 2]})
    assert req.args == {"room": "r1"}


@pytest.mark.parametrize(
    "rid",
    [0, -1, (1 << 53) - 1, -(1 << 53) + 1, "x", "a" * 64, "with space", "é"],
)
def test_usable_ids(rid: Any) -> None:
    assert request_id({"id": rid}) == rid
    assert parse({"id": rid, "op": "wallet"}).id == rid


@pytest.mark.parametrize(
    "rid",
    [None, True, False, 1.0, 1.5, "", "a" * 65, 1 << 53, -(1 << 53), [1], {"a": 1}],
)
def test_unusable_ids(rid: Any) -> None:
    message = {"op": "wallet"} if rid is None else {"id": rid, "op": "wallet"}
    assert request_id(message) is None
    with pytest.raises(BadRequest, match="id is required"):
        parse(message)


@pytest.mark.parametrize("message", [[{"id": 1, "op": "wallet"}], [], "wallet", 5, None, 1.5])
def test_not_a_map(message: Any) -> None:
    assert request_id(message) is None
    with pytest.raises(BadRequest):
        parse(message)


def test_batch_from_client_is_refused_by_name() -> None:
    with pytest.raises(BadRequest, match="batch"):
        parse([{"id": 1, "op": "wallet"}])


@pytest.mark.parametrize("op", [None, 5, True, ["wallet"]])
def test_op_must_be_a_string(op: Any) -> None:
    message = {"id": 1} if op is None else {"id": 1, "op": op}
    with pytest.raises(BadRequest, match="op is required"):
        parse(message)


@pytest.mark.parametrize("op", ["", "Wallet", "wallet ", "drop_tables", "x" * 1000])
def test_unknown_op(op: str) -> None:
    with pytest.raises(BadRequest, match="unknown op") as info:
        parse({"id": 1, "op": op})
    assert len(info.value.message) < 80  # a huge op name is not echoed whole


GOOD: dict[str, dict[str, Any]] = {
    "hello": {"token": "t"},
    "wallet": {},
    "catalog": {},
    "rooms": {},
    "buy_coins": {"package": "p65", "receipt": "rcpt-1"},
    "room_open": {"room": "r1", "title": "Hi there"},
    "room_close": {"room": "r1"},
    "join": {"room": "r1"},
    "history": {"room": "r1", "before": 5},
    "leave": {"room": "r1"},
    "chat": {"room": "r1", "text": "hello"},
    "like": {"room": "r1"},
    "gift": {"room": "r1", "gift": "rose", "count": 1, "key": "k1"},
}


@pytest.mark.parametrize("op", sorted(GOOD))
def test_every_issue2_op_parses(op: str) -> None:
    req = parse({"id": 1, "op": op, **GOOD[op]})
    assert req.op == op and req.args == GOOD[op]


@pytest.mark.parametrize(
    ("op", "missing"),
    [(op, name) for op, args in GOOD.items() for name in args],
)
def test_required_arguments(op: str, missing: str) -> None:
    args = {k: v for k, v in GOOD[op].items() if k != missing}
    with pytest.raises(BadRequest, match=f"{missing} is required"):
        parse({"id": 1, "op": op, **args})
    # null is the same as missing
    with pytest.raises(BadRequest, match=f"{missing} is required"):
        parse({"id": 1, "op": op, **args, missing: None})


def _bad(op: str, **change: Any) -> None:
    with pytest.raises(BadRequest):
        parse({"id": 1, "op": op, **GOOD[op], **change})


def _good(op: str, **change: Any) -> dict[str, Any]:
    return parse({"id": 1, "op": op, **GOOD[op], **change}).args


@pytest.mark.parametrize("count", [0, -1, 10_000, 1 << 40, 1.0, 2.5, "3", True, [1], {"n": 1}])
def test_gift_count_rejected(count: Any) -> None:
    _bad("gift", count=count)


@pytest.mark.parametrize("count", [1, 2, 9999])
def test_gift_count_accepted(count: int) -> None:
    assert _good("gift", count=count)["count"] == count


@pytest.mark.parametrize("count", [0, -5, 101, 1.0, "1", False])
def test_like_count_rejected(count: Any) -> None:
    _bad("like", count=count)


def test_like_count_optional_and_bounded() -> None:
    assert _good("like") == {"room": "r1"}
    assert _good("like", count=1)["count"] == 1
    assert _good("like", count=100)["count"] == 100


@pytest.mark.parametrize("since", [-1, 1.0, "0", True])
def test_join_since_rejected(since: Any) -> None:
    _bad("join", since=since)


def test_join_since_accepted() -> None:
    assert _good("join", since=0)["since"] == 0
    assert _good("join", since=123)["since"] == 123


@pytest.mark.parametrize("room", ["", "a b", "r/1", "x" * 65, "ä", 5, "bad!"])
@pytest.mark.parametrize("op", ["room_open", "room_close", "join", "leave", "chat", "like", "gift"])
def test_room_ids(op: str, room: Any) -> None:
    _bad(op, room=room)


@pytest.mark.parametrize("room", ["r", "R_1.x-y", "x" * 64])
def test_room_ids_accepted(room: str) -> None:
    assert _good("join", room=room)["room"] == room


@pytest.mark.parametrize("text", ["", "x" * 501, 5, ["hi"]])
def test_chat_text_rejected(text: Any) -> None:
    _bad("chat", text=text)


def test_chat_text_bounds() -> None:
    assert _good("chat", text="x")["text"] == "x"
    assert _good("chat", text="é" * 500)["text"] == "é" * 500


@pytest.mark.parametrize("title", ["", "t" * 101, 1])
def test_room_title_rejected(title: Any) -> None:
    _bad("room_open", title=title)


@pytest.mark.parametrize("key", ["", "k" * 65, "tab\tkey", "nl\n", "ключ", 12, True])
def test_idempotency_key_rejected(key: Any) -> None:
    _bad("gift", key=key)


@pytest.mark.parametrize("key", ["k", "k" * 64, "any printable ~!@#$%^&*() key"])
def test_idempotency_key_accepted(key: str) -> None:
    assert _good("gift", key=key)["key"] == key


@pytest.mark.parametrize("receipt", ["", "r" * 201, "\x00", "v1.a.1.\u00e9", 99])
def test_receipt_rejected(receipt: Any) -> None:
    _bad("buy_coins", receipt=receipt)


@pytest.mark.parametrize("package", ["", "p 65", 65])
def test_package_rejected(package: Any) -> None:
    _bad("buy_coins", package=package)


@pytest.mark.parametrize("gift", ["", "ro se", 1])
def test_gift_name_rejected(gift: Any) -> None:
    _bad("gift", gift=gift)


@pytest.mark.parametrize("token", ["", "t" * 4097, 5, {"sub": "x"}])
def test_hello_token_rejected(token: Any) -> None:
    _bad("hello", token=token)


def test_error_message_names_the_field() -> None:
    with pytest.raises(BadRequest) as info:
        parse({"id": 1, "op": "gift", **GOOD["gift"], "count": 0})
    assert "count" in info.value.message and "9999" in info.value.message


# -- codec ----------------------------------------------------------------------------


def _unframe(frame: bytes) -> tuple[int, int, bytes]:
    """(fin+opcode byte, header length, payload) of an unmasked server frame."""
    b0, b1 = frame[0], frame[1]
    assert b1 & 0x80 == 0, "server frames are not masked"
    n = b1 & 0x7F
    if n < 126:
        head = 2
    elif n == 126:
        (n,) = struct.unpack("!H", frame[2:4])
        head = 4
    else:
        (n,) = struct.unpack("!Q", frame[2:10])
        head = 10
    payload = frame[head:]
    assert len(payload) == n
    return b0, head, payload


@pytest.mark.parametrize(
    ("size", "head"),
    [(0, 2), (1, 2), (125, 2), (126, 4), (127, 4), (65535, 4), (65536, 10), (70000, 10)],
)
def test_ws_frame_lengths(size: int, head: int) -> None:
    payload = random.Random(size).randbytes(size)
    frame = ws_frame(payload, 0x2)
    b0, got_head, got = _unframe(frame)
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
    b0, _, payload = _unframe(JSON_CODEC.frame(msg))
    assert b0 == 0x81 and json.loads(payload.decode("utf-8")) == msg
    b0, _, payload = _unframe(MSGPACK_CODEC.frame(msg))
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


# -- tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "creator", "admin"])
def test_token_round_trip(role: str) -> None:
    token = tokens.issue(SECRET, "user_1.x-y", role, ttl=60)
    who = tokens.verify(SECRET, token)
    assert who == tokens.Identity("user_1.x-y", role)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "user_1.x-y" and claims["role"] == role
    assert int(time.time()) + 55 <= claims["exp"] <= int(time.time()) + 61
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_identity_roles() -> None:
    assert not tokens.Identity("a", "viewer").is_creator
    assert tokens.Identity("a", "creator").is_creator
    assert not tokens.Identity("a", "creator").is_admin
    assert tokens.Identity("a", "admin").is_creator and tokens.Identity("a", "admin").is_admin


@pytest.mark.parametrize(
    ("user", "role", "ttl"),
    [
        ("", "viewer", 60),
        ("bad user", "viewer", 60),
        ("u" * 65, "viewer", 60),
        ("u", "owner", 60),
        ("u", "", 60),
        ("u", "viewer", 0),
        ("u", "viewer", -5),
        ("u", "viewer", 1.5),
        ("u", "viewer", True),
        ("u", "viewer", 367 * 86400),
    ],
)
def test_issue_refuses(user: str, role: str, ttl: Any) -> None:
    with pytest.raises(BadRequest):
        tokens.issue(SECRET, user, role, ttl)


def _sign(claims: dict[str, Any], secret: str = SECRET, alg: str = "HS256") -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short key for HS512 is the point of one case
        return jwt.encode(claims, secret, algorithm=alg)


def test_verify_expired() -> None:
    token = _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) - 10})
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(SECRET, token)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b.c",
        None,
        42,
        _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) + 60}, "other-secret" * 3),
        _sign({"sub": "u", "role": "viewer", "exp": int(time.time()) + 60}, alg="HS512"),
        _sign({"sub": "u", "role": "owner", "exp": int(time.time()) + 60}),
        _sign({"sub": "bad user", "role": "viewer", "exp": int(time.time()) + 60}),
        _sign({"sub": 5, "role": "viewer", "exp": int(time.time()) + 60}),
        _sign({"role": "viewer", "exp": int(time.time()) + 60}),
        _sign({"sub": "u", "exp": int(time.time()) + 60}),
        _sign({"sub": "u", "role": "viewer"}),
        jwt.encode({"sub": "u", "role": "admin", "exp": int(time.time()) + 60}, "", "none"),
    ],
    ids=lambda t: str(t)[:12],
)
def test_verify_refuses(token: Any) -> None:
    with pytest.raises(Unauthorized):
        tokens.verify(SECRET, token)


def test_resolve_secret(tmp_path: Path) -> None:
    assert tokens.resolve_secret("given", tmp_path) == "given"
    made = tokens.resolve_secret(None, tmp_path / "d")
    assert len(made) >= 32
    assert tokens.resolve_secret(None, tmp_path / "d") == made  # kept in the data dir
    assert (tmp_path / "d" / "secret").stat().st_mode & 0o077 == 0


# -- settings -------------------------------------------------------------------------


def test_settings_defaults() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.http_port) == ("127.0.0.1", 8765, 8080)
    assert s.data_dir == Path("./livesrv-data") and s.redis_url is None
    assert s.max_frame == 64 * 1024 and s.hello_timeout == 10.0
    assert s.hold_seconds == 72 * 3600 and s.day_limit == 500_000
    assert s.min_withdrawal == 2000 and not s.demo
    assert s.hold_ms == s.hold_seconds * 1000


def test_settings_from_env_parses_each_type() -> None:
    s = Settings.from_env(
        {
            "LIVESRV_PORT": "9001",
            "LIVESRV_HOST": "0.0.0.0",
            "LIVESRV_DATA_DIR": "/var/lib/x",
            "LIVESRV_REDIS_URL": "redis://h:1/0",
            "LIVESRV_HELLO_TIMEOUT": "2.5",
            "LIVESRV_SETTLE": "off",
            "LIVESRV_CATALOG": "cat.json",
            "LIVESRV_HTTP_PORT": "",  # empty means unset
            "OTHER_PORT": "1",
        }
    )
    assert s.port == 9001 and s.host == "0.0.0.0"
    assert s.data_dir == Path("/var/lib/x") and s.redis_url == "redis://h:1/0"
    assert s.hello_timeout == 2.5 and s.settle is False
    assert s.catalog == Path("cat.json") and s.http_port == 8080


@pytest.mark.parametrize("raw", ["1", "true", "YES", "on"])
def test_settings_bool_true(raw: str) -> None:
    assert Settings.from_env({"LIVESRV_DEMO": raw}).demo is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off"])
def test_settings_bool_false(raw: str) -> None:
    assert Settings.from_env({"LIVESRV_DEMO": raw}).demo is False


@pytest.mark.parametrize(
    ("name", "raw"),
    [("PORT", "eighty"), ("PORT", "1.5"), ("DEMO", "maybe"), ("HELLO_TIMEOUT", "soon")],
)
def test_settings_bad_values_name_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ValueError, match=f"LIVESRV_{name}"):
        Settings.from_env({f"LIVESRV_{name}": raw})


def test_settings_overrides_beat_env_and_none_is_not_given() -> None:
    s = Settings.from_env({"LIVESRV_PORT": "9001"}, port=9002, host=None)
    assert s.port == 9002 and s.host == "127.0.0.1"


def test_demo_mode_holds_nothing_unless_told() -> None:
    assert Settings.from_env({"LIVESRV_DEMO": "1"}).hold_seconds == 0
    assert Settings.from_env({}, demo=True).hold_seconds == 0
    assert Settings.from_env({"LIVESRV_DEMO": "1", "LIVESRV_HOLD_SECONDS": "60"}).hold_seconds == 60
    assert Settings.from_env({}, demo=True, hold_seconds=30).hold_seconds == 30
    assert Settings.from_env({}).hold_seconds == 72 * 3600


def test_settings_are_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(FrozenInstanceError):
        s.port = 1  # type: ignore[misc]


# -- catalogue ------------------------------------------------------------------------

ECONOMY_PACKAGES = {
    "p65": (65, 99),
    "p330": (330, 499),
    "p660": (660, 999),
    "p1321": (1321, 1999),
    "p3303": (3303, 4999),
    "p6607": (6607, 9999),
}
ECONOMY_GIFTS = {
    "rose": (1, True),
    "finger_heart": (5, True),
    "panda": (5, True),
    "rainbow_puke": (100, False),
    "concert": (500, False),
    "im_very_rich": (1000, False),
    "drama_queen": (5000, False),
    "interstellar": (10000, False),
    "planet": (15000, False),
    "rocket": (20000, False),
    "lion": (29999, False),
    "universe": (34999, False),
}


def test_builtin_catalogue_is_economy_md() -> None:
    cat = Catalog.load()
    assert {k: (p.coins, p.cents) for k, p in cat.packages.items()} == ECONOMY_PACKAGES
    assert {k: (g.coins, g.streak) for k, g in cat.gifts.items()} == ECONOMY_GIFTS
    assert cat.streak_window_ms == 3000
    assert cat.gift_share_bps == 5000
    assert cat.diamonds_to_cents(200) == 100  # 200 diamonds = $1


def test_catalogue_wire_form() -> None:
    wire = Catalog.load().to_wire()
    assert {"gift": "rose", "coins": 1, "streak": True} in wire["gifts"]
    assert {"package": "p65", "coins": 65, "cents": 99} in wire["packages"]
    assert len(wire["gifts"]) == 12 and len(wire["packages"]) == 6


def _catalog(**change: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "packages": {"p1": {"coins": 10, "cents": 15}},
        "gifts": {"g": {"coins": 2, "streak": True}},
    }
    d.update(change)
    return d


def test_catalogue_from_dict_defaults() -> None:
    cat = Catalog.from_dict(_catalog())
    assert cat.gifts["g"].coins == 2 and cat.gifts["g"].streak
    assert cat.streak_window_ms == 3000 and cat.gift_share_bps == 5000
    assert cat.sub_prices == (350, 700, 1750)


def test_catalogue_load_file(tmp_path: Path) -> None:
    path = tmp_path / "cat.json"
    path.write_text(json.dumps(_catalog(streak_window_ms=500, gift_share_bps=7000)))
    cat = Catalog.load(path)
    assert cat.streak_window_ms == 500 and cat.gift_share_bps == 7000
    assert set(cat.gifts) == {"g"}


@pytest.mark.parametrize(
    "bad",
    [
        {"packages": None},
        {"gifts": []},
        {"gifts": {"g": {"coins": 2}}},
        {"gifts": {"g": {"coins": 2.0, "streak": True}}},
        {"gifts": {"g": {"coins": "2", "streak": True}}},
        {"gifts": {"g": {"coins": True, "streak": True}}},
        {"gifts": {"g": {"coins": 0, "streak": True}}},
        {"gifts": {"g": {"coins": -1, "streak": True}}},
        {"packages": {"p": {"coins": 0, "cents": 1}}},
        {"packages": {"p": {"coins": 5}}},
        {"gift_share_bps": 10_001},
        {"gift_share_bps": -1},
        {"sub_share_bps": 20_000},
        {"shop_platform_bps": 0.5},
        {"streak_window_ms": "3s"},
    ],
)
def test_catalogue_validation(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="invalid catalogue"):
        Catalog.from_dict(_catalog(**bad))


def test_catalogue_missing_sections() -> None:
    with pytest.raises(ValueError, match="invalid catalogue"):
        Catalog.from_dict({"packages": {}})
    with pytest.raises(ValueError, match="invalid catalogue"):
        Catalog.from_dict({"gifts": {}})


# -- settlement arithmetic ---------------------------------------------------------------


def test_credits_for_an_outbox_entry() -> None:
    fields = {
        "kind": "gift",
        "user": "bob",
        "coins": "7",
        "key": "k1",
        "p": json.dumps({"room": "r", "e": [["alice", "gift:5000", 5000]]}),
    }
    assert settlement.credits_for(3, "1700-0", fields) == [
        settlement.Credit("alice", "gift:5000", 5000, 7, "3:1700-0:0")
    ]


def test_credits_for_several_earners_have_distinct_refs() -> None:
    fields = {
        "coins": "100",
        "p": json.dumps({"e": [["seller", "shop:8200", 8200], ["host", "shop:1000", 1000]]}),
    }
    credits = settlement.credits_for(0, "5-1", fields)
    assert [(c.earner, c.bps, c.coins, c.ref) for c in credits] == [
        ("seller", 8200, 100, "0:5-1:0"),
        ("host", 1000, 100, "0:5-1:1"),
    ]


@pytest.mark.parametrize(
    ("coins", "bps", "diamonds"),
    [
        (0, 5000, 0),
        (1, 5000, 0),
        (2, 5000, 1),
        (3, 5000, 1),
        (34999, 5000, 17499),
        (10_000, 10_000, 10_000),
        (7, 0, 0),
        (1, 9999, 0),
        (10_001, 9999, 9999),
    ],
)
def test_diamonds_for(coins: int, bps: int, diamonds: int) -> None:
    assert settlement.diamonds_for(coins, bps) == diamonds


def _carry(spends: list[int], bps: int) -> list[int]:
    """What the worker credits per entry: floor(total x share) - credited so far."""
    earned = credited = 0
    out = []
    for coins in spends:
        earned += coins
        target = settlement.diamonds_for(earned, bps)
        out.append(target - credited)
        credited = target
    return out


def test_two_roses_make_one_diamond() -> None:
    assert _carry([1, 1], 5000) == [0, 1]
    assert _carry([1, 1, 1, 1, 1], 5000) == [0, 1, 0, 1, 0]


def test_remainders_are_never_lost() -> None:
    rng = random.Random(7)
    for bps in (5000, 8200, 1000, 3333, 1):
        spends = [rng.randrange(1, 35000) for _ in range(500)]
        deltas = _carry(spends, bps)
        assert all(d >= 0 for d in deltas)
        assert sum(deltas) == sum(spends) * bps // 10_000


def _lua_target(earned: int, bps: int) -> int:
    # settle.lua's overflow-safe form of floor(earned x bps / 10000)
    return (earned // 10_000) * bps + ((earned % 10_000) * bps) // 10_000


def test_settle_script_formula_matches_diamonds_for() -> None:
    lua = scripts.source("settle")
    assert "math.floor(earned / 10000) * bps + math.floor((earned % 10000) * bps / 10000)" in lua
    rng = random.Random(11)
    cases = [(e, b) for e in range(0, 30_001, 7) for b in (1, 800, 1000, 5000, 9999, 10_000)]
    cases += [(rng.randrange(1 << 50), rng.randrange(10_001)) for _ in range(2000)]
    for earned, bps in cases:
        assert _lua_target(earned, bps) == settlement.diamonds_for(earned, bps)


# -- fan-out: deliver and coalesce ------------------------------------------------------


@dataclass(eq=False)
class FakeListener:
    user: str
    codec: Codec
    frames: list[bytes] = field(default_factory=list)

    def send_frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    def messages(self) -> list[Any]:
        out = []
        for frame in self.frames:
            _, _, payload = _unframe(frame)
            value = self.codec.decode(payload if self.codec.binary else payload.decode())
            out.append(value)
        return out


def _ev(name: str, seq: int | None = None, **fields: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {"ev": name, "room": "r", **fields}
    if seq is not None:
        ev["seq"] = seq
    return ev


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    real = Codec.frame

    def counting(self: Codec, message: Any) -> bytes:
        counts[self.name] = counts.get(self.name, 0) + 1
        return real(self, message)

    monkeypatch.setattr(Codec, "frame", counting)
    return counts


def test_deliver_encodes_once_per_codec(encodes: dict[str, int]) -> None:
    listeners = [FakeListener(f"j{i}", JSON_CODEC) for i in range(5)]
    listeners += [FakeListener(f"m{i}", MSGPACK_CODEC) for i in range(4)]
    members = [Member(x, last_seq=1, backlog=None) for x in listeners]
    batch = [_ev("gift", 2, coins=1), _ev("like", total=3), _ev("gift", 3, coins=5)]
    assert deliver(members, batch) == 9
    assert encodes == {JSON: 1, MSGPACK: 1}
    # the very same bytes go to every socket of a codec
    assert len({id(x.frames[0]) for x in listeners[:5]}) == 1
    assert len({id(x.frames[0]) for x in listeners[5:]}) == 1
    for x in listeners:
        assert x.messages() == [batch]
    assert all(m.last_seq == 3 for m in members)


def test_deliver_single_event_is_a_map_not_a_list() -> None:
    x = FakeListener("a", MSGPACK_CODEC)
    deliver([Member(x, backlog=None)], [_ev("viewers", count=2)])
    assert x.messages() == [{"ev": "viewers", "room": "r", "count": 2}]


def test_deliver_empty_batch_sends_nothing() -> None:
    x = FakeListener("a", JSON_CODEC)
    assert deliver([Member(x, backlog=None)], []) == 0
    assert x.frames == []


def test_deliver_filters_what_a_member_already_has(encodes: dict[str, int]) -> None:
    fresh = FakeListener("fresh", JSON_CODEC)
    behind = FakeListener("behind", JSON_CODEC)
    ahead = FakeListener("ahead", JSON_CODEC)
    done = FakeListener("done", JSON_CODEC)
    members = [
        Member(fresh, last_seq=4, backlog=None),
        Member(behind, last_seq=5, backlog=None),  # has seq 5 from its replay
        Member(ahead, last_seq=6, backlog=None),
        Member(done, last_seq=9, backlog=None),
    ]
    batch = [_ev("chat", 5), _ev("viewers", count=1), _ev("chat", 6)]
    assert deliver(members, batch) == 4
    assert fresh.messages() == [batch]
    assert behind.messages() == [[batch[1], batch[2]]]
    # only the unlogged event is new to these two
    assert ahead.messages() == [batch[1]]
    assert done.messages() == [batch[1]]
    assert [m.last_seq for m in members] == [6, 6, 6, 9]
    assert encodes[JSON] == 4  # the shared frame once, plus one per filtered member


def test_deliver_skips_a_member_with_nothing_new() -> None:
    x = FakeListener("a", JSON_CODEC)
    m = Member(x, last_seq=10, backlog=None)
    assert deliver([m], [_ev("gift", 9), _ev("gift", 10)]) == 0
    assert x.frames == [] and m.last_seq == 10


def test_deliver_unlogged_only_batch_reaches_everyone() -> None:
    xs = [FakeListener("a", JSON_CODEC), FakeListener("b", JSON_CODEC)]
    members = [Member(xs[0], last_seq=0, backlog=None), Member(xs[1], last_seq=50, backlog=None)]
    assert deliver(members, [_ev("like", total=9)]) == 2
    assert [m.last_seq for m in members] == [0, 50]


def test_deliver_holds_events_for_a_member_being_synced() -> None:
    waiting = FakeListener("w", JSON_CODEC)
    live = FakeListener("l", JSON_CODEC)
    wm = Member(waiting, last_seq=0)  # backlog is a list: join still in progress
    lm = Member(live, last_seq=0, backlog=None)
    batch1 = [_ev("gift", 1)]
    batch2 = [_ev("like", total=1), _ev("gift", 2)]
    assert deliver([wm, lm], batch1) == 1
    assert deliver([wm, lm], batch2) == 1
    assert waiting.frames == [] and wm.backlog == [*batch1, *batch2]
    # once synced (as Hub.synced does) the backlog goes out, filtered by last_seq
    wm.last_seq = 1
    held, wm.backlog = wm.backlog, None
    assert deliver([wm], held) == 1
    assert waiting.messages() == [batch2]
    assert wm.last_seq == 2


def test_coalesce_keeps_logged_and_newest_unlogged() -> None:
    events = [
        _ev("like", total=1),
        _ev("gift", 1),
        _ev("like", total=2),
        _ev("viewers", count=1),
        _ev("gift", 2),
        _ev("viewers", count=3),
        _ev("top", top=[["a", 1]]),
    ]
    out = _coalesce(events)
    assert out == [events[1], events[2], events[4], events[5], events[6]]
    assert [e["seq"] for e in out if "seq" in e] == [1, 2]


def test_coalesce_without_duplicates_is_unchanged() -> None:
    events = [_ev("gift", 1), _ev("like", total=1), _ev("chat", 2), _ev("viewers", count=2)]
    assert _coalesce(events) == events
    assert _coalesce([]) == []


def test_coalesce_many_likes_become_one() -> None:
    events = [_ev("like", total=t) for t in range(1, 101)]
    assert _coalesce(events) == [events[-1]]


# -- rate limiting ------------------------------------------------------------------------


def test_token_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    now[0] += 100  # never more than the burst
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


# -- the exception tree ---------------------------------------------------------------


def _doc_section(title: str) -> str:
    text = DOCS.read_text()
    start = text.index(f"## {title}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_error_codes_match_the_protocol() -> None:
    documented = re.findall(r"`([a-z_]+)`", _doc_section("Error codes"))
    assert len(documented) == 12  # the core contract's codes
    added = re.findall(r"^`([a-z_]+)`", _doc_section("Error codes added"), re.MULTILINE)
    assert set(errors.ERROR_CODES) == set(documented) | set(added)
    assert len(errors.ERROR_CODES) == len(set(errors.ERROR_CODES))


def test_every_code_has_one_class() -> None:
    classes: list[type[errors.LivesrvError]] = [errors.LivesrvError, *errors.BY_CODE.values()]
    assert sorted(c.code for c in classes) == sorted(errors.ERROR_CODES)
    for code, cls in errors.BY_CODE.items():
        assert cls.code == code
        assert issubclass(cls, errors.LivesrvError)
        exc = cls()
        assert exc.code == code and exc.message == cls.default_message and exc.message
        assert cls("custom").message == "custom"
    assert errors.LivesrvError().code == "internal"
    assert not issubclass(errors.StoreError, errors.LivesrvError)


def test_tree_is_listed_in_the_module_docstring() -> None:
    doc = errors.__doc__ or ""
    for cls in errors.BY_CODE.values():
        assert re.search(rf"{cls.__name__}\s+\"{cls.code}\"", doc), cls.__name__


def test_close_codes_match_the_protocol() -> None:
    documented = {int(n) for n in re.findall(r"\b(\d{4})\b", _doc_section("Close codes"))}
    added = {int(n) for n in re.findall(r"^(\d{4}):", _doc_section("Close codes added"), re.M)}
    cc = errors.CloseCode
    ours = {
        cc.TOO_BIG,
        cc.GOING_AWAY,
        cc.ABUSE,
        cc.UNAUTHORIZED,
        cc.HELLO_TIMEOUT,
        cc.SLOW_CONSUMER,
        cc.RATE_LIMIT,
        cc.TOO_MANY_CONNECTIONS,
    }
    assert documented == {1009, 1001, 4400, 4401, 4408, 4409, 4429}  # the core contract
    assert added == {4430}
    assert ours == documented | added
