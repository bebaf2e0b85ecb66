"""Which store node owns which key: standalone (one node) or a Redis / Valkey Cluster.

A cluster is detected from any seed URL (``INFO cluster`` says ``cluster_enabled:1``);
the slot map comes from ``CLUSTER SLOTS`` and is refreshed whenever a node answers
``MOVED`` (or the caller asks). Everything that must send a command to the node owning a
key (the auto-pipelined script calls, the sharded pub/sub of the hub, per-master reads)
asks one :class:`Topology`.

Seeds: ``--redis-url`` takes one URL or several separated by commas
(``redis://10.0.0.1:7000,redis://10.0.0.2:7000``); any one that answers is enough.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from dataclasses import dataclass, field
from urllib.parse import urlparse, urlunparse

import redis
import redis.asyncio as aioredis
from redis.crc import key_slot as _key_slot

log = logging.getLogger(__name__)

SLOTS = 16384


def split_seeds(url: str) -> list[str]:
    """The seed URLs of a ``--redis-url`` value (one URL, or several separated by commas)."""
    seeds = [u.strip() for u in url.split(",") if u.strip()]
    if not seeds:
        raise ValueError("the store URL is empty")
    return seeds


def key_slot(key: str) -> int:
    """The cluster hash slot of a key (its ``{hash tag}`` when it has one)."""
    return int(_key_slot(key.encode()))


def node_url(seed: str, host: str, port: int) -> str:
    """The URL of a cluster node, keeping the seed's scheme, credentials and query."""
    p = urlparse(seed)
    auth = ""
    if p.username or p.password:
        auth = f"{p.username or ''}:{p.password or ''}@" if p.password else f"{p.username}@"
    netloc = f"{auth}[{host}]:{port}" if ":" in host else f"{auth}{host}:{port}"
    scheme = p.scheme if p.scheme in ("redis", "rediss") else "redis"
    return urlunparse((scheme, netloc, "", "", p.query, ""))


@dataclass
class Topology:
    """The slot map of a cluster, or the single node of a standalone store.

    Attributes:
        seeds: The URLs it was built from.
        cluster: Whether the store is a cluster.
        masters: Master URLs, in slot order (one entry for a standalone store).
        replicas: The fewest replicas any master had when the map was read.
    """

    seeds: list[str]
    cluster: bool = False
    masters: list[str] = field(default_factory=list)
    replicas: int = 0
    nodes: list[str] = field(default_factory=list)  # every node seen, to read the map from
    _starts: list[int] = field(default_factory=list)  # first slot of each range, sorted
    _ends: list[int] = field(default_factory=list)
    _owners: list[str] = field(default_factory=list)
    _refreshing: asyncio.Lock | None = None

    @classmethod
    async def discover(cls, url: str) -> Topology:
        """Ask the seeds whether the store is a cluster and, if so, for its slot map.

        Raises:
            redis.ConnectionError: No seed answers.
        """
        topo = cls(split_seeds(url))
        await topo.refresh()
        return topo

    @property
    def url(self) -> str:
        """The single node of a standalone store (the first seed)."""
        return self.seeds[0]

    async def refresh(self) -> None:
        """Read the slot map again from the first seed (or known master) that answers.

        Raises:
            redis.ConnectionError: None answers.
        """
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            last: Exception | None = None
            for candidate in dict.fromkeys([*self.masters, *self.nodes, *self.seeds]):
                try:
                    await self._read_from(candidate)
                    return
                except (redis.RedisError, OSError) as exc:
                    last = exc
            raise redis.ConnectionError(f"no store node answers: {last}")

    @classmethod
    def standalone(cls, url: str) -> Topology:
        """The map of a single store at ``url`` (nothing asked)."""
        topo = cls([url])
        topo._apply(url, None)
        return topo

    @classmethod
    def discover_blocking(cls, url: str) -> Topology:
        """:meth:`discover` for synchronous callers (start-up): the same map, blocking I/O.

        Raises:
            redis.ConnectionError: No seed answers.
        """
        topo = cls(split_seeds(url))
        last: Exception | None = None
        for candidate in topo.seeds:
            client = redis.Redis.from_url(candidate, socket_connect_timeout=2, socket_timeout=5)
            try:
                info = client.info("cluster")
                enabled = bool(info.get("cluster_enabled"))
                topo._apply(candidate, client.execute_command("CLUSTER SLOTS") if enabled else None)
                if enabled:
                    topo._learn_nodes(client.execute_command("CLUSTER NODES"))
                else:
                    topo.replicas = int(client.info("replication").get("connected_slaves", 0))
                return topo
            except (redis.RedisError, OSError) as exc:
                last = exc
            finally:
                client.close()
        raise redis.ConnectionError(f"no store node answers at {_hosts(topo.seeds)}: {last}")

    async def _read_from(self, url: str) -> None:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        try:
            info = await client.info("cluster")
            rows = None
            replicas = 0
            nodes: dict[str, dict[str, object]] = {}
            if info.get("cluster_enabled"):
                rows = await client.execute_command("CLUSTER SLOTS")
                nodes = await client.execute_command("CLUSTER NODES")
            else:
                replicas = int((await client.info("replication")).get("connected_slaves", 0))
        finally:
            await client.aclose()
        self._apply(url, rows)
        if rows is None:
            self.replicas = replicas
        else:
            self._learn_nodes(nodes)

    def _learn_nodes(self, nodes: dict[str, dict[str, object]]) -> None:
        """Record every node of a parsed ``CLUSTER NODES`` (a replica promoted after all the
        seeds died is still found) and the fewest replicas a master has."""
        self.replicas = fewest_replicas(nodes)
        seen = []
        for address in nodes:
            host, _, port = address.split("@")[0].rpartition(":")
            if port.isdigit() and int(port):
                seen.append(node_url(self.seeds[0], host.strip("[]") or "127.0.0.1", int(port)))
        self.nodes = seen

    def _apply(self, url: str, rows: list[object] | None) -> None:
        """Take a ``CLUSTER SLOTS`` reply as the slot map (None: ``url`` is standalone)."""
        if rows is None:
            self.cluster, self.masters = False, [url]
            self._starts, self._ends, self._owners = [0], [SLOTS - 1], [url]
            return
        ranges = []
        for row in _slot_rows(rows):
            start, end, host, port = row
            ranges.append((start, end, node_url(self.seeds[0], host or "127.0.0.1", port)))
        if not ranges:
            raise redis.ConnectionError("the cluster has no slots assigned yet")
        ranges.sort()
        self.cluster = True
        self._starts = [r[0] for r in ranges]
        self._ends = [r[1] for r in ranges]
        self._owners = [r[2] for r in ranges]
        self.masters = sorted(set(self._owners), key=self._owners.index)

    def url_for_slot(self, slot: int) -> str:
        """The master URL owning ``slot`` (per the last map read).

        Raises:
            redis.ConnectionError: No master owns the slot (cluster not fully set up).
        """
        i = bisect.bisect_right(self._starts, slot) - 1
        if i < 0 or slot > self._ends[i]:
            raise redis.ConnectionError(f"no store node owns slot {slot}")
        return self._owners[i]

    def url_for_key(self, key: str) -> str:
        """The master URL owning ``key``."""
        if not self.cluster:
            return self.masters[0]
        return self.url_for_slot(key_slot(key))

    def moved(self, slot: int, host: str, port: int) -> str:
        """Record a ``MOVED slot host:port`` answer (until the next full refresh).

        Returns:
            The URL of the node that owns the slot now.
        """
        url = node_url(self.seeds[0], host, port)
        i = bisect.bisect_right(self._starts, slot) - 1
        if i >= 0 and slot <= self._ends[i]:
            start, end = self._starts[i], self._ends[i]
            owner = self._owners[i]
            # split the range so that only the moved slot changes owner
            pieces = [
                (s, e, o)
                for s, e, o in ((start, slot - 1, owner), (slot, slot, url), (slot + 1, end, owner))
                if s <= e
            ]
            self._starts[i : i + 1] = [p[0] for p in pieces]
            self._ends[i : i + 1] = [p[1] for p in pieces]
            self._owners[i : i + 1] = [p[2] for p in pieces]
        if url not in self.masters:
            self.masters.append(url)
        return url


def fewest_replicas(nodes: dict[str, dict[str, object]]) -> int:
    """The fewest working replicas any master with slots has, from redis-py's parsed
    ``CLUSTER NODES`` (``CLUSTER SLOTS`` hides a replica that has no data yet)."""
    count: dict[str, int] = {}
    for node in nodes.values():
        flags = str(node.get("flags", ""))
        if "master" in flags and node.get("slots") and "fail" not in flags:
            count.setdefault(str(node["node_id"]), 0)
    for node in nodes.values():
        flags = str(node.get("flags", ""))
        owner = str(node.get("master_id", "-"))
        if "slave" in flags and "fail" not in flags and owner in count:
            count[owner] += 1
    return min(count.values(), default=0)


def _slot_rows(rows: list[object]) -> list[tuple[int, int, str, int]]:
    """(start, end, host, port) of each slot range of a ``CLUSTER SLOTS`` reply."""
    out = []
    for row in rows:
        assert isinstance(row, list | tuple)
        start, end, master = int(row[0]), int(row[1]), row[2]
        assert isinstance(master, list | tuple)
        host = master[0].decode() if isinstance(master[0], bytes) else str(master[0])
        out.append((start, end, host, int(master[1])))
    return out


def host_port(url: str) -> str:
    """``host:port`` (or the socket path) of a store URL, without its credentials."""
    p = urlparse(url)
    if p.scheme == "unix":
        return p.path
    host = p.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{p.port or 6379}"


def _hosts(urls: list[str]) -> str:
    return ", ".join(host_port(u) for u in urls)


def parse_redirect(message: str) -> tuple[str, int, str, int] | None:
    """``("MOVED"|"ASK", slot, host, port)`` of a redirect error text, else None."""
    parts = message.split()
    if len(parts) != 3 or parts[0] not in ("MOVED", "ASK"):
        return None
    host, _, port = parts[2].rpartition(":")
    if not port.isdigit():
        return None
    return parts[0], int(parts[1]), host.strip("[]"), int(port)
