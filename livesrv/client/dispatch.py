"""The receiving half of the client, without I/O: the codec, replies matched to pending
requests by ``id``, the session state success replies change (rooms joined, the hello
reply) and the bounded event buffer."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import msgpack
import orjson

from .events import Event, EventBuffer, Rooms

log = logging.getLogger("livesrv.client")

JSON = "livesrv.v1.json"
MSGPACK = "livesrv.v1.msgpack"
CODECS = {"json": JSON, "msgpack": MSGPACK, JSON: JSON, MSGPACK: MSGPACK}

Pending = tuple["asyncio.Future[dict[str, Any]]", dict[str, Any]]


class Dispatcher:
    """Frames in; replies to the waiting requests and events to the buffer.

    Subclasses may override the ``_..._received`` hooks to observe the traffic (call the
    base method to keep the client working).

    Args:
        codec: ``"json"`` or ``"msgpack"`` (or the subprotocol name).
        event_buffer: The most events held (the oldest are dropped).
        dedupe: Drop a logged event whose seq was already delivered for its room.
    """

    def __init__(self, codec: str, event_buffer: int, dedupe: bool) -> None:
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}: use 'json' or 'msgpack'")
        self.codec = CODECS[codec]
        self.rooms = Rooms(dedupe)
        self.buffer = EventBuffer(event_buffer)
        self.user: dict[str, Any] | None = None
        self._token: Any = None
        self._pending: dict[Any, Pending] = {}

    def encode(self, message: Any) -> str | bytes:
        """One frame's payload: text for JSON, bytes for MessagePack."""
        if self.codec == MSGPACK:
            return msgpack.packb(message, use_bin_type=True)  # type: ignore[no-any-return]
        try:
            return orjson.dumps(message).decode()
        except TypeError:  # an integer past 64 bits, say: let the server judge it
            return json.dumps(message)

    def decode(self, data: str | bytes) -> Any:
        """A received frame's message or batch."""
        if isinstance(data, bytes):
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        return orjson.loads(data)

    def _frame_received(self, frame: Any) -> None:
        for msg in frame if isinstance(frame, list) else [frame]:
            if not isinstance(msg, dict):
                continue
            if "ev" in msg:
                if self.rooms.accept(msg):
                    self._event_received(msg)
            else:
                self._reply_received(msg)

    def _reply_received(self, msg: dict[str, Any]) -> None:
        try:
            entry = self._pending.pop(msg.get("id"), None)
        except TypeError:  # an unhashable id
            entry = None
        if entry is None:
            log.debug("reply to no pending request: %r", msg)
            return
        fut, request = entry
        if msg.get("ok") is True:
            self._track(request, msg)
        if not fut.done():
            fut.set_result(msg)

    def _event_received(self, ev: Event) -> None:
        """An event from the server (after the seq check)."""
        self._deliver(ev)

    def _deliver(self, ev: Event) -> None:
        """Hand an event, from the server or the client's own (``gap``), to the readers."""
        self.buffer.put(ev)

    def _track(self, request: dict[str, Any], reply: dict[str, Any]) -> None:
        """Follow the session state a success reply changes (in frame order)."""
        op = request.get("op")
        if op == "join":
            gap = self.rooms.joined(request, reply)
            if gap is not None:
                self._deliver(gap)
        elif op == "leave":
            self.rooms.left(request.get("room"))
        elif op == "hello":
            self.user = reply
            if self._token is None:
                self._token = request.get("token")

    def _fail_pending(self, exc: Exception) -> None:
        pending, self._pending = self._pending, {}
        for fut, _ in pending.values():
            if not fut.done():
                fut.set_exception(exc)
