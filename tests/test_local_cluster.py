"""The local Valkey Cluster starter: formation, slot ownership, cluster clients, failover by
takeover, the command line, and that stopping leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.cluster import RedisCluster

from livesrv.store import aof_tail
from livesrv.store.local_cluster import SLOTS, LocalCluster
from tests.timing import scaled

DEBIT = """
local balance = tonumber(redis.call('HGET', KEYS[1], 'coins') or '0')
local amount = tonumber(ARGV[1])
if balance < amount then return {'insufficient', balance} end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', 60) then return {'replay', balance} end
return {'ok', redis.call('HINCRBY', KEYS[1], 'coins', -amount)}
"""


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + scaled(timeout)
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    c = LocalCluster(tmp_path_factory.mktemp("cluster3"), masters=3)
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_three_masters_cover_every_slot(cluster: LocalCluster) -> None:
    assert len(cluster.urls) == 3
    assert all(u.startswith("redis://127.0.0.1:") for u in cluster.urls)
    slot_map = cluster.wait_ok()
    assert [(first, last) for first, last, _ in slot_map] == [
        (0, 5460),
        (5461, 10921),
        (10922, 16383),
    ]
    assert {port for _, _, port in slot_map} == {n.port for n in cluster.nodes}
    for node in cluster.nodes:
        info = node.call("CLUSTER", "INFO")
        assert "cluster_state:ok" in info
        assert f"cluster_slots_assigned:{SLOTS}" in info
        assert "cluster_known_nodes:3" in info
        assert node.role == "master" and cluster.role_of(node.port) == "master"


def test_hash_tagged_key_lands_on_the_owner_of_its_slot(cluster: LocalCluster) -> None:
    rc = RedisCluster.from_url(cluster.urls[0], decode_responses=True)
    try:
        for user in ("alice", "bob", "carol", "dave"):
            key = f"lc:w:{{u-{user}}}"
            slot = int(cluster.nodes[0].call("CLUSTER", "KEYSLOT", key))
            assert slot == int(cluster.nodes[0].call("CLUSTER", "KEYSLOT", f"{{u-{user}}}:x"))
            owner = cluster.master_of_slot(slot)
            assert rc.set(key, user) is True
            assert owner.call("GET", key) == user
            for other in cluster.nodes:
                if other is not owner:
                    with pytest.raises(redis.ResponseError, match=f"{slot} 127.0.0.1:{owner.port}"):
                        other.call("GET", key)
    finally:
        rc.close()


def test_sync_cluster_client_reaches_every_master_and_runs_evalsha(cluster: LocalCluster) -> None:
    rc = RedisCluster.from_url(cluster.urls[1], decode_responses=True)
    try:
        keys = [f"lc:spread:{{s{n}}}" for n in range(16)]
        for n, key in enumerate(keys):
            rc.set(key, str(n))
        assert [rc.get(k) for k in keys] == [str(n) for n in range(16)]
        owners = {cluster.master_of_slot(int(rc.keyslot(k))).port for k in keys}
        assert owners == {n.port for n in cluster.nodes}  # 16 shards spread over all three

        sha = rc.script_load(DEBIT)
        for shard in range(16):
            wallet, idem = f"lc:w:{{s{shard}}}", f"lc:i:{{s{shard}}}:gift-1"
            rc.hset(wallet, "coins", 100)
            assert rc.evalsha(sha, 2, wallet, idem, 30) == ["ok", 70]
            assert rc.evalsha(sha, 2, wallet, idem, 30) == ["replay", 70]
            assert rc.evalsha(sha, 2, wallet, f"lc:i:{{s{shard}}}:gift-2", 99) == [
                "insufficient",
                70,
            ]
    finally:
        rc.close()


async def test_asyncio_cluster_client_set_get_and_evalsha(cluster: LocalCluster) -> None:
    rc = aioredis.RedisCluster.from_url(cluster.urls[2], decode_responses=True)
    try:
        for shard in range(16):
            await rc.set(f"lc:async:{{s{shard}}}", f"v{shard}")
        assert [await rc.get(f"lc:async:{{s{s}}}") for s in range(16)] == [
            f"v{s}" for s in range(16)
        ]
        sha = await rc.script_load(DEBIT)
        await rc.hset("lc:aw:{s3}", "coins", 10)
        assert await rc.evalsha(sha, 2, "lc:aw:{s3}", "lc:ai:{s3}:k", 4) == ["ok", 6]
        assert await rc.evalsha(sha, 2, "lc:aw:{s3}", "lc:ai:{s3}:k", 4) == ["replay", 6]
    finally:
        await rc.aclose()


def test_takeover_after_a_killed_master_and_stop_leaves_no_process(tmp_path: Path) -> None:
    c = LocalCluster(tmp_path / "cl", masters=3, replicas=1, node_timeout_ms=1000)
    c.start()
    pids = [n.pid for n in c.nodes]
    try:
        assert len(c.nodes) == 6 and len(c.urls) == 3
        assert sorted(c.role_of(n.port) for n in c.nodes) == ["master"] * 3 + ["slave"] * 3
        key = "lc:failover:{s7}"
        slot = int(c.nodes[0].call("CLUSTER", "KEYSLOT", key))
        old = c.master_of_slot(slot)
        replica = next(n for n in c.nodes if n.master_index == old.index)
        old.call("SET", key, "kept")
        assert old.call("WAIT", 1, 5000) == 1  # the replica has it

        c.kill(old.port)
        assert not old.alive
        assert replica.call("CLUSTER", "FAILOVER", "TAKEOVER") == "OK"
        c.wait_ok(scaled(15))
        assert c.master_of_slot(slot).port == replica.port
        assert c.role_of(replica.port) == "master"
        rc = RedisCluster.from_url(replica.url, decode_responses=True)
        try:
            assert rc.get(key) == "kept"
        finally:
            rc.close()

        c.restart(old.port)  # the old master comes back as a replica of its successor
        c.wait_ok(scaled(15))
        assert c.role_of(old.port) == "slave"
        assert old.call("ROLE")[2] == replica.port
    finally:
        c.stop()
    assert c.nodes == []
    _wait_until(lambda: all(_gone(p) for p in pids if p), 5, "every node process to exit")


def test_a_killed_node_comes_back_without_the_step_its_kill_cut(tmp_path: Path) -> None:
    """A node killed while writing a script's effects to its AOF (cut inside EXEC): the
    restarted node holds what it held before that script, now and after the next kill
    (the store alone would bring the cut effects back then, see aof_tail)."""
    c = LocalCluster(tmp_path / "cl", masters=1)
    c.start()
    try:
        node = c.nodes[0]

        def debit(key: str, coins: int) -> list[Any]:
            return list(node.call("EVAL", DEBIT, 2, "{w}:fan", f"{{w}}:k:{key}", coins))

        node.call("HSET", "{w}:fan", "coins", 1000)
        assert debit("k1", 10) == ["ok", 990]
        assert debit("k2", 20) == ["ok", 970]
        path = aof_tail.last_incremental(node.dir)
        assert path is not None
        # with appendfsync everysec the store may answer before it writes the AOF (it
        # postpones the write while a slow fsync runs): the cut below needs k2's step there
        _wait_until(lambda: path.read_bytes().count(aof_tail.EXEC) >= 2, 10, "both in the AOF")
        c.kill(node.port)
        aof = path.read_bytes()
        path.write_bytes(aof[: aof.rindex(aof_tail.EXEC) + 10])  # k2's EXEC, cut

        c.restart(node.port)
        c.wait_ok(scaled(15))
        assert node.call("HGET", "{w}:fan", "coins") == "990"
        assert debit("k2", 20) == ["ok", 970]  # the retry moves it once
        assert debit("k3", 5) == ["ok", 965]
        c.kill(node.port)
        c.restart(node.port)
        c.wait_ok(scaled(15))
        assert node.call("HGET", "{w}:fan", "coins") == "965"
        assert node.call("EXISTS", "{w}:k:k2") == 1
    finally:
        c.stop()


def test_command_line_prints_master_urls_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "livesrv.store.local_cluster",
            "--dir",
            str(tmp_path),
            "--masters",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        urls = [proc.stdout.readline().strip() for _ in range(3)]
        assert all(u.startswith("redis://127.0.0.1:") for u in urls), urls
        pids = [int((tmp_path / f"node-{i}" / "node.pid").read_text()) for i in range(3)]
        for url in urls:
            client = redis.Redis.from_url(url, decode_responses=True)
            try:
                assert "cluster_state:ok" in client.execute_command("CLUSTER", "INFO")
            finally:
                client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(scaled(20)) == 0
        assert proc.stderr.read() == ""
        _wait_until(lambda: all(_gone(p) for p in pids), 5, "every node process to exit")
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
