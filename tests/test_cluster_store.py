"""Script calls and commands on a real 3-master Valkey Cluster.

One Backend reaches keys on every master; a slot migrated (IMPORTING / MIGRATING, MIGRATE,
SETSLOT NODE) while 20 clients send keyed gifts gives only ``ok`` or ``unavailable`` and
every retried key moves coins exactly once; a master that stops (no replica: the cluster
goes down) answers ``unavailable``, never ``internal``; a ``hello`` then leaves the
connection signed out; ``/healthz`` names the master that is down; after a failover the
script calls find the promoted replica.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from livesrv.realtime.node import Node
from livesrv.services import shop
from livesrv.settings import Settings
from livesrv.store.facade import Backend
from livesrv.store.keys import shard_of
from livesrv.store.local_cluster import ClusterNode, LocalCluster
from livesrv.store.topology import key_slot
from tests.client import Client
from tests.conftest import SECRET, Nodes, Running, node_settings
from tests.timing import scaled

NodeFactory = Callable[[str], Awaitable[Running]]
UNLIMITED: dict[str, Any] = {"ops_per_second": 100_000.0, "ops_burst": 100_000}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("store-cluster"), masters=3)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def _settings(tmp_path: Path, url: str) -> Settings:
    return node_settings(tmp_path / "data", url, **UNLIMITED)


@pytest.fixture
async def make_node(cluster: LocalCluster, tmp_path: Path) -> AsyncIterator[NodeFactory]:
    """In-process livesrv nodes pointed at one master of the cluster."""
    nodes = Nodes()

    async def start(url: str) -> Running:
        return await nodes.start(tmp_path / "data", url, **UNLIMITED)

    yield start
    await nodes.close()


def users_in_shard(prefix: str, shard: int, n: int, shards: int = 16) -> list[str]:
    out, i = [], 0
    while len(out) < n:
        name = f"{prefix}{i}"
        if shard_of(name, shards) == shard:
            out.append(name)
        i += 1
    return out


def shard_slot(shard: int) -> int:
    return key_slot(f"ls:{{s{shard}}}")


async def until(probe: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + scaled(timeout)
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def health(r: Running) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(r.http_url + "/healthz") as resp:
        return resp.status, await resp.json()


async def open_room(r: Running, creator: str, room: str) -> Client:
    c = await r.connect(creator, "creator")
    await c.ok("room_open", room=room, title="cluster")
    return c


# -- tests ----------------------------------------------------------------------------


async def test_script_calls_reach_every_master(cluster: LocalCluster, tmp_path: Path) -> None:
    dead_seed = "redis://127.0.0.1:1"  # the first seed does not answer: the next one does
    b = Backend.create(_settings(tmp_path, cluster.urls[1]), f"{dead_seed},{cluster.urls[1]}")
    try:
        assert b.topology.cluster and len(b.topology.masters) == 3
        ports: dict[int, str] = {}
        for shard in range(16):
            user = users_in_shard("reach", shard, 1)[0]
            port = cluster.master_of_slot(shard_slot(shard)).port
            assert await _grant(b, user, 10 + shard) == 10 + shard
            assert await _grant(b, user, 10 + shard) == 10 + shard  # the same key: once
            ports.setdefault(port, user)
            # commands: a read and a single-slot transaction pipeline (the orders page)
            assert await b.redis.hget(b.user(user).wallet, "coins") == str(10 + shard)
            assert await shop.orders_of(b, user, None, 10) == {"orders": [], "next": None}
        assert set(ports) == {n.port for n in cluster.nodes}
        assert set((await b.health()).values()) == {True}
    finally:
        await b.close()


async def _grant(b: Backend, user: str, coins: int) -> int:
    from livesrv.services import wallet

    r = await wallet.grant(b, user, coins, f"grant-{user}", "test")
    return int(r["coins"])


def _migrate(cluster: LocalCluster, slot: int, stop: float) -> tuple[int, int]:
    """Move ``slot`` to the next master, one key per MIGRATE with pauses (so the move takes
    a while), then assign it on every master. Returns (source port, target port)."""
    src = cluster.master_of_slot(slot)
    masters = [n for n in cluster.nodes if n.role == "master"]
    dst = masters[(masters.index(src) + 1) % len(masters)]
    dst.call("CLUSTER", "SETSLOT", slot, "IMPORTING", src.node_id)
    src.call("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.node_id)
    while True:
        keys = src.call("CLUSTER", "GETKEYSINSLOT", slot, 1)
        if not keys:
            break
        src.call("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys)
        time.sleep(stop)
    for n in (dst, src, *[m for m in masters if m not in (src, dst)]):
        n.call("CLUSTER", "SETSLOT", slot, "NODE", dst.node_id)
    return src.port, dst.port


async def test_slot_migrated_under_load_moves_each_key_once(
    cluster: LocalCluster, make_node: NodeFactory
) -> None:
    r = await make_node(cluster.urls[0])
    shard = 5
    fans = users_in_shard("mig-fan", shard, 20)
    creator = await open_room(r, "mig-creator", "mig-room")
    for fan in fans:
        await r.grant(fan, 10_000)
    clients = [await r.connect(fan) for fan in fans]
    for c in clients:
        await c.ok("join", room="mig-room")

    moving = asyncio.Event()
    moved = asyncio.Event()
    replies: dict[str, list[str]] = {"ok": [], "unavailable": [], "other": []}
    failed: dict[int, list[str]] = {i: [] for i in range(len(fans))}

    async def load(i: int) -> int:
        sent = 0
        while not moved.is_set() or sent < 15:
            key = f"mig-{i}-{sent}"
            reply = await clients[i].call("gift", room="mig-room", gift="rose", count=1, key=key)
            code = "ok" if reply["ok"] else reply["error"]["code"]
            replies.get(code, replies["other"]).append(f"{key}: {reply}")
            if code != "ok":
                failed[i].append(key)
            sent += 1
            if sent == 5:
                moving.set()
        return sent

    tasks = [asyncio.create_task(load(i)) for i in range(len(fans))]
    await moving.wait()
    src, dst = await asyncio.to_thread(_migrate, cluster, shard_slot(shard), 0.002)
    moved.set()
    sent = await asyncio.gather(*tasks)
    assert cluster.master_of_slot(shard_slot(shard)).port == dst != src
    assert replies["other"] == [], replies["other"][:3]
    assert len(replies["ok"]) > 0
    seen = r.backend.scripts.pipeline.seen  # the load did meet the move
    assert seen["MOVED"] + seen["ASK"] + seen["TRYAGAIN"] > 0, seen

    for i, keys in failed.items():  # the client retries every key that was not ok
        for key in keys:
            reply = await until(
                lambda i=i, key=key: _ok_or_none_in(clients[i], "mig-room", key),
                20,
                f"retry of {key}",
            )
            assert reply["ok"], reply
    for i, fan in enumerate(fans):
        wallet = await clients[i].ok("wallet")
        assert wallet["coins"] == 10_000 - sent[i], (fan, sent[i])
    report = await r.audit()
    assert report["ok"], report
    await creator.close()


def _stop(node: ClusterNode) -> None:
    assert node.process is not None
    node.process.send_signal(signal.SIGTERM)  # AOF flushed: nothing written is lost
    node.process.wait()


async def test_master_down_answers_unavailable_and_hello_stays_signed_out(
    cluster: LocalCluster, make_node: NodeFactory
) -> None:
    masters = [n for n in cluster.nodes if n.role == "master"]
    r = await make_node(masters[0].url)
    down = cluster.master_of_slot(shard_slot(7))
    up_shard = next(s for s in range(16) if cluster.master_of_slot(shard_slot(s)) != down)
    away = users_in_shard("down-fan", 7, 1)[0]  # wallet on the master that stops
    near = users_in_shard("up-fan", up_shard, 1)[0]  # wallet on a master that stays up
    creator = await open_room(r, "down-creator", "down-room")
    await r.grant(away, 100)
    await r.grant(near, 100)
    fan_away, fan_near = await r.connect(away), await r.connect(near)
    await fan_away.ok("join", room="down-room")
    await fan_near.ok("join", room="down-room")
    assert (await health(r))[0] == 200

    await asyncio.to_thread(_stop, down)
    try:
        # the stopped master's keys: its connection is refused
        assert await fan_away.error("gift", room="down-room", gift="rose", count=1, key="d1") == (
            "unavailable"
        )
        status, body = await health(r)
        assert status == 503 and body["ok"] is False
        assert body["masters"][f"127.0.0.1:{down.port}"] == "down"
        assert sorted(body["masters"].values()) == ["down", "up", "up"]
        # once the others mark the cluster down, they answer CLUSTERDOWN to everything
        survivor = next(m for m in masters if m is not down)
        await until(
            lambda: asyncio.to_thread(
                lambda: "cluster_state:fail" in str(survivor.call("CLUSTER", "INFO"))
            ),
            20,
            "cluster_state:fail",
        )
        assert await fan_near.error("gift", room="down-room", gift="rose", count=1, key="n1") == (
            "unavailable"
        )
        late = await r.raw()
        assert await late.error("hello", token=r.token(away)) == "unavailable"
        assert await late.error("wallet") == "unauthorized"  # still signed out
        assert len(r.node.hub.users.get(away, ())) == 1  # fan_away's session only
    finally:
        await asyncio.to_thread(cluster.restart, down.port)
        await asyncio.to_thread(cluster.wait_ok)

    await until(lambda: _ok_or_none_in(fan_away, "down-room", "d1"), 20, "d1 after the restart")
    await until(lambda: _ok_or_none_in(fan_near, "down-room", "n1"), 20, "n1 after the restart")
    assert (await fan_away.ok("wallet"))["coins"] == 99
    assert (await fan_near.ok("wallet"))["coins"] == 99
    hello = await late.ok("hello", token=r.token(away))
    assert hello["coins"] == 99
    assert (await until(lambda: _health_ok(r), 20, "healthz 200"))["store"] == "up"
    await creator.close()


async def _health_ok(r: Running) -> dict[str, Any] | None:
    status, body = await health(r)
    return body if status == 200 else None


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("store-cluster-rep"), masters=3, replicas=1)
    c.start()
    try:
        yield c
    finally:
        c.stop()


async def test_failover_reroutes_script_calls_to_the_promoted_replica(
    replicated: LocalCluster, tmp_path: Path
) -> None:
    url = ",".join(replicated.urls)  # several seeds
    settings = _settings(tmp_path, url)
    node = Node(settings, url, secret=SECRET)
    await node.start()
    r = Running(node, settings)
    try:
        creator = await open_room(r, "fo-creator", "fo-room")
        fan = "fo-fan"
        await r.grant(fan, 50)
        c = await r.connect(fan)
        await c.ok("join", room="fo-room")
        await c.ok("gift", room="fo-room", gift="rose", count=1, key="f1")
        victim = replicated.master_of_slot(key_slot(r.backend.user(fan).wallet))
        assert victim.call("WAIT", 1, 5000) == 1  # the replica has every write so far
        await asyncio.to_thread(replicated.kill, victim.port)

        assert await c.error("gift", room="fo-room", gift="rose", count=1, key="f2") == (
            "unavailable"
        )
        # the replica takes over; the node finds the new master and the retry goes through
        await until(lambda: _ok_or_none_in(c, "fo-room", "f2"), 30, "f2 after the failover")
        assert (await c.ok("wallet"))["coins"] == 48
        new_master = replicated.master_of_slot(key_slot(r.backend.user(fan).wallet))
        assert new_master.port != victim.port
        body = await until(lambda: _health_ok(r), 20, "healthz 200 on the new masters")
        assert f"127.0.0.1:{new_master.port}" in body["masters"]
        await creator.close()
    finally:
        for client in r.clients:
            await client.close()
        await node.stop()


async def _ok_or_none_in(c: Client, room: str, key: str) -> dict[str, Any] | None:
    reply = await c.call("gift", room=room, gift="rose", count=1, key=key)
    if reply["ok"]:
        return reply
    assert reply["error"]["code"] == "unavailable", reply
    return None
