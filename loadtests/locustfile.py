"""Locust scenarios for livesrv: creators open a room, viewers stay and chat, gifters spend.

Run against a running server (see docs/benchmarks.md)::

    export LIVESRV_HTTP_URL=http://127.0.0.1:8080
    export LIVESRV_ADMIN_TOKEN=$(livesrv token locust-admin --role admin --data-dir ./livesrv-data)
    locust -f loadtests/locustfile.py --headless -u 200 -r 50 -t 30s \\
        --csv loadtests/results/locust --host ws://127.0.0.1:8765

Environment:
    LIVESRV_HTTP_URL     admin HTTP base URL (default http://127.0.0.1:8080)
    LIVESRV_ADMIN_TOKEN  a token with role admin, used to mint user tokens (POST /api/tokens)
                         and signed coin receipts (POST /api/receipts, as a payment backend
                         would); when unset, LIVESRV_DATA_DIR is used to mint one with the CLI
    LIVESRV_DATA_DIR     the server's data dir (only read when LIVESRV_ADMIN_TOKEN is unset)
    LIVESRV_ROOM         the room everyone uses (default "locust")
    LIVESRV_TIMEOUT      seconds to wait for a reply (default 10)

What is reported:
    request_type "ws"    one row per op (hello, join, like, chat, buy_coins, gift, ...): the
                         time from sending the request to its reply. An error reply, a
                         timeout or a closed connection is a failure with the error code.
    request_type "event" one row per event name: delivery latency, now - the event's ``ts``
                         (server time in ms when the event was created; same clock here).
    request_type "close" a connection the server closed, by close code (a failure).

The client is ``websocket-client`` (blocking sockets, cooperative under locust's gevent
monkey-patching); one reader greenlet per connection matches replies to requests by id.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # first, before anything imports ssl (locust itself does the same)

import contextlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
import websocket  # noqa: E402
from gevent.event import AsyncResult  # noqa: E402
from locust import User, between, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

HTTP_URL = os.environ.get("LIVESRV_HTTP_URL", "http://127.0.0.1:8080").rstrip("/")
ROOM = os.environ.get("LIVESRV_ROOM", "locust")
TIMEOUT = float(os.environ.get("LIVESRV_TIMEOUT", "10"))
SUBPROTOCOL = "livesrv.v1.json"
CHEAP_GIFTS = ("rose", "rose", "rose", "finger_heart", "panda")
GIFT_COINS = {"rose": 1, "finger_heart": 5, "panda": 5}

_admin_token: str | None = os.environ.get("LIVESRV_ADMIN_TOKEN") or None


class OpError(Exception):
    """An error reply; the message is the protocol error code."""


def admin_token() -> str:
    """The admin token: from the environment, or minted once with the CLI."""
    global _admin_token
    if _admin_token is None:
        data_dir = os.environ.get("LIVESRV_DATA_DIR")
        if not data_dir:
            raise RuntimeError("set LIVESRV_ADMIN_TOKEN (or LIVESRV_DATA_DIR) to mint tokens")
        out = subprocess.run(
            ["livesrv", "token", "locust-admin", "--role", "admin", "--data-dir", data_dir],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        _admin_token = out.split()[-1]
    return _admin_token


def mint_token(user: str, role: str) -> str:
    resp = requests.post(
        f"{HTTP_URL}/api/tokens",
        json={"user": user, "role": role, "ttl": 3600},
        headers={"Authorization": f"Bearer {admin_token()}"},
        timeout=TIMEOUT,
    )
    resp.raise_for_status()
    return str(resp.json()["token"])


def mint_receipt(user: str, package: str) -> str:
    """A fresh payment's receipt for ``user``, signed by the server's admin API."""
    resp = requests.post(
        f"{HTTP_URL}/api/receipts",
        json={"user": user, "package": package, "id": f"lc-{uuid.uuid4().hex}"},
        headers={"Authorization": f"Bearer {admin_token()}"},
        timeout=TIMEOUT,
    )
    resp.raise_for_status()
    return str(resp.json()["receipt"])


class LivesrvSocket:
    """One protocol connection that reports every reply and event to locust."""

    def __init__(self, environment: Environment, url: str) -> None:
        self.env = environment
        self.ids = itertools.count(1)
        self.pending: dict[Any, AsyncResult] = {}
        self.closing = False
        t0 = time.perf_counter()
        try:
            self.ws = websocket.create_connection(
                url,
                subprotocols=[SUBPROTOCOL],
                timeout=TIMEOUT,
                enable_multithread=True,
            )
        except Exception as exc:
            self._fire("ws", "connect", t0, 0, exc)
            raise
        self._fire("ws", "connect", t0, 0, None)
        self.ws.settimeout(None)
        self.reader = gevent.spawn(self._read_loop)

    def _fire(self, kind: str, name: str, t0: float, length: int, exc: Exception | None) -> None:
        self.env.events.request.fire(
            request_type=kind,
            name=name,
            response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=length,
            exception=exc,
            context={},
        )

    def _read_loop(self) -> None:
        code = 1006  # no close frame: reset or EOF
        while True:
            try:
                opcode, data = self.ws.recv_data()
            except Exception:
                break
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                break
            self._dispatch(data)
        if not self.closing:
            self.env.events.request.fire(
                request_type="close",
                name=str(code),
                response_time=0,
                response_length=0,
                exception=ConnectionError(f"server closed the connection ({code})"),
                context={},
            )
        for ar in self.pending.values():
            ar.set_exception(ConnectionError("connection closed"))
        self.pending.clear()

    def _dispatch(self, data: bytes) -> None:
        now_ms = time.time() * 1000.0
        try:
            msg = json.loads(data)
        except ValueError:
            return
        batch = msg if isinstance(msg, list) else [msg]
        size = len(data) // max(len(batch), 1)
        for m in batch:
            if not isinstance(m, dict):
                continue
            if "ev" in m:
                ts = m.get("ts")
                self.env.events.request.fire(
                    request_type="event",
                    name=str(m["ev"]),
                    response_time=max(0.0, now_ms - ts) if isinstance(ts, (int, float)) else 0,
                    response_length=size,
                    exception=None,
                    context={},
                )
            else:
                ar = self.pending.pop(m.get("id"), None)
                if ar is not None:
                    ar.set(m)

    def request(self, op: str, **args: Any) -> dict[str, Any] | None:
        """Send one request, wait for its reply and report it. Returns the reply when ok."""
        rid = next(self.ids)
        ar = AsyncResult()
        self.pending[rid] = ar
        payload = json.dumps({"id": rid, "op": op, **args})
        t0 = time.perf_counter()
        try:
            self.ws.send(payload)
            reply = ar.get(timeout=TIMEOUT)
        except gevent.Timeout:
            self.pending.pop(rid, None)
            self._fire("ws", op, t0, 0, TimeoutError(f"no reply in {TIMEOUT}s"))
            return None
        except Exception as exc:
            self.pending.pop(rid, None)
            self._fire("ws", op, t0, 0, exc)
            return None
        if reply.get("ok"):
            self._fire("ws", op, t0, len(json.dumps(reply)), None)
            return reply
        code = (reply.get("error") or {}).get("code", "error")
        self._fire("ws", op, t0, 0, OpError(str(code)))
        return None

    def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            self.ws.close()
        self.reader.kill(block=False)


class LivesrvUser(User):
    """Base: connects and says hello as a fresh user of ``role``."""

    abstract = True
    role = "viewer"

    def on_start(self) -> None:
        self.user_id = self.make_user_id()
        url = self.host or "ws://127.0.0.1:8765"
        if not url.rstrip("/").endswith("/ws"):
            url = url.rstrip("/") + "/ws"
        token = mint_token(self.user_id, self.role)
        self.sock = LivesrvSocket(self.environment, url)
        hello = self.sock.request("hello", token=token)
        self.coins = int(hello["coins"]) if hello else 0

    def make_user_id(self) -> str:
        return f"lc-{self.role[0]}-{uuid.uuid4().hex[:12]}"

    def on_stop(self) -> None:
        sock = getattr(self, "sock", None)
        if sock is not None:
            sock.close()

    def wait_for_room(self, limit: float = 60.0) -> bool:
        """Poll the ``rooms`` op until the room is live (the creator may start later)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            reply = self.sock.request("rooms")
            if reply and any(r.get("room") == ROOM for r in reply.get("rooms", [])):
                return True
            gevent.sleep(1.0)
        return False

    def join(self) -> bool:
        if not self.wait_for_room():
            self.environment.events.request.fire(
                request_type="ws",
                name="join",
                response_time=0,
                response_length=0,
                exception=OpError(f"room {ROOM} never went live"),
                context={},
            )
            return False
        return self.sock.request("join", room=ROOM) is not None


class CreatorUser(LivesrvUser):
    """Opens the room and keeps it live; chats now and then."""

    fixed_count = 1
    role = "creator"
    wait_time = between(5, 10)

    def make_user_id(self) -> str:
        # one stable creator per room, so a later run can reopen the room it owns
        return f"lc-creator-{ROOM}"[:64]

    def on_start(self) -> None:
        super().on_start()
        self.sock.request("room_open", room=ROOM, title="locust load test")
        self.sock.request("join", room=ROOM)  # chat needs the creator in the room too

    @task
    def say_something(self) -> None:
        self.sock.request("chat", room=ROOM, text=f"thanks everyone {random.randint(1, 999)}")

    def on_stop(self) -> None:
        if getattr(self, "sock", None) is not None:
            self.sock.request("room_close", room=ROOM)
        super().on_stop()


class ViewerUser(LivesrvUser):
    """Joins the room, stays, likes and chats."""

    weight = 10
    wait_time = between(1, 3)

    def on_start(self) -> None:
        super().on_start()
        self.joined = self.join()

    @task(5)
    def like(self) -> None:
        if self.joined:
            self.sock.request("like", room=ROOM, count=random.randint(1, 5))

    @task(1)
    def chat(self) -> None:
        if self.joined:
            self.sock.request("chat", room=ROOM, text=random.choice(("hi", "wow", "lol", "gg")))


class GifterUser(LivesrvUser):
    """Buys coins, then sends keyed gifts; buys again before running out."""

    weight = 2
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        super().on_start()
        self.joined = self.join()
        self.buy()

    def buy(self) -> None:
        receipt = mint_receipt(self.user_id, "p330")
        reply = self.sock.request("buy_coins", package="p330", receipt=receipt)
        if reply:
            self.coins = int(reply["coins"])

    @task
    def gift(self) -> None:
        if not self.joined:
            return
        gift = random.choice(CHEAP_GIFTS)
        count = random.randint(1, 3)
        if self.coins < GIFT_COINS[gift] * count:
            self.buy()
        reply = self.sock.request(
            "gift", room=ROOM, gift=gift, count=count, key=f"lc-{uuid.uuid4().hex}"
        )
        if reply:
            self.coins = int(reply["coins"])


@events.init_command_line_parser.add_listener
def _args(parser: Any) -> None:
    parser.add_argument("--livesrv-room", default=None, help="room to use (or LIVESRV_ROOM)")


@events.test_start.add_listener
def _on_start(environment: Environment, **_: Any) -> None:
    global ROOM
    opts = environment.parsed_options
    if opts is not None and getattr(opts, "livesrv_room", None):
        ROOM = opts.livesrv_room
