"""The store restarting under a running node.

While the store is away, money ops answer ``unavailable`` (never ``internal``) and the
connection stays open; ``/healthz`` answers 503. Once it is back, retried keys move money
exactly once, room and wallet events flow again (the pub/sub subscriptions are renewed)
and the Lua scripts are loaded again (NOSCRIPT is handled).

Each test here owns its store process (not the session's), so it can stop and kill it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import hiredis
import pytest
import redis.asyncio as aioredis

from livesrv.services import wallet
from livesrv.store import aof_tail
from livesrv.store.embedded import EmbeddedStore
from tests.client import MSGPACK, Client
from tests.conftest import Nodes, Running
from tests.timing import until

GIFT_VALUE = {"rose": 1, "panda": 5, "rainbow_puke": 100}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path / "own-store", appendfsync="always")
    await asyncio.to_thread(s.start)
    yield s
    await asyncio.to_thread(s.stop)


@pytest.fixture
async def node(store: EmbeddedStore, tmp_path: Path) -> AsyncIterator[Running]:
    nodes = Nodes()
    yield await nodes.start(
        tmp_path / "data",
        store.url,
        ops_per_second=100_000.0,
        ops_burst=100_000,
        settle_claim_ms=500,  # entries read when the store died are claimed again sooner
    )
    await nodes.close()


async def health(server: Running) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.http_url + "/healthz") as resp,
    ):
        return resp.status


def kill_store(store: EmbeddedStore) -> None:
    """SIGKILL the store (no shutdown, stale pid and socket files stay) and reap it."""
    assert store.process is not None
    store.process.send_signal(signal.SIGKILL)
    store.process.wait()


async def room_with_viewer(
    server: Running, coins: int, codec: str = MSGPACK
) -> tuple[Client, Client]:
    creator = await server.connect("cr", "creator")
    await creator.ok("room_open", room="r", title="restart")
    await creator.ok("join", room="r")
    await server.grant("fan", coins)
    fan = await server.connect("fan", "viewer", codec)
    await fan.ok("join", room="r")
    return creator, fan


async def test_store_away_answers_unavailable_then_recovers(
    node: Running, store: EmbeddedStore
) -> None:
    creator, fan = await room_with_viewer(node, 1000)
    await fan.ok("gift", room="r", gift="panda", count=2, key="k1")
    await creator.event("wallet", lambda e: e["diamonds"] == 5)
    await creator.ok("product_create", product="pen", title="Pen", price=20, stock=3)
    assert await health(node) == 200

    await asyncio.to_thread(store.stop)
    t0 = time.monotonic()
    assert await fan.error("gift", room="r", gift="rose", count=7, key="k2") == "unavailable"
    answered_in = time.monotonic() - t0
    assert await fan.error("wallet") == "unavailable"
    assert await fan.error("subscribe", room="r", key="s1") == "unavailable"
    assert await fan.error("chat", room="r", text="anyone?") == "unavailable"
    assert await fan.error("buy", room="r", product="pen", qty=2, key="b1") == "unavailable"
    assert await creator.error("withdraw", diamonds=2000, key="w1") == "unavailable"
    assert await creator.error("room_open", room="r2", title="new") == "unavailable"
    assert await health(node) == 503
    # a newcomer's hello needs the store too, and its connection stays open as well
    late = await node.raw()
    assert await late.error("hello", token=node.token("late")) == "unavailable"
    assert fan.close_code is None and late.close_code is None

    await asyncio.to_thread(store.start)
    await until(lambda: _is_up(node))

    r = await fan.ok("gift", room="r", gift="rose", count=7, key="k2")
    assert r["coins"] == 1000 - 10 - 7
    again = await fan.ok("gift", room="r", gift="rose", count=7, key="k2")
    assert again["coins"] == r["coins"]
    assert (await fan.ok("wallet"))["coins"] == 983
    order = await fan.ok("buy", room="r", product="pen", qty=2, key="b1")
    assert order["coins"] == 943
    assert (await fan.ok("buy", room="r", product="pen", qty=2, key="b1"))["order"] == order[
        "order"
    ]
    assert (await fan.ok("products"))["products"][0]["stock"] == 1
    assert (await late.ok("hello", token=node.token("late")))["user"] == "late"

    # room events flow again: the creator sees the retried gift and a new chat
    await creator.event("gift", lambda e: e["from"] == "fan" and e["count"] == 7)
    await fan.ok("chat", room="r", text="back")
    await creator.event("chat", lambda e: e["text"] == "back")
    seqs = creator.seqs("r")
    # in order, none repeated; the restarted store (a new replication id) may have lost
    # its last writes, so the room's seq jumped once, by 1,000,000, past any it lost
    steps = [b - a for a, b in zip(seqs, seqs[1:], strict=False)]
    assert all(s == 1 or s >= 1_000_000 for s in steps) and sum(s > 1 for s in steps) <= 1, seqs
    # wallet events flow again
    await fan.event("wallet", lambda e: e["coins"] == 943)
    # settlement resumed: 17 gift coins -> 8 diamonds; the 40-coin purchase pays the
    # creator as seller (8200 bps -> 32) and as host (1000 bps -> 4)
    await creator.event("wallet", lambda e: e["diamonds"] == 8 + 32 + 4)
    report = await node.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    print(f"store away: unavailable answered in {answered_in * 1000:.0f} ms")


async def _is_up(server: Running) -> bool:
    return await health(server) == 200


async def test_store_killed_during_a_gift_storm(node: Running, store: EmbeddedStore) -> None:
    """SIGKILL the store while 8 viewers stream keyed gifts; restart it; retry every key
    that was not acknowledged. Every key moves its coins exactly once."""
    creator = await node.connect("cr", "creator")
    await creator.ok("room_open", room="storm", title="storm")
    await creator.ok("join", room="storm")
    viewers = 8
    per_viewer = 150
    plan = {
        f"v{i}": [
            (f"k{j}", ("rose", "panda", "rainbow_puke")[j % 3], 1 + j % 4)
            for j in range(per_viewer)
        ]
        for i in range(viewers)
    }
    granted = 100_000
    clients: dict[str, Client] = {}
    for user in plan:
        await node.grant(user, granted)
        c = await node.connect(user)
        await c.ok("join", room="storm")
        clients[user] = c

    acked: dict[tuple[str, str], dict[str, Any]] = {}
    killed = asyncio.Event()

    async def stream(user: str) -> None:
        c = clients[user]
        window = asyncio.Semaphore(8)

        async def one(key: str, gift: str, count: int) -> None:
            async with window:
                r = await c.call("gift", room="storm", gift=gift, count=count, key=key)
            if r["ok"]:
                acked[(user, key)] = r
            else:
                assert r["error"]["code"] == "unavailable", r

        await asyncio.gather(*(one(*g) for g in plan[user]))

    async def killer() -> None:
        await until(lambda: asyncio.sleep(0, len(acked) >= 300), timeout=30)
        kill_store(store)
        killed.set()

    await asyncio.gather(killer(), *(stream(u) for u in plan))
    assert killed.is_set()
    unacked = sum(len(p) for p in plan.values()) - len(acked)
    assert unacked > 0, "the store died after every gift was acknowledged"
    # the pid and socket files of the killed store are left behind; start() copes
    assert store.pidfile.exists()

    await asyncio.to_thread(store.start)
    await until(lambda: _is_up(node))

    async def retry(user: str) -> None:
        for key, gift, count in plan[user]:
            if (user, key) not in acked:
                r = await clients[user].ok("gift", room="storm", gift=gift, count=count, key=key)
                acked[(user, key)] = r

    await asyncio.gather(*(retry(u) for u in plan))
    for user, gifts in plan.items():
        spent = sum(GIFT_VALUE[g] * n for _, g, n in gifts)
        assert (await clients[user].ok("wallet"))["coins"] == granted - spent
    total = sum(GIFT_VALUE[g] * n for gifts in plan.values() for _, g, n in gifts)
    report = await node.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert (await creator.ok("wallet"))["diamonds"] == total * 5000 // 10000
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["coins_conserved"]["spent"] == total
    assert checks["idempotency"]["keyed_movements"] == viewers * per_viewer + viewers
    print(f"store killed with {unacked} of {viewers * per_viewer} gifts unacknowledged")


async def test_script_flush_is_recovered(node: Running, store: EmbeddedStore) -> None:
    """Scripts are loaded again when the store forgets them (SCRIPT FLUSH, a new store)."""
    creator, fan = await room_with_viewer(node, 1000)
    await fan.ok("gift", room="r", gift="rose", count=2, key="k1")
    raw = aioredis.Redis(unix_socket_path=str(store.socket))

    async def flush() -> None:
        await node.settle()  # no script of the worker's is half-way when they vanish
        await raw.script_flush()

    try:
        await flush()
        r = await fan.ok("gift", room="r", gift="rose", count=3, key="k2")
        assert r["coins"] == 995
        await creator.event("wallet", lambda e: e["diamonds"] == 2)  # settle.lua reloaded
        await flush()
        await creator.ok("product_create", product="pen", title="Pen", price=5, stock=2)
        await flush()
        await creator.ok("pin", room="r", product="pen")
        await flush()
        assert (await fan.ok("buy", room="r", product="pen", qty=1, key="b1"))["coins"] == 990
        await flush()
        await fan.ok("subscribe", room="r", key="s1")
        await flush()
        assert (await fan.ok("wallet"))["coins"] == 990 - 350
    finally:
        await raw.aclose()
    report = await node.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]


async def test_settlement_and_audit_survive_a_store_restart(
    node: Running, store: EmbeddedStore
) -> None:
    """Spends recorded just before the store went away are settled once it is back."""
    creator, fan = await room_with_viewer(node, 1000)
    node.node.worker.stopping = True  # hold settlement back: the entries stay in the outbox
    await asyncio.sleep(0.4)
    for i in range(5):
        await fan.ok("gift", room="r", gift="panda", count=1, key=f"g{i}")
    await asyncio.to_thread(store.stop)
    await asyncio.to_thread(store.start)
    node.node.worker.stopping = False
    node.node._worker_task = asyncio.create_task(node.node.worker.run())  # noqa: SLF001
    await creator.event("wallet", lambda e: e["diamonds"] == 12)
    report = await node.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    assert os.path.exists(store.socket)


def blocks_in(aof: bytes) -> list[tuple[int, int, list[list[bytes]]]]:
    """The ``MULTI`` ... ``EXEC`` blocks of an AOF file: start, end and commands."""
    reader = hiredis.Reader()
    reader.feed(aof)
    out: list[tuple[int, int, list[list[bytes]]]] = []
    pos, start, commands = 0, 0, []
    while (args := reader.gets()) is not False:
        begin = pos
        pos += len(b"*%d\r\n" % len(args))
        pos += sum(len(b"$%d\r\n\r\n" % len(a)) + len(a) for a in args)
        if args == [b"MULTI"]:
            start, commands = begin, []
        elif args == [b"EXEC"]:
            out.append((start, pos, commands))
        else:
            commands.append(args)
    return out


async def test_a_step_cut_short_by_a_kill_never_comes_back(
    node: Running, store: EmbeddedStore
) -> None:
    """The store dies while writing a grant's effects to its AOF (its block cut inside
    EXEC). The restarted store holds what it held before that grant; the grant's retry
    applies it once; and a second restart loads exactly that (the cut block's commands
    used to come back there, replayed with the next write: the coins twice)."""
    fan = await node.connect("fan")
    assert await node.grant("fan", 1000, key="g1") == 1000
    assert await node.grant("fan", 500, key="g2") == 1500
    kill_store(store)
    path = aof_tail.last_incremental(store.dir)
    assert path is not None
    aof = path.read_bytes()
    g2 = (wallet.GRANT_KEY_PREFIX + "g2").encode()  # the key its ledger entry names
    start, end = next((s, e) for s, e, commands in blocks_in(aof) if any(g2 in c for c in commands))
    path.write_bytes(aof[: end - 3])  # what a kill in the middle of writing EXEC leaves
    assert store.pidfile.exists()

    await asyncio.to_thread(store.start)  # the crash is seen (pid file) and the tail cut
    assert len(path.read_bytes()) == start
    await until(lambda: _is_up(node))
    assert (await fan.ok("wallet"))["coins"] == 1000
    assert await node.grant("fan", 500, key="g2") == 1500
    assert await node.grant("fan", 25, key="g3") == 1525

    await asyncio.to_thread(store.stop)
    await asyncio.to_thread(store.start)
    await until(lambda: _is_up(node))
    assert (await fan.ok("wallet"))["coins"] == 1525
    report = await node.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]


async def test_nul_bytes_after_the_last_write_do_not_keep_the_store_down(
    node: Running, store: EmbeddedStore
) -> None:
    """Some file systems leave NUL bytes where a power loss interrupted a write. The
    store refuses such a file ("Bad file format"); livesrv cuts them off first, so the
    store starts with every step it held."""
    fan = await node.connect("fan")
    assert await node.grant("fan", 1000, key="g1") == 1000
    kill_store(store)
    path = aof_tail.last_incremental(store.dir)
    assert path is not None
    whole = path.stat().st_size
    with path.open("ab") as fh:
        fh.write(b"\0" * 4096)

    await asyncio.to_thread(store.start)
    assert path.stat().st_size == whole
    await until(lambda: _is_up(node))
    assert (await fan.ok("wallet"))["coins"] == 1000
    assert await node.grant("fan", 500, key="g2") == 1500
    report = await node.audit()
    assert report["ok"], [c for c in report["checks"] if not c["ok"]]
