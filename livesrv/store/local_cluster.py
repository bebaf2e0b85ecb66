"""A local Valkey Cluster for development and tests, on loopback only.

It runs the same server binary as the embedded store (:func:`livesrv.store.find_server_binary`):
``masters`` primaries and ``replicas`` replicas per primary, each a child process on
127.0.0.1 with its own free client port and cluster-bus port, its own dir under a base dir,
``cluster-enabled yes`` and AOF on. Slots are split evenly with ``CLUSTER ADDSLOTSRANGE``,
nodes join with ``CLUSTER MEET``, replicas attach with ``CLUSTER REPLICATE``, and
:meth:`LocalCluster.wait_ok` polls until every live node says ``cluster_state:ok`` and all
agree on which primary owns which slots.

Usage::

    python -m livesrv.store.local_cluster --dir /tmp/cluster --masters 3 --replicas 0

prints one ``redis://127.0.0.1:PORT`` line per primary and stops the cluster on Ctrl-C or
SIGTERM. Every :meth:`LocalCluster.start` builds a fresh cluster: node dirs are emptied.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import redis

from ..errors import StoreError
from . import aof_tail
from .embedded import spawn_server

SLOTS = 16384
HOST = "127.0.0.1"
SlotMap = list[tuple[int, int, int]]  # (first slot, last slot, primary's port), sorted


@dataclass
class ClusterNode:
    """One server process of the cluster.

    Attributes:
        index: Position in start order; its dir is ``base_dir/node-INDEX``.
        port: Client port on 127.0.0.1.
        bus_port: Cluster-bus port on 127.0.0.1.
        role: ``master`` or ``replica`` as started (a failover may swap them; see
            :meth:`LocalCluster.role_of`).
        master_index: For a replica, the index of the primary it was attached to.
    """

    index: int
    port: int
    bus_port: int
    dir: Path
    role: str
    master_index: int | None = None
    process: subprocess.Popen[bytes] | None = None
    node_id: str = ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A plain (non-cluster) sync client to this node alone; the caller closes it."""
        return redis.Redis(host=HOST, port=self.port, socket_timeout=timeout, decode_responses=True)

    def call(self, *args: Any, timeout: float = 2.0) -> Any:
        client = self.client(timeout)
        try:
            return client.execute_command(*args)
        finally:
            client.close()


class LocalCluster:
    """Start, inspect and stop a local cluster.

    Args:
        base_dir: Parent of the node dirs (created if missing).
        masters: Number of primaries (at least 1).
        replicas: Replicas per primary.
        node_timeout_ms: ``cluster-node-timeout``: how long a node may be unreachable
            before it is considered failing (and a replica may take over).
        appendfsync: AOF fsync policy of every node.
    """

    def __init__(
        self,
        base_dir: Path | str,
        masters: int = 3,
        replicas: int = 0,
        node_timeout_ms: int = 2000,
        appendfsync: str = "everysec",
    ) -> None:
        if masters < 1 or replicas < 0:
            raise ValueError("need at least one master and a non-negative replica count")
        self.base_dir = Path(base_dir).resolve()
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.appendfsync = appendfsync
        self.nodes: list[ClusterNode] = []

    # -- inspection ------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """URLs of the nodes started as primaries (any one is a valid seed)."""
        return [n.url for n in self.nodes if n.role == "master"]

    def node(self, port: int) -> ClusterNode:
        for n in self.nodes:
            if n.port == port:
                return n
        raise KeyError(f"no node on port {port}")

    def live_nodes(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.alive]

    def slot_map(self) -> SlotMap:
        """The slot ranges and their primaries, as the first live node sees them."""
        for n in self.live_nodes():
            with contextlib.suppress(redis.RedisError):
                return _slot_map(n)
        raise StoreError("no live cluster node answers")

    def master_of_slot(self, slot: int) -> ClusterNode:
        """The node that currently serves ``slot`` as primary."""
        for first, last, port in self.slot_map():
            if first <= slot <= last:
                return self.node(port)
        raise StoreError(f"slot {slot} is not served")

    def role_of(self, port: int) -> str:
        """The role a live node reports now (``master`` or ``slave``)."""
        return str(self.node(port).call("ROLE")[0])

    # -- life cycle ------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        """Start every node, form the cluster and wait until it is ok.

        Raises:
            StoreError: A node did not start, or the cluster was not ok in time.
        """
        if self.nodes:
            raise StoreError("cluster already started")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        total = self.masters * (1 + self.replicas)
        try:
            for index in range(total):
                is_master = index < self.masters
                node = ClusterNode(
                    index=index,
                    port=0,
                    bus_port=0,
                    dir=self.base_dir / f"node-{index}",
                    role="master" if is_master else "replica",
                    master_index=None if is_master else (index - self.masters) % self.masters,
                )
                shutil.rmtree(node.dir, ignore_errors=True)
                node.dir.mkdir(parents=True)
                self._spawn(node, fresh_ports=True)
                self.nodes.append(node)
            self._form(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def _form(self, deadline: float) -> None:
        masters = [n for n in self.nodes if n.role == "master"]
        for n in self.nodes:
            _poll(deadline, lambda n=n: bool(n.call("PING")), f"node {n.port} to answer")
            n.node_id = str(n.call("CLUSTER", "MYID"))
        for i, (first, last) in enumerate(_split(self.masters)):
            masters[i].call("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
            masters[i].call("CLUSTER", "ADDSLOTSRANGE", first, last)
        seed = self.nodes[0]
        for n in self.nodes[1:]:
            seed.call("CLUSTER", "MEET", HOST, n.port, n.bus_port)
        _poll(deadline, self._all_known, "every node to know every other node")
        for n in self.nodes:
            if n.master_index is not None:
                n.call("CLUSTER", "REPLICATE", self.nodes[n.master_index].node_id)
        self.wait_ok(max(1.0, deadline - time.monotonic()))

    def _all_known(self) -> bool:
        want = {n.node_id for n in self.nodes}
        for n in self.nodes:
            known = set()
            for line in str(n.call("CLUSTER", "NODES")).splitlines():
                fields = line.split()
                if "handshake" not in fields[2] and "noaddr" not in fields[2]:
                    known.add(fields[0])
            if known != want:
                return False
        return True

    def wait_ok(self, timeout: float = 30.0) -> SlotMap:
        """Poll until every live node reports ``cluster_state:ok``, all agree on one slot map
        covering every slot, and every live replica's link to its primary is up.

        Returns:
            The agreed slot map.

        Raises:
            StoreError: Not ok within ``timeout`` seconds.
        """
        agreed: list[SlotMap] = []

        def ok() -> bool:
            maps = []
            for n in self.live_nodes():
                if "cluster_state:ok" not in str(n.call("CLUSTER", "INFO")):
                    return False
                role = n.call("ROLE")
                if role[0] == "slave" and role[3] != "connected":
                    return False
                maps.append(_slot_map(n))
            if not maps or any(m != maps[0] for m in maps):
                return False
            if sum(last - first + 1 for first, last, _ in maps[0]) != SLOTS:
                return False
            agreed[:] = [maps[0]]
            return True

        _poll(time.monotonic() + timeout, ok, "cluster_state:ok on every node")
        return agreed[0]

    def kill(self, port: int) -> None:
        """SIGKILL one node (a crash, for tests) and reap it."""
        node = self.node(port)
        if node.process is not None and node.process.poll() is None:
            node.process.kill()
            node.process.wait()

    def restart(self, port: int, timeout: float = 15.0) -> None:
        """Start a stopped or killed node again on its ports with its dir (AOF, nodes.conf)
        kept, so it rejoins the cluster (a primary that lost its slots rejoins as replica)."""
        node = self.node(port)
        if node.alive:
            raise StoreError(f"node {port} is running")
        self._spawn(node, fresh_ports=False)
        _poll(time.monotonic() + timeout, lambda: bool(node.call("PING")), f"node {port}")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every node gracefully (SIGTERM: AOF flushed), killing any that hangs."""
        for n in self.nodes:
            if n.alive and n.process is not None:
                n.process.send_signal(signal.SIGTERM)
        for n in self.nodes:
            if n.process is None:
                continue
            try:
                n.process.wait(timeout)
            except subprocess.TimeoutExpired:
                n.process.kill()
                n.process.wait()
        self.nodes = []

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, node: ClusterNode, *, fresh_ports: bool, attempts: int = 5) -> None:
        """Start one node process; with ``fresh_ports``, retry on new ports if one was taken
        between choosing it and the server binding it."""
        aof_tail.mend_after_crash(node.dir, node.dir / "node.pid")
        for _ in range(attempts):
            if fresh_ports:
                node.port, node.bus_port = free_port(), free_port()
            conf = node.dir / "node.conf"
            conf.write_text(self._conf(node))
            logfile: IO[bytes] = (node.dir / "node.log").open("ab")
            node.process = spawn_server(conf, node.dir, logfile)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and node.process.poll() is None:
                if _listening(node.port):
                    return
                time.sleep(0.02)
            hung = node.process.poll() is None
            if hung:
                node.process.kill()
            node.process.wait()
            if hung or not fresh_ports:
                break
        raise StoreError(f"cluster node did not start; see {node.dir / 'node.log'}")

    def _conf(self, node: ClusterNode) -> str:
        lines = {
            "bind": HOST,
            "port": str(node.port),
            "cluster-port": str(node.bus_port),
            "cluster-enabled": "yes",
            "cluster-config-file": "nodes.conf",
            "cluster-node-timeout": str(self.node_timeout_ms),
            "dir": str(node.dir),
            "pidfile": str(node.dir / "node.pid"),  # left behind only by a crash
            "daemonize": "no",
            "appendonly": "yes",
            "appendfsync": self.appendfsync,
            "save": '""',
            "repl-diskless-sync-delay": "0",  # a replica syncs at once, not after 5 s
            "maxmemory-policy": "noeviction",
            "loglevel": "notice",
            "timeout": "0",
        }
        return "".join(f"{k} {v}\n" for k, v in lines.items())


def _split(masters: int) -> list[tuple[int, int]]:
    """Even contiguous slot ranges, one per primary."""
    edges = [SLOTS * i // masters for i in range(masters + 1)]
    return [(edges[i], edges[i + 1] - 1) for i in range(masters)]


def _slot_map(node: ClusterNode) -> SlotMap:
    reply = node.call("CLUSTER", "SLOTS")
    return sorted((int(r[0]), int(r[1]), int(r[2][1])) for r in reply)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((HOST, port)) == 0


def _poll(deadline: float, check: Any, what: str) -> None:
    """Call ``check()`` until it is true; errors count as not yet. Raises at the deadline."""
    last: Exception | None = None
    while True:
        try:
            if check():
                return
        except redis.RedisError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise StoreError(f"timed out waiting for {what}" + (f" ({last})" if last else ""))
        time.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> int:
    """Start a local cluster, print one primary URL a line, stop it on SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m livesrv.store.local_cluster", description=__doc__
    )
    parser.add_argument("--dir", required=True, type=Path, help="parent of the node dirs")
    parser.add_argument("--masters", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=0, help="replicas per master")
    parser.add_argument("--node-timeout-ms", type=int, default=2000)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster = LocalCluster(args.dir, args.masters, args.replicas, args.node_timeout_ms)
    try:
        cluster.start()
        for url in cluster.urls:
            print(url, flush=True)
        while not stop.wait(0.5):
            if not cluster.live_nodes():
                print("every cluster node exited", file=sys.stderr)
                return 1
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
