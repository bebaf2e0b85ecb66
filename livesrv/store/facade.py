"""What every service needs: settings, catalogue, the store client and its scripts."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from ..catalog import Catalog
from ..errors import LivesrvError, Unavailable
from ..settings import Settings
from .embedded import connect
from .keys import ShardKeys, UserKeys
from .scripts import Scripts


@dataclass
class Backend:
    settings: Settings
    catalog: Catalog
    redis: aioredis.Redis
    scripts: Scripts
    url: str = ""
    logged: RecentSet = field(default_factory=lambda: RecentSet(100_000))

    @classmethod
    def create(cls, settings: Settings, url: str, *, pool_size: int = 64) -> Backend:
        client = connect(url, pool_size=pool_size)
        scripts = Scripts.register(client, url)
        return cls(settings, Catalog.load(settings.catalog), client, scripts, url)

    async def close(self) -> None:
        await self.scripts.close()
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()  # a pool we made is ours to close

    def user(self, user: str) -> UserKeys:
        return UserKeys.of(user, self.settings.shards)

    def shard(self, n: int) -> ShardKeys:
        return ShardKeys(n)

    def all_shards(self) -> list[ShardKeys]:
        return [ShardKeys(n) for n in range(self.settings.shards)]

    async def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run one script; a store that cannot be reached becomes ``Unavailable``."""
        try:  # the hot path: inline rather than through the store_errors() context manager
            return await self.scripts.run(name, keys, args)
        except _STORE_FAILURES as exc:
            raise _translate(exc) from exc


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


_STORE_FAILURES = (redis.ConnectionError, redis.TimeoutError, OSError, redis.ResponseError)


def _translate(exc: Exception) -> Exception:
    """The error a store failure becomes: unreachable, timed out, loading or read-only is
    ``unavailable`` (the outcome is unknown to the client); anything else stays itself."""
    if not isinstance(exc, redis.ResponseError):
        return Unavailable()
    text = str(exc)
    if "LOADING" in text or "MASTERDOWN" in text or "READONLY" in text:
        return Unavailable()
    same: Exception = exc
    return same


@asynccontextmanager
async def store_errors() -> AsyncIterator[None]:
    """Map store failures to protocol errors: unreachable or timed out is ``unavailable``."""
    try:
        yield
    except LivesrvError:
        raise
    except _STORE_FAILURES as exc:
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
