"""Script calls and commands on a Redis / Valkey Cluster.

Script calls: one auto-pipelined connection (:class:`~.pipeline.AutoPipeline`) per master,
chosen by the hash slot of the script's first key (every script's keys share one slot).
What a node may answer instead of running the script, and what is done about it:

- ``MOVED slot host:port``: the slot has a new owner. The slot map records it (and is read
  again in the background) and the call goes to the new owner. Safe: the script did not run.
- ``ASK slot host:port``: the slot is being migrated and the keys are on the target already;
  ``ASKING`` and the ``EVALSHA`` go to the target back to back on one connection.
- ``TRYAGAIN``, ``CLUSTERDOWN``, ``MASTERDOWN``, ``LOADING``: retried with a short backoff
  for about two seconds in all, then the caller gets the error (``unavailable``).
- ``NOSCRIPT``: the connection loads the script on that master and runs it again.

A dropped connection fails the call (``unavailable``): the script may or may not have run,
so it is never re-sent blindly; the client's retry with the same key finishes it once. The
slot map is read again meanwhile, in case a replica took the master's place.

Commands (reads and small writes) go through redis-py's ``RedisCluster``, which follows
MOVED / ASK itself; :func:`command_client` builds it from the seeds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import time
from typing import Any, cast
from urllib.parse import urlparse

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from .durability import Durability
from .pipeline import AutoPipeline
from .topology import Topology, key_slot, node_url, parse_redirect

log = logging.getLogger(__name__)

RETRY_CODES = frozenset({"TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "LOADING"})
RETRY_SECONDS = 2.0  # the whole budget of TRYAGAIN / CLUSTERDOWN retries of one call
REFRESH_GAP = 0.5  # seconds between two background reads of the slot map
MAX_REDIRECTS = 8  # MOVED / ASK hops of one call (a slot map still settling after a move)


class ClusterScripts:
    """Script calls routed to the master that owns their slot.

    Has the :class:`~.pipeline.AutoPipeline` interface the scripts use (``register``,
    ``evalsha``, ``close``), so a standalone store keeps its single connection untouched.

    Args:
        topology: The cluster's slot map.
        timeout: Per-connection timeout (see :class:`~.pipeline.AutoPipeline`).
        durability: What script replies wait for (:mod:`.durability`), on every master.
    """

    def __init__(
        self, topology: Topology, *, timeout: float = 5.0, durability: Durability | None = None
    ) -> None:
        self.topology = topology
        self.timeout = timeout
        self.durability = durability or Durability()
        self._conns: dict[str, AutoPipeline] = {}
        self._sources: list[str] = []
        self._refresh: asyncio.Task[None] | None = None
        self._next_refresh = 0.0
        self.seen: collections.Counter[str] = collections.Counter()  # MOVED, ASK, TRYAGAIN...
        self._changes = 0

    @property
    def generation(self) -> int:
        """Changes whenever a connection to a master is made or lost, or a slot is
        redirected or refused: the store behind some slot may have changed."""
        return self._changes + sum(c.generation for c in self._conns.values())

    def register(self, source: str) -> str:
        self._sources.append(source)
        for conn in self._conns.values():
            conn.register(source)
        return hashlib.sha1(source.encode()).hexdigest()

    def connection(self, url: str) -> AutoPipeline:
        """The auto-pipelined connection to one master (made on first use)."""
        conn = self._conns.get(url)
        if conn is None:
            conn = AutoPipeline(url, timeout=self.timeout, durability=self.durability)
            for source in self._sources:
                conn.register(source)
            self._conns[url] = conn
        return conn

    async def evalsha(self, sha: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script on the master owning its keys' slot, following redirects.

        Raises:
            redis.ConnectionError: The owner cannot be reached, or no node owns the slot.
            redis.exceptions.ClusterError: Still redirected or refused after the retries.
            redis.ResponseError: The script itself failed.
        """
        slot = key_slot(keys[0])
        url = self.topology.url_for_slot(slot)
        asking = False
        hops = 0
        deadline = 0.0
        delay = 0.025
        while True:
            conn = self.connection(url)
            try:
                if asking:
                    return await conn.evalsha_asking(sha, keys, args)
                return await conn.evalsha(sha, keys, args)
            except (redis.ConnectionError, redis.TimeoutError):
                self._changes += 1
                self._refresh_soon()  # a replica may be taking over; not re-sent (may have run)
                raise
            except redis.ResponseError as exc:
                text = str(exc)
                redirect = parse_redirect(text)
                self._changes += 1
                if redirect is not None:
                    hops += 1
                    if hops > MAX_REDIRECTS:
                        raise redis.exceptions.ClusterError(f"too many redirects: {text}") from exc
                    kind, moved_slot, host, port = redirect
                    self.seen[kind] += 1
                    if kind == "MOVED":
                        url, asking = self.topology.moved(moved_slot, host, port), False
                        self._refresh_soon()
                    else:
                        url, asking = node_url(self.topology.seeds[0], host, port), True
                    continue
                code = text.split(" ", 1)[0]
                if code not in RETRY_CODES:
                    raise
                self.seen[code] += 1
                now = time.monotonic()
                deadline = deadline or now + RETRY_SECONDS
                if now + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.4)
                url, asking, hops = self.topology.url_for_slot(slot), False, 0

    def _refresh_soon(self) -> None:
        """Read the whole slot map again in the background (one refresh at a time)."""
        now = time.monotonic()
        if (self._refresh is None or self._refresh.done()) and now >= self._next_refresh:
            self._next_refresh = now + REFRESH_GAP
            self._refresh = asyncio.get_running_loop().create_task(
                self._refresh_quietly(), name="store-topology-refresh"
            )

    async def _refresh_quietly(self) -> None:
        try:
            await self.topology.refresh()
        except (redis.RedisError, OSError) as exc:
            log.warning("cannot read the cluster slot map: %s", exc)

    async def ping(self, url: str, timeout: float = 2.0) -> bool:
        """Whether one master answers PING within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return bool(await self.connection(url).execute("PING"))
        except (redis.RedisError, OSError, TimeoutError):
            return False

    async def close(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh
        for conn in list(self._conns.values()):
            await conn.close()
        self._conns.clear()


def command_client(topology: Topology, *, pool_size: int = 64) -> aioredis.Redis:
    """redis-py's cluster client (it follows MOVED / ASK by itself), started from every
    seed and every node ``CLUSTER NODES`` named (replicas included), so one seed that died
    does not stop it.

    Those start-up nodes are kept (``dynamic_startup_nodes=False``): redis-py would otherwise
    replace them with the nodes ``CLUSTER SLOTS`` lists, which leaves out a replica that has
    no data yet, and then a client whose masters all died cannot find the promoted replica.

    Typed as :class:`redis.asyncio.Redis`: the services use the commands both share.
    """
    first, *others = topology.seeds
    nodes = []
    for url in dict.fromkeys([*others, *topology.masters, *topology.nodes]):
        p = urlparse(url)
        nodes.append(ClusterNode(p.hostname or "localhost", p.port or 6379))
    client = RedisCluster.from_url(
        first,
        startup_nodes=nodes or None,
        decode_responses=True,
        max_connections=pool_size,
        socket_timeout=5,
        socket_connect_timeout=2,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        require_full_coverage=False,  # a slot lost with its master fails only its keys
        dynamic_startup_nodes=False,
    )
    return cast(aioredis.Redis, client)
