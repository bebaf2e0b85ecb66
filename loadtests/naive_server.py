"""The naive fan-out baseline: a plain ``websockets`` server, one frame per event per viewer.

It speaks the subset of the livesrv protocol the fan-out and join benchmarks use
(``hello``, ``room_open``, ``join`` (with ``since``: the missed events, from memory),
``leave``, ``gift``, ``chat``, ``like``, ``wallet``) and sends events of the same shape
(``ev``, ``room``, ``seq``, ``ts`` and the event fields). It keeps no store and checks no
money: it is only the textbook way to fan out, so the benchmark can show what the livesrv
broadcaster's design is worth on the same machine in the same run. It listens with
``websockets``' default backlog (100), as such a server is usually deployed.

The fan-out is the pattern found in most tutorials::

    for ws in room.viewers:
        await ws.send(frame)

The event is encoded once (not once per viewer) so the baseline is not handicapped by
needless JSON work; what it lacks is batching per tick and non-awaiting sends.

Run: ``python -m loadtests.naive_server --port 0``; it prints ``ws://HOST:PORT/ws``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from loadtests.plain_ws import add_server_args, error, fan_out, run, serve_until_stopped, user_of


class Room:
    def __init__(self, name: str, title: str, creator: str) -> None:
        self.name = name
        self.title = title
        self.creator = creator
        self.seq = 0
        self.viewers: set[ServerConnection] = set()
        self.combos: dict[tuple[str, str], int] = {}
        self.log: list[dict[str, Any]] = []  # for ``join since`` (the last LOG_MAX events)

    async def publish(self, event: dict[str, Any]) -> None:
        self.seq += 1
        event["room"] = self.name
        event["seq"] = self.seq
        event["ts"] = int(time.time() * 1000)
        self.log.append(event)
        del self.log[:-LOG_MAX]
        await fan_out(self.viewers, json.dumps(event, separators=(",", ":")))


ROOMS: dict[str, Room] = {}
LOG_MAX = 10_000


async def handler(ws: ServerConnection) -> None:  # noqa: C901 - flat op switch
    user: str | None = None
    joined: set[str] = set()
    try:
        async for raw in ws:
            msg = json.loads(raw)
            rid = msg.get("id")
            op = msg.get("op")
            reply: dict[str, Any] = {"id": rid, "ok": True}
            if op == "hello":
                user = user_of(str(msg.get("token", "")))
                reply.update(user=user, role="viewer", coins=10**9, diamonds=0, protocol=1)
            elif user is None:
                reply = error(rid, "unauthorized")
            elif op == "room_open":
                room = ROOMS.get(msg["room"])
                if room is None:
                    room = ROOMS[msg["room"]] = Room(msg["room"], msg.get("title", ""), user)
                reply.update(room=room.name, seq=room.seq)
            elif op == "join":
                room = ROOMS.get(msg["room"])
                if room is None:
                    reply = error(rid, "not_found")
                else:
                    room.viewers.add(ws)
                    joined.add(room.name)
                    reply.update(
                        room=room.name,
                        title=room.title,
                        creator=room.creator,
                        live=True,
                        viewers=len(room.viewers),
                        seq=room.seq,
                        top=[],
                        pinned=None,
                        gap=False,
                    )
                    since = msg.get("since")
                    if isinstance(since, int):  # the reply, then what was missed
                        await ws.send(json.dumps(reply, separators=(",", ":")))
                        missed = [ev for ev in room.log if ev["seq"] > since]
                        if missed:
                            await ws.send(json.dumps(missed, separators=(",", ":")))
                        continue
            elif op == "leave":
                room = ROOMS.get(msg["room"])
                if room is not None:
                    room.viewers.discard(ws)
                joined.discard(msg["room"])
            elif op in ("gift", "chat", "like"):
                room = ROOMS.get(msg.get("room", ""))
                if room is None or room.name not in joined:
                    reply = error(rid, "not_found")
                else:
                    event = _event(op, msg, user, room)
                    if op == "gift":
                        reply.update(coins=10**9, combo=event["combo"])
                    await ws.send(json.dumps(reply, separators=(",", ":")))
                    await room.publish(event)
                    continue
            elif op == "wallet":
                reply.update(coins=10**9, diamonds=0)
            else:
                reply = error(rid, "bad_request")
            await ws.send(json.dumps(reply, separators=(",", ":")))
    except ConnectionClosed:
        pass
    finally:
        for name in joined:
            room = ROOMS.get(name)
            if room is not None:
                room.viewers.discard(ws)


def _event(op: str, msg: dict[str, Any], user: str, room: Room) -> dict[str, Any]:
    if op == "gift":
        key = (user, str(msg.get("gift")))
        combo = room.combos.get(key, 0) + 1
        room.combos[key] = combo
        count = int(msg.get("count", 1))
        return {
            "ev": "gift",
            "from": user,
            "gift": msg.get("gift"),
            "count": count,
            "combo": combo,
            "coins": count,
            "streak": True,
        }
    if op == "chat":
        return {"ev": "chat", "from": user, "text": msg.get("text", ""), "badge": None}
    return {"ev": "like", "total": int(msg.get("count", 1))}


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_server_args(parser, port=8766)
    args = parser.parse_args()
    run(serve_until_stopped(handler, args.host, args.port), args.no_uvloop)


if __name__ == "__main__":
    cli()
