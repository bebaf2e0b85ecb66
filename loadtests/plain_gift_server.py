"""The plain gift baseline: a ``websockets`` server on ``redis-py`` (asyncio, hiredis), one
script per gift.

It speaks the subset of the livesrv protocol the gift benchmark uses (``hello``,
``room_open``, ``join``, ``leave``, ``gift``, ``wallet``) with the same reply shapes, so the
same load drives it. Each gift is one ``EVALSHA`` that checks and debits the sender's
balance, counts the room's seq and publishes the gift event on the room's channel; every
server subscribes to the channels of the rooms its connections joined and sends each event
to them. It has no idempotency, no ledger, no settlement and no creator earnings: it is the
textbook way to build a gift server, so the benchmark can show what livesrv's guarantees
cost (or save) against it, on the same store, in the same run.

Run: ``python -m loadtests.plain_gift_server --redis-url unix:///path/store.sock --port 0``;
it prints ``ws://HOST:PORT/ws``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from loadtests.plain_ws import add_server_args, error, fan_out, run, serve_until_stopped, user_of

START_COINS = 10**12  # a wallet starts full: this baseline sells no coins
POOL_SIZE = 100  # redis-py's default
PRICES = {"rose": 1, "heart": 5, "rocket": 100}

# KEYS: 1 wallet hash, 2 room hash; ARGV: 1 coins, 2 channel, 3 event json without seq,
# 4 starting balance. Returns {status, coins, seq}.
GIFT_LUA = """
redis.call('HSETNX', KEYS[1], 'coins', ARGV[4])
local coins = tonumber(redis.call('HGET', KEYS[1], 'coins'))
local cost = tonumber(ARGV[1])
if coins < cost then return {'insufficient', coins, 0} end
coins = redis.call('HINCRBY', KEYS[1], 'coins', -cost)
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('PUBLISH', ARGV[2], string.format('{"seq":%d,', seq) .. string.sub(ARGV[3], 2))
return {'ok', coins, seq}
"""


class GiftServer:
    """One server: a redis-py client (its connection pool), one pub/sub connection, the
    local members of each room."""

    def __init__(self, url: str) -> None:
        # redis-py's default pool refuses a 101st concurrent command; the usual fix is a
        # pool of the same size that makes callers wait for a free connection
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, decode_responses=True
        )
        self.redis = aioredis.Redis(connection_pool=pool)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.members: dict[str, set[ServerConnection]] = defaultdict(set)
        self.gift = self.redis.register_script(GIFT_LUA)

    async def listen(self) -> None:
        await self.pubsub.subscribe("plain:hello")  # a pub/sub connection from the start
        async for msg in self.pubsub.listen():
            if msg.get("type") != "message":
                continue
            viewers = self.members.get(str(msg["channel"]).removeprefix("plain:room:"))
            if viewers:
                await fan_out(viewers, msg["data"])

    async def enter(self, ws: ServerConnection, room: str) -> None:
        if not self.members[room]:
            await self.pubsub.subscribe(f"plain:room:{room}")
        self.members[room].add(ws)

    def leave(self, ws: ServerConnection, room: str) -> None:
        self.members[room].discard(ws)

    async def handler(self, ws: ServerConnection) -> None:  # noqa: C901 - flat op switch
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
                    reply.update(user=user, role="viewer", coins=START_COINS, protocol=1)
                elif user is None:
                    reply = error(rid, "unauthorized")
                elif op in ("room_open", "join"):
                    room = str(msg["room"])
                    if op == "room_open":
                        await self.redis.hset(f"plain:room:{room}", "creator", user)
                    elif not await self.redis.exists(f"plain:room:{room}"):
                        await ws.send(json.dumps(error(rid, "not_found")))
                        continue
                    await self.enter(ws, room)
                    joined.add(room)
                    reply.update(room=room, live=True, seq=0, gap=False)
                elif op == "leave":
                    self.leave(ws, str(msg["room"]))
                    joined.discard(str(msg["room"]))
                elif op == "gift":
                    reply = await self.send_gift(rid, user, msg, joined)
                elif op == "wallet":
                    coins = await self.redis.hget(f"plain:wallet:{user}", "coins")
                    reply.update(coins=int(coins or START_COINS), diamonds=0, pending=0)
                else:
                    reply = error(rid, "bad_request")
                await ws.send(json.dumps(reply, separators=(",", ":")))
        except ConnectionClosed:
            pass
        finally:
            for room in joined:
                self.leave(ws, room)

    async def send_gift(
        self, rid: Any, user: str, msg: dict[str, Any], joined: set[str]
    ) -> dict[str, Any]:
        room, gift, count = msg.get("room"), msg.get("gift"), msg.get("count", 1)
        if room not in joined:
            return error(rid, "forbidden")
        if gift not in PRICES or not isinstance(count, int) or not 1 <= count <= 1000:
            return error(rid, "bad_request")
        coins = PRICES[gift] * count
        event = {"ev": "gift", "room": room, "from": user, "gift": gift, "count": count}
        status, balance, _ = await self.gift(
            keys=[f"plain:wallet:{user}", f"plain:room:{room}"],
            args=[coins, f"plain:room:{room}", json.dumps(event), START_COINS],
        )
        if status != "ok":
            return error(rid, "insufficient_funds")
        return {"id": rid, "ok": True, "coins": int(balance), "combo": count}


async def main(url: str, host: str, port: int) -> None:
    server = GiftServer(url)
    listener = asyncio.create_task(server.listen())
    await serve_until_stopped(server.handler, host, port)
    listener.cancel()
    await server.redis.aclose()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True, help="the store, e.g. unix:///x.sock")
    add_server_args(parser, port=8767)
    args = parser.parse_args()
    run(main(args.redis_url, args.host, args.port), args.no_uvloop)


if __name__ == "__main__":
    cli()
