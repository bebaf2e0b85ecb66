"""End to end on a real 3-master Valkey Cluster: three livesrv nodes, each pointed at a
different master, serve one room together.

The mixed test runs signed coin purchases, keyed gifts, subscriptions, a stock race, chat,
a reconnect with ``join since`` on another node and a withdrawal across the three nodes;
every ``unavailable`` reply is retried with the same key (that is what it means). Then: no
reply was ever ``internal``, every viewer saw the room's events without a gap, balances
and diamonds are exact, the audit is clean, and room events travel on sharded pub/sub.

The kill test SIGKILLs one of three ``livesrv serve`` processes mid-load; its clients
reconnect to another node and retry every key they had no answer for: each key moved
money exactly once, the dead node's settlement entries are claimed by the others, and
``livesrv audit`` on the cluster exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from websockets.exceptions import ConnectionClosed

from livesrv.store.keys import RoomKeys, UserKeys
from livesrv.store.local_cluster import LocalCluster
from livesrv.store.topology import key_slot
from livesrv.wire import tokens
from tests.client import MSGPACK, Client
from tests.cluster_fixtures import ClusterNodes, ClusterServe, clean_env
from tests.conftest import SECRET, Running, ServeProcess, livesrv_cmd
from tests.test_crash import api, room_log
from tests.timing import scaled, until

GIFTS = {"rose": 1, "panda": 5, "rainbow_puke": 100}
SUB_PRICE = 350  # the default subscription price
PACKAGE, PACKAGE_COINS = "p1321", 1321


class Replies:
    """Every reply the test got, so that it can assert none was ``internal``."""

    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()
        self.internal: list[tuple[str, dict[str, Any]]] = []

    def saw(self, op: str, reply: dict[str, Any]) -> None:
        code = "ok" if reply.get("ok") else str(reply["error"]["code"])
        self.codes[code] += 1
        if code == "internal":
            self.internal.append((op, reply))

    async def call(self, c: Client, op: str, **args: Any) -> dict[str, Any]:
        """Call ``op``; an ``unavailable`` reply is retried with the same arguments (and key)
        until something else comes back."""
        for _ in range(100):
            reply = await c.call(op, **args)
            self.saw(op, reply)
            if reply.get("ok") or reply["error"]["code"] != "unavailable":
                return reply
            await asyncio.sleep(0.05)
        raise AssertionError(f"{op} stayed unavailable: {reply}")

    async def ok(self, c: Client, op: str, **args: Any) -> dict[str, Any]:
        reply = await self.call(c, op, **args)
        assert reply["ok"] is True, (op, args, reply)
        return reply

    async def connect(self, node: Running, user: str, role: str = "viewer") -> Client:
        c = await node.raw()
        await self.ok(c, "hello", token=node.token(user, role))
        return c


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two replies equal but for their request ids."""
    return {k: v for k, v in a.items() if k != "id"} == {k: v for k, v in b.items() if k != "id"}


def gap_free(events: list[dict[str, Any]], room: str, after: int, last: int) -> None:
    """The room's logged events a client got: each seq from ``after + 1`` to ``last``, once,
    in order."""
    seqs = [e["seq"] for e in events if e.get("room") == room and "seq" in e]
    assert seqs == list(range(after + 1, last + 1)), (after, last, seqs)


def channels_of(urls: list[str], kind: str = "SHARDCHANNELS") -> dict[str, set[str]]:
    """PUBSUB SHARDCHANNELS (or CHANNELS, the classic ones) of each master."""
    out = {}
    for url in urls:
        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            out[url] = set(client.execute_command("PUBSUB", kind))
        finally:
            client.close()
    return out


def owner(cluster: LocalCluster, key: str) -> str:
    return cluster.master_of_slot(key_slot(key)).url


async def test_mixed_workload_on_three_nodes_and_three_masters(
    cluster_nodes: ClusterNodes, local_cluster: LocalCluster
) -> None:
    # no hype train: the room log is to hold exactly the planned events (trains are
    # tested in test_live_match.py)
    nodes = await cluster_nodes(3, hype_viewers=0)
    replies = Replies()
    room, host, brand, product, price, units = "cmix", "cmix-host", "cmix-brand", "cmix-tee", 50, 4

    hc = await replies.connect(nodes[0], host, "creator")
    opened = await replies.ok(hc, "room_open", room=room, title="three nodes")
    bc = await replies.connect(nodes[2], brand, "creator")
    await replies.ok(bc, "product_create", product=product, title="tee", price=price, stock=units)
    await replies.ok(hc, "pin", room=room, product=product)

    # nine viewers, three per node: a signed receipt each, then join
    names = [f"cmix-v{i}" for i in range(9)]
    viewers: list[Client] = []
    joined: list[int] = []
    first_buy: list[dict[str, Any]] = []
    for i, user in enumerate(names):
        node = nodes[i % 3]
        c = await replies.connect(node, user)
        receipt = node.receipt(user, PACKAGE, f"pay-{user}")
        first_buy.append(await replies.ok(c, "buy_coins", package=PACKAGE, receipt=receipt))
        assert first_buy[-1]["coins"] == PACKAGE_COINS
        joined.append((await replies.ok(c, "join", room=room))["seq"])
        viewers.append(c)
    # the same receipt again, through another node: the first reply, nothing credited
    for i in (0, 4):
        other = await replies.connect(nodes[(i + 1) % 3], names[i])
        receipt = nodes[2].receipt(names[i], PACKAGE, f"pay-{names[i]}")
        again = await replies.ok(other, "buy_coins", package=PACKAGE, receipt=receipt)
        assert same(again, first_buy[i])
        await other.close()

    # gifts (keyed), a subscription and a chat from every viewer, all nodes at once
    plan = [("rainbow_puke", 1), ("rose", 10), ("panda", 2), ("rainbow_puke", 3)]
    per_viewer_gifts = sum(GIFTS[g] * n for g, n in plan)
    gift_replies: dict[tuple[int, int], dict[str, Any]] = {}

    async def spend(i: int) -> None:
        c = viewers[i]
        for k, (gift, count) in enumerate(plan):
            gift_replies[i, k] = await replies.ok(
                c, "gift", room=room, gift=gift, count=count, key=f"g{k}"
            )
        sub = await replies.ok(c, "subscribe", room=room, key="s1")
        assert sub["until"] > 0
        await replies.ok(c, "chat", room=room, text=f"hello from {names[i]}")

    await asyncio.gather(*(spend(i) for i in range(9)))
    assert [gift_replies[i, 3]["coins"] for i in range(9)] == [PACKAGE_COINS - per_viewer_gifts] * 9

    # the stock race: nine buyers on three nodes for four units
    race = await asyncio.gather(
        *(replies.call(c, "buy", room=room, product=product, qty=1, key="b1") for c in viewers)
    )
    won = [i for i, r in enumerate(race) if r["ok"]]
    assert len(won) == units, race
    assert all(r["error"]["code"] == "out_of_stock" for r in race if not r["ok"])
    assert len({race[i]["order"] for i in won}) == units

    # viewer 0 drops, the room moves on, it comes back on node 1 with join since
    v0_first = viewers[0]
    await v0_first.close()  # then resume from the last seq it really holds
    seen = max(v0_first.seqs(room), default=joined[0])
    for i in (1, 2, 3):
        await replies.ok(viewers[i], "chat", room=room, text="while v0 was away")
    v0 = await replies.connect(nodes[1], names[0])
    rejoin = await replies.ok(v0, "join", room=room, since=seen)
    assert rejoin["gap"] is False
    # a key retried through another node answers the first result and moves nothing
    again = await replies.ok(v0, "gift", room=room, gift="rainbow_puke", count=3, key="g3")
    assert same(again, gift_replies[0, 3])
    await replies.ok(v0, "chat", room=room, text="back on node 1")

    # everyone (on every node) sees every logged event, in order, without a gap
    auditor = await replies.connect(nodes[2], "cmix-auditor")
    last = (await replies.ok(auditor, "join", room=room))["seq"]
    # pinned, then per viewer its gifts, a sub and a chat; the purchases; four more chats
    assert last == opened["seq"] + 1 + 9 * (len(plan) + 2) + units + 4
    for i, c in enumerate(viewers[1:], start=1):
        await c.wait(lambda c=c: last in c.seqs(room))
        gap_free(c.events, room, joined[i], last)
    await v0.wait(lambda: last in v0.seqs(room))
    gap_free(v0_first.events + v0.events, room, joined[0], last)

    # exact balances, diamonds exactly the shares of what was spent
    spent = {
        u: per_viewer_gifts + SUB_PRICE + (price if i in won else 0) for i, u in enumerate(names)
    }
    await nodes[1].settle()
    for i, user in enumerate(names):
        c = v0 if i == 0 else viewers[i]
        assert (await replies.ok(c, "wallet"))["coins"] == PACKAGE_COINS - spent[user]
    sold = units * price
    host_expect = (
        9 * per_viewer_gifts * 5000 // 10000 + 9 * SUB_PRICE * 5000 // 10000 + sold * 1000 // 10000
    )
    brand_expect = sold * 8200 // 10000

    async def paid() -> bool:
        h = await replies.ok(hc, "wallet")
        b = await replies.ok(bc, "wallet")
        assert h["diamonds"] <= host_expect and b["diamonds"] <= brand_expect, (h, b)
        return bool(h["diamonds"] == host_expect and b["diamonds"] == brand_expect)

    await until(paid, 30)
    assert host_expect >= 2000

    # a withdrawal on node 0; its retry through node 2 gives the same withdrawal
    w = await replies.ok(hc, "withdraw", diamonds=2000, key="w1")
    assert w["diamonds"] == host_expect - 2000
    hc2 = await replies.connect(nodes[2], host, "creator")
    assert same(await replies.ok(hc2, "withdraw", diamonds=2000, key="w1"), w)
    assert (await replies.ok(hc2, "wallet"))["diamonds"] == host_expect - 2000

    report = await nodes[2].audit()
    assert report["ok"], report

    # room and wallet events on sharded pub/sub, each channel on the master of its slot
    channels = channels_of(local_cluster.urls)
    room_channel = RoomKeys(room).channel
    assert room_channel in channels[owner(local_cluster, room_channel)], channels
    classic = channels_of(local_cluster.urls, "CHANNELS")
    assert not any(room_channel in c for c in classic.values()), classic
    for user in names:
        wallet_channel = UserKeys.of(user, nodes[0].settings.shards).wallet_channel
        assert wallet_channel in channels[owner(local_cluster, wallet_channel)], user

    assert replies.internal == [], replies.internal
    print(
        f"cluster mixed: {dict(replies.codes)}; host {host_expect} diamonds, brand {brand_expect}"
    )


# -- SIGKILL one of three serve processes ---------------------------------------------------

ENV = {
    "LIVESRV_OPS_PER_SECOND": "100000",
    "LIVESRV_OPS_BURST": "100000",
    "LIVESRV_SETTLE_CLAIM_MS": "1000",
}


@dataclass
class Gifter:
    user: str
    node: int
    plan: list[tuple[str, str, int]]  # (key, gift, count)
    client: Client | None = None
    acked: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def spent(self) -> int:
        return sum(GIFTS[g] * n for _, g, n in self.plan)


async def ws(p: ServeProcess, user: str, role: str = "viewer") -> Client:
    c = await Client.open(p.ws_url, MSGPACK)
    await c.ok("hello", token=tokens.issue(SECRET, user, role, 3600))
    return c


async def storm(gifters: list[Gifter], room: str, kill: Callable[[], None], after: int) -> int:
    """Every gifter sends its plan, 8 in flight each; once ``after`` gifts were acknowledged,
    ``kill`` runs and everyone stops sending. Returns the acknowledged count."""
    killed = asyncio.Event()
    failed: list[dict[str, Any]] = []

    async def one(g: Gifter, key: str, gift: str, count: int, window: asyncio.Semaphore) -> None:
        assert g.client is not None
        async with window:
            if killed.is_set():
                return
            try:
                r = await g.client.call("gift", room=room, key=key, gift=gift, count=count)
            except (ConnectionError, ConnectionClosed, TimeoutError):
                return  # no answer: not acknowledged
        if r["ok"]:
            g.acked[key] = r
        elif r["error"]["code"] != "unavailable":
            failed.append(r)

    async def send(g: Gifter) -> None:
        window = asyncio.Semaphore(8)
        await asyncio.gather(*(one(g, *op, window) for op in g.plan))

    async def killer() -> None:
        async with asyncio.timeout(scaled(60)):
            while sum(len(g.acked) for g in gifters) < after:
                await asyncio.sleep(0.005)
        kill()
        killed.set()

    await asyncio.gather(killer(), *(send(g) for g in gifters))
    assert failed == [], failed[:5]
    return sum(len(g.acked) for g in gifters)


def cluster_audit(url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        livesrv_cmd("audit", "--redis-url", url, "--data-dir", str(data_dir)),
        capture_output=True,
        text=True,
        timeout=scaled(60),
        env=clean_env(),
    )


async def test_sigkill_one_of_three_serve_processes(
    cluster_serve: ClusterServe, cluster_urls: list[str], tmp_path: Path
) -> None:
    procs = [cluster_serve(i, "--hold-seconds", "0", env=ENV) for i in range(3)]
    victim = 1
    room, star = "ckill", "ckill-star"
    creator = await ws(procs[2], star, "creator")
    assert (await creator.call("room_open", room=room, title="kill"))["ok"]
    granted = 50_000
    gifters = []
    for i in range(9):
        user = f"ckill-fan{i}"
        plan = [
            (f"k{j}", g, 1 + j % 3)
            for j in range(60)
            for g in [("rose", "panda", "rainbow_puke")[(i + j) % 3]]
        ]
        g = Gifter(user, i % 3, plan)
        await api(
            procs[0].http_url, "POST", f"/api/users/{user}/grant", {"coins": granted, "key": "g"}
        )
        g.client = await ws(procs[g.node], user)
        assert (await g.client.call("join", room=room))["ok"]
        gifters.append(g)
    keys = sum(len(g.plan) for g in gifters)
    total = sum(g.spent for g in gifters)

    acked = await storm(gifters, room, lambda: procs[victim].signal(signal.SIGKILL), keys // 3)
    assert await asyncio.to_thread(procs[victim].wait) == -signal.SIGKILL
    assert 0 < acked < keys

    # the dead node's clients move to another node; everyone retries what was not answered
    replies = Replies()
    retried = 0

    async def again(g: Gifter) -> None:
        nonlocal retried
        assert g.client is not None
        if g.node == victim:
            await g.client.close()
            g.node = (victim + 1) % 3
            g.client = await ws(procs[g.node], g.user)
            await replies.ok(g.client, "join", room=room)
        for key, gift, count in g.plan:
            if key not in g.acked:
                g.acked[key] = await replies.ok(
                    g.client, "gift", room=room, key=key, gift=gift, count=count
                )
                retried += 1

    await asyncio.gather(*(again(g) for g in gifters))
    assert retried == keys - acked
    for g in gifters:
        assert g.client is not None
        assert (await replies.ok(g.client, "wallet"))["coins"] == granted - g.spent

    expected = total * 5000 // 10000

    async def creator_paid() -> bool:
        w = await api(procs[0].http_url, "GET", f"/api/users/{star}/wallet")
        assert w["diamonds"] <= expected, w
        return bool(w["diamonds"] == expected)

    await until(creator_paid, 60)
    gifts = [e for e in await room_log(procs[2], room) if e["ev"] == "gift"]
    assert len(gifts) == keys  # each key's gift logged once: none lost, none twice
    assert sum(e["coins"] for e in gifts) == total
    assert Counter(e["from"] for e in gifts) == {g.user: len(g.plan) for g in gifters}

    r = await asyncio.to_thread(cluster_audit, cluster_urls[0], tmp_path / "audit")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().endswith("audit: all invariants hold")
    assert f"spent={total}" in r.stdout
    assert replies.internal == [], replies.internal
    for g in gifters:
        if g.client is not None:
            await g.client.close()
    await creator.close()
    print(f"cluster kill: {keys} keys, {acked} acknowledged before SIGKILL, {retried} retried")


@pytest.fixture(autouse=True)
def _no_livesrv_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """serve and the CLI must use only their flags and this test's env, whatever the shell
    exports."""
    import os

    for name in list(os.environ):
        if name.startswith("LIVESRV_") and not name.startswith("LIVESRV_TEST_"):
            monkeypatch.delenv(name)
