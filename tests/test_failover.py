"""A store master SIGKILLed mid-load on a 3-master, 3-replica Valkey Cluster.

Three in-process livesrv nodes, each pointed at a different master, serve payers that run
keyed coin purchases (signed receipts), gifts to a creator in a live room and shop
purchases of a product with stock, while the creator withdraws. At a seeded moment the
master owning the room's, the creator's or the product's slot is SIGKILLed; after a seeded
pause its replica is promoted with ``CLUSTER FAILOVER TAKEOVER`` and the dead node is
restarted (it rejoins as the new master's replica). Every key that did not get ``ok`` is
retried (same key, same arguments; on another node after a lost reply) until it gets ``ok``
or a definitive error. Then: no reply was ever ``internal``, every acknowledged operation
is present exactly once (balances, orders, withdrawals and room events match a model of
the acknowledged operations), stock is conserved, the creators' diamonds are exactly the
shares of the surviving spends, and the audit is clean.

A second test holds the master down: its slots answer ``unavailable`` (in bounded time),
the other masters' slots keep working, and the retried key moves money once.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import time
from collections import Counter

import pytest

from livesrv.settlement_credits import diamonds_for
from livesrv.store.keys import ProductKeys, RoomKeys, UserKeys
from livesrv.store.local_cluster import ClusterNode, LocalCluster
from livesrv.store.topology import key_slot
from tests.conftest import Running
from tests.failover_fixtures import NODE_TIMEOUT_MS, masters_now, promote, replica_of
from tests.failover_load import GIFTS, PACKAGES, Actor, Load, Op, Wire, code_of
from tests.timing import scaled

GRANT = 20_000  # coins each payer starts with
PRICE, STOCK = 7, 40
GIFT_BPS, SHOP_PLATFORM_BPS, COMMISSION_BPS = 5000, 800, 1000
SEED_GIFT = ("rainbow_puke", 20)  # 2000 coins before the load: 1000 diamonds to withdraw
WITHDRAWALS, WITHDRAW = 6, 100


def plan(rng: random.Random, user: str, room: str, product: str, n: int) -> list[Op]:
    """A payer's mixed ops: about 1 in 8 a coin purchase, 1 in 7 a shop purchase, the rest
    gifts; every one keyed."""
    ops = []
    for j in range(n):
        roll = rng.random()
        if roll < 0.125:
            package = rng.choice(sorted(PACKAGES))
            ops.append(Op(user, "buy_coins", f"pay-{user}-{j}", {"package": package}))
        elif roll < 0.27:
            args = {"room": room, "product": product, "qty": rng.randint(1, 2)}
            ops.append(Op(user, "buy", f"b{j}", args))
        else:
            gift = rng.choice(sorted(GIFTS))
            args = {"room": room, "gift": gift, "count": rng.randint(1, 5)}
            ops.append(Op(user, "gift", f"g{j}", args))
    return ops


def victim_of(
    cluster: LocalCluster, target: str, room: str, host: str, product: str, shards: int
) -> ClusterNode:
    """The master serving the room's, the creator's (wallet) or the product's slot now."""
    key = {
        "room": RoomKeys(room).meta,
        "creator": UserKeys.of(host, shards).wallet,
        "product": ProductKeys(product).meta,
    }[target]
    return cluster.master_of_slot(key_slot(key))


KILLS = [  # (seed, whose master dies, seconds its replica is frozen just before the kill)
    (1, "room", 0.0),
    (2, "creator", 0.0),
    (3, "product", 0.0),
    (4, "room", 0.3),
    (5, "creator", 0.3),
    (6, "product", 0.3),
]


@pytest.mark.parametrize(("seed", "target", "lag"), KILLS, ids=lambda v: str(v))
async def test_master_killed_mid_load_loses_nothing_and_applies_nothing_twice(
    failover_nodes: list[Running],
    failover_ready: LocalCluster,
    seed: int,
    target: str,
    lag: float,
) -> None:
    """``lag``: that long before its master is SIGKILLed, the replica is SIGSTOPped and the
    master drops the link to it (the replica is resumed right after the kill), so whatever
    the master did meanwhile is on no replica: the window an asynchronous replica leaves
    open, made wide."""
    nodes, cluster = failover_nodes, failover_ready
    rng = random.Random(seed)
    tag = f"fo{seed}"
    room, host, brand, product = f"{tag}-room", f"{tag}-host", f"{tag}-brand", f"{tag}-tee"
    wire = Wire()
    load = Load(nodes, wire, time.monotonic() + scaled(90))

    # set-up before any fault: the room, a product with stock, 1000 diamonds to withdraw
    hc = await load.session(Actor(host, "creator", 0, [], None))
    await wire.ok(hc, "room_open", room=room, title="failover")
    bc = await load.session(Actor(brand, "creator", 2, [], None))
    product_args = {"price": PRICE, "stock": STOCK, "commission": COMMISSION_BPS}
    await wire.ok(bc, "product_create", product=product, title="tee", **product_args)
    await wire.ok(hc, "pin", room=room, product=product)
    seeder = Actor(f"{tag}-seeder", "viewer", 1, [], room)
    await nodes[1].grant(seeder.user, 5000)
    sc = await load.session(seeder)
    await wire.ok(sc, "gift", room=room, gift=SEED_GIFT[0], count=SEED_GIFT[1], key="seed")
    seed_coins = GIFTS[SEED_GIFT[0]] * SEED_GIFT[1]

    async def host_available() -> bool:
        return (await wire.ok(hc, "wallet"))["diamonds"] == diamonds_for(seed_coins, GIFT_BPS)

    await load.poll(host_available)

    payers = []
    for i in range(6):
        user = f"{tag}-p{i}"
        await nodes[i % 3].grant(user, GRANT)
        payers.append(Actor(user, "viewer", i % 3, plan(rng, user, room, product, 40), room))
    for a in payers:
        await load.session(a)
    host_ops = [Op(host, "withdraw", f"w{k}", {"diamonds": WITHDRAW}) for k in range(WITHDRAWALS)]
    creator = Actor(host, "creator", 0, host_ops, None)
    creator.client = hc
    total = sum(len(a.ops) for a in payers)

    victim = victim_of(cluster, target, room, host, product, nodes[0].settings.shards)
    replica = replica_of(cluster, victim)
    kill_after = rng.randint(total // 5, total // 2)
    promote_after, restart_after = rng.uniform(0.2, 1.5), rng.uniform(0.0, 1.5)
    timeline: dict[str, float] = {}
    storms_done = asyncio.Event()

    async def fail_over() -> None:
        while load.acked() < kill_after and not storms_done.is_set():
            await asyncio.sleep(0.002)
        assert not storms_done.is_set(), "the load ended before the kill moment"
        if lag:
            assert replica.pid is not None
            os.kill(replica.pid, signal.SIGSTOP)
            try:  # the master drops its replica's link: what it does now reaches no replica
                await asyncio.to_thread(victim.call, "CLIENT", "KILL", "TYPE", "replica")
                await asyncio.sleep(lag)
                cluster.kill(victim.port)
            finally:
                os.kill(replica.pid, signal.SIGCONT)
        cluster.kill(victim.port)
        timeline["killed"] = time.monotonic()
        await asyncio.sleep(promote_after)
        await asyncio.to_thread(promote, cluster, replica)
        timeline["promoted"] = time.monotonic()
        await asyncio.sleep(restart_after)
        await asyncio.to_thread(cluster.restart, victim.port, scaled(15))
        await asyncio.to_thread(cluster.wait_ok, scaled(30))
        timeline["restored"] = time.monotonic()

    async def storm_then_retry() -> None:
        await asyncio.gather(
            *(load.storm(a, window=4) for a in payers), load.storm(creator, pace=0.15)
        )
        storms_done.set()
        await asyncio.gather(*(load.finish(a) for a in [*payers, creator]))

    started = time.monotonic()
    await asyncio.gather(fail_over(), storm_then_retry())
    assert cluster.role_of(replica.port) == "master" and cluster.role_of(victim.port) == "slave"

    # every reply: never internal; every key ended ok or with a definitive error
    ops = [op for a in [*payers, creator] for op in a.ops]
    assert wire.internal == [], wire.internal[:5]
    assert [op for op in ops if not op.done] == []
    assert load.unexpected(ops) == [], load.unexpected(ops)[:5]
    felt = [op for op in ops if op.seen[0] != "ok"]

    # exactly once: balances, orders, stock, room events, withdrawals
    sold: Counter[str] = Counter()
    for a in payers:
        acked = [op for op in a.ops if op.acked]
        bought = sum(PACKAGES[op.args["package"]] for op in acked if op.name == "buy_coins")
        gifts = [op for op in acked if op.name == "gift"]
        buys = [op for op in acked if op.name == "buy"]
        gifted = sum(GIFTS[op.args["gift"]] * op.args["count"] for op in gifts)
        paid = sum(PRICE * op.args["qty"] for op in buys)
        sold["gift"] += gifted
        sold["shop"] += paid
        sold["units"] += sum(op.args["qty"] for op in buys)
        c = await load.session(a)
        assert (await wire.ok(c, "wallet"))["coins"] == GRANT + bought - gifted - paid, a.user
        orders = await load.listing(c, "orders")
        assert sorted(o["order"] for o in orders) == sorted(op.final["order"] for op in buys)
        a.expect = {"gift": (len(gifts), gifted), "purchase": (len(buys), 0)}

    async def stock_left() -> bool:
        listed = (await wire.ok(bc, "products", seller=brand))["products"]
        return bool(listed[0]["stock"] == STOCK - sold["units"])

    await load.poll(stock_left)
    events = await load.room_log(nodes[2], f"{tag}-logreader", room)
    assert len({e["seq"] for e in events}) == len(events)
    for a in payers:
        mine = [e for e in events if e.get("from") == a.user]
        got = [e for e in mine if e["ev"] == "gift"]
        assert (len(got), sum(e["coins"] for e in got)) == a.expect["gift"], a.user
        assert sum(1 for e in mine if e["ev"] == "purchase") == a.expect["purchase"][0], a.user

    withdrawn = [op for op in creator.ops if op.acked]
    hc = await load.session(creator)  # a new connection if a reply to it was lost
    listed = await load.listing(hc, "withdrawals")
    assert sorted(w["withdrawal"] for w in listed) == sorted(
        op.final["withdrawal"] for op in withdrawn
    )
    out = sum(w["diamonds"] for w in listed)
    assert out == WITHDRAW * len(withdrawn)
    host_due = diamonds_for(seed_coins + sold["gift"], GIFT_BPS) + diamonds_for(
        sold["shop"], COMMISSION_BPS
    )
    brand_due = diamonds_for(sold["shop"], 10_000 - SHOP_PLATFORM_BPS - COMMISSION_BPS)

    async def settled() -> bool:
        h, b = await wire.ok(hc, "wallet"), await wire.ok(bc, "wallet")
        got = (h["diamonds"] + h["pending"] + out, b["diamonds"] + b["pending"])
        assert got[0] <= host_due and got[1] <= brand_due, (got, host_due, brand_due)
        return got == (host_due, brand_due)

    await load.poll(settled)
    report = await nodes[1].audit()
    assert report["ok"], report
    assert wire.internal == [], wire.internal[:5]
    print(
        f"failover seed {seed} ({target}, master :{victim.port}, lag {lag}): {total} payer keys, "
        f"killed after {kill_after} acks, {len(felt)} keys not ok at first, "
        f"{sum(1 for op in ops if op.acked)} acknowledged, codes {dict(wire.codes)}, "
        f"slowest reply {wire.slowest:.2f} s, promoted "
        f"{timeline['promoted'] - timeline['killed']:.2f} s after the kill, "
        f"{time.monotonic() - started:.1f} s in all"
    )


async def test_dead_master_answers_unavailable_and_other_masters_keep_working(
    failover_nodes: list[Running], failover_ready: LocalCluster
) -> None:
    nodes, cluster = failover_nodes, failover_ready
    wire = Wire()
    load = Load(nodes, wire, time.monotonic() + scaled(60))
    room, host, shards = "fodown-room", "fodown-host", nodes[0].settings.shards
    room_master = cluster.master_of_slot(key_slot(RoomKeys(room).meta)).port
    host_master = cluster.master_of_slot(key_slot(UserKeys.of(host, shards).wallet)).port
    victim = next(m for m in masters_now(cluster) if m.port not in (room_master, host_master))
    replica = replica_of(cluster, victim)

    def on_victim(user: str) -> bool:
        wallet = UserKeys.of(user, shards).wallet
        return cluster.master_of_slot(key_slot(wallet)).port == victim.port

    names = (f"fodown-v{i}" for i in itertools.count())
    down_user = next(u for u in names if on_victim(u))
    up_user = next(u for u in names if not on_victim(u))
    hc = await load.session(Actor(host, "creator", 0, [], None))
    await wire.ok(hc, "room_open", room=room, title="down")
    down, up = Actor(down_user, "viewer", 1, [], room), Actor(up_user, "viewer", 2, [], room)
    # the up user gifts a coin per probe for as long as the loops below run, as fast as the
    # gifts go: its coins must outlast them (1,000 once ran out on a fast run)
    grant = 100_000
    for a in (down, up):
        await nodes[0].grant(a.user, grant)
        await load.session(a)
    assert down.client is not None and up.client is not None

    # held down: the replica may not take over by itself (only when told, below)
    replica.call("CONFIG", "SET", "cluster-replica-no-failover", "yes")
    cluster.kill(victim.port)
    up_gifts = up.ops  # retried to the end after the failover

    async def probe() -> bool:
        """The dead master's slot (a gift, a wallet read): ``unavailable``, in bounded
        time; then a gift in another master's slot: whether it got ``ok``."""
        t0 = time.monotonic()
        assert down.client is not None and up.client is not None
        gift = await wire.call(down.client, "gift", room=room, gift="panda", count=1, key="g1")
        read = await wire.call(down.client, "wallet")
        assert code_of(gift) == code_of(read) == "unavailable", (gift, read)
        op = Op(up.user, "gift", f"u{len(up_gifts)}", {"room": room, "gift": "rose", "count": 1})
        up_gifts.append(op)
        await load.attempt(up, op)
        assert op.seen[-1] in ("ok", "unavailable"), op.final
        assert time.monotonic() - t0 < scaled(6), time.monotonic() - t0
        return op.acked

    # Valkey's default (cluster-require-full-coverage yes): once the master is marked
    # failed, every slot is refused (CLUSTERDOWN): unavailable everywhere, never internal
    async with asyncio.timeout(scaled(15)):
        while await probe():
            await asyncio.sleep(0.05)
    # without full coverage the other masters serve on while this one stays down
    for n in cluster.live_nodes():
        n.call("CONFIG", "SET", "cluster-require-full-coverage", "no")
    async with asyncio.timeout(scaled(15)):
        while not await probe():
            await asyncio.sleep(0.05)
    until = time.monotonic() + 2 * NODE_TIMEOUT_MS / 1000
    while time.monotonic() < until:
        assert await probe(), up_gifts[-1].seen
    assert cluster.role_of(replica.port) == "slave"
    await asyncio.to_thread(promote, cluster, replica)
    await asyncio.to_thread(cluster.restart, victim.port, scaled(15))
    await asyncio.to_thread(cluster.wait_ok, scaled(30))
    await load.finish(up)
    up_c = await load.session(up)
    acked = sum(1 for op in up_gifts if op.acked)
    assert (await wire.ok(up_c, "wallet"))["coins"] == grant - acked
    print(f"master held down: codes {dict(wire.codes)}, slowest reply {wire.slowest:.2f} s")

    op = Op(down.user, "gift", "g1", {"room": room, "gift": "panda", "count": 1})
    await load.finish(Actor(down.user, "viewer", 1, [op], room, down.client))
    assert op.acked, op.final
    down_c = await load.session(down)
    assert (await wire.ok(down_c, "wallet"))["coins"] == grant - GIFTS["panda"]
    again = await wire.ok(down_c, "gift", room=room, gift="panda", count=1, key="g1")
    assert again["coins"] == grant - GIFTS["panda"]
    assert (await wire.ok(down_c, "wallet"))["coins"] == grant - GIFTS["panda"]
    assert wire.internal == [], wire.internal
    report = await nodes[0].audit()
    assert report["ok"], report
