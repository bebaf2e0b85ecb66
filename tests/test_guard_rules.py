"""Sans-I/O tests of the abuse defences: identifier patterns, the HTTP head detector, the
WebSocket connection budget and Origin list, and their settings."""

from __future__ import annotations

import time

import jwt
import pytest

from livesrv.errors import BadRequest, Unauthorized
from livesrv.http.guard import head_complete
from livesrv.realtime.admission import FD_RESERVE, allowed_origins, ws_budget
from livesrv.settings import Settings
from livesrv.wire import tokens
from livesrv.wire.schema import IDENT, Field, check, parse

SECRET = "unit-secret-0123456789abcdef0123456789abcdef"
BAD_IDS = [
    "studio\n",
    "studio\r\n",
    "stu\x00dio",
    "studio\u202e",
    "studi\u043e",
    "\u0430lice",
    "",
    "a" * 65,
    "with space",
    "tab\t",
    "emoji\U0001f600",
    "\nstudio",
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ident_is_matched_against_the_whole_string(bad: str) -> None:
    assert IDENT.fullmatch(bad) is None
    with pytest.raises(BadRequest, match="room must be 1-64"):
        check(Field("room", "ident"), bad)
    with pytest.raises(BadRequest):
        parse({"id": 1, "op": "room_open", "room": bad, "title": "t"})
    with pytest.raises(BadRequest):
        tokens.issue(SECRET, bad, "viewer")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_token_with_a_lookalike_subject_is_refused(bad: str) -> None:
    forged = jwt.encode(
        {"sub": bad, "role": "viewer", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256"
    )
    with pytest.raises(Unauthorized):
        tokens.verify(SECRET, forged)


@pytest.mark.parametrize("good", ["studio", "a", "A-b_c.9", "x" * 64])
def test_good_idents(good: str) -> None:
    assert check(Field("room", "ident"), good) == good
    assert tokens.verify(SECRET, tokens.issue(SECRET, good, "viewer")).user == good


@pytest.mark.parametrize(
    ("chunks", "done_at"),
    [
        ([b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"], 0),
        ([b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"], 2),
        ([b"GET / HTTP/1.1\r\nHost: x\r", b"\n\r", b"\n"], 2),  # the end split across reads
        ([b"GET / HTTP/1.1\nHost: x\n\n"], 0),  # bare LF line ends
        ([b"GET /heal", b"th HTTP/1.1\r\n", b"Host: x\r\n"], None),  # never ends
        ([b"\r\n", b"\r\n"], 1),
    ],
)
def test_head_complete(chunks: list[bytes], done_at: int | None) -> None:
    tail = b""
    for i, chunk in enumerate(chunks):
        done, tail = head_complete(tail, chunk)
        assert done is (i == done_at), i
        assert len(tail) <= 3
        if done:
            return
    assert done_at is None


def test_ws_budget() -> None:
    s = Settings()
    assert ws_budget(s, 65536) == 65536 - s.http_max_connections - FD_RESERVE
    assert ws_budget(s, None) == 1 << 20
    assert ws_budget(s, 100) == 16  # never below a usable floor
    assert ws_budget(Settings(max_connections=7), 65536) == 7


def test_allowed_origins() -> None:
    assert allowed_origins("") is None
    assert allowed_origins(" , ") is None
    assert allowed_origins("https://a.example, https://b.example/") == [
        None,
        "https://a.example",
        "https://b.example",
    ]


def test_limit_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "LIVESRV_MAX_CONNECTIONS": "500",
            "LIVESRV_MAX_CONNECTIONS_PER_USER": "3",
            "LIVESRV_MAX_ROOMS_PER_CONNECTION": "4",
            "LIVESRV_MAX_LIVE_ROOMS_PER_CREATOR": "2",
            "LIVESRV_ALLOWED_ORIGINS": "https://a.example",
            "LIVESRV_HTTP_MAX_CONNECTIONS": "64",
            "LIVESRV_HTTP_HEADER_TIMEOUT": "2.5",
            "LIVESRV_HTTP_KEEPALIVE_TIMEOUT": "7",
        }
    )
    assert (s.max_connections, s.max_connections_per_user) == (500, 3)
    assert (s.max_rooms_per_connection, s.max_live_rooms_per_creator) == (4, 2)
    assert s.allowed_origins == "https://a.example"
    assert (s.http_max_connections, s.http_header_timeout, s.http_keepalive_timeout) == (
        64,
        2.5,
        7.0,
    )
    d = Settings.from_env({})
    assert (d.max_connections, d.max_connections_per_user, d.max_rooms_per_connection) == (
        0,
        10,
        20,
    )
    assert (d.max_live_rooms_per_creator, d.allowed_origins, d.http_max_connections) == (
        5,
        "",
        256,
    )
