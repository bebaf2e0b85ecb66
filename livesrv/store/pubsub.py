"""A raw pub/sub connection for the hub: messages parsed by hiredis straight into a queue.

Each gift reaches a node as up to three messages (the room event and two wallet updates),
so parsing them is on the hot path; this skips redis-py's per-message machinery. The
connection re-establishes itself: it reconnects with a backoff, subscribes again to every
channel, and puts ``None`` in the queue to say that messages may have been lost meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlparse

import hiredis
import redis

from .pipeline import SCHEMES, auth_command, open_store_connection, pack

log = logging.getLogger(__name__)

Message = tuple[str, str]


class _SubProtocol(asyncio.Protocol):
    def __init__(self, owner: Subscription) -> None:
        self.owner = owner
        self.reader = hiredis.Reader(encoding="utf-8")
        self.transport: asyncio.Transport | None = None

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
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == "message":
                queue.put_nowait((reply[1], reply[2]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._lost(self)

    def write(self, *args: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(pack(*args))


class Subscription:
    """Subscribed channels of one node, over one connection that heals itself.

    Args:
        url: The store URL (``redis://``, ``rediss://`` or ``unix://``).
    """

    def __init__(self, url: str) -> None:
        self.parsed = urlparse(url)
        if self.parsed.scheme not in SCHEMES:
            raise ValueError(f"pub/sub supports redis://, rediss:// and unix://, not {url}")
        self.queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self.channels: set[str] = set()
        self._proto: _SubProtocol | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Connect (retrying in the background if the store is away right now)."""
        try:
            await self._connect()
        except redis.ConnectionError:
            self._schedule_reconnect()

    async def _connect(self) -> None:
        proto = await open_store_connection(self.parsed, lambda: _SubProtocol(self))
        auth = auth_command(self.parsed)
        if auth is not None and proto.transport is not None:
            proto.transport.write(auth)  # its +OK is not a message, and is skipped
        if self.channels:
            proto.write("SUBSCRIBE", *sorted(self.channels))
        self._proto = proto

    def subscribe(self, *channels: str) -> None:
        new = [c for c in channels if c not in self.channels]
        self.channels.update(new)
        if new and self._proto is not None:
            self._proto.write("SUBSCRIBE", *new)

    def unsubscribe(self, *channels: str) -> None:
        gone = [c for c in channels if c in self.channels]
        self.channels.difference_update(gone)
        if gone and self._proto is not None:
            self._proto.write("UNSUBSCRIBE", *gone)

    def _lost(self, proto: _SubProtocol) -> None:
        if self._proto is proto:
            self._proto = None
        if not self._closed:
            self._schedule_reconnect()

    def _schedule_reconnect(self) -> None:
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        backoff = 0.05
        while not self._closed and self._proto is None:
            await asyncio.sleep(backoff)
            try:
                await self._connect()
            except redis.ConnectionError:
                backoff = min(backoff * 2, 1.0)
                continue
            log.info("store pub/sub connection re-established")
            self.queue.put_nowait(None)  # what was published meanwhile is lost: resync

    async def close(self) -> None:
        self._closed = True
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None
