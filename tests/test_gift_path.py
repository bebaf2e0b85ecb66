"""The one-step gift on a single store (``gift.lua``: the debit and the room event in one
script) and the batched settlement credits (``settle_batch.lua``), seen over the wire."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.client import Client
from tests.conftest import Running


def body(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k not in ("id", "ok")}


async def live(server: Running, creator: str, room: str) -> Client:
    c = await server.connect(creator, "creator")
    await c.ok("room_open", room=room, title="live")
    await c.ok("join", room=room)
    return c


async def test_a_streak_logs_each_gift_once_with_the_combo_the_debit_counted(
    server: Running,
) -> None:
    creator = await live(server, "gp_alice", "gp_r1")
    await server.grant("gp_bob", 12)
    bob = await server.connect("gp_bob")
    await bob.ok("join", room="gp_r1")
    replies = [
        body(await bob.ok("gift", room="gp_r1", gift="finger_heart", count=1, key=f"k{i}"))
        for i in range(2)
    ]
    assert replies == [{"coins": 7, "combo": 1}, {"coins": 2, "combo": 2}]
    # a retry of the second: its first result, and no second event
    again = await bob.ok("gift", room="gp_r1", gift="finger_heart", count=1, key="k1")
    assert body(again) == replies[1]
    # refused: nothing moves and nothing is logged
    err = await bob.error("gift", room="gp_r1", gift="finger_heart", count=1, key="k2")
    assert err == "insufficient_funds"
    await creator.ok("chat", room="gp_r1", text="after")
    await creator.event("chat")
    gifts = [e for e in creator.events if e["ev"] == "gift"]
    assert [(e["from"], e["combo"], e["coins"], e["count"]) for e in gifts] == [
        ("gp_bob", 1, 5, 1),
        ("gp_bob", 2, 5, 1),
    ]
    seqs = [e["seq"] for e in creator.events if "seq" in e and e["ev"] in ("gift", "chat")]
    assert seqs == list(range(seqs[0], seqs[0] + 3))  # no seq skipped or repeated
    assert (await bob.ok("wallet"))["coins"] == 2
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]


async def test_a_burst_to_many_creators_settles_each_exactly(server: Running) -> None:
    rooms = [f"gp_room{i}" for i in range(5)]
    creators = [await live(server, f"gp_cr{i}", room) for i, room in enumerate(rooms)]
    gifters = []
    for i in range(10):
        await server.grant(f"gp_fan{i}", 1000)
        c = await server.connect(f"gp_fan{i}")
        await c.ok("join", room=rooms[i % 5])
        gifters.append(c)

    async def send(i: int, c: Client) -> None:
        for k in range(10):  # 2 fans a room x 10 gifts x 100 coins = 2,000 coins a room
            await c.ok("gift", room=rooms[i % 5], gift="rainbow_puke", count=1, key=f"b{k}")

    await asyncio.gather(*(send(i, c) for i, c in enumerate(gifters)))
    await server.settle()
    for c in creators:
        w = await c.ok("wallet")
        assert w["diamonds"] + w["pending"] == 1000  # 50% of 2,000 coins
    for c in gifters:
        assert (await c.ok("wallet"))["coins"] == 0
    report = await server.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
