"""Load worker commands for join storms: many clients connect, say hello and join one room,
so many in flight at a time (or all at once), each timed from its TCP connect to its join
reply, or with ``since`` to the last replayed event (caught up, gap-free).

Three dialects of the same join: livesrv's protocol v1 (JSON), the naive baseline's subset
of it, and Socket.IO (protocol v5 over Engine.IO v4's WebSocket transport, spoken directly:
``GET /socket.io/?EIO=4&transport=websocket``, the server's open packet ``0{...}``, our
namespace connect ``40``, its ``40{...}``, events with acks ``42N[...]`` answered ``43N[...]``,
the server's pings ``2`` answered ``3``).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from typing import Any

import orjson

from loadtests import wsclient

from .state import WorkerState

SOCKETIO_PATH = "/socket.io/?EIO=4&transport=websocket"


class Joiner:
    """One joining connection: replies by id, the logged events of one room checked."""

    __slots__ = (
        "ws",
        "kind",
        "waiting",
        "next_id",
        "since",
        "upto",
        "seen",
        "gaps",
        "dups",
        "caught_up",
    )

    def __init__(self, kind: str, since: int | None, upto: int) -> None:
        self.ws: wsclient.WSClient | None = None
        self.kind = kind
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.next_id = 0
        self.since = since
        self.upto = upto
        self.seen = since or 0  # the last seq received, checked in order
        self.gaps = 0
        self.dups = 0
        self.caught_up: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if since is None or since >= upto:
            self.caught_up.set_result(None)

    # -- receiving ---------------------------------------------------------------------
    def on_message(self, payload: bytes) -> None:
        if self.kind == "socketio":
            self._socketio(payload)
            return
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        for m in msg if isinstance(msg, list) else (msg,):
            if "ev" in m:
                self._event(m)
            else:
                fut = self.waiting.pop(m.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(m)

    def _socketio(self, payload: bytes) -> None:
        if payload == b"2":  # engine.io ping
            assert self.ws is not None
            self.ws.send(b"3")
            return
        if payload.startswith(b"40"):  # namespace connected
            fut = self.waiting.pop(0, None)
            if fut is not None and not fut.done():
                fut.set_result({"ok": True})
        elif payload.startswith(b"43"):  # an ack: 43<id>[reply]
            body = payload[2:]
            cut = body.index(b"[")
            fut = self.waiting.pop(int(body[:cut]), None)
            if fut is not None and not fut.done():
                fut.set_result(orjson.loads(body[cut:])[0])
        elif payload.startswith(b"42"):  # an event: 42["events", [...]]
            name, *args = orjson.loads(payload[2:])
            if name == "events":
                for ev in args[0]:
                    self._event(ev)

    def _event(self, ev: dict[str, Any]) -> None:
        seq = ev.get("seq")
        if seq is None or self.since is None:
            return
        if seq <= self.seen:
            self.dups += 1
            return
        if seq != self.seen + 1:
            self.gaps += seq - self.seen - 1
        self.seen = seq
        if seq >= self.upto and not self.caught_up.done():
            self.caught_up.set_result(None)

    # -- requests ----------------------------------------------------------------------
    async def call(self, op: str, timeout: float, **args: Any) -> dict[str, Any]:
        assert self.ws is not None
        self.next_id += 1
        rid = self.next_id
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[rid] = fut
        if self.kind == "socketio":
            self.ws.send(b"42%d" % rid + orjson.dumps([op, args]))
        else:
            self.ws.send(orjson.dumps({"id": rid, "op": op, **args}))
        reply: dict[str, Any] = await asyncio.wait_for(fut, timeout)
        if not reply.get("ok"):
            raise ConnectionError(f"{op}: {(reply.get('error') or {}).get('code')}")
        return reply

    async def open(self, url: str, source_ip: str | None, timeout: float) -> None:
        if self.kind == "socketio":
            self.ws = await wsclient.connect(
                url,
                on_message=self.on_message,
                subprotocol=None,
                source_ip=source_ip,
                timeout=timeout,
            )
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.waiting[0] = fut
            self.ws.send(b"40")
            await asyncio.wait_for(fut, timeout)
        else:
            self.ws = await wsclient.connect(
                url, on_message=self.on_message, source_ip=source_ip, timeout=timeout
            )


class JoinerCommands(WorkerState):
    """Join storms: connect + hello + join, timed; the connections kept until closed."""

    joiners: list[Joiner]

    async def cmd_join_storm(
        self,
        kind: str,
        url: str,
        tokens: list[str],
        room: str,
        inflight: int,
        since: int | None = None,
        upto: int = 0,
        start_at: float = 0.0,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Each token connects, says hello and joins ``room``; at most ``inflight`` at a time.

        Args:
            kind: ``livesrv``, ``naive`` or ``socketio``.
            since: ``join since`` this seq; each client is done once it has every event up
                to ``upto`` (checked in order: gaps and duplicates counted).
            start_at: Wall-clock time to start at (so several workers start together).

        Returns:
            Latencies (ms, array of doubles as bytes), when the first started and the last
            finished (wall clock), failures and retries by reason, gaps and duplicates.
        """
        if not hasattr(self, "joiners"):
            self.joiners = []
        if kind == "socketio":
            url = url.split("/socket.io", 1)[0].rstrip("/") + SOCKETIO_PATH
        sem = asyncio.Semaphore(inflight)
        lat = array("d")
        failures: Counter[str] = Counter()
        retried: Counter[str] = Counter()
        done_at = 0.0
        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t_start = time.time()

        async def attempt(token: str) -> Joiner:
            j = Joiner(kind, since, upto)
            try:
                await j.open(url, self._next_ip(), timeout)
                await j.call("hello", timeout, token=token)
                args: dict[str, Any] = {"room": room}
                if since is not None:
                    args["since"] = since
                await j.call("join", timeout, **args)
                await asyncio.wait_for(asyncio.shield(j.caught_up), timeout)
            except BaseException:
                if j.ws is not None:
                    j.ws.abort()
                raise
            return j

        async def one(token: str) -> None:
            nonlocal done_at
            async with sem:
                t0 = time.perf_counter()
                for tries in range(3):  # a real client retries; each retry is counted
                    try:
                        j = await attempt(token)
                    except (TimeoutError, OSError, ConnectionError) as exc:
                        reason = type(exc).__name__
                        if tries == 2:
                            failures[reason] += 1
                            return
                        retried[reason] += 1
                        continue
                    break
                now = time.perf_counter()
                lat.append((now - t0) * 1000.0)
                done_at = max(done_at, time.time())
                self.joiners.append(j)

        await asyncio.gather(*(one(t) for t in tokens))
        mine = self.joiners[-len(lat) :] if len(lat) else []
        return {
            "joined": len(lat),
            "latencies": lat.tobytes(),
            "started": t_start,
            "finished": done_at or time.time(),
            "failures": dict(failures),
            "retried": dict(retried),
            "gaps": sum(j.gaps for j in mine),
            "dups": sum(j.dups for j in mine),
        }

    async def cmd_joiners_close(self) -> dict[str, Any]:
        joiners = getattr(self, "joiners", [])
        for j in joiners:
            if j.ws is not None:
                j.ws.close()
        await asyncio.sleep(0.2)
        for j in joiners:
            if j.ws is not None:
                j.ws.abort()
        self.joiners = []
        return {"closed": len(joiners)}

    async def cmd_room_chat(self, room: str, count: int) -> dict[str, Any]:
        """The first creator (``open_rooms``) joins ``room`` and chats ``count`` lines; the
        room's seq after the last one."""
        creator = self.creators[0]
        await creator.request("join", room=room)
        seq = 0
        for i in range(count):
            await creator.request("chat", room=room, text=f"storm {i}")
        reply = await creator.request("join", room=room)  # again: the room's seq
        seq = int(reply["seq"])
        return {"seq": seq}
