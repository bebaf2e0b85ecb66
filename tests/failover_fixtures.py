"""Fixtures for failover tests: a 3-master, 3-replica local Valkey Cluster of the embedded
binary (short ``cluster-node-timeout``) for one test module, put back whole before and
after each test, and in-process livesrv nodes pointed at its current masters.

Apart from the session's ``local_cluster`` (replica-free and shared): a failover test kills
a master, so no other test may see this cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from livesrv.store.local_cluster import ClusterNode, LocalCluster
from tests.conftest import Nodes, Running
from tests.timing import scaled

MASTERS = 3
NODE_TIMEOUT_MS = 1000
SETTINGS = {  # no rate limit in the way of a load; dead workers' entries claimed after 1 s
    "ops_per_second": 100_000.0,
    "ops_burst": 100_000,
    "settle_claim_ms": 1000,
    "min_withdrawal": 100,
}


@pytest.fixture(scope="module")
def failover_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real 3-master cluster with one replica per master (6 processes), for one module."""
    c = LocalCluster(
        tmp_path_factory.mktemp("failover"),
        masters=MASTERS,
        replicas=1,
        node_timeout_ms=NODE_TIMEOUT_MS,
    )
    c.start(timeout=scaled(60))
    try:
        yield c
    finally:
        c.stop()


def masters_now(cluster: LocalCluster) -> list[ClusterNode]:
    """The nodes serving slots now, in slot order (a failover changes who they are)."""
    ports = []
    for _, _, port in cluster.slot_map():
        if port not in ports:
            ports.append(port)
    return [cluster.node(p) for p in ports]


def replica_of(cluster: LocalCluster, master: ClusterNode) -> ClusterNode:
    """The live replica attached to ``master`` now."""
    for n in cluster.live_nodes():
        role = n.call("ROLE")
        if role[0] == "slave" and int(role[2]) == master.port:
            return n
    raise AssertionError(f"master {master.port} has no live replica")


def promote(cluster: LocalCluster, replica: ClusterNode) -> None:
    """Make ``replica`` (of a dead master) the master with ``CLUSTER FAILOVER TAKEOVER``,
    unless the cluster already promoted it by itself (after ``cluster-node-timeout``); wait
    until every live node agrees."""
    if cluster.role_of(replica.port) != "master":
        try:
            replica.call("CLUSTER", "FAILOVER", "TAKEOVER")
        except redis.ResponseError:  # promoted by the cluster in the meantime
            assert cluster.role_of(replica.port) == "master"
    cluster.wait_ok(scaled(30))


def restore(cluster: LocalCluster) -> None:
    """Restart every killed node (it rejoins as a replica), wait until all six agree and
    every master has a connected replica again, and let every replica fail over by itself."""
    for n in cluster.nodes:
        if not n.alive:
            cluster.restart(n.port, timeout=scaled(15))
    cluster.wait_ok(scaled(30))
    for n in cluster.nodes:  # what a test may have changed: Valkey's defaults again
        n.call("CONFIG", "SET", "cluster-replica-no-failover", "no")
        n.call("CONFIG", "SET", "cluster-require-full-coverage", "yes")
    for m in masters_now(cluster):
        replica_of(cluster, m)


def empty(cluster: LocalCluster) -> None:
    """Flush every master and wait until its replica has the flush too."""
    for m in masters_now(cluster):
        m.call("FLUSHALL")
        assert m.call("WAIT", 1, int(scaled(5000)), timeout=scaled(10)) >= 1


@pytest.fixture
def failover_ready(failover_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The module's cluster whole (6 nodes, one replica per master) and empty; after the
    test, every node it killed is restarted."""
    restore(failover_cluster)
    empty(failover_cluster)
    yield failover_cluster
    restore(failover_cluster)


@pytest.fixture
async def failover_nodes(
    failover_ready: LocalCluster, tmp_path: Path
) -> AsyncIterator[list[Running]]:
    """Three in-process livesrv nodes, node i pointed at the i-th current master alone (it
    discovers the rest), with the default durability policy; stopped after the test."""
    nodes = Nodes()
    urls = [m.url for m in masters_now(failover_ready)]
    overrides: dict[str, Any] = dict(SETTINGS)
    for i in range(MASTERS):
        await nodes.start(tmp_path / f"node{i}", urls[i], **overrides)
    yield nodes.running
    await nodes.close()
