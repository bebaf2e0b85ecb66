"""A keyed money load for failover tests: users on several livesrv nodes send ops, each
try's outcome is recorded (``ok``, an error code or ``no reply``), and every key that did
not get ``ok`` is retried with the same key and arguments until it gets ``ok`` or a
definitive error. A lost reply (the connection dropped, or no answer in time) makes the
user reconnect on the next node.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from tests.client import Client
from tests.conftest import Running
from tests.timing import scaled

GIFTS = {"rose": 1, "panda": 5, "rainbow_puke": 100}
PACKAGES = {"p65": 65, "p330": 330}
DEFINITIVE = {"insufficient_funds", "out_of_stock", "limit_exceeded"}  # nothing moved
REPLY_S = scaled(8)  # a reply later than this counts as lost (and is a hang, for the test)
LOST = (ConnectionError, ConnectionClosed, TimeoutError, OSError)


@dataclass
class Op:
    """One keyed operation and everything its tries got.

    Attributes:
        args: The request's arguments (``key`` is added for every op but ``buy_coins``,
            whose receipt id is its key; its signed receipt is added on the first try).
        seen: Each try's outcome: ``ok``, an error code, or ``no reply``.
        final: The reply that settled it: ``ok`` or an error other than ``unavailable``.
        acked_at: When it got ``ok`` (monotonic seconds).
    """

    user: str
    name: str
    key: str
    args: dict[str, Any]
    seen: list[str] = field(default_factory=list)
    final: dict[str, Any] | None = None
    acked_at: float = 0.0

    @property
    def done(self) -> bool:
        return self.final is not None

    @property
    def acked(self) -> bool:
        return self.final is not None and self.final.get("ok") is True


@dataclass
class Actor:
    """A user, the node it talks to now, its ops, and the room it joins on each session."""

    user: str
    role: str
    node: int
    ops: list[Op]
    room: str | None
    client: Client | None = None
    expect: dict[str, tuple[int, int]] = field(default_factory=dict)


def code_of(reply: dict[str, Any]) -> str:
    return "ok" if reply.get("ok") else str(reply["error"]["code"])


class Wire:
    """Every reply the test got: counts by code, the ``internal`` ones, the slowest."""

    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()
        self.internal: list[tuple[str, dict[str, Any]]] = []
        self.slowest = 0.0
        self._ids = itertools.count(1)

    def saw(self, op: str, reply: dict[str, Any], took: float) -> None:
        code = code_of(reply)
        self.codes[code] += 1
        self.slowest = max(self.slowest, took)
        if code == "internal":
            self.internal.append((op, reply))

    async def call(self, c: Client, op: str, **args: Any) -> dict[str, Any]:
        """One request; raises TimeoutError when no reply comes within :data:`REPLY_S`."""
        t0 = time.monotonic()
        reply = await c.request({"id": next(self._ids), "op": op, **args}, timeout=REPLY_S)
        self.saw(op, reply, time.monotonic() - t0)
        return reply

    async def ok(self, c: Client, op: str, **args: Any) -> dict[str, Any]:
        """Call, retrying ``unavailable`` (same arguments) for up to 30 s; assert ``ok``."""
        deadline = time.monotonic() + scaled(30)
        while True:
            reply = await self.call(c, op, **args)
            if code_of(reply) != "unavailable" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert reply["ok"] is True, (op, args, reply)
        return reply


class Load:
    """Runs actors' ops against ``nodes`` until ``deadline`` (monotonic seconds)."""

    def __init__(self, nodes: list[Running], wire: Wire, deadline: float) -> None:
        self.nodes = nodes
        self.wire = wire
        self.deadline = deadline
        self.acks = 0

    def acked(self) -> int:
        return self.acks

    def left(self) -> float:
        left = self.deadline - time.monotonic()
        assert left > 0, "the failover test ran out of time"
        return left

    async def session(self, a: Actor) -> Client:
        """``a``'s open connection, or a new one on its node: ``hello``, then ``join`` of its
        room, each retried while ``unavailable``; a lost reply moves it to the next node."""
        while a.client is None:
            self.left()
            node = self.nodes[a.node]
            c = None
            try:
                c = await node.raw()
                await self._until_ok(c, "hello", token=node.token(a.user, a.role))
                if a.room is not None:
                    await self._until_ok(c, "join", room=a.room)
                a.client = c
            except LOST:
                if c is not None:
                    await c.close()
                a.node = (a.node + 1) % len(self.nodes)
        return a.client

    async def _until_ok(self, c: Client, op: str, **args: Any) -> None:
        while True:
            self.left()
            reply = await self.wire.call(c, op, **args)
            if reply["ok"]:
                return
            assert code_of(reply) == "unavailable", (op, reply)
            await asyncio.sleep(0.05)

    async def drop(self, a: Actor) -> None:
        if a.client is not None:
            await a.client.close()
        a.client = None
        a.node = (a.node + 1) % len(self.nodes)

    async def attempt(self, a: Actor, op: Op) -> None:
        """One try of ``op``; its outcome is recorded, an ``ok`` or a definitive reply
        settles it."""
        if op.name == "buy_coins":
            op.args.setdefault("receipt", self.nodes[0].receipt(a.user, op.args["package"], op.key))
            args = op.args
        else:
            args = {**op.args, "key": op.key}
        try:
            c = await self.session(a)
            reply = await self.wire.call(c, op.name, **args)
        except LOST:
            op.seen.append("no reply")
            await self.drop(a)
            return
        code = code_of(reply)
        op.seen.append(code)
        if code != "unavailable":
            op.final = reply
        if code == "ok":
            op.acked_at = time.monotonic()
            self.acks += 1

    async def storm(self, a: Actor, window: int = 1, pace: float = 0.0) -> None:
        """Try each of ``a``'s ops once, ``window`` in flight, ``pace`` seconds apart."""
        gate = asyncio.Semaphore(window)

        async def one(op: Op) -> None:
            async with gate:
                await self.attempt(a, op)

        tasks = []
        for op in a.ops:
            tasks.append(asyncio.create_task(one(op)))
            if pace:
                await asyncio.sleep(pace)
            else:
                await asyncio.sleep(0)
        await asyncio.gather(*tasks)

    async def finish(self, a: Actor) -> None:
        """Retry each of ``a``'s ops that is not settled until it is."""
        for op in a.ops:
            while not op.done:
                self.left()
                await self.attempt(a, op)
                if not op.done:
                    await asyncio.sleep(0.05)

    @staticmethod
    def unexpected(ops: list[Op]) -> list[tuple[str, str, dict[str, Any]]]:
        """Settled ops whose reply was neither ``ok`` nor a definitive error."""
        return [
            (op.user, op.key, op.final)
            for op in ops
            if op.final is not None and code_of(op.final) not in DEFINITIVE | {"ok"}
        ]

    async def poll(self, probe: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
        async with asyncio.timeout(scaled(timeout)):
            while not await probe():
                await asyncio.sleep(0.1)

    async def listing(self, c: Client, op: str) -> list[dict[str, Any]]:
        """Every item of a paged listing (``orders``, ``withdrawals``)."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            args = {"limit": 100} if cursor is None else {"limit": 100, "cursor": cursor}
            page = await self.wire.ok(c, op, **args)
            items.extend(page[op])
            cursor = page["next"]
            if cursor is None:
                return items

    async def room_log(self, node: Running, user: str, room: str) -> list[dict[str, Any]]:
        """Every logged event of ``room``: the replay of ``join since=0`` (its newest
        events), then ``history`` pages back through the older ones."""
        c = await node.raw()
        try:
            await self.wire.ok(c, "hello", token=node.token(user))
            j = await self.wire.ok(c, "join", room=room, since=0)
            newest = j["seq"]
            if newest:
                await c.wait(lambda: any(e.get("seq", 0) >= newest for e in c.events))
            events = [e for e in c.events if e.get("room") == room and e.get("seq", 0) > 0]
            events = [e for e in events if e["seq"] <= newest]
            before = j["replay_from"] if j["gap"] else None
            while before is not None:
                page = await self.wire.ok(c, "history", room=room, before=before)
                events = page["events"] + events
                before = page["next"]
            return events
        finally:
            with contextlib.suppress(Exception):
                await c.close()
