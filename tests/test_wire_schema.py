"""Sans-I/O tests of the op schema (:mod:`livesrv.wire.schema`): ``parse`` and
``request_id`` with data in and data out; every op's arguments and their bounds.
"""

from __future__ import annotations

from typing import Any

import pytest

from livesrv.errors import BadRequest
from livesrv.wire.schema import Request, parse, request_id


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
