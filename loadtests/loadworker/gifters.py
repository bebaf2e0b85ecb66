"""Load worker commands for gifters: connect, send gifts in a closed loop or at a fixed
rate (with chat beside them), close. Requests are pre-encoded byte templates.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from typing import Any

import orjson

from .client import Client, open_client
from .state import WorkerState


class GifterCommands(WorkerState):
    """Gifters joined to rooms: a closed loop (one gift in flight each) or a fixed rate."""

    # -- gifters ------------------------------------------------------------------------
    async def cmd_gifters_connect(self, url: str, gifters: list[tuple[str, str]]) -> dict[str, Any]:
        """Connect gifters (token, room) and join their rooms."""
        for token, room in gifters:
            client, _ = await open_client(url, token, source_ip=self._next_ip())
            await client.request("join", room=room)
            client.room = room
            self.gifters.append(client)
        return {"gifters": len(self.gifters)}

    async def cmd_gifters_close(self) -> dict[str, Any]:
        for g in self.gifters:
            if g.ws is not None:
                g.ws.close()
        self.gifters = []
        return {}

    async def cmd_gifts_closed_loop(
        self,
        start_at: float,
        duration: float,
        gift: str = "rose",
        count: int = 1,
        tag: str = "c",
        record_acks: bool = False,
    ) -> dict[str, Any]:
        """Every gifter sends a gift, waits for its reply, repeats, until the end time.

        Returns counts, error codes, reply latencies (ms, as packed doubles) and, when
        ``record_acks``, the ack times with the room of each gift.
        """
        lat = array("d")
        errors: Counter[str] = Counter()
        acks: list[tuple[float, str]] = []
        end_at = start_at + duration
        coins_each = count

        async def loop_one(g: Client, gi: int) -> int:
            template = (
                b'{"id":%d,"op":"gift","room":"'
                + g.room.encode()
                + b'","gift":"'
                + gift.encode()
                + b'","count":'
                + str(count).encode()
                + b',"key":"'
                + f"{tag}-{self.index}-{gi}-".encode()
                + b'%d"}'
            )
            sent = 0
            while time.time() < end_at:
                rid = g.new_id()
                t0 = time.perf_counter()
                _, fut = g.send_op("gift", template % (rid, rid))
                try:
                    reply = await asyncio.wait_for(fut, 30.0)
                except TimeoutError:
                    g.pending.pop(rid, None)
                    errors["timeout"] += 1
                    continue
                t1 = time.perf_counter()
                sent += 1
                if reply.get("ok"):
                    lat.append((t1 - t0) * 1000.0)
                    if record_acks:
                        acks.append((time.time(), g.room))
                else:
                    errors[str((reply.get("error") or {}).get("code"))] += 1
            return sent

        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t_begin = time.time()
        sent = await asyncio.gather(*(loop_one(g, i) for i, g in enumerate(self.gifters)))
        t_end = time.time()
        return {
            "sent": sum(sent),
            "ok": len(lat),
            "errors": dict(errors),
            "latencies": lat.tobytes(),
            "acks": acks,
            "coins_each": coins_each,
            "t_begin": t_begin,
            "t_end": t_end,
        }

    async def cmd_gifts_rate(
        self,
        start_at: float,
        duration: float,
        rate: float,
        gift: str = "rose",
        tag: str = "r",
        drain: float = 30.0,
        chat_rate: float = 0.0,
        chat_len: int = 400,
    ) -> dict[str, Any]:
        """Open loop: gifts at a fixed total rate, round-robin over this worker's gifters.

        With ``chat_rate``, the gifters also send chat messages of ``chat_len`` characters
        at that rate (more bytes per viewer, for the slow-consumer runs).
        """
        chat_task = None
        chats: list[asyncio.Future[dict[str, Any]]] = []
        if chat_rate > 0:
            chat_task = asyncio.ensure_future(
                self._chat_rate(start_at, duration, chat_rate, chat_len, chats)
            )
        lat = array("d")
        errors: Counter[str] = Counter()
        futs: list[tuple[asyncio.Future[dict[str, Any]], float]] = []
        templates = [
            b'{"id":%d,"op":"gift","room":"'
            + g.room.encode()
            + b'","gift":"'
            + gift.encode()
            + b'","count":1,"key":"'
            + f"{tag}-{self.index}-{i}-".encode()
            + b'%d"}'
            for i, g in enumerate(self.gifters)
        ]
        total = int(rate * duration)
        sends: dict[str, list[float]] = {g.user: [] for g in self.gifters}
        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t_first = time.time()
        for n in range(total):
            due = start_at + n / rate
            wait = due - time.time()
            if wait > 0.001:
                await asyncio.sleep(wait)
            g = self.gifters[n % len(self.gifters)]
            sends[g.user].append(time.time())
            rid = g.new_id()
            t0 = time.perf_counter()
            _, fut = g.send_op("gift", templates[n % len(self.gifters)] % (rid, rid))
            fut.add_done_callback(
                lambda f, t0=t0: (
                    lat.append((time.perf_counter() - t0) * 1000.0)
                    if not f.cancelled() and f.result().get("ok")
                    else None
                )
            )
            futs.append((fut, t0))
        t_last = time.time()
        if chat_task is not None:
            await chat_task
        if futs or chats:
            await asyncio.wait([f for f, _ in futs] + chats, timeout=drain)
        chats_ok = _tally(chats, errors, "chat ")
        _tally([f for f, _ in futs], errors, "")
        for g in self.gifters:
            g.pending.clear()
        return {
            "sent": total,
            "ok": len(lat),
            "errors": dict(errors),
            "latencies": lat.tobytes(),
            "sends": sends,
            "chats_ok": chats_ok,
            "t_first": t_first,
            "t_last_sent": t_last,
        }

    async def _chat_rate(
        self,
        start_at: float,
        duration: float,
        rate: float,
        length: int,
        out: list[asyncio.Future[dict[str, Any]]],
    ) -> None:
        text = ("lorem ipsum dolor sit amet " * (length // 27 + 1))[:length]
        total = int(rate * duration)
        for n in range(total):
            wait = start_at + n / rate - time.time()
            if wait > 0.001:
                await asyncio.sleep(wait)
            g = self.gifters[n % len(self.gifters)]
            rid = g.new_id()
            payload = orjson.dumps({"id": rid, "op": "chat", "room": g.room, "text": text})
            out.append(g.send_op("chat", payload)[1])


def _tally(futs: list[asyncio.Future[dict[str, Any]]], errors: Counter[str], prefix: str) -> int:
    """Count ok replies; add each failure (error code, or timeout) to ``errors``."""
    ok = 0
    for fut in futs:
        if not fut.done():
            errors[prefix + "timeout"] += 1
        elif fut.result().get("ok"):
            ok += 1
        else:
            errors[prefix + str((fut.result().get("error") or {}).get("code"))] += 1
    return ok
