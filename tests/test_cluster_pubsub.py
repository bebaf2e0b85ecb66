"""Room and wallet events on sharded pub/sub, on a real 3-master Valkey Cluster.

Two in-process nodes, each pointed at a different master: a viewer on one sees every gift
sent through the other (the room's slot on the third master) in seq order with no gap; a
creator gets the ``wallet`` event when the other node's settlement credits her; a node
subscribes to the wallet channels of its signed-in users only; and after the room's slot
is migrated to another master, its events still arrive (the nodes resubscribe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from livesrv.settings import Settings
from livesrv.store.keys import RoomKeys, UserKeys
from livesrv.store.local_cluster import ClusterNode, LocalCluster
from livesrv.store.topology import key_slot
from tests.client import Client
from tests.conftest import Nodes, Running
from tests.timing import scaled

StartNode = Callable[..., Awaitable[Running]]


@pytest.fixture
async def node_on(cluster_urls: list[str], tmp_path: Path) -> AsyncIterator[StartNode]:
    """``await node_on(i, **settings)``: an in-process node whose ``redis_url`` is master i
    alone (it discovers the rest); stopped after the test."""
    nodes = Nodes()

    async def start(master: int, **overrides: Any) -> Running:
        data_dir = tmp_path / f"node{len(nodes.running)}"
        return await nodes.start(data_dir, cluster_urls[master], **overrides)

    yield start
    await nodes.close()


def owner_port(cluster: LocalCluster, name: str) -> int:
    """The port of the master owning the slot of a key or channel."""
    return cluster.master_of_slot(key_slot(name)).port


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def named_on(cluster: LocalCluster, prefix: str, port: int, name: Callable[[str], str]) -> str:
    """The first ``prefix``-N whose ``name(...)`` lives on the master at ``port``."""
    for i in range(10_000):
        candidate = f"{prefix}{i}"
        if owner_port(cluster, name(candidate)) == port:
            return candidate
    raise AssertionError(f"no {prefix}N on port {port}")


def shard_subscribers(cluster: LocalCluster, channel: str) -> dict[int, int]:
    """``PUBSUB SHARDNUMSUB channel`` of every master, by port."""
    out = {}
    for node in cluster.nodes:
        reply = node.call("PUBSUB", "SHARDNUMSUB", channel)
        out[node.port] = int(reply[1])
    return out


async def until(check: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def gift_ok(c: Client, **args: Any) -> dict[str, Any]:
    """A gift, retried with the same key while the answer is ``unavailable`` (a slot moving)."""
    for _ in range(100):
        reply = await c.call("gift", **args)
        if reply["ok"] or reply["error"]["code"] != "unavailable":
            assert reply["ok"] is True, reply
            return reply
        await asyncio.sleep(0.05)
    raise AssertionError(f"gift stayed unavailable: {reply}")


async def gifts_seen(viewer: Client, room: str, sender: str, n: int) -> list[dict[str, Any]]:
    await viewer.wait(
        lambda: sum(1 for e in viewer.events if e["ev"] == "gift" and e["from"] == sender) >= n,
        timeout=20,
    )
    return [e for e in viewer.events if e["ev"] == "gift" and e.get("room") == room]


def assert_gap_free(viewer: Client, room: str) -> None:
    seqs = viewer.seqs(room)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


def migrate_slot(cluster: LocalCluster, slot: int, src: ClusterNode, dst: ClusterNode) -> None:
    """Move one slot and its keys from ``src`` to ``dst``, as a resharding tool does."""
    ids = {n.port: n.call("CLUSTER", "MYID") for n in cluster.nodes}
    dst.call("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src.port])
    src.call("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst.port])
    while keys := src.call("CLUSTER", "GETKEYSINSLOT", slot, 100):
        src.call("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", *keys, timeout=10)
    for node in (dst, src, *[n for n in cluster.nodes if n.port not in (src.port, dst.port)]):
        node.call("CLUSTER", "SETSLOT", slot, "NODE", ids[dst.port])
    cluster.wait_ok(scaled(15))


@pytest.fixture
def restore_slots(local_cluster: LocalCluster) -> Iterator[list[tuple[int, int]]]:
    """Slots a test moved, as (slot, original owner port): moved back after the test."""
    moved: list[tuple[int, int]] = []
    yield moved
    for slot, port in reversed(moved):
        current = local_cluster.master_of_slot(slot)
        if current.port != port:
            migrate_slot(local_cluster, slot, current, local_cluster.node(port))


async def test_viewer_on_one_node_sees_every_gift_sent_through_another(
    local_cluster: LocalCluster, node_on: StartNode, cluster_urls: list[str]
) -> None:
    a, b = await node_on(0), await node_on(1)
    third = port_of(cluster_urls[2])
    room = named_on(local_cluster, "cpg-room", third, lambda r: RoomKeys(r).channel)
    creator = await b.connect("cpg_alice", "creator")
    await creator.ok("room_open", room=room, title="on the third master")
    viewer = await a.connect("cpg_viewer")
    await viewer.ok("join", room=room)
    await b.grant("cpg_bob", 10_000)
    bob = await b.connect("cpg_bob")
    await bob.ok("join", room=room)
    n = 40
    replies = await asyncio.gather(
        *(bob.ok("gift", room=room, gift="rose", count=1 + i % 3, key=f"g{i}") for i in range(n))
    )
    assert all(r["ok"] for r in replies)
    gifts = await gifts_seen(viewer, room, "cpg_bob", n)
    assert len(gifts) == n  # each once
    assert sorted(g["count"] for g in gifts) == sorted(1 + i % 3 for i in range(n))
    assert_gap_free(viewer, room)
    # the room's events travel on the shard channel of its slot: both nodes subscribed
    # on the master that owns it, nowhere else
    channel = RoomKeys(room).channel
    subs = shard_subscribers(local_cluster, channel)
    assert subs[third] == 2 and sum(subs.values()) == 2, subs


async def test_creator_gets_wallet_event_when_another_nodes_settlement_credits_her(
    local_cluster: LocalCluster, node_on: StartNode, cluster_urls: list[str]
) -> None:
    a = await node_on(0, settle=False)  # settlement runs on node b only
    b = await node_on(1)
    third = port_of(cluster_urls[2])
    carol = named_on(
        local_cluster, "cpw_carol", third, lambda u: UserKeys.of(u, Settings().shards).wallet
    )
    assert (
        a.backend.user(carol).wallet_channel == UserKeys.of(carol, Settings().shards).wallet_channel
    )
    creator = await a.connect(carol, "creator")
    await creator.ok("room_open", room="cpw-room", title="t")
    await creator.ok("join", room="cpw-room")
    await b.grant("cpw_dave", 1000)
    dave = await b.connect("cpw_dave")
    await dave.ok("join", room="cpw-room")
    await dave.ok("gift", room="cpw-room", gift="rainbow_puke", count=1, key="big")
    w = await creator.event("wallet", lambda e: e["diamonds"] == 50, timeout=20)
    assert w["pending"] == 0 and w["coins"] == 0
    hello = await creator.ok("hello", token=a.token(carol, "creator"))
    assert hello["diamonds"] == 50


async def test_a_node_subscribes_to_the_wallets_of_its_signed_in_users_only(
    local_cluster: LocalCluster, node_on: StartNode
) -> None:
    a = await node_on(0)
    b = await node_on(1)
    on = UserKeys.of("cpn_on", a.settings.shards).wallet_channel
    off = UserKeys.of("cpn_off", a.settings.shards).wallet_channel
    assert on != off and on.endswith(":wch:cpn_on")
    owner = owner_port(local_cluster, on)
    first = await a.connect("cpn_on")
    await until(lambda: shard_subscribers(local_cluster, on)[owner] == 1, "a subscribed")
    second = await a.connect("cpn_on")  # a second session: still one subscription
    await b.grant("cpn_on", 7)
    await first.event("wallet", lambda e: e["coins"] == 7)
    await second.event("wallet", lambda e: e["coins"] == 7)
    subs = shard_subscribers(local_cluster, on)
    assert subs[owner] == 1 and sum(subs.values()) == 1, subs
    assert set(shard_subscribers(local_cluster, off).values()) == {0}
    await first.close()
    await second.event("wallet", lambda e: e["coins"] == 7)
    assert shard_subscribers(local_cluster, on)[owner] == 1  # second is still signed in
    await second.close()
    await until(lambda: set(shard_subscribers(local_cluster, on).values()) == {0}, "a unsubscribed")


async def test_room_events_still_arrive_after_the_rooms_slot_moves(
    local_cluster: LocalCluster,
    node_on: StartNode,
    cluster_urls: list[str],
    restore_slots: list[tuple[int, int]],
) -> None:
    a, b = await node_on(0), await node_on(1)
    third = port_of(cluster_urls[2])
    room = named_on(local_cluster, "cpm-room", third, lambda r: RoomKeys(r).channel)
    channel = RoomKeys(room).channel
    creator = await b.connect("cpm_alice", "creator")
    await creator.ok("room_open", room=room, title="moving")
    viewer = await a.connect("cpm_viewer")
    await viewer.ok("join", room=room)
    await b.grant("cpm_bob", 10_000)
    bob = await b.connect("cpm_bob")
    await bob.ok("join", room=room)
    for i in range(5):
        await gift_ok(bob, room=room, gift="rose", count=1, key=f"before{i}")
    await gifts_seen(viewer, room, "cpm_bob", 5)

    slot = key_slot(channel)
    src, dst = local_cluster.node(third), local_cluster.node(port_of(cluster_urls[0]))
    restore_slots.append((slot, src.port))
    migrate_slot(local_cluster, slot, src, dst)
    assert owner_port(local_cluster, channel) == dst.port
    # both nodes follow the slot: subscribed on its new owner, no longer on the old one
    await until(
        lambda: (
            shard_subscribers(local_cluster, channel)
            == {n.port: 0 for n in local_cluster.nodes} | {dst.port: 2}
        ),
        "resubscribed on the new owner",
    )
    for i in range(10):
        await gift_ok(bob, room=room, gift="panda", count=1, key=f"after{i}")
    gifts = await gifts_seen(viewer, room, "cpm_bob", 15)
    assert [g["gift"] for g in gifts] == ["rose"] * 5 + ["panda"] * 10
    assert_gap_free(viewer, room)
    # node b (the sender's) followed the slot too
    await bob.event("gift", lambda e: e["gift"] == "panda" and e["seq"] == gifts[-1]["seq"])
    assert_gap_free(bob, room)
    with pytest.raises(redis.exceptions.MovedError):  # the room left its old master
        src.call("HGET", RoomKeys(room).meta, "seq")


async def test_joining_a_room_whose_slot_moved_unseen_subscribes_on_its_new_owner(
    local_cluster: LocalCluster,
    node_on: StartNode,
    cluster_urls: list[str],
    restore_slots: list[tuple[int, int]],
) -> None:
    """Node a's slot map still names the old owner when its viewer joins: the old owner
    answers SSUBSCRIBE with MOVED, and a subscribes on the new one."""
    a, b = await node_on(0), await node_on(1)
    third = port_of(cluster_urls[2])
    room = named_on(local_cluster, "cps-room", third, lambda r: RoomKeys(r).channel)
    channel = RoomKeys(room).channel
    assert a.backend.topology.url_for_key(channel) == cluster_urls[2]
    creator = await b.connect("cps_alice", "creator")
    await creator.ok("room_open", room=room, title="moved before anyone here joined")
    src, dst = local_cluster.node(third), local_cluster.node(port_of(cluster_urls[1]))
    restore_slots.append((key_slot(channel), src.port))
    migrate_slot(local_cluster, key_slot(channel), src, dst)
    assert a.backend.topology.url_for_key(channel) == cluster_urls[2]  # a has not noticed
    viewer = await a.connect("cps_viewer")
    joined = await viewer.ok("join", room=room)
    await until(
        lambda: shard_subscribers(local_cluster, channel)[dst.port] == 1, "a on the new owner"
    )
    assert shard_subscribers(local_cluster, channel)[src.port] == 0
    await b.grant("cps_bob", 100)
    bob = await b.connect("cps_bob")
    await bob.ok("join", room=room)
    for i in range(5):
        await gift_ok(bob, room=room, gift="rose", count=1, key=f"g{i}")
    gifts = await gifts_seen(viewer, room, "cps_bob", 5)
    assert [g["seq"] for g in gifts] == list(range(joined["seq"] + 1, joined["seq"] + 6))
    assert_gap_free(viewer, room)


async def test_a_dropped_subscriber_connection_is_renewed_and_nothing_is_missed(
    local_cluster: LocalCluster, node_on: StartNode, cluster_urls: list[str]
) -> None:
    a, b = await node_on(0), await node_on(1)
    third = port_of(cluster_urls[2])
    room = named_on(local_cluster, "cpd-room", third, lambda r: RoomKeys(r).channel)
    channel = RoomKeys(room).channel
    creator = await b.connect("cpd_alice", "creator")
    await creator.ok("room_open", room=room, title="t")
    viewer = await a.connect("cpd_viewer")
    await viewer.ok("join", room=room)
    await b.grant("cpd_bob", 1000)
    bob = await b.connect("cpd_bob")
    await bob.ok("join", room=room)
    await until(lambda: shard_subscribers(local_cluster, channel)[third] == 2, "subscribed")
    # the master drops both nodes' subscriber connections; gifts keep coming meanwhile
    local_cluster.node(third).call("CLIENT", "KILL", "TYPE", "pubsub")
    for i in range(10):
        await gift_ok(bob, room=room, gift="rose", count=1, key=f"g{i}")
    gifts = await gifts_seen(viewer, room, "cpd_bob", 10)
    assert len(gifts) == 10
    assert_gap_free(viewer, room)
    await until(lambda: shard_subscribers(local_cluster, channel)[third] == 2, "resubscribed")
    await gift_ok(bob, room=room, gift="panda", count=1, key="after")
    await viewer.event("gift", lambda e: e["gift"] == "panda")
    assert_gap_free(viewer, room)
