"""Settlement, listings and operations on a real 3-master Valkey Cluster.

Spends in every user shard settle exactly, each node's worker reading every shard's outbox
on its own; a worker that died holding entries has them claimed by another and its
consumer removed; rooms and products page across the index shards; ``livesrv audit`` and
``livesrv settle`` run against the cluster given any one master. One test on the
standalone store checks that the single-key indexes of earlier versions are still listed.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable

import aiohttp
import redis
import redis.asyncio as aioredis

from livesrv.settlement import GROUP
from livesrv.store.keys import (
    INDEX_SHARDS,
    LEGACY_LIVE_ROOMS,
    LEGACY_PRODUCTS,
    LIVE_INDEX,
    LIVE_ROOMS,
    PRODUCT_INDEX,
    PRODUCTS,
    ShardKeys,
    UserKeys,
    shard_of,
)
from livesrv.store.local_cluster import LocalCluster
from livesrv.store.topology import key_slot
from tests.client import Client
from tests.cluster_fixtures import ClusterNodes, clean_env
from tests.conftest import Running, livesrv_cmd
from tests.timing import scaled

SHARDS = 16
GIFT_COINS = 2  # "rose" x 2: 2 coins, exactly 1 diamond for the creator at 5000 bps


def users_in_every_shard(prefix: str) -> list[str]:
    """One user name per user shard, so the spends land in every outbox."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < SHARDS:
        name = f"{prefix}{i}"
        found.setdefault(shard_of(name, SHARDS), name)
        i += 1
    return [found[s] for s in range(SHARDS)]


async def poll(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def cluster_client(urls: list[str]) -> aioredis.RedisCluster:
    return aioredis.RedisCluster.from_url(urls[0], decode_responses=True)


async def consumers(rc: aioredis.RedisCluster, shard: int) -> dict[str, int]:
    """consumer name -> pending entries, in one shard's settlement group."""
    rows = await rc.xinfo_consumers(ShardKeys(shard).outbox, GROUP)
    return {r["name"]: int(r["pending"]) for r in rows}


async def gift_from_every_shard(
    nodes: list[Running], room: str, gifters: list[str], rounds: int
) -> None:
    """Each gifter (on node i % 3) joins ``room`` and sends ``rounds`` keyed 2-coin gifts."""
    clients: list[Client] = []
    for i, user in enumerate(gifters):
        await nodes[0].grant(user, 1000)
        c = await nodes[i % len(nodes)].connect(user)
        await c.ok("join", room=room)
        clients.append(c)
    for r in range(rounds):
        await asyncio.gather(
            *(
                c.ok("gift", room=room, gift="rose", count=GIFT_COINS, key=f"{room}-{r}")
                for c in clients
            )
        )


async def test_spends_in_every_shard_settle_exactly_reading_each_shard(
    cluster_nodes: ClusterNodes, cluster_urls: list[str]
) -> None:
    nodes = await cluster_nodes(3, min_withdrawal=1)
    creator = await nodes[1].connect("co_star", "creator")
    await creator.ok("room_open", room="co_room", title="t")
    gifters = users_in_every_shard("co_fan")
    await gift_from_every_shard(nodes, "co_room", gifters, rounds=3)
    expected = len(gifters) * 3  # one diamond per gift

    async def settled() -> bool:
        return int((await creator.ok("wallet"))["diamonds"]) == expected

    await poll(settled, 20, "every shard's spends to settle")
    for fan in gifters:  # each gifter paid exactly 3 x 2 coins
        c = await nodes[2].connect(fan)
        assert (await c.ok("wallet"))["coins"] == 1000 - 3 * GIFT_COINS
    rc = cluster_client(cluster_urls)
    try:  # every node's worker is a consumer of every shard's outbox, on its own master
        names = {r.node.worker.name for r in nodes}
        for shard in range(SHARDS):
            assert names <= set(await consumers(rc, shard)), shard
            info = await rc.xinfo_groups(ShardKeys(shard).outbox)
            assert [(g["pending"], g["lag"]) for g in info if g["name"] == GROUP] == [(0, 0)]
    finally:
        await rc.aclose()
    # creators in other shards earn too; the admin withdrawals listing merges every shard
    others = [u for u in users_in_every_shard("co_cr") if shard_of(u, SHARDS) % 4 == 1][:3]
    wids = [(await creator.ok("withdraw", diamonds=expected, key="w1"))["withdrawal"]]
    fan = await nodes[0].connect(gifters[0])
    for i, other in enumerate(others):
        c = await nodes[i % 3].connect(other, "creator")
        await c.ok("room_open", room=f"co_{other}", title="t")
        await fan.ok("join", room=f"co_{other}")
        await fan.ok("gift", room=f"co_{other}", gift="rose", count=GIFT_COINS, key=other)

        async def earned(c: Client = c) -> bool:
            return int((await c.ok("wallet"))["diamonds"]) == 1

        await poll(earned, 20, f"{other}'s diamond")
        wids.append((await c.ok("withdraw", diamonds=1, key="w1"))["withdrawal"])
    assert len({w.partition("-")[0] for w in wids}) == 4  # four withdrawal shards
    listed = await walk_http(nodes[2], "/api/withdrawals", 2)
    assert listed == wids[::-1]  # newest first


async def walk_http(node: Running, path: str, limit: int) -> list[str]:
    auth = {"Authorization": "Bearer " + node.token("co_ops", "admin")}
    ids: list[str] = []
    cursor = None
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            url = f"{node.http_url}{path}?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            async with session.get(url, headers=auth) as resp:
                body = await resp.json()
                assert resp.status == 200, body
            ids.extend(w["withdrawal"] for w in body["withdrawals"])
            cursor = body["next"]
            if cursor is None:
                return ids
    raise AssertionError("the listing never ended")


async def test_dead_worker_entries_claimed_and_its_consumer_removed(
    cluster_nodes: ClusterNodes, cluster_urls: list[str]
) -> None:
    (payer,) = await cluster_nodes(1, settle=False)
    creator = await payer.connect("cd_star", "creator")
    await creator.ok("room_open", room="cd_room", title="t")
    gifters = users_in_every_shard("cd_fan")
    await gift_from_every_shard([payer], "cd_room", gifters, rounds=2)
    rc = cluster_client(cluster_urls)
    try:
        # a worker reads every shard's new entries, then dies before settling any
        for shard in range(SHARDS):
            outbox = ShardKeys(shard).outbox
            try:
                await rc.xgroup_create(outbox, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                assert "BUSYGROUP" in str(exc)
            got = await rc.xreadgroup(GROUP, "dead-worker", {outbox: ">"}, count=100)
            assert len(got[0][1]) == 2, shard  # two gifts per shard
        assert (await creator.ok("wallet"))["diamonds"] == 0
        (heir,) = await cluster_nodes(1, settle_claim_ms=200, settle_reap_ms=1000)
        expected = len(gifters) * 2

        async def settled() -> bool:
            return int((await creator.ok("wallet"))["diamonds"]) == expected

        await poll(settled, 20, "the dead worker's entries to be claimed and settled")

        async def reaped() -> bool:
            for shard in range(SHARDS):
                if "dead-worker" in await consumers(rc, shard):
                    return False
            return True

        await poll(reaped, 20, "the dead worker's consumer to be removed from every shard")
        for shard in range(SHARDS):  # the live worker stays, holding nothing
            assert await consumers(rc, shard) == {heir.node.worker.name: 0}
        report = await heir.audit()
        assert report["ok"], [c for c in report["checks"] if not c["ok"]]
    finally:
        await rc.aclose()


async def walk(c: Client, op: str, field: str, key: str, limit: int) -> list[str]:
    names: list[str] = []
    cursor = None
    for _ in range(100):
        page = await c.ok(op, limit=limit, **({"cursor": cursor} if cursor else {}))
        assert len(page[field]) <= limit
        names.extend(item[key] for item in page[field])
        cursor = page["next"]
        if cursor is None:
            return names
    raise AssertionError("the listing never ended")


async def test_rooms_and_products_page_across_index_shards(
    cluster_nodes: ClusterNodes, local_cluster: LocalCluster
) -> None:
    nodes = await cluster_nodes(3, max_live_rooms_per_creator=100)
    host = await nodes[0].connect("cl_host", "creator")
    rooms = sorted(f"cl_room{i:02d}" for i in range(37))
    products = sorted(f"cl_prod{i:02d}" for i in range(29))
    for room in rooms:
        await host.ok("room_open", room=room, title=room)
    for product in products:
        await host.ok("product_create", product=product, title=product, price=5, stock=3)
    masters = {
        next(p for first, last, p in local_cluster.wait_ok() if first <= key_slot(k) <= last)
        for index in (LIVE_INDEX, PRODUCT_INDEX)
        for k in {index.key_for(n) for n in rooms + products}
    }
    assert len(masters) == 3  # the names are spread over every master
    viewers = [await n.connect("cl_viewer") for n in nodes]
    for limit in (1, 7, 200):
        for v in viewers:
            assert await walk(v, "rooms", "rooms", "room", limit) == rooms
            assert await walk(v, "products", "products", "product", limit) == products
    # a cursor of one node continues the listing on another
    first = await viewers[0].ok("rooms", limit=10)
    rest = await walk_from(viewers[2], "rooms", "rooms", "room", 10, first["next"])
    assert [r["room"] for r in first["rooms"]] + rest == rooms
    closed = rooms[::3]
    for room in closed:
        await host.ok("room_close", room=room)
    left = [r for r in rooms if r not in closed]
    assert await walk(viewers[1], "rooms", "rooms", "room", 5) == left


async def walk_from(c: Client, op: str, field: str, key: str, limit: int, cursor: str) -> list[str]:
    names: list[str] = []
    next_cursor: str | None = cursor
    while next_cursor is not None:
        page = await c.ok(op, limit=limit, cursor=next_cursor)
        names.extend(item[key] for item in page[field])
        next_cursor = page["next"]
    return names


async def test_single_key_indexes_of_earlier_versions_still_listed(server: Running) -> None:
    """Standalone store written by 1.x (one sorted set) and by 0.x (one plain set)."""
    host = await server.connect("lx_host", "creator")
    for room in ("lx_a", "lx_b", "lx_c"):
        await host.ok("room_open", room=room, title=room)
    for product in ("lx_p1", "lx_p2"):
        await host.ok("product_create", product=product, title=product, price=5, stock=1)
    store = aioredis.Redis.from_url(server.settings.redis_url, decode_responses=True)
    try:  # put the names back where the earlier versions kept them
        for key in LIVE_INDEX.keys + PRODUCT_INDEX.keys:
            await store.delete(key)
        await store.zadd(LIVE_ROOMS, {"lx_a": 0, "lx_b": 0})
        await store.sadd(LEGACY_LIVE_ROOMS, "lx_c")
        await store.zadd(PRODUCTS, {"lx_p1": 0})
        await store.sadd(LEGACY_PRODUCTS, "lx_p2")
        viewer = await server.connect("lx_viewer")
        assert await walk(viewer, "rooms", "rooms", "room", 2) == ["lx_a", "lx_b", "lx_c"]
        assert await walk(viewer, "products", "products", "product", 1) == ["lx_p1", "lx_p2"]
        for key in (LIVE_ROOMS, LEGACY_LIVE_ROOMS, PRODUCTS, LEGACY_PRODUCTS):
            assert not await store.exists(key), key  # adopted into the index shards
        assert await store.zscore(LIVE_INDEX.key_for("lx_c"), "lx_c") == 0
        await host.ok("room_close", room="lx_b")
        assert await walk(viewer, "rooms", "rooms", "room", 5) == ["lx_a", "lx_c"]
    finally:
        await store.aclose()
    assert INDEX_SHARDS == 16


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a ``livesrv`` command; the nodes of these tests hold diamonds for 0 s."""
    return subprocess.run(
        livesrv_cmd(*args),
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        env={**clean_env(), "LIVESRV_HOLD_SECONDS": "0"},
    )


async def test_audit_and_settle_commands_on_a_cluster(
    cluster_nodes: ClusterNodes, cluster_urls: list[str]
) -> None:
    (node,) = await cluster_nodes(1, settle=False)
    creator = await node.connect("ca_star", "creator")
    await creator.ok("room_open", room="ca_room", title="t")
    gifters = users_in_every_shard("ca_fan")[:8]
    await gift_from_every_shard([node], "ca_room", gifters, rounds=2)
    # nothing settles in the node: `settle --once` on another master drains every shard
    done = await asyncio.to_thread(run_cli, "settle", "--once", "--redis-url", cluster_urls[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"settled {len(gifters) * 2} entries"
    assert (await creator.ok("wallet"))["diamonds"] == len(gifters) * 2
    for url in cluster_urls:
        clean = await asyncio.to_thread(run_cli, "audit", "--redis-url", url)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert clean.stdout.strip().endswith("audit: all invariants hold")
        assert f"wallets={len(gifters) + 1}" in clean.stdout  # read from every master
    rc = cluster_client(cluster_urls)
    try:  # coins out of nowhere in one wallet
        await rc.hincrby(UserKeys.of(gifters[3], SHARDS).wallet, "coins", 7)
    finally:
        await rc.aclose()
    bad = await asyncio.to_thread(run_cli, "audit", "--redis-url", cluster_urls[1])
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "FAIL  coins_conserved" in bad.stdout
    assert "audit: VIOLATIONS FOUND" in bad.stdout


def test_audit_exits_2_with_one_line_when_the_store_is_not_there() -> None:
    with socket.socket() as s:  # a loopback port that was just free
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    for command in ("audit", "settle"):
        extra = ("--once",) if command == "settle" else ()
        out = run_cli(command, *extra, "--redis-url", f"redis://127.0.0.1:{port}")
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
        assert lines[0].startswith(f"livesrv: cannot reach the store at 127.0.0.1:{port} ")
