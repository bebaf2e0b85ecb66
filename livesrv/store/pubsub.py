"""Sharded pub/sub for the hub: ``smessage`` pushes parsed by hiredis straight into a queue.

Each gift reaches a node as up to three messages (the room event, and the wallet updates of
the payer and the creator when they are signed in on it), so parsing them is on the hot
path; this skips redis-py's per-message machinery.

Channels are shard channels (``SSUBSCRIBE``; the scripts ``SPUBLISH`` in their own slot).
On a cluster there is one connection per master and each channel is subscribed on the
master owning its slot; a standalone store has one connection. The subscription heals
itself: when a node says a slot moved (an ``sunsubscribe`` push for a channel we did not
unsubscribe, or ``-MOVED`` in answer to ``SSUBSCRIBE``) or a connection drops, it reads the
slot map again, subscribes every channel on its owner, and then puts ``None`` in the queue
to say that messages may have been lost meanwhile (the hub reads them from the room logs).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from urllib.parse import urlparse

import hiredis
import redis

from .pipeline import SCHEMES, auth_command, open_store_connection, pack
from .topology import Topology, parse_redirect, split_seeds

log = logging.getLogger(__name__)

Message = tuple[str, str]
# what a command sent on a subscriber connection waits for: (reply kind, channel, future)
_Expect = tuple[str, str, asyncio.Future[bool] | None]
ACK_TIMEOUT = 5.0  # seconds to wait for a node to confirm the subscriptions of a heal


class _SubProtocol(asyncio.Protocol):
    """One subscriber connection to one store node."""

    def __init__(self, owner: Subscription, url: str) -> None:
        self.owner = owner
        self.url = url
        self.reader = hiredis.Reader(encoding="utf-8")
        self.transport: asyncio.Transport | None = None
        self.expected: collections.deque[_Expect] = collections.deque()
        self.out: list[bytes] = []  # this loop iteration's commands: one write for them all
        self.flush_scheduled = False

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        queue = self.owner.queue
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError:
                if self.transport is not None:
                    self.transport.abort()
                return
            if reply is False:
                return
            if isinstance(reply, list) and len(reply) == 3:
                kind = reply[0]
                if kind == "smessage" or kind == "message":
                    queue.put_nowait((reply[1], reply[2]))
                elif self.expected and self.expected[0][:2] == (kind, reply[1]):
                    self._answered(True)
                elif kind == "sunsubscribe":  # not ours: the node no longer owns the slot
                    self.owner._dropped(self, reply[1])
            elif isinstance(reply, hiredis.ReplyError):
                entry = self.expected.popleft() if self.expected else None
                if entry is not None and entry[2] is not None and not entry[2].done():
                    entry[2].set_result(False)
                self.owner._refused(self, entry, str(reply))
            elif self.expected and self.expected[0][0] == "auth":
                self._answered(True)  # +OK of AUTH

    def _answered(self, ok: bool) -> None:
        fut = self.expected.popleft()[2]
        if fut is not None and not fut.done():
            fut.set_result(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        while self.expected:
            self._answered(False)
        self.owner._lost(self)

    def command(self, expect: str, *args: str) -> asyncio.Future[bool]:
        """Send a command; the future says whether the node accepted it (False: refused,
        or the connection went away first)."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self.transport is None or self.transport.is_closing():
            fut.set_result(False)
            return fut
        self.expected.append((expect, args[1] if len(args) > 1 else "", fut))
        self.out.append(pack(*args))
        if not self.flush_scheduled:  # e.g. a storm of hellos: one write, not one per user
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self.flush_scheduled = False
        out, self.out = self.out, []
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))


class Subscription:
    """Subscribed shard channels of one node, over connections that heal themselves.

    Args:
        url: The store URL (``redis://``, ``rediss://`` or ``unix://``), or several seed
            URLs of a cluster separated by commas.
        topology: The slot map to use (and refresh when a slot moves), shared with the
            script calls; discovered from ``url`` when not given.
    """

    def __init__(self, url: str, topology: Topology | None = None) -> None:
        for seed in split_seeds(url):
            if urlparse(seed).scheme not in SCHEMES:
                raise ValueError(f"pub/sub supports redis://, rediss:// and unix://, not {seed}")
        self.url = url
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self.channels: set[str] = set()
        self.topology = topology if topology is not None and topology.masters else None
        self._conns: dict[str, _SubProtocol] = {}  # node URL -> its live connection
        self._where: dict[str, str] = {}  # channel -> node URL it was subscribed on
        self._heal: asyncio.Task[None] | None = None
        self._dirty = False
        self._closed = False

    async def start(self) -> None:
        """Connect (retrying in the background if the store is away right now)."""
        try:
            if self.topology is None:
                self.topology = await Topology.discover(self.url)
            await self._place()
        except (redis.RedisError, OSError, TimeoutError):
            self._schedule_heal()

    def subscribe(self, *channels: str) -> None:
        for channel in channels:
            if channel in self.channels:
                continue
            self.channels.add(channel)
            if self.topology is None:
                continue  # subscribed once the store is reached
            try:
                url = self.topology.url_for_key(channel)
            except redis.ConnectionError:
                self._schedule_heal()
                continue
            proto = self._conns.get(url)
            if proto is None or not proto.alive:
                self._schedule_heal()
                continue
            self._where[channel] = url
            proto.command("ssubscribe", "SSUBSCRIBE", channel)

    def unsubscribe(self, *channels: str) -> None:
        for channel in channels:
            if channel not in self.channels:
                continue
            self.channels.discard(channel)
            url = self._where.pop(channel, None)
            proto = self._conns.get(url) if url is not None else None
            if proto is not None and proto.alive:
                proto.command("sunsubscribe", "SUNSUBSCRIBE", channel)

    # -- healing -----------------------------------------------------------------

    def _dropped(self, proto: _SubProtocol, channel: str) -> None:
        """A node unsubscribed us from a channel on its own: its slot moved elsewhere."""
        if self._where.get(channel) == proto.url:
            del self._where[channel]
        if channel in self.channels:
            log.info("store node %s gave up channel %s (slot moved)", proto.url, channel)
            self._schedule_heal()

    def _refused(self, proto: _SubProtocol, entry: _Expect | None, text: str) -> None:
        kind, channel = (entry[0], entry[1]) if entry is not None else ("", "")
        if kind == "sunsubscribe":
            return  # the slot moved before we left it: nothing to leave
        if kind == "ssubscribe":
            if self._where.get(channel) == proto.url:
                del self._where[channel]
            redirect = parse_redirect(text)
            if redirect is None:  # CLUSTERDOWN, TRYAGAIN, ...: try again after a while
                log.warning("store node %s refused SSUBSCRIBE %s: %s", proto.url, channel, text)
            elif redirect[0] == "MOVED" and self.topology is not None:
                self.topology.moved(redirect[1], redirect[2], redirect[3])
            if channel in self.channels:
                self._schedule_heal()
            return
        log.error("store node %s refused the subscriber connection: %s", proto.url, text)
        if proto.transport is not None:
            proto.transport.abort()

    def _lost(self, proto: _SubProtocol) -> None:
        if self._conns.get(proto.url) is not proto:
            return  # one we closed on purpose
        del self._conns[proto.url]
        for channel in [c for c, u in self._where.items() if u == proto.url]:
            del self._where[channel]
        if not self._closed:
            self._schedule_heal()

    def _schedule_heal(self) -> None:
        self._dirty = True
        if not self._closed and (self._heal is None or self._heal.done()):
            self._heal = asyncio.get_running_loop().create_task(self._heal_loop())

    async def _heal_loop(self) -> None:
        backoff = 0.05
        while not self._closed:
            await asyncio.sleep(backoff)
            self._dirty = False
            try:
                if self.topology is None:
                    self.topology = await Topology.discover(self.url)
                else:
                    await self.topology.refresh()
                await self._place()
            except (redis.RedisError, OSError, TimeoutError) as exc:
                log.debug("store pub/sub not healed yet: %s", exc)
                self._dirty = True
            if self._dirty:
                backoff = min(backoff * 2, 1.0)
                continue
            log.info("store pub/sub re-established on %d node(s)", len(self._conns))
            self.queue.put_nowait(None)  # what was published meanwhile may be lost: resync
            return

    async def _place(self) -> None:
        """Connect to every master and subscribe each channel on the owner of its slot;
        return once the nodes confirmed.

        Raises:
            redis.ConnectionError: A node cannot be reached, refused a subscription or did
                not confirm it in time.
        """
        topo = self.topology
        assert topo is not None
        for url in [u for u in self._conns if u not in topo.masters]:
            self._close(self._conns.pop(url))
            for channel in [c for c, u in self._where.items() if u == url]:
                del self._where[channel]
        for url in topo.masters:
            proto = self._conns.get(url)
            if proto is None or not proto.alive:
                await self._connect(url)
        acks = []
        for channel in sorted(self.channels):
            url = topo.url_for_key(channel)
            current = self._where.get(channel)
            if current == url:
                continue
            old = self._conns.get(current) if current is not None else None
            if old is not None and old.alive:
                old.command("sunsubscribe", "SUNSUBSCRIBE", channel)
            proto = self._conns.get(url)
            if proto is None:
                raise redis.ConnectionError(f"lost the connection to {url}")
            self._where[channel] = url
            acks.append(proto.command("ssubscribe", "SSUBSCRIBE", channel))
        if acks:
            try:
                accepted = await asyncio.wait_for(asyncio.gather(*acks), ACK_TIMEOUT)
            except TimeoutError as exc:
                raise redis.ConnectionError("the store did not confirm subscriptions") from exc
            if not all(accepted):
                raise redis.ConnectionError("a store node refused a subscription (slot moved)")

    async def _connect(self, url: str) -> None:
        parsed = urlparse(url)
        proto = await open_store_connection(parsed, lambda: _SubProtocol(self, url))
        auth = auth_command(parsed)
        if auth is not None and proto.transport is not None:
            proto.expected.append(("auth", "", None))
            proto.transport.write(auth)
        stale = self._conns.get(url)
        self._conns[url] = proto
        if stale is not None:
            self._close(stale)
        for channel in [c for c, u in self._where.items() if u == url]:
            del self._where[channel]  # they were on the connection that is gone

    @staticmethod
    def _close(proto: _SubProtocol) -> None:
        if proto.transport is not None:
            proto.transport.close()

    async def close(self) -> None:
        self._closed = True
        if self._heal is not None:
            self._heal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heal
        conns, self._conns = list(self._conns.values()), {}
        for proto in conns:
            self._close(proto)
        self._where.clear()
