"""An auto-pipelining connection for the hot path: money and room scripts.

Every concurrent ``EVALSHA`` goes out on one connection without waiting for earlier replies;
the writes of one event-loop iteration leave in one syscall, and replies are matched to
callers in order (RESP answers in order). Packing and parsing are hiredis' C code. This
removes a connection-pool round trip and most per-command Python work from each gift.

A command whose connection breaks fails with ``redis.ConnectionError`` (``unavailable`` to
the client, who retries with the same key); it is never re-sent blindly. NOSCRIPT (a store
that restarted or flushed its scripts) loads the script and runs it again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast
from urllib.parse import ParseResult, unquote, urlparse

import hiredis
import redis

from .durability import (
    SYNC_TTL_MS,
    Durability,
    NotDurable,
    connected_replicas,
    release_batch,
    sync_key,
)
from .topology import host_port

log = logging.getLogger(__name__)

SCHEMES = ("redis", "rediss", "unix")
_P = TypeVar("_P", bound=asyncio.Protocol)


class _ReplyError(Exception):
    pass


async def open_store_connection(parsed: ParseResult, factory: Callable[[], _P]) -> _P:
    """Connect a protocol to the store a parsed ``redis://``, ``rediss://`` or ``unix://``
    URL names (2 s to connect).

    Raises:
        redis.ConnectionError: The store cannot be reached.
    """
    loop = asyncio.get_running_loop()
    try:
        if parsed.scheme == "unix":
            _, proto = await asyncio.wait_for(
                loop.create_unix_connection(factory, unquote(parsed.path)), 2
            )
        else:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    factory,
                    parsed.hostname or "localhost",
                    parsed.port or 6379,
                    ssl=parsed.scheme == "rediss" or None,
                ),
                2,
            )
    except (OSError, TimeoutError) as exc:
        raise redis.ConnectionError(f"cannot reach the store: {exc}") from exc
    return proto


def auth_command(parsed: ParseResult) -> bytes | None:
    """The AUTH command for a URL with a password, else None."""
    if not parsed.password:
        return None
    user = (unquote(parsed.username),) if parsed.username else ()
    return pack("AUTH", *user, unquote(parsed.password))


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: AutoPipeline) -> None:
        self.owner = owner
        self.reader = hiredis.Reader(encoding="utf-8", replyError=_ReplyError)
        self.pending: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.last_reply = time.monotonic()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # durable calls of the batch being gathered: (reply, result) and the barrier key
        self.durable: list[tuple[asyncio.Future[Any], asyncio.Future[Any]]] = []
        self.barrier_key = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        self.last_reply = time.monotonic()
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(redis.ConnectionError(f"protocol error from the store: {exc}"))
                if self.transport is not None:
                    self.transport.abort()
                return
            if reply is False:
                return
            fut = self.pending.popleft()
            if fut.done():
                continue
            if isinstance(reply, _ReplyError):
                fut.set_exception(redis.ResponseError(str(reply)))
            else:
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(redis.ConnectionError("connection to the store lost"))
        if not self.lost.done():
            self.lost.set_result(None)
        self.owner._on_lost(self)

    def _fail(self, exc: Exception) -> None:
        while self.pending:
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_exception(exc)

    def send(self, packed: bytes, durable_key: str = "") -> asyncio.Future[Any]:
        """Queue one command for this iteration's write.

        Args:
            packed: The command.
            durable_key: A key of the command's slot: the reply is held until the batch's
                wait (:mod:`.durability`) confirms the batch; empty: replied as it comes.
        """
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.transport is None or self.transport.is_closing():
            fut.set_exception(redis.ConnectionError("connection to the store lost"))
            return fut
        if not self.pending:
            self.last_reply = time.monotonic()
        self.pending.append(fut)
        self.out.append(packed)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        if durable_key and self.owner.waiting:
            result: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.durable.append((fut, result))
            self.barrier_key = durable_key
            return result
        return fut

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.durable:
            self._end_batch()
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self.out))
        self.out.clear()

    def _end_batch(self) -> None:
        """Close a batch holding durable calls with a barrier write in the slot of its last
        one (the wait then covers everything the master did before, whichever connection
        wrote it) and the policy's wait; their replies are released when the wait answers."""
        loop = asyncio.get_running_loop()
        policy = self.owner.durability
        asking = loop.create_future()
        barrier = loop.create_future()
        wait = loop.create_future()
        key = sync_key(self.barrier_key)
        # ASKING: the slot may be being imported here (harmless when it is simply owned)
        self.out.append(pack("ASKING"))
        self.out.append(pack("SET", key, "1", "PX", SYNC_TTL_MS))
        self.out.append(pack(*policy.command()))
        self.pending.extend((asking, barrier, wait))
        asking.add_done_callback(_ignore)
        calls, self.durable = self.durable, []
        wait.add_done_callback(lambda w: release_batch(calls, barrier, w, policy))


class AutoPipeline:
    """One auto-pipelined connection to one store node (``redis://``, ``rediss://``,
    ``unix://``); on a cluster, :mod:`.cluster` keeps one per master.

    Args:
        url: The store URL.
        timeout: Seconds without any reply, while replies are owed, before the connection
            is declared dead.
        durability: What script replies wait for (:mod:`.durability`); default: nothing.
    """

    def __init__(
        self, url: str, *, timeout: float = 5.0, durability: Durability | None = None
    ) -> None:
        self.url = url
        self.durability = durability or Durability()
        # a wait may take its whole timeout: the connection is not declared dead for it
        self.timeout = max(timeout, self.durability.timeout_ms / 1000 + 2)
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._scripts: dict[str, str] = {}
        self.generation = 0  # changes whenever a connection is made or lost
        self._degraded = False  # auto durability: no replica connected, so none waited for
        self._probe: asyncio.Task[None] | None = None
        parsed = urlparse(url)
        if parsed.scheme not in SCHEMES:
            raise ValueError(f"auto-pipelining supports redis://, rediss:// and unix://, not {url}")
        self._parsed = parsed

    @property
    def waiting(self) -> bool:
        """Whether script replies wait for the durability policy now."""
        return self.durability.waits and not self._degraded

    @staticmethod
    def supports(url: str) -> bool:
        return urlparse(url).scheme in SCHEMES

    def register(self, source: str) -> str:
        sha = hashlib.sha1(source.encode()).hexdigest()
        self._scripts[sha] = source
        return sha

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            current = self._proto
            if current is not None and current.transport and not current.transport.is_closing():
                return current
            p = self._parsed
            proto = await open_store_connection(p, lambda: _Protocol(self))
            auth = auth_command(p)
            if auth is not None:
                await proto.send(auth)
            db = p.path.strip("/") if p.scheme != "unix" else ""
            if db and db != "0":
                await proto.send(pack("SELECT", db))
            if self.durability.waits and not self.durability.strict:
                with contextlib.suppress(redis.ResponseError):  # INFO refused: wait anyway
                    info = await proto.send(pack("INFO", "replication"))
                    self._set_degraded(connected_replicas(info) < self.durability.replicas)
            self._proto = proto
            self.generation += 1
            if self._watchdog is None or self._watchdog.done():
                self._watchdog = asyncio.create_task(self._watch(), name="store-watchdog")
            return proto

    def _on_lost(self, proto: _Protocol) -> None:
        self.generation += 1
        if self._proto is proto:
            self._proto = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.timeout / 2))
            proto = self._proto
            if proto is None or not proto.pending or proto.transport is None:
                continue
            if time.monotonic() - proto.last_reply > self.timeout:
                proto._fail(redis.TimeoutError("the store did not answer in time"))
                proto.transport.abort()

    async def execute(self, *args: Any) -> Any:
        proto = self._proto
        if proto is None or proto.transport is None or proto.transport.is_closing():
            proto = await self._connect()
        return await proto.send(pack(*args))

    async def _durable(self, key: str, *args: Any) -> Any:
        proto = self._proto
        if proto is None or proto.transport is None or proto.transport.is_closing():
            proto = await self._connect()
        return await proto.send(pack(*args), key)

    async def execute_many(self, *commands: tuple[Any, ...], durable_key: str = "") -> list[Any]:
        """Send several commands back to back: nothing else goes out between them on this
        connection (``ASKING`` must come right before the command it is for).

        Returns:
            Each command's reply, or the exception it failed with, in order.
        """
        proto = self._proto
        if proto is None or proto.transport is None or proto.transport.is_closing():
            proto = await self._connect()
        last = len(commands) - 1
        futures = [  # no await between the sends; the last one may be durable
            proto.send(pack(*c), durable_key if i == last else "") for i, c in enumerate(commands)
        ]
        return await asyncio.gather(*futures, return_exceptions=True)

    async def _fell_short(self, exc: NotDurable) -> Any:
        """A batch's wait fell short: ``unavailable`` (NOREPLICAS), unless the policy is
        ``auto`` and this master has no replica connected to wait for (then the reply)."""
        if not self.durability.strict:
            try:
                connected = connected_replicas(await self.execute("INFO", "replication"))
            except (redis.RedisError, OSError):
                connected = self.durability.replicas
            if connected < self.durability.replicas:
                self._set_degraded(True)
                return exc.reply
        raise redis.ResponseError(f"NOREPLICAS {exc.why}") from None

    def _set_degraded(self, degraded: bool) -> None:
        if degraded == self._degraded:
            return
        self._degraded = degraded
        if degraded:
            log.warning(
                "store %s has no replica connected: money replies do not wait for one until "
                "one is back (durability auto)",
                host_port(self.url),
            )
            if self._probe is None or self._probe.done():
                self._probe = asyncio.get_running_loop().create_task(
                    self._probe_replicas(), name="store-replica-probe"
                )
        else:
            log.warning(
                "store %s has a replica again: money replies wait for it", host_port(self.url)
            )

    async def _probe_replicas(self) -> None:
        """While degraded: look for a connected replica once a second."""
        while self._degraded:
            await asyncio.sleep(1.0)
            try:
                info = await self.execute("INFO", "replication")
            except (redis.RedisError, OSError):
                continue  # away (or failed over): the next connection probes again
            if connected_replicas(info) >= self.durability.replicas:
                self._set_degraded(False)

    async def evalsha(self, sha: str, keys: list[str], args: list[Any]) -> Any:
        """Run a script; its reply waits for the durability policy (:mod:`.durability`)."""
        try:
            return await self._evalsha(sha, keys, args)
        except NotDurable as exc:
            return await self._fell_short(exc)

    async def _evalsha(self, sha: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._durable(keys[0], "EVALSHA", sha, len(keys), *keys, *args)
        except redis.ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.execute("SCRIPT", "LOAD", self._scripts[sha])
        return await self._durable(keys[0], "EVALSHA", sha, len(keys), *keys, *args)

    async def evalsha_asking(self, sha: str, keys: list[str], args: list[Any]) -> Any:
        """:meth:`evalsha` right after ``ASKING`` (a cluster node importing the slot)."""
        for attempt in range(2):
            _, reply = await self.execute_many(
                ("ASKING",), ("EVALSHA", sha, len(keys), *keys, *args), durable_key=keys[0]
            )
            if isinstance(reply, NotDurable):
                return await self._fell_short(reply)
            if not isinstance(reply, BaseException):
                return reply
            if attempt or not str(reply).startswith("NOSCRIPT"):
                raise reply
            await self.execute("SCRIPT", "LOAD", self._scripts[sha])
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self._degraded = False
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        proto = self._proto
        self._proto = None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(proto.lost), 1)


def _ignore(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


def pack(*args: Any) -> bytes:
    return hiredis.pack_command(args)  # type: ignore[no-any-return]
