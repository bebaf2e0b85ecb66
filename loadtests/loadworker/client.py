"""One protocol session of a load worker: request/reply by id, events counted in place or
decoded (sampled viewers), creators' wallet events kept.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any

import orjson

from loadtests import wsclient

GIFT_PATTERNS = (b'"ev":"gift"', b'"ev": "gift"')


class OpError(Exception):
    """An error reply: ``code`` is the protocol error code."""

    def __init__(self, op: str, code: str, message: str = "") -> None:
        super().__init__(f"{op}: {code} {message}")
        self.op = op
        self.code = code


class Client:
    """One protocol session: request/reply by id, events counted or decoded."""

    __slots__ = (
        "ws",
        "pending",
        "next_id",
        "sample",
        "gifts",
        "events",
        "lat",
        "last_seq",
        "gaps",
        "dups",
        "last_recv",
        "wallet",
        "slow",
        "user",
        "room",
        "recv_by_from",
        "lat_t",
    )

    def __init__(self, *, sample: bool = False, wallet: bool = False) -> None:
        self.ws: wsclient.WSClient | None = None
        self.pending: dict[int, tuple[asyncio.Future[dict[str, Any]], float, str]] = {}
        self.next_id = 0
        self.sample = sample
        self.gifts = 0  # gift events received since the last reset
        self.events = 0  # decoded events of any kind (sampled clients only)
        self.lat: array[float] | None = array("d") if sample else None
        self.lat_t: array[float] = array("d")  # receive time of each latency sample
        # sampled viewers keep each gift event's receive time by sender, to pair the k-th
        # event from a gifter with the k-th gift that gifter sent (end-to-end latency)
        self.recv_by_from: dict[str, list[float]] = {}
        self.last_seq: dict[str, int] = {}
        self.gaps = 0
        self.dups = 0
        self.last_recv = 0.0
        self.wallet: list[tuple[float, int]] | None = [] if wallet else None
        self.slow = False
        self.user = ""
        self.room = ""

    # -- receiving ----------------------------------------------------------------------
    def on_message(self, payload: bytes) -> None:
        if not self.sample and self.wallet is None and b'"id"' not in payload:
            # fast path: a frame with no reply in it (events only) to a client that keeps
            # no samples: gift events are counted, nothing is decoded (a gifter gets its
            # room's events at every tick while its own gifts are in flight)
            n = payload.count(GIFT_PATTERNS[0]) or payload.count(GIFT_PATTERNS[1])
            if n:
                self.gifts += n
                self.last_recv = time.time()
            return
        self._decode(payload)

    def _decode(self, payload: bytes) -> None:
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        now = time.time()
        if isinstance(msg, list):
            for m in msg:
                self._one(m, now)
        else:
            self._one(msg, now)

    def _one(self, m: dict[str, Any], now: float) -> None:
        if "ev" in m:
            ev = m["ev"]
            self.events += 1
            if ev == "gift":
                self.gifts += 1
                self.last_recv = now
                if self.lat is not None:
                    if "ts" in m:
                        self.lat.append(now * 1000.0 - m["ts"])
                        self.lat_t.append(now)
                    sender = m.get("from", "")
                    times = self.recv_by_from.get(sender)
                    if times is None:
                        times = self.recv_by_from[sender] = []
                    times.append(now)
            seq = m.get("seq")
            if seq is not None and self.sample:
                room = m.get("room", "")
                last = self.last_seq.get(room)
                if last is not None:
                    if seq > last + 1:
                        self.gaps += seq - last - 1
                    elif seq <= last:
                        self.dups += 1
                self.last_seq[room] = max(seq, last or 0)
            if ev == "wallet" and self.wallet is not None:
                self.wallet.append((now, int(m.get("diamonds", 0)) + int(m.get("pending", 0))))
            return
        rid = m.get("id")
        entry = self.pending.pop(rid, None) if rid is not None else None
        if entry is not None and not entry[0].done():
            entry[0].set_result(m)

    # -- requests -----------------------------------------------------------------------
    def send_op(self, op: str, frame_payload: bytes) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        """Send an already encoded request whose id is ``self.next_id`` (see :meth:`new_id`)."""
        rid = self.next_id
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[rid] = (fut, time.perf_counter(), op)
        assert self.ws is not None
        self.ws.send(frame_payload)
        return rid, fut

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    async def request(self, op: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
        rid = self.new_id()
        payload = orjson.dumps({"id": rid, "op": op, **args})
        _, fut = self.send_op(op, payload)
        try:
            reply = await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(rid, None)
        if not reply.get("ok"):
            err = reply.get("error") or {}
            raise OpError(op, str(err.get("code")), str(err.get("message", "")))
        return reply

    def total_gifts(self) -> int:
        return self.gifts + (self.ws.counted if self.ws is not None else 0)

    def last_gift(self) -> float:
        return max(self.last_recv, self.ws.last_count if self.ws is not None else 0.0)

    def reset(self) -> None:
        if self.ws is not None:
            self.ws.counted = 0
            self.ws.last_count = 0.0
        self.gifts = 0
        self.events = 0
        if self.lat is not None:
            self.lat = array("d")
        self.lat_t = array("d")
        self.recv_by_from = {}
        self.gaps = 0
        self.dups = 0
        self.last_recv = 0.0


async def open_client(
    url: str,
    token: str,
    *,
    source_ip: str | None,
    sample: bool = False,
    wallet: bool = False,
    rcvbuf: int | None = None,
) -> tuple[Client, dict[str, Any]]:
    client = Client(sample=sample, wallet=wallet)
    client.ws = await wsclient.connect(
        url, on_message=client.on_message, source_ip=source_ip, rcvbuf=rcvbuf
    )
    hello = await client.request("hello", token=token)
    client.user = str(hello.get("user", ""))
    return client, hello
