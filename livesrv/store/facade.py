"""What every service needs: settings, catalogue, the store client and its scripts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from redis.exceptions import RedisClusterException

from ..catalog import Catalog
from ..errors import LivesrvError, StoreError, Unavailable
from ..settings import Settings
from .cluster import ClusterScripts, command_client
from .durability import Durability
from .embedded import connect
from .keys import ShardKeys, UserKeys
from .scripts import Scripts
from .topology import Topology, host_port, split_seeds

log = logging.getLogger(__name__)

ScriptObserver = Callable[[str, list[str], list[Any], float], None]
"""``(name, keys, args, seconds)``: one script run by :meth:`Backend.run`, and how long it
took (wall seconds, the wait for the store included)."""

LiveObserver = Callable[[str, str], None]
"""``(what, label)``: one LIVE milestone this process decided, exactly once in the store:
``match_started`` (label ''), ``match_ended`` (the reason), ``goal_reached`` (the goal's
kind), ``hype_ended`` (the level reached)."""


@dataclass
class Backend:
    """The store as the services see it.

    Attributes:
        redis: The command client: ``redis.asyncio.Redis`` on a standalone store, redis-py's
            ``RedisCluster`` (same commands, routed by key) on a cluster.
        scripts: The money and room scripts (routed to the slot's master on a cluster).
        url: The standalone store's URL; on a cluster, the first master's at start-up.
        topology: Standalone or cluster, and which master owns which slot.
        durability: What a script's reply waits for (:mod:`.durability`).
        on_script: When set, called after every script :meth:`run` runs, failed ones included,
            with its name, keys, arguments and duration in seconds (tracing, metrics, and the
            benchmark, which records the scripts of a gift to replay them at the store). It
            runs inline on the hot path: keep it cheap and never raise. None (the default)
            costs one attribute test per script.
        on_live: When set, called once for each LIVE milestone (:data:`LiveObserver`) this
            process is the one to decide (the node counts them in its metrics).
    """

    settings: Settings
    catalog: Catalog
    redis: aioredis.Redis
    scripts: Scripts
    url: str = ""
    logged: RecentSet = field(default_factory=lambda: RecentSet(100_000))
    topology: Topology = field(default_factory=lambda: Topology(["redis://localhost:6379"]))
    durability: Durability = field(default_factory=Durability)
    on_script: ScriptObserver | None = None
    on_live: LiveObserver | None = None
    _fenced: set[str] = field(default_factory=set)
    _fenced_generation: int = -1

    @classmethod
    def create(cls, settings: Settings, url: str, *, pool_size: int = 64) -> Backend:
        """Connect to the store at ``url`` (one URL, or several cluster seeds separated by
        commas); whether it is a cluster is asked of the first seed that answers.

        A single URL that does not answer is used as a standalone store, as before clusters
        were supported: the node starts and answers ``unavailable`` until the store is up.

        Raises:
            StoreError: None of several seeds answers.
        """
        try:
            topology = Topology.discover_blocking(url)
        except redis.ConnectionError as exc:
            seeds = split_seeds(url)
            if len(seeds) > 1:
                raise StoreError(str(exc)) from exc
            log.warning("%s; using it as a single (not cluster) store", exc)
            topology = Topology.standalone(seeds[0])
        url = topology.masters[0]
        durability = Durability.choose(
            settings.durability,
            settings.durability_replicas,
            settings.durability_timeout_ms,
            topology.replicas,
        )
        if topology.cluster:
            client = command_client(topology, pool_size=pool_size)
        else:
            client = connect(url, pool_size=pool_size)
        scripts = Scripts.register(url, topology, durability)
        catalog = Catalog.load(settings.catalog)
        return cls(
            settings, catalog, client, scripts, url, topology=topology, durability=durability
        )

    @property
    def is_cluster(self) -> bool:
        """Whether the store is a cluster (commands are routed by key slot)."""
        return self.topology.cluster

    async def ready(self) -> None:
        """Read a cluster client's slot map before commands run concurrently on it:
        redis-py's cluster client, first used by many tasks at once, can fail some of them
        while it connects (an unset writer)."""
        if self.topology.cluster:
            await self.redis.initialize()

    async def close(self) -> None:
        await self.scripts.close()
        await self.redis.aclose()
        if not self.topology.cluster:
            await self.redis.connection_pool.disconnect()  # a pool we made is ours to close

    async def health(self) -> dict[str, bool]:
        """Whether each master answers, by ``host:port`` (one entry on a standalone store)."""
        router = self.scripts.pipeline
        if not isinstance(router, ClusterScripts):
            try:
                async with asyncio.timeout(2):
                    up = bool(await self.redis.ping())
            except (redis.RedisError, OSError, TimeoutError):
                up = False
            return {"unix" if self.url.startswith("unix:") else host_port(self.url): up}
        answers = await self._ping_masters(router)
        if not all(answers.values()):  # a replica may have taken over: read the map again
            with contextlib.suppress(redis.RedisError, OSError, TimeoutError):
                async with asyncio.timeout(2):
                    await self.topology.refresh()
            answers = await self._ping_masters(router)
        return answers

    async def _ping_masters(self, router: ClusterScripts) -> dict[str, bool]:
        masters = list(self.topology.masters)
        up = await asyncio.gather(*(router.ping(url) for url in masters))
        return {host_port(url): ok for url, ok in zip(masters, up, strict=True)}

    def user(self, user: str) -> UserKeys:
        return UserKeys.of(user, self.settings.shards)

    def shard(self, n: int) -> ShardKeys:
        return ShardKeys(n)

    def all_shards(self) -> list[ShardKeys]:
        return [ShardKeys(n) for n in range(self.settings.shards)]

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one script; a store that cannot be reached becomes ``Unavailable``."""
        if self.on_script is not None:
            return await self._run_observed(self.on_script, name, keys, args)
        try:  # the hot path: inline rather than through the store_errors() context manager
            return await self.scripts.run(name, keys, args)
        except STORE_FAILURES as exc:
            raise _translate(exc) from exc

    def live(self, what: str, label: str = "") -> None:
        """Report one LIVE milestone to :attr:`on_live` (nothing when unset)."""
        if self.on_live is not None:
            self.on_live(what, label)

    async def _run_observed(
        self, observer: ScriptObserver, name: str, keys: list[str], args: list[Any]
    ) -> Any:
        """:meth:`run`, reporting the script and its duration to ``observer``."""
        t0 = time.perf_counter()
        try:
            return await self.scripts.run(name, keys, args)
        except STORE_FAILURES as exc:
            raise _translate(exc) from exc
        finally:
            observer(name, keys, args, time.perf_counter() - t0)

    def fence(self, tag: str) -> tuple[str, int]:
        """Whether the next seq-numbering script for ``tag`` (a room) must check that its
        master is still the one that logged the room's last events (``room_event.lua``):
        once per tag after any store connection of this node was made or lost.

        Returns:
            ("1" or "0" for the script, the generation to pass to :meth:`fenced`).
        """
        generation = self.scripts.generation
        if generation != self._fenced_generation or len(self._fenced) > 100_000:
            self._fenced.clear()
            self._fenced_generation = generation
        return ("0" if tag in self._fenced else "1"), generation

    def fenced(self, tag: str, generation: int) -> None:
        """Record that a fenced script for ``tag`` ran on the connections of ``generation``."""
        if generation == self.scripts.generation == self._fenced_generation:
            self._fenced.add(tag)

    async def replicated(self, key: str) -> None:
        """Wait until everything the master of ``key``'s slot has done so far is held as the
        durability policy asks (no wait under ``master``): for a step that acts on what it
        read there (the settlement credits outbox entries it read).

        Raises:
            Unavailable: The store is away or the replicas did not acknowledge in time.
        """
        if self.durability.waits:
            await self.run("sync", [key], [])


class RecentSet:
    """The newest ``size`` strings added, for cheap "did this process just do it" checks.

    The settlement worker uses it to skip re-logging room events this process has just
    logged itself; anything it does not remember is checked in the store as usual.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, None] = OrderedDict()

    def add(self, item: str) -> None:
        self._items[item] = None
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        return item in self._items


STORE_FAILURES = (redis.RedisError, OSError, RedisClusterException)
"""Every failure of the store or of the connection to it (what a caller may catch)."""
STORE_DOWN = (redis.ConnectionError, redis.TimeoutError, OSError)
"""The store cannot be reached or did not answer in time (the outcome is unknown)."""
ReplyError = redis.ResponseError
"""The store answered a command with an error reply."""

# Errors that say the store (or this node's view of the cluster) cannot serve the request
# right now; the request did not run, or its outcome is unknown: ``unavailable``.
_AWAY = (
    redis.ConnectionError,  # BusyLoadingError and MaxConnectionsError included
    redis.TimeoutError,
    OSError,
    redis.exceptions.ClusterError,  # ClusterDownError, MasterDownError
    redis.exceptions.AskError,  # MovedError included
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
)
# The same, as the first word of an error reply from the auto-pipelined connection.
_AWAY_CODES = frozenset(
    {
        "MOVED",
        "ASK",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "MASTERDOWN",
        "LOADING",
        "READONLY",
        "BUSY",
        "NOREPLICAS",
        "OOM",
        "MISCONF",
    }
)


_said = {"moved": False}


def _translate(exc: Exception) -> Exception:
    """The error a store failure becomes: the store unreachable, timed out, loading,
    read-only, or a cluster that is down, resharding or redirecting is ``unavailable`` (the
    outcome is unknown to the client, whose retry with the same key finishes it once).
    Anything else (a script's own error, a cross-slot call: bugs) stays itself: ``internal``.
    """
    if isinstance(exc, _AWAY):
        return Unavailable()
    text = str(exc)
    if isinstance(exc, RedisClusterException):  # SlotNotCoveredError, no node reachable, ...
        return exc if "CROSSSLOT" in text else Unavailable()
    if isinstance(exc, redis.ResponseError):
        code = text.split(" ", 1)[0]
        if code == "MOVED" and not _said["moved"]:
            _said["moved"] = True  # a cluster taken for a single store: it did not answer
            log.error("the store answered MOVED: it is a cluster; restart this node to use it")
        if code in _AWAY_CODES:
            return Unavailable()
        if "LOADING" in text or "MASTERDOWN" in text or "READONLY" in text:
            return Unavailable()
    return exc


def as_protocol_error(exc: BaseException) -> LivesrvError | None:
    """The protocol error a store failure that escaped the services becomes (``unavailable``),
    or None when ``exc`` is not one (a bug: ``internal``)."""
    if isinstance(exc, LivesrvError):
        return exc
    if isinstance(exc, STORE_FAILURES):
        translated = _translate(exc)
        if isinstance(translated, LivesrvError):
            return translated
    if _inside_store_client(exc):
        return Unavailable()
    return None


_REDIS_PY = os.path.dirname(redis.__file__) + os.sep


def _inside_store_client(exc: BaseException) -> bool:
    """Whether ``exc`` is redis-py's own state going wrong mid-failover rather than ours:
    its cluster client can hand a connection that another task is disconnecting to a
    command (``'NoneType' object has no attribute 'writelines'``). The command did not run or
    its outcome is unknown, as with a dropped connection: ``unavailable``, and the retry
    with the same key finishes it."""
    if not isinstance(exc, AttributeError | TypeError | KeyError | IndexError):
        return False
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.startswith(_REDIS_PY)


@asynccontextmanager
async def store_errors() -> AsyncIterator[None]:
    """Map store failures to protocol errors: unreachable or timed out is ``unavailable``."""
    try:
        yield
    except LivesrvError:
        raise
    except STORE_FAILURES as exc:
        translated = _translate(exc)
        if translated is exc:
            raise
        raise translated from exc


def now_ms() -> int:
    return int(time.time() * 1000)


def args_hash(op: str, args: dict[str, Any]) -> str:
    """Fingerprint of a request's arguments (without its key), for idempotency conflicts."""
    body = orjson.dumps({"op": op, **args}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha1(body).hexdigest()
