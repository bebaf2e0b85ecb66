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

The client is ``livesrv.client`` (request/reply matching, typed errors, reconnect with
``join since``, keyed ops sent again with their key) through ``loadtests/gevent_client.py``:
one asyncio loop in one native thread serves every user of the process, and each user's
greenlet blocks only itself while its call is under way. A dropped connection is reported
as a "close" row and reopened by the library.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # first, before anything imports ssl (locust itself does the same)

import contextlib  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import deque  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import orjson  # noqa: E402
import requests  # noqa: E402
from locust import User, between, events, task  # noqa: E402
from locust.env import Environment  # noqa: E402

from livesrv import client as lib  # noqa: E402

try:  # run from the repository root, or by locust with loadtests/ on the path
    from loadtests.gevent_client import BlockingClient  # noqa: E402
except ImportError:  # pragma: no cover
    from gevent_client import BlockingClient  # type: ignore[no-redef]  # noqa: E402

HTTP_URL = os.environ.get("LIVESRV_HTTP_URL", "http://127.0.0.1:8080").rstrip("/")
ROOM = os.environ.get("LIVESRV_ROOM", "locust")
TIMEOUT = float(os.environ.get("LIVESRV_TIMEOUT", "10"))
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
    """One protocol connection (``livesrv.client``) that reports every reply and event."""

    def __init__(self, environment: Environment, url: str) -> None:
        self.env = environment
        self.closing = False
        self.seen: deque[tuple[str, float, int]] = deque()  # appended on the loop's thread
        t0 = time.perf_counter()
        try:
            # no token: ``hello`` is the first request, reported as its own row; the
            # library keeps that token to say hello again after a reconnect
            self.client = BlockingClient(
                url, None, on_event=self._on_event, on_close=self._on_close, call_timeout=TIMEOUT
            )
        except Exception as exc:
            self._fire("ws", "connect", t0, 0, exc)
            raise
        self._fire("ws", "connect", t0, 0, None)
        self.flusher = gevent.spawn(self._flush_loop)

    def _fire(self, kind: str, name: str, t0: float, length: int, exc: Exception | None) -> None:
        self.env.events.request.fire(
            request_type=kind,
            name=name,
            response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=length,
            exception=exc,
            context={},
        )

    # the two callbacks run on the client's loop thread: they only queue, a greenlet reports
    def _on_event(self, ev: dict[str, Any]) -> None:
        ts = ev.get("ts")
        latency = max(0.0, time.time() * 1000.0 - ts) if isinstance(ts, (int, float)) else 0.0
        self.seen.append((str(ev.get("ev")), latency, 0))

    def _on_close(self, code: int | None) -> None:
        if not self.closing:
            self.seen.append(("", 0.0, code or 1006))

    def _flush_loop(self) -> None:
        while True:
            while self.seen:
                name, latency, code = self.seen.popleft()
                self.env.events.request.fire(
                    request_type="close" if code else "event",
                    name=str(code) if code else name,
                    response_time=latency,
                    response_length=0,
                    exception=ConnectionError(f"server closed the connection ({code})")
                    if code
                    else None,
                    context={},
                )
            gevent.sleep(0.05)

    def request(self, op: str, **args: Any) -> dict[str, Any] | None:
        """Send one request, wait for its reply and report it. Returns the reply when ok."""
        t0 = time.perf_counter()
        try:
            reply = self.client.call(op, timeout=TIMEOUT, **args)
        except lib.ProtocolError as exc:
            self._fire("ws", op, t0, 0, OpError(exc.code))
            return None
        except lib.CallTimeout:
            self._fire("ws", op, t0, 0, TimeoutError(f"no reply in {TIMEOUT}s"))
            return None
        except Exception as exc:
            self._fire("ws", op, t0, 0, exc)
            return None
        self._fire("ws", op, t0, len(orjson.dumps(reply)), None)
        return reply

    def close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            self.client.close()
        self.flusher.kill(block=False)


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
